r"""Elementwise activations as forward/backward pairs (``torch.nn.functional``).

Each ``name(input, ...)`` returns :math:`y = f(x)` and ``name_backward(grad_output,
input, ...)`` returns :math:`\partial L/\partial x = g \odot f'(x)` with
:math:`g = \partial L/\partial y`. The backward takes the forward's arguments except
``inplace``, which only says how torch stores the result (we never write in place).

Kinks follow torch exactly (measured by running torch at those points):

==============  ==========================  ===========================
function        kink                        gradient torch takes there
==============  ==========================  ===========================
relu            x = 0                       0
relu6           x = 0, x = 6                0, 0
leaky_relu      x = 0                       negative_slope
hardtanh        x = min_val, x = max_val    0, 0 (``clamp`` passes 1)
hardsigmoid     x = -3, x = 3               0, 0
hardswish       x = -3, x = 3               0, 1
elu, selu       x = 0                       alpha (times scale for selu)
celu            x = 0                       1
softplus        beta * x = threshold        sigmoid(threshold)
==============  ==========================  ===========================

Exponentials only ever see arguments that cannot overflow: ``np.where`` evaluates
both branches, so each branch is computed on clipped values. The smooth activations
(sigmoid, tanh, softplus, gelu, ...) are in :mod:`.activation_smooth`, the
normalizing ones (softmax, log_softmax) in :mod:`.softmax`; both are re-exported here.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_float_array
from .activation_smooth import (
    _grad_args,
    gelu,
    gelu_backward,
    logsigmoid,
    logsigmoid_backward,
    mish,
    mish_backward,
    sigmoid,
    sigmoid_backward,
    silu,
    silu_backward,
    softplus,
    softplus_backward,
    softsign,
    softsign_backward,
    tanh,
    tanh_backward,
)
from .softmax import log_softmax, log_softmax_backward, softmax, softmax_backward

__all__ = [
    "relu", "relu_backward", "relu6", "relu6_backward",
    "leaky_relu", "leaky_relu_backward", "hardtanh", "hardtanh_backward",
    "hardsigmoid", "hardsigmoid_backward", "hardswish", "hardswish_backward",
    "elu", "elu_backward", "celu", "celu_backward", "selu", "selu_backward",
    # re-exported from activation_smooth
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "logsigmoid", "logsigmoid_backward", "softplus", "softplus_backward",
    "softsign", "softsign_backward", "silu", "silu_backward", "mish", "mish_backward",
    "gelu", "gelu_backward",
    # re-exported from softmax
    "softmax", "softmax_backward", "log_softmax", "log_softmax_backward",
]  # fmt: skip

# SELU's constants (Klambauer et al. 2017), the values torch uses
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


# -- piecewise linear ---------------------------------------------------------


def relu(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`\mathrm{relu}(x) = \max(x, 0)` (``torch.nn.functional.relu``)."""
    input = as_float_array(input, "relu")
    return np.maximum(input, 0).astype(input.dtype, copy=False)


def relu_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`\partial L/\partial x = g \cdot [x > 0]`; at the kink torch takes relu'(0) = 0.

    Torch's ``threshold_backward`` zeroes where :math:`x \le 0`, so at a NaN input the
    gradient passes: the mask is written as :math:`\lnot(x \le 0)` to match."""
    grad_output, input = _grad_args(grad_output, input, "relu_backward")
    passes = ~(input <= 0)
    if np.isfinite(grad_output).all():
        # branch-free, ~10x faster than np.where on a random mask
        return (grad_output * passes).astype(input.dtype, copy=False)
    # torch gives exactly 0 where x <= 0 even for an inf/nan g, which a product would not
    return np.where(passes, grad_output, 0).astype(input.dtype, copy=False)


def relu6(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`\min(\max(x, 0), 6)`, i.e. ``hardtanh(x, 0, 6)`` (``torch.nn.functional.relu6``)."""
    return hardtanh(as_float_array(input, "relu6"), 0.0, 6.0)


def relu6_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g \cdot [0 < x < 6]`: torch gives 0 at both kinks, x = 0 and x = 6."""
    return hardtanh_backward(grad_output, input, 0.0, 6.0)


def leaky_relu(
    input: np.ndarray, negative_slope: float = 0.01, inplace: bool = False
) -> np.ndarray:
    r""":math:`x` for :math:`x > 0`, else :math:`a x` with ``a = negative_slope``.

    Torch: ``torch.nn.functional.leaky_relu``.
    """
    input = as_float_array(input, "leaky_relu")
    return np.where(input > 0, input, input * negative_slope).astype(input.dtype, copy=False)


def leaky_relu_backward(
    grad_output: np.ndarray, input: np.ndarray, negative_slope: float = 0.01
) -> np.ndarray:
    r""":math:`g` for :math:`x > 0`, else :math:`a g`; torch takes the slope side at x = 0."""
    grad_output, input = _grad_args(grad_output, input, "leaky_relu_backward")
    grad = np.where(input > 0, grad_output, grad_output * negative_slope)
    return grad.astype(input.dtype, copy=False)


def _check_hardtanh_range(min_val: float, max_val: float) -> None:
    if min_val > max_val:  # torch raises for this too; min_val == max_val is allowed
        raise ValueError(
            f"hardtanh: min_val must not exceed max_val, got min_val={min_val}, "
            f"max_val={max_val}; swap them"
        )


def hardtanh(
    input: np.ndarray, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> np.ndarray:
    r"""Clip to :math:`[\text{min\_val}, \text{max\_val}]` (``torch.nn.functional.hardtanh``).

    .. math:: y = \min(\max(x, m), M), \qquad
              \frac{\partial L}{\partial x} = g \cdot [m < x < M]
    """
    input = as_float_array(input, "hardtanh")
    _check_hardtanh_range(min_val, max_val)
    return np.clip(input, min_val, max_val).astype(input.dtype, copy=False)


def hardtanh_backward(
    grad_output: np.ndarray, input: np.ndarray, min_val: float = -1.0, max_val: float = 1.0
) -> np.ndarray:
    r""":math:`g \cdot [m < x < M]`: open interval, so 0 *at* either bound.

    Unlike ``torch.clamp``, whose gradient is 1 at the bounds, torch's hardtanh
    (and relu6, which is hardtanh(0, 6)) passes nothing at x = min_val or max_val.
    """
    grad_output, input = _grad_args(grad_output, input, "hardtanh_backward")
    _check_hardtanh_range(min_val, max_val)
    inside = (input > min_val) & (input < max_val)
    return np.where(inside, grad_output, 0).astype(input.dtype, copy=False)


def hardsigmoid(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`\mathrm{relu6}(x + 3) / 6`: 0 below -3, 1 above 3, linear between.

    Torch: ``torch.nn.functional.hardsigmoid``.
    """
    input = as_float_array(input, "hardsigmoid")
    return (np.clip(input + 3, 0, 6) / 6).astype(input.dtype, copy=False)


def hardsigmoid_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g/6 \cdot [-3 < x < 3]`; torch gives 0 at both kinks."""
    grad_output, input = _grad_args(grad_output, input, "hardsigmoid_backward")
    inside = (input > -3) & (input < 3)
    return np.where(inside, grad_output / 6, 0).astype(input.dtype, copy=False)


def hardswish(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`x \cdot \mathrm{relu6}(x + 3) / 6` (``torch.nn.functional.hardswish``).

    .. math:: f'(x) = 0 \;(x \le -3), \qquad \tfrac{2x + 3}{6} \;(-3 < x < 3),
              \qquad 1 \;(x \ge 3)
    """
    input = as_float_array(input, "hardswish")
    return (input * np.clip(input + 3, 0, 6) / 6).astype(input.dtype, copy=False)


def hardswish_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r"""Piecewise :math:`g f'(x)`; torch takes 0 at x = -3 and 1 at x = 3 (the outer pieces)."""
    grad_output, input = _grad_args(grad_output, input, "hardswish_backward")
    slope = np.where(input <= -3, 0, np.where(input >= 3, 1, (2 * input + 3) / 6))
    return (grad_output * slope).astype(input.dtype, copy=False)


# -- exponential linear units -------------------------------------------------


def elu(input: np.ndarray, alpha: float = 1.0, inplace: bool = False) -> np.ndarray:
    r""":math:`x` for :math:`x > 0`, else :math:`\alpha (e^x - 1)` (``torch.nn.functional.elu``).

    .. math:: f'(x) = 1 \;(x > 0), \qquad \alpha e^x \;(x \le 0)

    ``expm1`` keeps :math:`e^x - 1` accurate near 0; it sees ``min(x, 0)`` so the
    unused branch cannot overflow for large positive x.
    """
    input = as_float_array(input, "elu")
    negative = alpha * np.expm1(np.minimum(input, 0))
    return np.where(input > 0, input, negative).astype(input.dtype, copy=False)


def elu_backward(grad_output: np.ndarray, input: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    r""":math:`g` for :math:`x > 0`, else :math:`g \alpha e^x`; at x = 0 torch takes
    :math:`\alpha` (the negative side)."""
    grad_output, input = _grad_args(grad_output, input, "elu_backward")
    slope = np.where(input > 0, 1, alpha * np.exp(np.minimum(input, 0)))
    return (grad_output * slope).astype(input.dtype, copy=False)


def _check_celu_alpha(alpha: float) -> None:
    if alpha == 0:  # torch raises too: the formula divides by alpha
        raise ValueError("celu: alpha must be nonzero (CELU divides x by alpha), got 0")


def celu(input: np.ndarray, alpha: float = 1.0, inplace: bool = False) -> np.ndarray:
    r""":math:`x` for :math:`x > 0`, else :math:`\alpha (e^{x/\alpha} - 1)`.

    .. math:: f'(x) = 1 \;(x > 0), \qquad e^{x/\alpha} \;(x \le 0)

    Continuously differentiable: both sides give 1 at x = 0. Torch:
    ``torch.nn.functional.celu``.
    """
    input = as_float_array(input, "celu")
    _check_celu_alpha(alpha)
    negative = alpha * np.expm1(np.minimum(input, 0) / alpha)
    return np.where(input > 0, input, negative).astype(input.dtype, copy=False)


def celu_backward(grad_output: np.ndarray, input: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    r""":math:`g` for :math:`x > 0`, else :math:`g e^{x/\alpha}` (so 1 at x = 0, as torch)."""
    grad_output, input = _grad_args(grad_output, input, "celu_backward")
    _check_celu_alpha(alpha)
    slope = np.where(input > 0, 1, np.exp(np.minimum(input, 0) / alpha))
    return (grad_output * slope).astype(input.dtype, copy=False)


def selu(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`\lambda \,\mathrm{elu}(x, \alpha)` with SELU's fixed :math:`\lambda, \alpha`.

    :math:`\lambda` = ``SELU_SCALE`` :math:`\approx 1.0507`, :math:`\alpha` =
    ``SELU_ALPHA`` :math:`\approx 1.6733`. Torch: ``torch.nn.functional.selu``.
    """
    input = as_float_array(input, "selu")
    return (SELU_SCALE * elu(input, SELU_ALPHA)).astype(input.dtype, copy=False)


def selu_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`\lambda \,\mathrm{elu}'(x, \alpha)`: :math:`\lambda` for x > 0, else
    :math:`\lambda \alpha e^x` (also at x = 0, as torch)."""
    grad = elu_backward(grad_output, input, SELU_ALPHA)
    return (SELU_SCALE * grad).astype(grad.dtype, copy=False)
