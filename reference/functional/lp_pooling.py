r"""Power-average (LP) pooling, forward and backward (``torch.nn.functional.lp_pool1d/2d/3d``).

Torch builds it from average pooling (no padding, ``count_include_pad=True``)
and a few pointwise ops; the reference composes the same steps, so every value,
``inf`` and ``NaN`` comes out where torch's do. With :math:`K` the kernel's
number of elements and :math:`D` the average's divisor (:math:`K`, except for
a ceil-mode window that runs past the input, whose :math:`D` counts only the
elements inside):

.. math:: s = \operatorname{avg\_pool}(x^p), \qquad
          y = \bigl(\operatorname{sign}(s)\,\operatorname{relu}(|s|)\; K\bigr)^{1/p}
          = \Bigl(\tfrac{K}{D} \textstyle\sum_{\text{window}} x^p\Bigr)^{1/p}

(so a ceil-mode edge window is scaled by :math:`K/D`, as torch computes it).
``norm_type`` :math:`= \pm\infty` is torch's other branch: the max pooling of
:math:`|x|` (``inf``) or minus that of :math:`-|x|` (``-inf``, the smallest
:math:`|x|`), with max pooling's tie rule.

**Gradient** (torch's autograd through those steps, measured against torch):

.. math:: \frac{\partial y}{\partial s} = \frac{K}{p}\, u^{1/p - 1}\,
          \operatorname{sign}(s)\,[\,|s| > 0\,]\,\operatorname{sign}(s),
          \qquad u = \operatorname{sign}(s)\operatorname{relu}(|s|) K,
          \qquad \frac{\partial s}{\partial x} \text{ via avg\_pool, times } p\, x^{p-1}

where ``sign`` is torch's (``sign(NaN) = 0``) and the Iverson bracket is relu's
backward, which masks on its *output*: at a window whose sum is 0 the factor
:math:`u^{1/p-1}` is ``inf`` (for :math:`p > 1`) and ``inf * sign(0)`` is NaN,
but relu's mask turns it into an exact 0, so such a window sends no gradient
(torch's documented rule). What it cannot mask comes through as torch has it:
for :math:`p < 1` an input 0 gives :math:`p\,0^{p-1} = \infty`, so ``0 * inf =
NaN`` in a zero window; a negative sum with a fractional :math:`1/p` is NaN.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .avg_pooling import _avg_pool, _avg_pool_backward
from .conv import _tuple
from .pooling import _max_pool, _max_pool_backward, check_input

__all__ = [
    "lp_pool1d", "lp_pool1d_backward", "lp_pool2d", "lp_pool2d_backward",
    "lp_pool3d", "lp_pool3d_backward",
]  # fmt: skip


def _kernel_count(kernel_size: Any, nd: int, layer: str) -> int:
    """``K``, the number the sum is scaled by; 1-d takes an int only, as torch's
    ``.mul(kernel_size)`` does (a tuple there is torch's TypeError)."""
    if nd == 1:
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, (int, np.integer)):
            raise TypeError(
                f"{layer}: kernel_size must be an int for a finite norm_type (torch multiplies "
                f"by it), got {kernel_size!r}"
            )
        return int(kernel_size)
    return math.prod(_tuple(kernel_size, nd, "kernel_size", layer))


def _check_norm(norm_type: Any, layer: str) -> float:
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float, np.number)):
        raise TypeError(f"{layer}: norm_type must be a real number, got {norm_type!r}")
    if norm_type == 0:
        raise ZeroDivisionError(
            f"{layer}: norm_type must not be 0 (the result is a power 1 / norm_type; torch "
            "raises 'float division by zero')"
        )
    return float(norm_type)


def _torch_sign(s: np.ndarray) -> np.ndarray:
    """Torch's ``sign``: -1, 0 or 1, and 0 for NaN (NumPy's gives NaN)."""
    return (s > 0).astype(s.dtype) - (s < 0)


def _torch_semantics() -> np.errstate:
    """Torch's formula, not a stable one: ``x^p`` and the powers may overflow, and 0 to
    a negative power, ``0 * inf`` and fractional powers of negatives give torch's inf
    and NaN, on purpose."""
    return np.errstate(divide="ignore", invalid="ignore", over="ignore")


def _prepare(input, norm_type, kernel_size, stride, ceil_mode, nd, layer):
    """Validate; return the input, ``p``, ``K`` and average pooling's arguments."""
    x = check_input(input, nd, layer)
    p = _check_norm(norm_type, layer)
    k = _kernel_count(kernel_size, nd, layer) if math.isfinite(p) else 1
    return x, p, k, (kernel_size, stride, 0, ceil_mode, True, None, nd, layer)


def _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, nd, layer):
    x, p, k, avg_args = _prepare(input, norm_type, kernel_size, stride, ceil_mode, nd, layer)
    if math.isinf(p):  # torch's branch: max pooling of |x| (inf) or of -|x| (-inf)
        sign = 1 if p > 0 else -1
        y, _ = _max_pool(sign * np.abs(x), kernel_size, stride, 0, 1, ceil_mode, nd, layer)
        return sign * y
    with _torch_semantics():
        s = _avg_pool(x**p, *avg_args)
        u = _torch_sign(s) * np.maximum(np.abs(s), 0) * k  # torch: sign(s) * relu(|s|) * K
        return u ** (1.0 / p)


def _lp_pool_backward(grad_output, input, norm_type, kernel_size, stride, ceil_mode, nd, layer):
    x, p, k, avg_args = _prepare(input, norm_type, kernel_size, stride, ceil_mode, nd, layer)
    g = np.asarray(grad_output)
    if math.isinf(p):  # max pooling's gradient, then |x|'s: sign(x), 0 at 0
        sign = 1 if p > 0 else -1
        grad_v = _max_pool_backward(sign * g, sign * np.abs(x), kernel_size, stride, 0, 1,
                                    ceil_mode, None, nd, layer)  # fmt: skip
        return sign * grad_v * _torch_sign(x)
    with _torch_semantics():
        s = _avg_pool(x**p, *avg_args)
        sign, relu = _torch_sign(s), np.maximum(np.abs(s), 0)
        u = sign * relu * k
        if g.shape != u.shape:
            raise ValueError(
                f"{layer}_backward: grad_output must have the output's shape {u.shape}, got "
                f"{g.shape}"
            )
        grad_u = g * ((1.0 / p) * u ** (1.0 / p - 1.0))  # pow's backward, as torch has it
        grad_relu = grad_u * k * sign  # through * K, then sign(s) * relu(|s|)
        grad_abs = np.where(relu <= 0, 0, grad_relu)  # relu masks on its output: NaN passes
        grad_s = grad_abs * sign  # |s|' = sign(s); sign's own derivative is 0
        grad_a = _avg_pool_backward(grad_s, x, *avg_args)  # (x: only its shape is used)
        return grad_a * (p * x ** (p - 1.0))


def lp_pool3d(
    input: np.ndarray,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    r"""3-d power-average pooling: :math:`(\frac{K}{D}\sum_{\text{window}} x^p)^{1/p}`.

    Shapes: ``(N, C, D, H, W)`` or ``(C, D, H, W)`` -> ``(N, C, Do, Ho, Wo)``; no
    padding; ``stride`` defaults to ``kernel_size``; the module doc has the exact
    composition, ``norm_type = inf`` and the zero-sum rule.
    Torch: ``torch.nn.functional.lp_pool3d``.
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 3, "lp_pool3d")


def lp_pool3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    r"""Gradient of :func:`lp_pool3d`.

    .. math:: \frac{\partial L}{\partial x} = p\,x^{p-1}\;
              \operatorname{avg\_pool}^\top\!\Bigl(g\,\frac{K}{p}\,u^{1/p-1}\,[\,|s| > 0\,]\Bigr)

    (torch's chain, module doc): a window whose sum is 0 sends no gradient.
    """
    return _lp_pool_backward(grad_output, input, norm_type, kernel_size, stride, ceil_mode, 3,
                             "lp_pool3d")  # fmt: skip


def lp_pool2d(
    input: np.ndarray,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    r"""2-d power-average pooling: :math:`(\frac{K}{D}\sum_{\text{window}} x^p)^{1/p}`.

    Shapes: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, Ho, Wo)``.
    Torch: ``torch.nn.functional.lp_pool2d``.
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 2, "lp_pool2d")


def lp_pool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    norm_type: float,
    kernel_size: Any,
    stride: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    r"""Gradient of :func:`lp_pool2d` (the chain of :func:`lp_pool3d_backward`)."""
    return _lp_pool_backward(grad_output, input, norm_type, kernel_size, stride, ceil_mode, 2,
                             "lp_pool2d")  # fmt: skip


def lp_pool1d(
    input: np.ndarray,
    norm_type: float,
    kernel_size: int,
    stride: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    r"""1-d power-average pooling: :math:`(\frac{k}{D}\sum_{\text{window}} x^p)^{1/p}`.

    Shapes: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_o)``; ``kernel_size`` an int
    (as torch's, for a finite ``norm_type``). Torch: ``torch.nn.functional.lp_pool1d``.
    """
    return _lp_pool(input, norm_type, kernel_size, stride, ceil_mode, 1, "lp_pool1d")


def lp_pool1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    norm_type: float,
    kernel_size: int,
    stride: Any = None,
    ceil_mode: bool = False,
) -> np.ndarray:
    r"""Gradient of :func:`lp_pool1d` (the chain of :func:`lp_pool3d_backward`)."""
    return _lp_pool_backward(grad_output, input, norm_type, kernel_size, stride, ceil_mode, 1,
                             "lp_pool1d")  # fmt: skip
