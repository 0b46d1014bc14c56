"""Losses as forward/backward pairs (``torch.nn.functional``).

Every loss takes ``reduction`` in ``'none' | 'mean' | 'sum'``. The forward returns
a 0-d array for ``'mean'``/``'sum'``; the backward takes ``grad_output`` (a scalar
or, for ``'none'``, an array of the unreduced shape) and returns
:math:`\\partial L/\\partial \\text{input}`.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_reduction

__all__ = ["mse_loss", "mse_loss_backward"]


def _reduce(loss: np.ndarray, reduction: str) -> np.ndarray:
    """Apply ``reduction`` to elementwise losses (mean over every element)."""
    if reduction == "none":
        return loss
    total = loss.sum() if reduction == "sum" else loss.mean()
    return np.asarray(total, dtype=loss.dtype)


def _reduce_backward(grad_output: np.ndarray, shape: tuple[int, ...], reduction: str,
                     dtype: np.dtype) -> np.ndarray:
    """Gradient of :func:`_reduce` wrt the elementwise losses: ``g``, broadcast ``g``, or ``g/n``."""
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


def mse_loss(input: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
    r"""Mean squared error :math:`\ell_i = (x_i - y_i)^2`, then reduced.

    Torch: ``torch.nn.functional.mse_loss``.
    """
    check_reduction(reduction, "MSELoss")
    return _reduce((input - target) ** 2, reduction)


def mse_loss_backward(grad_output: np.ndarray, input: np.ndarray, target: np.ndarray,
                      reduction: str = "mean") -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = 2 (x_i - y_i)`, times the reduction's gradient."""
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    return 2 * (input - target) * grad_loss
