r"""``batch_norm`` and ``instance_norm``: normalization that also keeps running statistics.

Training normalizes with the statistics of the input (the *biased* variance) and,
when running statistics are passed, updates them **in place**, exactly as
``torch.nn.functional.batch_norm`` does:

.. math::
    \hat\mu \leftarrow (1 - \alpha)\hat\mu + \alpha\mu, \qquad
    \hat\sigma^2 \leftarrow (1 - \alpha)\hat\sigma^2 + \alpha\,\frac{m}{m - 1}\,\sigma^2

with :math:`\alpha` = ``momentum`` and the *unbiased* variance (:math:`m` values per
statistic). Evaluation normalizes with the running statistics instead, so the
layer is an affine map and its backward is that map's. The shared math (and the
common backward) is in :mod:`.normalization`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import as_float_array
from .normalization import (
    affine_backward,
    check_affine,
    check_grad_shape,
    normalize,
    normalize_backward,
)

__all__ = ["batch_norm", "batch_norm_backward", "instance_norm", "instance_norm_backward"]


def _check(
    input: Any,
    running_mean: Any,
    running_var: Any,
    weight: Any,
    bias: Any,
    use_input_stats: bool,
    momentum: Any,
    name: str,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Validate the arguments shared by batch_norm and instance_norm (and their backwards)."""
    input = as_float_array(input, name)
    if input.ndim < 2:
        raise ValueError(
            f"{name}: expected input of shape (N, C, *) with at least 2 dimensions, got "
            f"{input.shape}"
        )
    if momentum is None or isinstance(momentum, bool):
        raise ValueError(
            f"{name}: momentum must be a float, got {momentum!r}; the modules turn "
            "momentum=None into the factor 1/num_batches_tracked before calling this"
        )
    channels = input.shape[1]
    stats = []
    for label, array in (("running_mean", running_mean), ("running_var", running_var)):
        if array is not None:
            if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
                raise TypeError(
                    f"{name}: {label} must be a floating numpy array (it is updated in place), "
                    f"got {type(array).__name__}"
                )
            if array.shape != (channels,):
                raise ValueError(
                    f"{name}: {label} must have one entry per channel, shape ({channels},) for "
                    f"input {input.shape}, got {array.shape}"
                )
        stats.append(array)
    if not use_input_stats and (running_mean is None or running_var is None):
        raise ValueError(
            f"{name}: running_mean and running_var must be given when the input's own "
            "statistics are not used (evaluation mode)"
        )
    weight, bias = check_affine(weight, bias, (channels,), name)
    return input, stats[0], stats[1], weight, bias


def _channel_shape(input: np.ndarray) -> tuple[int, ...]:
    return (1, input.shape[1]) + (1,) * (input.ndim - 2)  # (C,) broadcasts as (1, C, 1, ...)


def _wide(x: np.ndarray) -> np.ndarray:
    """``x`` in float64, where torch's CPU batch norm accumulates (see :func:`_batch_stats`)."""
    return x.astype(np.float64, copy=False)


def _batch_stats(
    input: np.ndarray, axes: tuple[int, ...], eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_hat, mean, var, invstd)`` of :func:`normalize`, with torch's CPU precision.

    Torch's CPU batch norm (and instance norm, which runs on it) *sums* in double
    (``at::acc_type<float, /*is_cuda=*/false>`` is ``double``) but *keeps* the mean
    and invstd it saves for the backward in the input's dtype. Both matter in float32:
    summing wide makes a gradient that cancels large sums come out nearly exact, and
    the float32 mean is what a float32 implementation has; when the batch variance is
    tiny next to the mean its rounding dominates. The arithmetic after that is wide.
    """
    x_hat, mean, var, invstd = normalize(_wide(input), axes, eps)
    if input.dtype == np.float64:
        return x_hat, mean, var, invstd
    mean = mean.astype(input.dtype).astype(np.float64)  # saved as float32
    invstd = invstd.astype(input.dtype).astype(np.float64)  # saved as float32
    return (_wide(input) - mean) * invstd, mean, var, invstd


def _narrow(grad: np.ndarray | None, like: np.ndarray | None) -> np.ndarray | None:
    """A gradient computed wide, rounded once to the dtype of what it is the gradient of."""
    if grad is None or like is None:
        return grad
    return grad.astype(like.dtype, copy=False)


def _eval_stats(
    input: np.ndarray, running_mean: Any, running_var: Any, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(x_hat, invstd)`` from the running statistics (evaluation mode)."""
    shape = _channel_shape(input)
    invstd = _running_invstd(running_var, eps, shape)
    return (input - running_mean.reshape(shape)) * invstd, invstd  # (C,) -> (1, C, 1, ...)


def _running_invstd(running_var: np.ndarray, eps: float, shape: tuple[int, ...]) -> np.ndarray:
    r""":math:`1/\sqrt{\hat\sigma^2 + \epsilon}` of the running variance, shaped to broadcast."""
    return 1 / np.sqrt(running_var.reshape(shape) + eps)  # (C,) -> (1, C, 1, ...)


def _affine_map(
    input: np.ndarray,
    mean: np.ndarray,
    invstd: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
) -> np.ndarray:
    r""":math:`y = x\,\alpha + \beta` with :math:`\alpha = \mathrm{invstd}\,\gamma` and
    :math:`\beta = b - \mu\,\alpha`, in the input's dtype: the normalization as the one
    affine map torch's CPU kernel applies (``batch_norm_cpu_collect_linear_and_constant_
    terms``). The same math as :math:`(x - \mu)\,\mathrm{invstd}\,\gamma + b`, rounded as
    torch rounds it: in float32 :math:`x\alpha` cancels against :math:`\beta` where
    :math:`x` is near the mean, an error of :math:`u|x|\,\mathrm{invstd}\,|\gamma|` (a
    channel of equal values normalizes to a few 1e-5, not 0), and the harness's float32
    samples of the reference must carry it as torch does."""
    shape = _channel_shape(input)
    alpha = invstd.astype(np.float64)  # (1, C, 1, ...) or (N, C, 1, ...)
    if weight is not None:
        alpha = alpha * weight.reshape(shape)  # (C,) -> (1, C, 1, ...)
    # beta from the unrounded alpha, in double, as torch's kernel has it; then both rounded
    beta = -mean.astype(np.float64) * alpha
    if bias is not None:
        beta = beta + bias.reshape(shape)  # (C,) -> (1, C, 1, ...)
    alpha, beta = alpha.astype(input.dtype), beta.astype(input.dtype)
    return (input * alpha + beta).astype(input.dtype, copy=False)


def _eval_map(
    input: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    eps: float,
) -> np.ndarray:
    """Evaluation: :func:`_affine_map` with the running statistics."""
    shape = _channel_shape(input)
    invstd = _running_invstd(running_var, eps, shape)
    return _affine_map(input, running_mean.reshape(shape), invstd, weight, bias)


def _update(running: np.ndarray | None, batch_value: np.ndarray, momentum: float) -> None:
    """``running <- (1 - momentum) * running + momentum * batch_value``, in place."""
    if running is not None:
        running[...] = (1 - momentum) * running + momentum * batch_value


# -- batch_norm -----------------------------------------------------------------------


def batch_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Normalize each channel over the batch and spatial positions.

    .. math:: y_{nc\dots} = \frac{x_{nc\dots} - \mu_c}{\sqrt{\sigma_c^2 + \epsilon}}
              \,\gamma_c + \beta_c

    ``training=True``: :math:`\mu_c, \sigma^2_c` are the input's (biased variance over
    the :math:`m = N \times` spatial values of channel :math:`c`; :math:`m = 1` raises
    ``ValueError`` as in torch), and **the passed** ``running_mean`` **and**
    ``running_var`` **are updated in place** (module docstring), as torch's
    ``F.batch_norm`` does; pass ``None`` for either to leave it alone. An empty batch
    updates nothing. ``training=False``: :math:`\mu, \sigma^2` are the running
    statistics, which must be given.

    Shapes: input ``(N, C, *)``; running stats, weight and bias ``(C,)`` -> ``(N, C, *)``.
    Torch: ``torch.nn.functional.batch_norm``.
    """
    input, running_mean, running_var, weight, bias = _check(
        input, running_mean, running_var, weight, bias, training, momentum, "batch_norm"
    )
    values_per_channel = input.shape[0] * math.prod(input.shape[2:])
    if training and values_per_channel == 1:
        raise ValueError(
            f"batch_norm: expected more than 1 value per channel when training, got input "
            f"of shape {input.shape}; the batch variance of a single value is 0 (use a "
            "batch of at least 2, or evaluation mode)"
        )
    if input.size == 0:
        return np.zeros_like(input)
    if not training:
        assert running_mean is not None and running_var is not None  # _check requires them
        return _eval_map(input, running_mean, running_var, weight, bias, eps)
    axes = (0,) + tuple(range(2, input.ndim))
    _, mean, var, invstd = _batch_stats(input, axes, eps)
    _update(running_mean, mean.reshape(-1), momentum)  # (1, C, 1, ...) -> (C,)
    unbiased = var.reshape(-1) * (values_per_channel / (values_per_channel - 1))  # -> (C,)
    _update(running_var, unbiased, momentum)
    return _affine_map(input, mean, invstd, weight, bias)


def batch_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    r"""Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``training=True`` (batch statistics, recomputed here from ``input``; the running
    statistics are not read, so it does not matter that the forward updated them):

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma_c}{m\sqrt{\sigma_c^2 + \epsilon}}
        \Big(m g - \sum g - \hat x \sum g \hat x\Big)

    ``training=False`` (running statistics, an affine map):
    :math:`\partial L/\partial x = g\,\gamma_c / \sqrt{\hat\sigma_c^2 + \epsilon}`.

    Both: :math:`\partial L/\partial\gamma_c = \sum g \hat x`,
    :math:`\partial L/\partial\beta_c = \sum g`; sums over the batch and spatial axes.
    ``None`` for an absent weight or bias.
    """
    input, running_mean, running_var, weight, bias = _check(
        input, running_mean, running_var, weight, bias, training, momentum, "batch_norm_backward"
    )
    grad_output = check_grad_shape(grad_output, input, "batch_norm_backward")
    batch_and_space = (0,) + tuple(range(2, input.ndim))  # the statistics are over these
    return _channel_norm_backward(
        grad_output, input, running_mean, running_var, weight, bias, eps, training,
        batch_and_space,
    )  # fmt: skip


def _channel_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: np.ndarray | None,
    bias: np.ndarray | None,
    eps: float,
    use_input_stats: bool,
    stat_axes: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The backward batch and instance norm share; they differ only in ``stat_axes``, the
    axes their statistics run over. The per-channel parameters are shared over the batch
    and the space in both, so their gradients sum over those."""
    shape = _channel_shape(input)
    shared = (0,) + tuple(range(2, input.ndim))
    if input.size == 0:
        zeros = np.zeros_like(input)
        return zeros, *affine_backward(grad_output, zeros, weight, bias, shape, shared)[1:]
    if use_input_stats:
        x_hat, _, _, invstd = _batch_stats(input, stat_axes, eps)
    else:
        x_hat, invstd = _eval_stats(_wide(input), running_mean, running_var, eps)
    # unlike the forward, torch's CPU backward sums in the input's dtype (opmath_t is
    # float for float): a float32 implementation's sums, whose terms cancel when the
    # gradient is 0 in the math, so the backward works in the input's dtype too
    x_hat, invstd = x_hat.astype(input.dtype), invstd.astype(input.dtype)
    grad_x_hat, grad_weight, grad_bias = affine_backward(
        grad_output, x_hat, weight, bias, shape, shared
    )
    if use_input_stats:
        grad_input = normalize_backward(grad_x_hat, x_hat, invstd, stat_axes)
    else:
        grad_input = grad_x_hat * invstd
    grad_input = grad_input.astype(input.dtype, copy=False)
    return grad_input, _narrow(grad_weight, weight), _narrow(grad_bias, bias)


# -- instance_norm --------------------------------------------------------------------


def instance_norm(
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> np.ndarray:
    r"""Normalize each channel of each sample over its spatial positions.

    .. math:: y_{nc\dots} = \frac{x_{nc\dots} - \mu_{nc}}{\sqrt{\sigma_{nc}^2 + \epsilon}}
              \,\gamma_c + \beta_c

    ``use_input_stats=True``: :math:`\mu_{nc}, \sigma^2_{nc}` over the :math:`m` spatial
    positions (:math:`m = 1` raises ``ValueError`` as in torch). Running statistics,
    when given, are **updated in place** with the batch average of the per-instance
    statistics, as torch does (it runs batch norm on the ``(1, N*C, *)`` view and
    averages the N updated copies):
    :math:`\hat\mu_c \leftarrow (1-\alpha)\hat\mu_c + \alpha\,\overline{\mu_{nc}}^{\,n}`,
    :math:`\hat\sigma^2_c \leftarrow (1-\alpha)\hat\sigma^2_c
    + \alpha\,\overline{m\sigma^2_{nc}/(m-1)}^{\,n}`.
    ``use_input_stats=False``: the running statistics (which must be given) instead.

    Shapes: input ``(N, C, *)``; running stats, weight and bias ``(C,)`` -> ``(N, C, *)``.
    Torch: ``torch.nn.functional.instance_norm``.
    """
    input, running_mean, running_var, weight, bias = _check(
        input,
        running_mean,
        running_var,
        weight,
        bias,
        use_input_stats,
        momentum,
        "instance_norm",
    )
    positions = math.prod(input.shape[2:])
    if use_input_stats and positions == 1:
        raise ValueError(
            f"instance_norm: expected more than 1 spatial element when using the input's "
            f"statistics (training), got input of shape {input.shape}"
        )
    if input.size == 0:
        return np.zeros_like(input)
    if not use_input_stats:
        assert running_mean is not None and running_var is not None  # _check requires them
        return _eval_map(input, running_mean, running_var, weight, bias, eps)
    _, mean, var, invstd = _batch_stats(input, tuple(range(2, input.ndim)), eps)
    n, channels = input.shape[:2]
    _update(running_mean, mean.reshape(n, channels).mean(axis=0), momentum)  # (N, C, 1..) -> (C,)
    unbiased = var.reshape(n, channels) * (positions / (positions - 1))  # (N, C, 1..) -> (N, C)
    _update(running_var, unbiased.mean(axis=0), momentum)
    return _affine_map(input, mean, invstd, weight, bias)


def instance_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    running_mean: np.ndarray | None = None,
    running_var: np.ndarray | None = None,
    weight: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    r"""Gradients of :func:`instance_norm`: ``(grad_input, grad_weight, grad_bias)``.

    ``use_input_stats=True``: the normalization backward per sample and channel,

    .. math::
        \frac{\partial L}{\partial x} = \frac{\gamma_c}{m\sqrt{\sigma_{nc}^2 + \epsilon}}
        \Big(m g - \sum_{\text{space}} g - \hat x \sum_{\text{space}} g \hat x\Big);

    ``use_input_stats=False``: the affine map's,
    :math:`g\,\gamma_c / \sqrt{\hat\sigma_c^2 + \epsilon}`. Both:
    :math:`\partial L/\partial\gamma_c = \sum_{n,\text{space}} g \hat x`,
    :math:`\partial L/\partial\beta_c = \sum_{n,\text{space}} g`.
    """
    input, running_mean, running_var, weight, bias = _check(
        input,
        running_mean,
        running_var,
        weight,
        bias,
        use_input_stats,
        momentum,
        "instance_norm_backward",
    )
    grad_output = check_grad_shape(grad_output, input, "instance_norm_backward")
    space = tuple(range(2, input.ndim))  # the statistics are over these, per sample
    return _channel_norm_backward(
        grad_output, input, running_mean, running_var, weight, bias, eps, use_input_stats,
        space,
    )  # fmt: skip
