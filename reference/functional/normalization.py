r"""Normalization by statistics of the input: the shared core, ``layer_norm``, ``group_norm``.

Every normalization layer computes, over some set of axes :math:`A` holding
:math:`m` elements,

.. math::
    \mu = \frac1m \sum_A x, \qquad \sigma^2 = \frac1m \sum_A (x - \mu)^2, \qquad
    \hat x = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}, \qquad y = \gamma \hat x + \beta

with the *biased* variance (divide by :math:`m`). The layers differ only in
:math:`A`: the batch and spatial axes per channel (batch norm), the spatial axes per
sample and channel (instance norm), the trailing ``normalized_shape`` axes per
sample (layer norm), or the channels of a group and the spatial axes per sample
(group norm). So they share one backward: with :math:`\hat g = \gamma g` the
gradient reaching :math:`\hat x`,

.. math::
    \frac{\partial L}{\partial x}
    = \frac{1}{m\sqrt{\sigma^2 + \epsilon}}
      \Big(m \hat g - \sum_A \hat g - \hat x \sum_A \hat g \hat x\Big),

the two subtracted terms being the paths through :math:`\mu` and :math:`\sigma^2`.
``batch_norm`` and ``instance_norm``, which also keep running statistics, are in
:mod:`.batch_norm`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import as_float_array
from .rounding import statistic

__all__ = ["layer_norm", "layer_norm_backward", "group_norm", "group_norm_backward"]


# -- the shared core ------------------------------------------------------------------


def normalize(
    x: np.ndarray, axes: tuple[int, ...], eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, mean, var, invstd)`` with the statistics over ``axes`` (kept as size-1 dims).

    Two passes (mean, then the mean of squared deviations): the one-pass
    ``E[x^2] - E[x]^2`` cancels catastrophically when the mean is large. Both means
    are summed in float64 and rounded once to the input's dtype: a float32 sum of m
    equal values, divided by m, need not give the value back, and then a constant row
    does not normalize to exactly 0 (torch's Welford moments do). Each mean is a
    :func:`.rounding.statistic`: an error model may sample the rounding of its sum.
    """
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64).astype(x.dtype)
    mean = statistic(mean, x, axes)
    centered = x - mean
    squares = centered * centered
    var = squares.mean(axis=axes, keepdims=True, dtype=np.float64).astype(x.dtype)  # biased
    var = statistic(var, squares, axes)
    invstd = 1 / np.sqrt(var + eps)
    return centered * invstd, mean, var, invstd


def normalize_backward(
    grad_x_hat: np.ndarray, x_hat: np.ndarray, invstd: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    r"""Gradient wrt ``x`` of :math:`\hat x = (x - \mu)\,\mathrm{invstd}`, statistics over ``axes``.

    .. math:: \frac{\partial L}{\partial x} = \mathrm{invstd}\,\big(\hat g
              - \overline{\hat g} - \hat x\, \overline{\hat g \hat x}\big)

    (bars: means over ``axes``, each a :func:`.rounding.statistic`), the module
    docstring's formula divided through by m.
    """
    mean_grad = statistic(grad_x_hat.mean(axis=axes, keepdims=True), grad_x_hat, axes)
    grad_times_x_hat = grad_x_hat * x_hat
    mean_grad_x_hat = statistic(
        grad_times_x_hat.mean(axis=axes, keepdims=True), grad_times_x_hat, axes
    )
    return invstd * (grad_x_hat - mean_grad - x_hat * mean_grad_x_hat)


def check_grad_shape(grad_output: Any, input: np.ndarray, name: str) -> np.ndarray:
    """``grad_output`` as a floating array of the output's shape (the input's)."""
    grad_output = as_float_array(grad_output, name, "grad_output")
    if grad_output.shape != input.shape:
        raise ValueError(
            f"{name}: grad_output must have the output's shape {input.shape} (the input's), "
            f"got {grad_output.shape}"
        )
    return grad_output


def check_affine(
    weight: Any, bias: Any, shape: tuple[int, ...], name: str
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``weight`` and ``bias`` as floating arrays of ``shape`` (each may be ``None``)."""
    checked = []
    for label, array in (("weight", weight), ("bias", bias)):
        if array is not None:
            array = as_float_array(array, name, label)
            if array.shape != shape:
                raise ValueError(
                    f"{name}: {label} must have shape {shape} (one value per normalized "
                    f"feature), got {array.shape}"
                )
        checked.append(array)
    return checked[0], checked[1]


def affine(
    x_hat: np.ndarray, weight: np.ndarray | None, bias: np.ndarray | None, shape: tuple[int, ...]
) -> np.ndarray:
    r""":math:`\gamma \hat x + \beta`, weight and bias reshaped to ``shape`` to broadcast."""
    output = x_hat
    if weight is not None:
        output = output * weight.reshape(shape)  # (C,) -> (1, C, 1, ...) or as given
    if bias is not None:
        output = output + bias.reshape(shape)  # (C,) -> (1, C, 1, ...) or as given
    return output


def affine_backward(
    grad_output: np.ndarray,
    x_hat: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    shape: tuple[int, ...],
    axes: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    r"""``(g_hat, grad_weight, grad_bias)`` of :func:`affine`; sums over ``axes`` (the shared ones).

    :math:`\hat g = \gamma g`, :math:`\partial L/\partial\gamma = \sum g \hat x`,
    :math:`\partial L/\partial\beta = \sum g`.
    """
    grad_x_hat = grad_output if weight is None else grad_output * weight.reshape(shape)
    grad_weight = None
    if weight is not None:
        grad_weight = (grad_output * x_hat).sum(axis=axes).reshape(weight.shape)
    grad_bias = None if bias is None else grad_output.sum(axis=axes).reshape(bias.shape)
    return grad_x_hat, grad_weight, grad_bias


# -- layer_norm -----------------------------------------------------------------------


def _check_layer_norm(
    input: Any, normalized_shape: int | Sequence[int], weight: Any, bias: Any, name: str
) -> tuple[np.ndarray, tuple[int, ...], np.ndarray | None, np.ndarray | None]:
    input = as_float_array(input, name)
    shape = (
        (normalized_shape,)
        if isinstance(normalized_shape, (int, np.integer))
        else tuple(normalized_shape)
    )
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        raise ValueError(
            f"{name}: normalized_shape must have at least one dimension, got {shape}; pass the "
            "trailing dimensions to normalize over, e.g. normalized_shape=input.shape[-1]"
        )
    if input.ndim < len(shape) or input.shape[input.ndim - len(shape) :] != shape:
        raise ValueError(
            f"{name}: expected input of shape (*, {', '.join(map(str, shape))}) (its trailing "
            f"dimensions equal to normalized_shape={shape}), got {input.shape}"
        )
    weight, bias = check_affine(weight, bias, shape, name)
    return input, shape, weight, bias


def layer_norm(
    input: np.ndarray,
    normalized_shape: int | Sequence[int],
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Normalize each sample over its trailing ``normalized_shape`` dimensions.

    .. math:: y = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}}\,\gamma + \beta

    :math:`\mu, \sigma^2` (biased) over the last ``len(normalized_shape)`` axes of each
    sample; :math:`\gamma, \beta` are elementwise, of shape ``normalized_shape``.

    Shapes: input ``(*, *normalized_shape)``, weight and bias ``normalized_shape`` ->
    the input's shape. Torch: ``torch.nn.functional.layer_norm``.
    """
    input, shape, weight, bias = _check_layer_norm(
        input, normalized_shape, weight, bias, "layer_norm"
    )
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    if input.size == 0:
        return np.zeros_like(input)
    x_hat = normalize(input, axes, eps)[0]
    return affine(x_hat, weight, bias, shape)


def layer_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    normalized_shape: int | Sequence[int],
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    r"""Gradients of :func:`layer_norm`: ``(grad_input, grad_weight, grad_bias)``.

    .. math::
        \hat g = \gamma g, \qquad
        \frac{\partial L}{\partial x} = \frac{1}{m\sigma_\epsilon}
            \Big(m\hat g - \sum \hat g - \hat x \sum \hat g \hat x\Big), \qquad
        \frac{\partial L}{\partial \gamma} = \sum_{\text{samples}} g \hat x, \qquad
        \frac{\partial L}{\partial \beta} = \sum_{\text{samples}} g

    with sums over the normalized axes of each sample (:math:`m` elements) for the
    input, over the leading (sample) axes for the parameters. ``None`` for an absent
    weight or bias.
    """
    input, shape, weight, bias = _check_layer_norm(
        input, normalized_shape, weight, bias, "layer_norm_backward"
    )
    grad_output = check_grad_shape(grad_output, input, "layer_norm_backward")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    leading = tuple(range(input.ndim - len(shape)))
    if input.size == 0:
        x_hat, invstd = np.zeros_like(input), np.zeros_like(input)
    else:
        x_hat, _, _, invstd = normalize(input, axes, eps)
    grad_x_hat, grad_weight, grad_bias = affine_backward(
        grad_output, x_hat, weight, bias, shape, leading
    )
    if input.size == 0:
        return np.zeros_like(input), grad_weight, grad_bias
    return normalize_backward(grad_x_hat, x_hat, invstd, axes), grad_weight, grad_bias


# -- group_norm -----------------------------------------------------------------------


def _check_group_norm(
    input: Any, num_groups: int, weight: Any, bias: Any, name: str
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    input = as_float_array(input, name)
    if input.ndim < 2:
        raise ValueError(
            f"{name}: expected input of shape (N, C, *) with at least 2 dimensions, got "
            f"{input.shape}; add a batch dimension with input[None]"
        )
    channels = input.shape[1]
    if num_groups <= 0 or channels % num_groups:
        raise ValueError(
            f"{name}: the number of channels ({channels}, input shape {input.shape}) must be "
            f"divisible by num_groups ({num_groups})"
        )
    # torch's check (F.group_norm runs batch norm's batch-size check on the shape
    # (N * C/G, G, *spatial)): it refuses a single sample whose groups hold one value
    # each, though N > 1 such samples pass (each group's x_hat is then 0)
    if input.shape[0] * (channels // num_groups) * math.prod(input.shape[2:]) == 1:
        raise ValueError(
            f"{name}: expected more than 1 value per group when there is one sample, got input "
            f"of shape {input.shape} with num_groups={num_groups} (torch refuses it too)"
        )
    weight, bias = check_affine(weight, bias, (channels,), name)
    return input, weight, bias


def _grouped(x: np.ndarray, num_groups: int) -> np.ndarray:
    n = x.shape[0]
    return x.reshape(n, num_groups, x.size // max(n * num_groups, 1))  # (N, C, *) -> (N, G, C/G*S)


def group_norm(
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Normalize each sample over groups of ``C / num_groups`` channels and their positions.

    .. math:: y_{nc\dots} = \frac{x_{nc\dots} - \mu_{ng}}{\sqrt{\sigma^2_{ng} + \epsilon}}
              \,\gamma_c + \beta_c, \qquad g = \lfloor c \cdot G / C \rfloor

    :math:`\mu_{ng}, \sigma^2_{ng}` (biased) over the channels of group :math:`g` and
    every spatial position of sample :math:`n`; the affine map is per channel.

    Shapes: input ``(N, C, *)``, weight and bias ``(C,)`` -> ``(N, C, *)``.
    Torch: ``torch.nn.functional.group_norm``.
    """
    input, weight, bias = _check_group_norm(input, num_groups, weight, bias, "group_norm")
    if input.size == 0:
        return np.zeros_like(input)
    x_hat = normalize(_grouped(input, num_groups), (2,), eps)[0]
    x_hat = x_hat.reshape(input.shape)  # (N, G, C/G*S) -> (N, C, *)
    return affine(x_hat, weight, bias, (1, -1) + (1,) * (input.ndim - 2))


def group_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    num_groups: int,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    r"""Gradients of :func:`group_norm`: ``(grad_input, grad_weight, grad_bias)``.

    .. math::
        \hat g = \gamma_c g, \qquad
        \frac{\partial L}{\partial x} = \frac{1}{m\sigma_\epsilon}
            \Big(m\hat g - \sum_{\text{group}} \hat g
                 - \hat x \sum_{\text{group}} \hat g \hat x\Big), \qquad
        \frac{\partial L}{\partial \gamma_c} = \sum_{n,\text{space}} g \hat x, \qquad
        \frac{\partial L}{\partial \beta_c} = \sum_{n,\text{space}} g

    (:math:`m = C/G \times` spatial size). ``None`` for an absent weight or bias.
    """
    input, weight, bias = _check_group_norm(input, num_groups, weight, bias, "group_norm_backward")
    grad_output = check_grad_shape(grad_output, input, "group_norm_backward")
    shape = (1, -1) + (1,) * (input.ndim - 2)
    shared = (0,) + tuple(range(2, input.ndim))  # every axis but the channel axis
    if input.size == 0:
        zeros = np.zeros_like(input)
        return zeros, *affine_backward(grad_output, zeros, weight, bias, shape, shared)[1:]
    x_hat, _, _, invstd = normalize(_grouped(input, num_groups), (2,), eps)
    x_hat_full = x_hat.reshape(input.shape)  # (N, G, C/G*S) -> (N, C, *)
    grad_x_hat, grad_weight, grad_bias = affine_backward(
        grad_output, x_hat_full, weight, bias, shape, shared
    )
    grad_input = normalize_backward(_grouped(grad_x_hat, num_groups), x_hat, invstd, (2,))
    return grad_input.reshape(input.shape), grad_weight, grad_bias  # (N, G, ...) -> (N, C, *)
