"""Negative log-likelihood losses as forward/backward pairs (``torch.nn.functional``).

The logistic ones (``soft_margin_loss``, ``multilabel_soft_margin_loss``), the Poisson
and the Gaussian negative log-likelihoods. Each backward returns
:math:`\\partial L/\\partial \\text{input}` (``gaussian_nll_loss_backward``: the
gradients wrt input, target and var), taking ``grad_output`` as the other losses'
backwards do (a scalar, or an array of the unreduced shape for ``'none'``).

As in ``loss.py`` the target must have the input's shape (torch broadcasts a
mismatched one). Torch's autograd also differentiates the target of every loss here
but ``soft_margin_loss`` (which refuses a target that requires grad): each such loss
has a ``<name>_target_backward`` with the backward's arguments, returning
:math:`\\partial L/\\partial \\text{target}`.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import as_float_array
from .activation_smooth import _log1p_exp as _softplus  # log(1 + e^x), stable
from .activation_smooth import _sigmoid
from .loss import _check_broadcasts_to, _check_pair, _reduce, _reduce_backward
from .rounding import difference, summed

__all__ = [
    "soft_margin_loss", "soft_margin_loss_backward",
    "multilabel_soft_margin_loss", "multilabel_soft_margin_loss_backward",
    "multilabel_soft_margin_loss_target_backward",
    "poisson_nll_loss", "poisson_nll_loss_backward", "poisson_nll_loss_target_backward",
    "gaussian_nll_loss", "gaussian_nll_loss_backward", "gaussian_nll_loss_target_backward",
]  # fmt: skip


def soft_margin_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    r"""Logistic loss of labels :math:`y \in \{-1, 1\}`: :math:`\ell_i = \log(1 + e^{-y_i x_i})`.

    Computed as a stable softplus, so a large :math:`-y_i x_i` gives
    :math:`-y_i x_i` where torch's ``log1p(exp(.))`` overflows to inf. Any floating
    target is accepted, as in torch. Shapes: input and target ``(*)``, the same.
    Torch: ``torch.nn.functional.soft_margin_loss``.
    """
    input, target = _check_pair(input, target, reduction, "soft_margin_loss")
    return _reduce(_softplus(-target * input), reduction)


def soft_margin_loss_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = -y_i\, \sigma(-y_i x_i)`.

    Torch refuses a target that requires grad ("The function 'soft_margin_loss' is not
    differentiable with respect to argument 'target'"): only the input's gradient
    exists, and there is no ``soft_margin_loss_target_backward``.
    """
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    return (-target * _sigmoid(-target * input) * grad_loss).astype(input.dtype, copy=False)


def _check_multilabel(input, target, weight, reduction, name):
    input, target = _check_pair(input, target, reduction, name)
    if input.ndim == 0:
        raise ValueError(f"{name}: input must be (C,) or (N, C) with a class dim, got a 0-d array")
    weight = _check_broadcasts_to(weight, input.shape, name, "weight", input.dtype)
    return input, target, weight


def multilabel_soft_margin_loss(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Per-class logistic loss against 0/1 targets, averaged over the classes (last dim).

    .. math::
        \ell_i = -\frac{1}{C} \sum_c w_c \left[ y_{ic} \log \sigma(x_{ic})
                 + (1 - y_{ic}) \log \sigma(-x_{ic}) \right]

    then reduced over the samples (``'mean'`` divides by :math:`N`). ``weight``
    broadcasts to the input. Shapes: input and target ``(C,)`` or ``(N, C)`` (any
    leading dims: the class dim is the last); the loss ``()`` or ``(N,)``.
    Torch: ``torch.nn.functional.multilabel_soft_margin_loss``.
    """
    name = "multilabel_soft_margin_loss"
    input, target, weight = _check_multilabel(input, target, weight, reduction, name)
    # -log sigma(x) = softplus(-x), in torch's two-term form
    loss = target * _softplus(-input) + (1 - target) * _softplus(input)
    if weight is not None:
        loss = loss * weight
    per_sample = summed(loss, (-1,))[..., 0] / input.shape[-1]  # a sum the error model samples
    return _reduce(per_sample.astype(input.dtype), reduction)


def multilabel_soft_margin_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`\partial L/\partial x_{ic} = s_i\, w_c (\sigma(x_{ic}) - y_{ic}) / C`,
    :math:`s_i` the upstream gradient of sample ``i``."""
    grad_loss = _reduce_backward(grad_output, input.shape[:-1], reduction, input.dtype)
    slope = difference(_sigmoid(input), target)  # they cancel where the fit is good
    if weight is not None:
        slope = slope * np.asarray(weight, dtype=input.dtype)
    grad = slope * (grad_loss[..., None] / input.shape[-1])
    return grad.astype(input.dtype, copy=False)


def multilabel_soft_margin_loss_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`\partial L/\partial y_{ic} = -s_i\, w_c x_{ic} / C`.

    The target weighs :math:`\log\sigma(x)` against :math:`\log\sigma(-x)`, whose difference
    is exactly :math:`x`. Torch's autograd forms that difference of two log-sigmoids
    (rounding near :math:`x = 0`); we write the exact :math:`x`.
    """
    grad_loss = _reduce_backward(grad_output, input.shape[:-1], reduction, input.dtype)
    slope = -input
    if weight is not None:
        slope = slope * np.asarray(weight, dtype=input.dtype)
    grad = slope * (grad_loss[..., None] / input.shape[-1])
    return grad.astype(input.dtype, copy=False)


def poisson_nll_loss(
    input: np.ndarray,
    target: np.ndarray,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Poisson negative log-likelihood of counts :math:`y` with rate :math:`\lambda`.

    .. math::
        \ell_i = e^{x_i} - y_i x_i \ \ (\text{log\_input}, \ x = \log\lambda), \qquad
        \ell_i = x_i - y_i \log(x_i + \epsilon) \ \ (\text{otherwise}, \ x = \lambda)

    ``full`` adds Stirling's term :math:`y \log y - y + \frac12 \log(2\pi y)` where
    :math:`y > 1` (0 elsewhere), as torch does. A rate with :math:`x + \epsilon \le 0`
    gives nan or inf, as in torch. Shapes: input and target ``(*)``, the same.
    Torch: ``torch.nn.functional.poisson_nll_loss``.
    """
    input, target = _check_pair(input, target, reduction, "poisson_nll_loss")
    if log_input:
        with np.errstate(over="ignore"):  # a rate past the dtype's range is inf, as in torch
            loss = difference(np.exp(input), target * input)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # torch's nan / -inf, unraised
            loss = input - target * np.log(input + eps)
    if full:
        big = target > 1
        safe = np.where(big, target, 2)  # Stirling only where y > 1: no log of 0 elsewhere
        stirling = safe * np.log(safe) - safe + 0.5 * np.log(2 * math.pi * safe)
        loss = loss + np.where(big, stirling, 0)
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def poisson_nll_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = e^{x_i} - y_i` (log_input) or
    :math:`1 - y_i/(x_i + \epsilon)`; Stirling's term does not depend on the input."""
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    if log_input:
        with np.errstate(over="ignore", invalid="ignore"):
            slope = difference(np.exp(input), target)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = 1 - target / (input + eps)
    return (slope * grad_loss).astype(input.dtype, copy=False)


def poisson_nll_loss_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    log_input: bool = True,
    full: bool = False,
    eps: float = 1e-8,
    reduction: str = "mean",
) -> np.ndarray:
    r"""The gradient wrt the counts :math:`y`, times the reduction's gradient:

    .. math::
        \frac{\partial \ell_i}{\partial y_i} = -x_i \ \ (\text{log\_input}), \qquad
        -\log(x_i + \epsilon) \ \ (\text{otherwise}),

    plus, with ``full``, Stirling's :math:`\log y + \frac{1}{2y}` where :math:`y > 1`.
    Where :math:`y \le 0` torch's ``full`` gradient is nan although its term is masked
    to 0 there: the zero gradient that ``masked_fill`` passes back still meets
    :math:`\log 0 = -\infty` and :math:`1/0` (or the log of a negative number) on its way
    (measured); in :math:`(0, 1]` it is 0. A rate with :math:`x + \epsilon \le 0` gives
    inf or nan, as in torch.
    """
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    if log_input:
        slope = -input
    else:
        with np.errstate(divide="ignore", invalid="ignore"):  # torch's inf / nan, unraised
            slope = -np.log(input + eps)
    if full:
        big = target > 1
        safe = np.where(big, target, 2)  # Stirling's slope only where y > 1
        outside = np.where(target > 0, 0, np.nan).astype(input.dtype)  # torch's nan at y <= 0
        slope = slope + np.where(big, np.log(safe) + 0.5 / safe, outside)
    return (slope * grad_loss).astype(input.dtype, copy=False)


def _is_float(var) -> bool:
    return isinstance(var, (int, float)) and not isinstance(var, bool)


def _gaussian_var(var, input: np.ndarray, name: str) -> np.ndarray:
    """``var`` shaped to broadcast against the input, by torch's rules (or a clear error)."""
    if _is_float(var):
        if var < 0:
            raise ValueError(f"{name}: var must be non-negative, got {var!r}")
        return np.full(input.shape, var, dtype=input.dtype)
    var = as_float_array(var, name, "var")
    if (var < 0).any():
        raise ValueError(f"{name}: var has negative entries (e.g. {var[var < 0].flat[0]!r})")
    if var.shape == input.shape:
        return var
    if var.shape == input.shape[:-1]:  # homoscedastic: one var per row
        return var[..., None]
    mismatched = [v for x, v in zip(input.shape, var.shape) if x != v]
    if var.ndim == input.ndim and sum(mismatched) == 1:
        return var  # one dim of size 1, broadcast
    raise ValueError(
        f"{name}: var of shape {var.shape} does not fit input of shape {input.shape}: it must "
        "be the input's shape, the input's shape without its last dim, or the input's shape "
        "with one dim of size 1"
    )


def gaussian_nll_loss(
    input: np.ndarray,
    target: np.ndarray,
    var: np.ndarray | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Gaussian negative log-likelihood of the target, mean ``input``, variance ``var``.

    .. math::
        \ell_i = \tfrac12 \left( \log v_i + \frac{(x_i - y_i)^2}{v_i} \right)
                 \ (+ \tfrac12 \log 2\pi \text{ if full}), \qquad v_i = \max(\text{var}_i, \epsilon)

    ``var`` is the input's shape, the input's shape without the last dim (one
    variance per row), the input's shape with one dim of size 1, or a float;
    negative entries raise, as in torch. Shapes: input and target ``(*)``, the same.
    Torch: ``torch.nn.functional.gaussian_nll_loss``.
    """
    name = "gaussian_nll_loss"
    input, target = _check_pair(input, target, reduction, name)
    v = np.maximum(_gaussian_var(var, input, name), eps).astype(input.dtype)
    loss = 0.5 * (np.log(v) + (input - target) ** 2 / v)
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def gaussian_nll_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    var: np.ndarray | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""``(grad_input, grad_target, grad_var)``, with :math:`d = x - y`:

    .. math::
        \frac{\partial \ell}{\partial x} = \frac{d}{v} = -\frac{\partial \ell}{\partial y},
        \qquad \frac{\partial \ell}{\partial \text{var}}
        = \frac12\left(\frac1v - \frac{d^2}{v^2}\right)

    Torch clamps ``var`` at ``eps`` under ``no_grad``: the clamp is invisible to
    autograd, so where ``var < eps`` the var gradient is *not* 0 but the formula at
    :math:`v = \epsilon` (straight through; measured). ``grad_var`` is summed back to
    ``var``'s own shape, and is ``None`` for a float ``var``.
    """
    name = "gaussian_nll_loss"
    shaped = _gaussian_var(var, input, name)
    v = np.maximum(shaped, eps).astype(input.dtype)
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    diff = input - target
    grad_input = (grad_loss * diff / v).astype(input.dtype, copy=False)
    grad_v = 0.5 * grad_loss * (1 / v - diff**2 / v**2)
    if _is_float(var):
        return grad_input, -grad_input, None
    # sum the broadcast dims back into var's shape (then undo a homoscedastic unsqueeze)
    summed_axes = tuple(i for i, n in enumerate(shaped.shape) if n == 1 and input.shape[i] != 1)
    grad_var = grad_v.sum(axis=summed_axes, keepdims=True).reshape(np.shape(var))
    return grad_input, -grad_input, grad_var.astype(input.dtype, copy=False)


def gaussian_nll_loss_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    var: np.ndarray | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial y_i = -(x_i - y_i)/v_i`, the negative of the input's
    gradient: the second gradient :func:`gaussian_nll_loss_backward` returns."""
    return gaussian_nll_loss_backward(grad_output, input, target, var, full, eps, reduction)[1]
