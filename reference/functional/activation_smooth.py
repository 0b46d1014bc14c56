r"""Smooth elementwise activations: the sigmoid family, softplus, GELU, SiLU, Mish, softsign.

Forward/backward pairs with ``torch.nn.functional``'s names (re-exported by
:mod:`.activation`). ``name_backward(grad_output, input, ...)`` returns
:math:`g \odot f'(x)`; ``sigmoid_backward`` and ``tanh_backward`` also accept the
forward's result as ``output=`` to skip recomputing it, since
:math:`\sigma' = \sigma(1 - \sigma)` and :math:`\tanh' = 1 - \tanh^2`.

Stability: every exponential sees a non-positive argument (:math:`e^{-|x|}`), so no
input, however large, overflows; only harmless underflow to 0 can happen.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import as_float_array

__all__ = [
    "sigmoid", "sigmoid_backward", "tanh", "tanh_backward",
    "logsigmoid", "logsigmoid_backward", "softplus", "softplus_backward",
    "softsign", "softsign_backward", "silu", "silu_backward", "mish", "mish_backward",
    "gelu", "gelu_backward",
]  # fmt: skip


def _grad_args(grad_output, input, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a backward's arrays: a floating input and a gradient of the output's shape."""
    input = as_float_array(input, name)
    grad_output = as_float_array(grad_output, name, "grad_output")
    if grad_output.shape != input.shape:
        raise ValueError(
            f"{name}: grad_output must have the output's shape {input.shape} (the input's), "
            f"got {grad_output.shape}"
        )
    return grad_output, input


def _sigmoid(x: np.ndarray) -> np.ndarray:
    r""":math:`\sigma(x)` from :math:`e^{-|x|} \in (0, 1]`: :math:`1/(1+e^{-x})` for
    :math:`x \ge 0` and the same value written :math:`e^{x}/(1+e^{x})` for :math:`x < 0`."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _log1p_exp(x: np.ndarray) -> np.ndarray:
    r""":math:`\log(1 + e^x) = \max(x, 0) + \log(1 + e^{-|x|})`, finite for every finite x."""
    return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(input: np.ndarray) -> np.ndarray:
    r""":math:`\sigma(x) = 1/(1 + e^{-x})` (``torch.nn.functional.sigmoid``)."""
    input = as_float_array(input, "sigmoid")
    return _sigmoid(input).astype(input.dtype, copy=False)


def sigmoid_backward(
    grad_output: np.ndarray, input: np.ndarray, *, output: np.ndarray | None = None
) -> np.ndarray:
    r""":math:`g\,\sigma(x)(1 - \sigma(x))`; pass the forward's ``output`` to reuse it."""
    grad_output, input = _grad_args(grad_output, input, "sigmoid_backward")
    s = _sigmoid(input) if output is None else np.asarray(output)
    return (grad_output * s * (1 - s)).astype(input.dtype, copy=False)


def tanh(input: np.ndarray) -> np.ndarray:
    r""":math:`\tanh(x)` (``torch.nn.functional.tanh``)."""
    input = as_float_array(input, "tanh")
    return np.tanh(input)


def tanh_backward(
    grad_output: np.ndarray, input: np.ndarray, *, output: np.ndarray | None = None
) -> np.ndarray:
    r""":math:`g\,(1 - \tanh^2 x)`; pass the forward's ``output`` to reuse it."""
    grad_output, input = _grad_args(grad_output, input, "tanh_backward")
    t = np.tanh(input) if output is None else np.asarray(output)
    return (grad_output * (1 - t * t)).astype(input.dtype, copy=False)


def logsigmoid(input: np.ndarray) -> np.ndarray:
    r""":math:`\log \sigma(x) = -\log(1 + e^{-x})` (``torch.nn.functional.logsigmoid``).

    .. math:: f'(x) = 1 - \sigma(x) = \sigma(-x)
    """
    input = as_float_array(input, "logsigmoid")
    return (-_log1p_exp(-input)).astype(input.dtype, copy=False)


def logsigmoid_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g\,\sigma(-x)` (computed directly, not as :math:`1 - \sigma(x)`, which
    cancels to 0 for large x)."""
    grad_output, input = _grad_args(grad_output, input, "logsigmoid_backward")
    return (grad_output * _sigmoid(-input)).astype(input.dtype, copy=False)


def _check_beta(beta: float) -> None:
    if beta == 0:
        raise ValueError("softplus: beta must be nonzero (softplus divides by beta), got 0")


def softplus(input: np.ndarray, beta: float = 1.0, threshold: float = 20.0) -> np.ndarray:
    r""":math:`\tfrac{1}{\beta}\log(1 + e^{\beta x})`, and :math:`x` itself where
    :math:`\beta x > \text{threshold}` (``torch.nn.functional.softplus``).

    .. math:: f'(x) = \sigma(\beta x) \;(\beta x \le \text{threshold}), \qquad
              1 \;(\beta x > \text{threshold})

    The switch is torch's (a speed shortcut: :math:`\sigma(20) = 1 - 2\cdot 10^{-9}`);
    at exactly :math:`\beta x = \text{threshold}` torch takes the log branch.
    """
    input = as_float_array(input, "softplus")
    _check_beta(beta)
    scaled = input * beta
    smooth = _log1p_exp(scaled) / beta
    return np.where(scaled > threshold, input, smooth).astype(input.dtype, copy=False)


def softplus_backward(
    grad_output: np.ndarray, input: np.ndarray, beta: float = 1.0, threshold: float = 20.0
) -> np.ndarray:
    r""":math:`g\,\sigma(\beta x)` where :math:`\beta x \le \text{threshold}`, else :math:`g`."""
    grad_output, input = _grad_args(grad_output, input, "softplus_backward")
    _check_beta(beta)
    scaled = input * beta
    slope = np.where(scaled > threshold, 1, _sigmoid(scaled))
    return (grad_output * slope).astype(input.dtype, copy=False)


def softsign(input: np.ndarray) -> np.ndarray:
    r""":math:`x / (1 + |x|)`, with :math:`f'(x) = 1/(1 + |x|)^2`.

    Torch: ``torch.nn.functional.softsign``.
    """
    input = as_float_array(input, "softsign")
    return input / (1 + np.abs(input))


def softsign_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g / (1 + |x|)^2` (1 at x = 0, where both sides agree)."""
    grad_output, input = _grad_args(grad_output, input, "softsign_backward")
    denom = 1 + np.abs(input)
    return (grad_output / (denom * denom)).astype(input.dtype, copy=False)


def silu(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`x\,\sigma(x)` (``torch.nn.functional.silu``, a.k.a. swish).

    .. math:: f'(x) = \sigma(x) + x\,\sigma(x)(1 - \sigma(x))
                    = \sigma(x)\,\bigl(1 + x (1 - \sigma(x))\bigr)
    """
    input = as_float_array(input, "silu")
    return (input * _sigmoid(input)).astype(input.dtype, copy=False)


def silu_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g\,\sigma(x)(1 + x(1 - \sigma(x)))`."""
    grad_output, input = _grad_args(grad_output, input, "silu_backward")
    s = _sigmoid(input)
    return (grad_output * s * (1 + input * (1 - s))).astype(input.dtype, copy=False)


def mish(input: np.ndarray, inplace: bool = False) -> np.ndarray:
    r""":math:`x \tanh(\mathrm{softplus}(x))` (``torch.nn.functional.mish``).

    .. math:: f'(x) = t + x\,\sigma(x)(1 - t^2), \qquad t = \tanh(\log(1 + e^x))

    using :math:`\mathrm{softplus}' = \sigma`.
    """
    input = as_float_array(input, "mish")
    return (input * np.tanh(_log1p_exp(input))).astype(input.dtype, copy=False)


def mish_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`g\,(t + x\,\sigma(x)(1 - t^2))` with :math:`t = \tanh(\mathrm{softplus}(x))`."""
    grad_output, input = _grad_args(grad_output, input, "mish_backward")
    t = np.tanh(_log1p_exp(input))
    slope = t + input * _sigmoid(input) * (1 - t * t)
    return (grad_output * slope).astype(input.dtype, copy=False)


# -- GELU ---------------------------------------------------------------------

_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)
_GELU_TANH_COEF = 0.044715
# Beyond |x| = 10 the tanh form's inner argument exceeds 40, where tanh is exactly +-1
# (and 1 - tanh^2 exactly 0) in float32 and float64; beyond |x| = 40 the normal density
# exp(-x^2/2) underflows to exactly 0. Clipping x there changes no value and keeps x**2
# and x**3 from overflowing for huge inputs.
_GELU_TANH_CLIP = 10.0
_GELU_PDF_CLIP = 40.0


# NumPy has no erf, and Python's math.erf takes one number at a time. So at import we
# interpolate erf(x)/x (smooth and even) on [0, 6], in 12 pieces of width 1/2, by
# Chebyshev polynomials of degree 12 through math.erf's values at Chebyshev points: the
# result matches math.erf to ~2e-15 relative everywhere (checked on 4e5 points), and
# beyond 6, erf is 1 to within 2e-17, below float64's resolution.
_ERF_RANGE, _ERF_PIECES, _ERF_DEGREE = 6.0, 12, 12
_ERF_WIDTH = _ERF_RANGE / _ERF_PIECES


def _erf_piece(start: float) -> np.ndarray:
    """Chebyshev coefficients of erf(x)/x on the piece [start, start + width]."""

    def ratio(t):  # t in (-1, 1), Chebyshev's interval -> x in the piece (never 0)
        x = start + (t + 1) * _ERF_WIDTH / 2
        return np.array([math.erf(v) / v for v in x])

    return np.polynomial.chebyshev.chebinterpolate(ratio, _ERF_DEGREE)


# (pieces, degree + 1): row i holds the coefficients of piece i
_ERF_TABLE = np.array([_erf_piece(i * _ERF_WIDTH) for i in range(_ERF_PIECES)])


def _erf(x: np.ndarray) -> np.ndarray:
    r"""The error function :math:`\mathrm{erf}(x) = \tfrac{2}{\sqrt\pi}\int_0^x e^{-t^2} dt`,
    vectorized: :math:`x \cdot (\mathrm{erf}(x)/x)`, the ratio from the table above.

    Evaluated in float64 whatever the input dtype, and rounded back by the caller, as
    torch's float32 erf is accurate to about one float32 ulp. Each element picks its
    piece; Clenshaw's recurrence sums the Chebyshev series, vectorized over elements.
    """
    x = np.clip(np.asarray(x, dtype=np.float64), -_ERF_RANGE, _ERF_RANGE)
    a = np.abs(x)
    # a NaN picks piece 0 (any piece: x * ... keeps it NaN) rather than a garbage index
    piece = np.minimum(np.nan_to_num(a / _ERF_WIDTH).astype(np.intp), _ERF_PIECES - 1)
    t = (a - piece * _ERF_WIDTH) * (2 / _ERF_WIDTH) - 1  # position within the piece, [-1, 1]
    b1, b2 = np.zeros_like(t), np.zeros_like(t)
    for k in range(_ERF_DEGREE, 0, -1):  # Clenshaw: a loop over coefficients, not elements
        b1, b2 = 2 * t * b1 - b2 + _ERF_TABLE[piece, k], b1
    return x * (t * b1 - b2 + _ERF_TABLE[piece, 0])


def _check_approximate(approximate: str) -> None:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    r""":math:`\Phi(x) = \tfrac12(1 + \mathrm{erf}(x/\sqrt2))`, summed in float64 and rounded
    once to ``x``'s dtype: for :math:`x < 0` the sum cancels, and an erf rounded to float32
    first would leave :math:`\Phi` only an absolute :math:`u/2`: 10% of it at :math:`x = -5`
    (torch's float32 GELU has that absolute error; ``harness/known.py``)."""
    return (0.5 * (1 + _erf(x / math.sqrt(2)))).astype(x.dtype)


def gelu(input: np.ndarray, approximate: str = "none") -> np.ndarray:
    r""":math:`x\,\Phi(x)`, :math:`\Phi` the standard normal CDF (``torch.nn.functional.gelu``).

    .. math:: \texttt{'none'}: \; \Phi(x) = \tfrac12\bigl(1 + \mathrm{erf}(x/\sqrt2)\bigr),
              \qquad f'(x) = \Phi(x) + x\,\varphi(x), \quad
              \varphi(x) = e^{-x^2/2}/\sqrt{2\pi}

    .. math:: \texttt{'tanh'}: \; f(x) = \tfrac12 x (1 + \tanh u), \quad
              u = \sqrt{2/\pi}\,(x + 0.044715 x^3)

    .. math:: f'(x) = \tfrac12 (1 + \tanh u) + \tfrac12 x (1 - \tanh^2 u)\,
              \sqrt{2/\pi}\,(1 + 3 \cdot 0.044715 x^2)
    """
    input = as_float_array(input, "gelu")
    _check_approximate(approximate)
    if approximate == "tanh":
        half_sum = _gelu_tanh_halves(input)[0]  # (1 + tanh u) / 2
        return (input * half_sum).astype(input.dtype, copy=False)
    cdf = _normal_cdf(input)
    return (input * cdf).astype(input.dtype, copy=False)


def _gelu_tanh_inner(x: np.ndarray) -> np.ndarray:
    r""":math:`u(x) = \sqrt{2/\pi}\,(x + 0.044715 x^3)` of the tanh form."""
    return _SQRT_2_OVER_PI * (x + _GELU_TANH_COEF * x * x * x)


def _gelu_tanh_halves(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`(\tfrac12(1 + \tanh u), \tfrac12(1 - \tanh u)) = (\sigma(2u), \sigma(-2u))`,
    in float64: for :math:`x < 0`, :math:`1 + \tanh u` computed as a sum cancels (an
    absolute :math:`u`, twice the value at :math:`x = -5` in float32), the sigmoid does not."""
    u = _gelu_tanh_inner(np.clip(np.asarray(x, np.float64), -_GELU_TANH_CLIP, _GELU_TANH_CLIP))
    return 1 / (1 + np.exp(-2 * u)), 1 / (1 + np.exp(2 * u))


def gelu_backward(
    grad_output: np.ndarray, input: np.ndarray, approximate: str = "none"
) -> np.ndarray:
    r""":math:`g f'(x)` for the chosen form (formulas in :func:`gelu`)."""
    grad_output, input = _grad_args(grad_output, input, "gelu_backward")
    _check_approximate(approximate)
    if approximate == "tanh":
        clipped = np.clip(input, -_GELU_TANH_CLIP, _GELU_TANH_CLIP).astype(np.float64)
        plus, minus = _gelu_tanh_halves(input)  # (1 + t) / 2, (1 - t) / 2
        du = _SQRT_2_OVER_PI * (1 + 3 * _GELU_TANH_COEF * clipped * clipped)  # u'(x)
        # 1 - t^2 = (1 + t)(1 - t) = 4 * plus * minus, without the cancellation
        slope = (plus + 2 * input * plus * minus * du).astype(input.dtype)
    else:
        cdf = _normal_cdf(input)
        clipped = np.clip(input, -_GELU_PDF_CLIP, _GELU_PDF_CLIP)
        pdf = np.exp(-0.5 * clipped * clipped) / math.sqrt(2 * math.pi)
        slope = cdf + input * pdf
    return (grad_output * slope).astype(input.dtype, copy=False)
