r"""The remaining activations as forward/backward pairs (``torch.nn.functional``).

``prelu`` (learned slope), ``glu`` (gated halves), ``threshold``, ``hardshrink``,
``softshrink``, ``tanhshrink`` and ``softmin``. Each ``name_backward(grad_output,
input, ...)`` takes the forward's arguments except ``inplace`` and returns
:math:`\partial L/\partial x` (``prelu_backward`` also the weight's gradient).

Kinks follow torch exactly (measured by running torch 2.13 at those points):

==============  ==========================  ===========================
function        kink                        gradient torch takes there
==============  ==========================  ===========================
prelu           x = 0                       weight (the negative side)
threshold       x = threshold               0 (the output is ``value``)
hardshrink      x = -lambd, x = lambd       0, 0 (the output is 0)
softshrink      x = -lambd, x = lambd       0, 0
==============  ==========================  ===========================

Scalar arguments (``threshold``, ``value``, ``lambd``) are cast to the input's dtype
first, as torch's kernels do, so a float32 input is compared with ``float32(0.1)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import _torch_names, as_float_array, normalize_dim
from .activation_smooth import _grad_args, sigmoid, sigmoid_backward
from .softmax import _resolve_dim, softmax, softmax_backward

__all__ = [
    "prelu", "prelu_backward", "glu", "glu_backward", "threshold", "threshold_backward",
    "hardshrink", "hardshrink_backward", "softshrink", "softshrink_backward",
    "tanhshrink", "tanhshrink_backward", "softmin", "softmin_backward",
]  # fmt: skip


# -- prelu ---------------------------------------------------------------------


def prelu_weight(input: np.ndarray, weight: Any, layer: str = "prelu") -> np.ndarray:
    """``weight`` shaped to broadcast against ``input``, after torch's checks (``F.prelu``).

    A weight of one element applies everywhere; otherwise it needs one per channel,
    dim 1, and a 1-D or 0-d input has one channel (there is no unbatched special case).
    """
    weight = as_float_array(weight, layer, "weight")
    if weight.dtype != input.dtype:
        x_name, w_name = _torch_names(input.dtype)[0], _torch_names(weight.dtype)[0]
        raise RuntimeError(
            f"prelu: Type promoting not supported. Got {x_name} and {w_name}\n{layer} got an "
            f"input of dtype {input.dtype} and shape {input.shape}, but holds weight "
            f"{weight.dtype}; torch does not promote between a module and its input: "
            f".to(np.{input.dtype}) the module, or cast the input with .astype(np.{weight.dtype})"
        )
    if weight.ndim > 1:
        raise ValueError(f"{layer}: weight must be 0-d or 1-D, got shape {weight.shape}")
    if weight.size != 1:
        if input.ndim == 0:
            raise ValueError(
                f"{layer}: a 0-d input takes a weight of one element, got weight {weight.shape}"
            )
        channels = input.shape[1] if input.ndim > 1 else 1
        if channels != weight.size:
            raise ValueError(
                f"{layer}: weight has {weight.size} elements but the input has {channels} "
                f"channel(s) in dim 1 (input shape {input.shape}; a 1-D input has one)"
            )
    if input.ndim == weight.ndim:
        return weight
    shape = [1] * input.ndim
    if input.ndim > 1:
        shape[1] = weight.size
    return weight.reshape(shape)


def prelu(input: np.ndarray, weight: np.ndarray) -> np.ndarray:
    r""":math:`x` for :math:`x > 0`, else :math:`a_c x`, with ``a = weight`` per channel.

    .. math:: y = \max(x, 0) + a_c \min(x, 0)

    Shapes: input ``(N, C, *)``, ``(N,)`` or ``()``; weight ``(C,)``, ``(1,)`` or ``()``,
    broadcast over dim 1. Torch: ``torch.nn.functional.prelu``.
    """
    input = as_float_array(input, "prelu")
    a = prelu_weight(input, weight)
    return np.where(input > 0, input, a * input).astype(input.dtype, copy=False)


def prelu_backward(
    grad_output: np.ndarray, input: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients of :func:`prelu` wrt input and weight.

    .. math:: \frac{\partial L}{\partial x} = g \cdot (1 \text{ if } x > 0 \text{ else } a_c),
              \qquad \frac{\partial L}{\partial a_c} = \sum_{\text{all but dim 1}}
              g \, x \, [x \le 0]

    At x = 0 torch takes the slope ``a`` for the input (its weight term is 0 there).
    Returns ``(grad_input, grad_weight)``, ``grad_weight`` in ``weight``'s shape.
    """
    grad_output, input = _grad_args(grad_output, input, "prelu_backward")
    a = prelu_weight(input, weight, "prelu_backward")
    positive = input > 0
    grad_input = np.where(positive, grad_output, a * grad_output).astype(input.dtype, copy=False)
    per_element = np.where(positive, 0, grad_output * input)
    if np.size(weight) == 1:  # one slope shared by every element
        grad_weight = per_element.sum()
    else:  # one per channel (dim 1; the checks above ensure input.ndim >= 2)
        grad_weight = per_element.sum(axis=(0, *range(2, input.ndim)))
    return grad_input, np.reshape(grad_weight, np.shape(weight)).astype(input.dtype)


# -- glu -----------------------------------------------------------------------


def _glu_halves(input: np.ndarray, dim: int, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The two halves of ``input`` along ``dim`` (torch refuses a scalar or an odd size)."""
    if input.ndim == 0:
        raise ValueError(f"{name}: a 0-d input has no dimension to halve (torch refuses it too)")
    axis = normalize_dim(dim, input.ndim, name)
    if input.shape[axis] % 2:
        raise ValueError(
            f"{name}: the halved dimension must be even, but dim {dim} of input shape "
            f"{input.shape} has size {input.shape[axis]}"
        )
    a, b = np.split(input, 2, axis=axis)
    return a, b, axis


def glu(input: np.ndarray, dim: int = -1) -> np.ndarray:
    r"""Gated linear unit: split ``input`` in halves :math:`a, b` along ``dim``.

    .. math:: y = a \odot \sigma(b)

    Shapes: ``(*, 2n, *)`` -> ``(*, n, *)``. Torch: ``torch.nn.functional.glu``.
    """
    input = as_float_array(input, "glu")
    a, b, _ = _glu_halves(input, dim, "glu")
    return (a * sigmoid(b)).astype(input.dtype, copy=False)


def glu_backward(grad_output: np.ndarray, input: np.ndarray, dim: int = -1) -> np.ndarray:
    r""":math:`\partial L/\partial a = g\,\sigma(b)`, :math:`\partial L/\partial b =
    g\,a\,\sigma(b)(1 - \sigma(b))`, joined back along ``dim`` (the input's shape)."""
    input = as_float_array(input, "glu_backward")
    a, b, axis = _glu_halves(input, dim, "glu_backward")
    grad_output = as_float_array(grad_output, "glu_backward", "grad_output")
    if grad_output.shape != a.shape:
        raise ValueError(
            f"glu_backward: grad_output must have the output's shape {a.shape} (input "
            f"{input.shape} halved along dim {dim}), got {grad_output.shape}"
        )
    grad_a = grad_output * sigmoid(b)
    grad_b = sigmoid_backward(grad_output * a, b)
    return np.concatenate([grad_a, grad_b], axis=axis).astype(input.dtype, copy=False)


# -- threshold and the shrinks ---------------------------------------------------


def threshold(
    input: np.ndarray, threshold: float, value: float, inplace: bool = False
) -> np.ndarray:
    r""":math:`y = x` if :math:`x > \text{threshold}`, else ``value``.

    Torch: ``torch.nn.functional.threshold``.
    """
    input = as_float_array(input, "threshold")
    t, v = input.dtype.type(threshold), input.dtype.type(value)
    return np.where(input > t, input, v).astype(input.dtype, copy=False)


def threshold_backward(
    grad_output: np.ndarray, input: np.ndarray, threshold: float, value: float
) -> np.ndarray:
    r""":math:`g \cdot [x > \text{threshold}]`; 0 at x = threshold, where y = ``value``."""
    grad_output, input = _grad_args(grad_output, input, "threshold_backward")
    passes = input > input.dtype.type(threshold)
    return np.where(passes, grad_output, 0).astype(input.dtype, copy=False)


def hardshrink(input: np.ndarray, lambd: float = 0.5) -> np.ndarray:
    r""":math:`y = x` if :math:`|x| > \lambda`, else 0 (``torch.nn.functional.hardshrink``).

    A negative ``lambd`` is allowed, as in torch: then every x passes.
    """
    input = as_float_array(input, "hardshrink")
    lam = input.dtype.type(lambd)
    inside = (input >= -lam) & (input <= lam)
    return np.where(inside, 0, input).astype(input.dtype, copy=False)


def hardshrink_backward(
    grad_output: np.ndarray, input: np.ndarray, lambd: float = 0.5
) -> np.ndarray:
    r""":math:`g \cdot [|x| > \lambda]`: torch gives 0 at x = :math:`\pm\lambda`."""
    grad_output, input = _grad_args(grad_output, input, "hardshrink_backward")
    return _shrink_backward(grad_output, input, input.dtype.type(lambd))


def _shrink_backward(grad_output: np.ndarray, input: np.ndarray, lam: Any) -> np.ndarray:
    """torch's ``shrink_backward``: 0 on the closed interval :math:`[-\\lambda, \\lambda]`."""
    inside = (input >= -lam) & (input <= lam)
    return np.where(inside, 0, grad_output).astype(input.dtype, copy=False)


def _check_softshrink_lambd(lambd: float, dtype: np.dtype, name: str) -> Any:
    """``lambd`` in the input's dtype; torch refuses a negative one (or NaN, or too large)."""
    top = np.finfo(dtype).max
    if not 0 <= lambd <= top:
        raise ValueError(
            f"{name}: lambd must be in [0, {top:.6g}] for input dtype {dtype}, got {lambd}"
        )
    return dtype.type(lambd)


def softshrink(input: np.ndarray, lambd: float = 0.5) -> np.ndarray:
    r"""Shrink toward 0 by :math:`\lambda \ge 0` (``torch.nn.functional.softshrink``).

    .. math:: y = x - \lambda \;(x > \lambda), \qquad x + \lambda \;(x < -\lambda),
              \qquad 0 \text{ otherwise}
    """
    input = as_float_array(input, "softshrink")
    lam = _check_softshrink_lambd(lambd, input.dtype, "softshrink")
    shrunk = np.where(input > lam, input - lam, np.where(input < -lam, input + lam, 0))
    return shrunk.astype(input.dtype, copy=False)


def softshrink_backward(
    grad_output: np.ndarray, input: np.ndarray, lambd: float = 0.5
) -> np.ndarray:
    r""":math:`g \cdot [|x| > \lambda]`: torch gives 0 at x = :math:`\pm\lambda`."""
    grad_output, input = _grad_args(grad_output, input, "softshrink_backward")
    lam = _check_softshrink_lambd(lambd, input.dtype, "softshrink_backward")
    return _shrink_backward(grad_output, input, lam)


# x - tanh(x) = sum_k c_k x^(2k+1) for |x| < pi/2; below _SERIES_CUT the terms through
# x^15 leave < 1e-16 relative, and above it the direct difference loses < 4e-14
_TANHSHRINK_SERIES = (
    1 / 3, -2 / 15, 17 / 315, -62 / 2835, 1382 / 155925, -21844 / 6081075,
    929569 / 638512875,
)  # fmt: skip
_SERIES_CUT = 0.1


def tanhshrink(input: np.ndarray) -> np.ndarray:
    r""":math:`y = x - \tanh x` (``torch.nn.functional.tanhshrink``).

    Near 0 the difference cancels (:math:`y \approx x^3/3`), losing about
    :math:`3u/x^2` of its digits; for :math:`|x| < 0.1` the Taylor series is summed
    instead, in float64, so float32 and float64 results are accurate to their rounding.
    Torch subtracts directly (see the tests: its float32 result is 5% off at x = 1e-3).
    """
    input = as_float_array(input, "tanhshrink")
    x = input.astype(np.float64)
    small = np.abs(x) < _SERIES_CUT
    xs = np.where(small, x, 0.0)
    x2, series = xs * xs, np.zeros_like(xs)
    for c in reversed(_TANHSHRINK_SERIES):  # Horner in x^2 (7 terms, not a data loop)
        series = series * x2 + c
    y = np.where(small, series * x2 * xs, x - np.tanh(x))
    return y.astype(input.dtype)


def tanhshrink_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g \tanh^2 x`, i.e. :math:`g (1 - \tanh' x)`, without the cancellation."""
    grad_output, input = _grad_args(grad_output, input, "tanhshrink_backward")
    t = np.tanh(input)
    return (grad_output * t * t).astype(input.dtype, copy=False)


# -- softmin ---------------------------------------------------------------------


def softmin(input: np.ndarray, dim: int | None = None, dtype: Any = None) -> np.ndarray:
    r""":math:`\mathrm{softmax}(-x)` along ``dim`` (``torch.nn.functional.softmin``).

    .. math:: y_i = e^{-x_i} / \textstyle\sum_j e^{-x_j}

    ``dim=None`` takes torch's legacy implicit dim (0 for 0-, 1- and 3-D input, else 1)
    and warns that it is deprecated, as torch does. ``dtype``: cast first.
    """
    input = as_float_array(input, "softmin")
    axis = _resolve_dim(dim, input.ndim, "softmin", warn=True)
    return softmax(-input, axis, dtype)


def softmin_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    dim: int | None = None,
    dtype: Any = None,
    *,
    output: np.ndarray | None = None,
) -> np.ndarray:
    r""":math:`-\,\mathrm{softmax\_backward}(g, -x)`:
    :math:`\partial L/\partial x_k = -y_k (g_k - \sum_i g_i y_i)`.

    ``output``: the forward's result, to skip recomputing it.
    """
    input = as_float_array(input, "softmin_backward")
    axis = _resolve_dim(dim, input.ndim, "softmin_backward", warn=False)
    grad = softmax_backward(grad_output, -input, axis, dtype, output=output)
    return -grad
