"""Regression losses as forward/backward pairs (``torch.nn.functional``): MSE, L1,
smooth L1, Huber, and the reduction every elementwise loss shares.

Every loss takes ``reduction`` in ``'none' | 'mean' | 'sum'``. The forward returns a
0-d array for a reduced loss; ``<name>_backward`` takes ``grad_output`` (a scalar or,
for ``'none'``, an array of the unreduced shape) and returns
:math:`\\partial L/\\partial \\text{input}`; ``<name>_target_backward`` takes the same
arguments and returns :math:`\\partial L/\\partial \\text{target}`, what torch puts in
``target.grad`` when the target requires grad. Each of these losses is a function of
:math:`d = x - y` alone, so the target's gradient is the input's, negated.

Input and target must have the same shape: torch broadcasts a mismatched target
with a warning ("this will likely lead to incorrect results"); the reference
refuses it. :mod:`reference.functional.loss` re-exports every name here.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_float_array, as_target_array, check_reduction, check_same_shape

__all__ = [
    "mse_loss", "mse_loss_backward", "mse_loss_target_backward",
    "l1_loss", "l1_loss_backward", "l1_loss_target_backward",
    "smooth_l1_loss", "smooth_l1_loss_backward", "smooth_l1_loss_target_backward",
    "huber_loss", "huber_loss_backward", "huber_loss_target_backward",
]  # fmt: skip


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    """Apply ``reduction`` to elementwise losses (mean over every element)."""
    if reduction == "none":
        return loss
    if reduction == "mean" and loss.size == 0:
        # the mean of nothing is 0/0: torch returns nan, and so do we, without dividing
        return np.asarray(np.nan, dtype=loss.dtype)
    total = loss.sum() if reduction == "sum" else loss.mean()
    return np.asarray(total, dtype=loss.dtype)


def _reduce_backward(
    grad_output: np.ndarray, shape: tuple[int, ...], reduction: str, dtype: np.dtype
) -> np.ndarray:
    """Gradient of :func:`_reduce` wrt the elementwise losses: ``g``, broadcast ``g``, ``g/n``."""
    grad_output = np.asarray(grad_output, dtype=dtype)
    if reduction == "none":
        if grad_output.shape != shape:
            raise ValueError(
                f"reduction='none': grad_output must have the loss's shape {shape}, "
                f"got {grad_output.shape}"
            )
        return grad_output
    if grad_output.size != 1:
        raise ValueError(
            f"reduction={reduction!r} gives a scalar loss; grad_output must be a scalar, "
            f"got shape {grad_output.shape}"
        )
    scale = grad_output.reshape(()) / (1 if reduction == "sum" else max(int(np.prod(shape)), 1))
    return np.broadcast_to(scale, shape).astype(dtype)


def _check_pair(
    input: np.ndarray,
    target: np.ndarray,
    reduction: str,
    name: str,
    allowed: tuple[str, ...] = ("none", "mean", "sum"),
    integer_target: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an elementwise loss's arguments: floating arrays of one shape, a known reduction.

    An integer target is promoted to the input's dtype, as torch does, unless
    ``integer_target`` is False (torch's kl_div refuses one)."""
    check_reduction(reduction, name, allowed)
    input = as_float_array(input, name)
    if integer_target:
        target = as_target_array(target, input, name)
    else:
        target = as_float_array(target, name, "target")
    check_same_shape(input, target, name)
    return input, target


def mse_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    r"""Mean squared error :math:`\ell_i = (x_i - y_i)^2`, then reduced.

    Shapes: input and target ``(*)``, the same. Torch: ``torch.nn.functional.mse_loss``.
    """
    input, target = _check_pair(input, target, reduction, "mse_loss")
    return _reduce((input - target) ** 2, reduction)


def mse_loss_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = 2 (x_i - y_i)`, times the reduction's gradient."""
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    return 2 * (input - target) * grad_loss


def mse_loss_target_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\partial L/\partial y_i = -2 (x_i - y_i)\, g_i` (:math:`g_i = g/n` for 'mean'):
    the negative of :func:`mse_loss_backward`, computed from it."""
    return -mse_loss_backward(grad_output, input, target, reduction)


def l1_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    r"""Mean absolute error :math:`\ell_i = |x_i - y_i|`, then reduced.

    Shapes: input and target ``(*)``, the same. Torch: ``torch.nn.functional.l1_loss``.
    """
    input, target = _check_pair(input, target, reduction, "l1_loss")
    return _reduce(np.abs(input - target), reduction)


def l1_loss_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = \operatorname{sign}(x_i - y_i)`.

    At the kink :math:`x_i = y_i` torch differentiates ``abs`` as ``sign``, so the
    gradient there is 0 (a subgradient, and the one torch picks).
    """
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    return np.sign(input - target) * grad_loss


def l1_loss_target_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial y_i = -\operatorname{sign}(x_i - y_i)` (0 at the kink):
    the negative of :func:`l1_loss_backward`, computed from it."""
    return -l1_loss_backward(grad_output, input, target, reduction)


def smooth_l1_loss(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean", beta: float = 1.0
) -> np.ndarray:
    r"""Smooth L1: quadratic within ``beta`` of the target, linear outside.

    .. math::
        \ell_i = \begin{cases} \tfrac12 d_i^2/\beta & |d_i| < \beta \\
                               |d_i| - \tfrac12\beta & \text{otherwise} \end{cases},
        \qquad d_i = x_i - y_i

    ``beta = 0`` is exactly :func:`l1_loss` (torch dispatches to it, since
    :math:`d^2/\beta` is undefined); a negative ``beta`` raises, as in torch.
    Torch: ``torch.nn.functional.smooth_l1_loss``.
    """
    input, target = _check_pair(input, target, reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta!r}")
    if beta == 0:
        return l1_loss(input, target, reduction)
    diff = input - target
    abs_diff = np.abs(diff)
    loss = np.where(abs_diff < beta, 0.5 * diff * diff / beta, abs_diff - 0.5 * beta)
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def smooth_l1_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    beta: float = 1.0,
) -> np.ndarray:
    r"""Gradient :math:`d_i/\beta` inside ``beta``, :math:`\operatorname{sign}(d_i)` outside.

    The two pieces agree at :math:`|d_i| = \beta`; at :math:`d_i = 0` the gradient is 0.
    With ``beta = 0`` this is :func:`l1_loss_backward`.
    """
    if beta == 0:
        return l1_loss_backward(grad_output, input, target, reduction)
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    diff = input - target
    slope = np.where(np.abs(diff) < beta, diff / beta, np.sign(diff))
    return (slope * grad_loss).astype(input.dtype, copy=False)


def smooth_l1_loss_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    beta: float = 1.0,
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial y_i = -d_i/\beta` inside ``beta``,
    :math:`-\operatorname{sign}(d_i)` outside: the negative of
    :func:`smooth_l1_loss_backward`, computed from it."""
    return -smooth_l1_loss_backward(grad_output, input, target, reduction, beta)


def huber_loss(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean", delta: float = 1.0
) -> np.ndarray:
    r"""Huber loss: quadratic within ``delta`` of the target, linear (slope ``delta``) outside.

    .. math::
        \ell_i = \begin{cases} \tfrac12 d_i^2 & |d_i| \le \delta \\
                               \delta (|d_i| - \tfrac12\delta) & \text{otherwise} \end{cases}

    It is ``delta * smooth_l1_loss(beta=delta)``. ``delta`` must be positive (torch raises).
    Torch: ``torch.nn.functional.huber_loss``.
    """
    input, target = _check_pair(input, target, reduction, "huber_loss")
    if not delta > 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta!r}")
    diff = input - target
    abs_diff = np.abs(diff)
    loss = np.where(abs_diff <= delta, 0.5 * diff * diff, delta * (abs_diff - 0.5 * delta))
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def huber_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    delta: float = 1.0,
) -> np.ndarray:
    r"""Gradient :math:`d_i` inside ``delta``, :math:`\delta \operatorname{sign}(d_i)` outside."""
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    diff = input - target
    slope = np.where(np.abs(diff) <= delta, diff, delta * np.sign(diff))
    return (slope * grad_loss).astype(input.dtype, copy=False)


def huber_loss_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    delta: float = 1.0,
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial y_i = -d_i` inside ``delta``,
    :math:`-\delta \operatorname{sign}(d_i)` outside: the negative of
    :func:`huber_loss_backward`, computed from it."""
    return -huber_loss_backward(grad_output, input, target, reduction, delta)
