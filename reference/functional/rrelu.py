r"""RReLU, the randomized leaky ReLU, forward and backward (``torch.nn.functional.rrelu``).

.. math:: y = \begin{cases} x & x > 0 \\ a\,x & x \le 0 \end{cases}, \qquad
          \frac{\partial L}{\partial x} = g \cdot \begin{cases} 1 & x > 0 \\
          a & x \le 0 \end{cases}

In **training** the slope :math:`a` is drawn for each element, uniform on
``[lower, upper]``; in **evaluation** it is fixed at the mean ``(lower + upper) / 2``
(``leaky_relu`` with that slope). Torch's CPU kernel (``_rrelu_with_noise_train``,
measured too) draws a slope only for the elements with ``x <= 0``, zero included,
and records a slope of 1 for the others (``x > 0`` and NaN); that per-element array
is its ``noise``, and the training gradient is :math:`g \cdot \text{noise}`, so at
:math:`x = 0` it is the slope drawn there. The evaluation gradient at :math:`x = 0`
(and at NaN) is the mean slope: ``leaky_relu_backward`` tests ``x > 0``.

The noise is data, not hidden state: pass ``noise=`` (an array of the input's shape,
e.g. the one torch drew, ``harness/dropout_masks.py``) to impose it; otherwise it is
drawn from ``rng`` with :func:`rrelu_noise`. To differentiate, draw it first and hand
the same noise to the forward and to :func:`rrelu_backward`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array

__all__ = ["rrelu", "rrelu_backward", "rrelu_noise"]


def check_bounds(lower: Any, upper: Any, name: str) -> tuple[float, float]:
    """``(lower, upper)`` as floats, refused like torch when ``lower > upper``."""
    for bound, value in (("lower", lower), ("upper", upper)):
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name}: {bound} must be a number, got {value!r}")
    if not lower <= upper:
        raise RuntimeError(
            f"{name}: Lower bound should be less than or equal to the upper bound, got "
            f"lower={lower}, upper={upper}; swap them"
        )
    return float(lower), float(upper)


def rrelu_noise(
    input: np.ndarray,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Torch's ``noise`` for ``input``: a slope uniform on ``[lower, upper]`` where
    ``x <= 0``, 1 elsewhere, in the input's dtype.

    ``rng``: a Generator or a seed (``None``: fresh entropy). The slopes are drawn in
    float64 and rounded to the input's dtype, as torch rounds its double draw.
    """
    input = as_float_array(input, "rrelu_noise")
    lower, upper = check_bounds(lower, upper, "rrelu_noise")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)  # a seed or None (nn.init.resolve_rng's rule)
    slopes = rng.uniform(lower, upper, size=input.shape).astype(input.dtype)
    return np.where(input <= 0, slopes, input.dtype.type(1))


def _slope(input: np.ndarray, lower: float, upper: float, training: bool, noise: Any,
           name: str) -> np.ndarray:  # fmt: skip
    """The per-element slope the forward multiplies by (and the backward's factor)."""
    one = input.dtype.type(1)
    if not training:
        # torch rounds the double mean to the input's dtype (leaky_relu's negval)
        return np.where(input > 0, one, input.dtype.type((lower + upper) / 2))
    if noise is None:
        raise ValueError(
            f"{name}: training needs the per-element slopes: pass noise= (draw it with "
            "rrelu_noise(input, lower, upper, rng), or read torch's with "
            "harness.dropout_masks.torch_rrelu_noise)"
        )
    noise = as_float_array(noise, name, "noise")
    if noise.shape != input.shape:
        raise ValueError(
            f"{name}: noise must have the input's shape {input.shape}, got {noise.shape} "
            "(torch: noise tensor shape must match self tensor shape)"
        )
    # torch keeps its noise in the input's dtype, and writes 1 wherever x > 0 (or NaN)
    return np.where(input <= 0, noise.astype(input.dtype, copy=False), one)


def rrelu(
    input: np.ndarray,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
    *,
    noise: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Randomized leaky ReLU: :math:`y = x` for :math:`x > 0`, else :math:`a x`.

    Training: :math:`a` is ``noise`` where :math:`x \le 0` (drawn with
    :func:`rrelu_noise` from ``rng`` when ``noise`` is ``None``); evaluation:
    :math:`a = (\text{lower} + \text{upper}) / 2`. ``lower > upper`` raises, as torch.
    ``inplace`` is accepted for torch's signature; the result is always a new array.
    Shapes: any input; ``noise`` has the input's shape. Torch:
    ``torch.nn.functional.rrelu`` (``torch.rrelu_with_noise`` takes ``noise``).
    """
    input = as_float_array(input, "rrelu")
    lower, upper = check_bounds(lower, upper, "rrelu")
    if training and noise is None:
        noise = rrelu_noise(input, lower, upper, rng)
    # x * 1 is x, NaN included; -inf * 0 (lower = 0) is NaN in torch too
    with np.errstate(invalid="ignore"):
        return input * _slope(input, lower, upper, training, noise, "rrelu")


def rrelu_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
    *,
    noise: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`rrelu`: :math:`g \cdot a`, the forward's slope, element by element.

    .. math:: \frac{\partial L}{\partial x} = g \cdot \begin{cases} 1 & x > 0 \\
              a & x \le 0 \end{cases}

    Training needs the forward's ``noise`` (the slope at :math:`x = 0` is the one drawn
    there, as torch's ``noise * grad``); evaluation uses the mean slope wherever
    ``x > 0`` fails (0 and NaN included), as torch's ``leaky_relu_backward``.
    """
    grad_output = as_float_array(grad_output, "rrelu_backward", "grad_output")
    input = as_float_array(input, "rrelu_backward")
    lower, upper = check_bounds(lower, upper, "rrelu_backward")
    if grad_output.shape != input.shape:
        raise ValueError(
            f"rrelu_backward: grad_output must have the input's shape {input.shape}, got "
            f"{grad_output.shape}"
        )
    with np.errstate(invalid="ignore"):  # inf * 0 is NaN, as in torch
        return grad_output * _slope(input, lower, upper, training, noise, "rrelu_backward")
