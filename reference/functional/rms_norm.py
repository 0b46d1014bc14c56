r"""Normalization by a root mean square: ``rms_norm`` and ``local_response_norm``.

Both divide the input by a root of a mean of squares, with no mean subtracted.
RMS norm takes the mean over the trailing ``normalized_shape`` axes of each sample,

.. math:: y = \frac{x}{\sqrt{\overline{x^2} + \epsilon}}\,\gamma,

local response norm over a window of ``size`` neighbouring channels (dim 1), raised
to the power :math:`\beta`,

.. math:: y_c = x_c \Big(k + \frac{\alpha}{n} \sum_{j \in W(c)} x_j^2\Big)^{-\beta},
          \qquad W(c) = [c - \lfloor n/2 \rfloor,\; c + \lfloor (n-1)/2 \rfloor],

the window zero-padded at both ends of the channel axis and always divided by
:math:`n` (``size``), as torch's average pool with ``count_include_pad`` does, and the
older ``CrossMapLRN2d`` (:func:`cross_map_lrn2d`), whose window torch computes otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._validate import as_float_array, check_positive_int
from .normalization import _check_layer_norm, check_grad_shape
from .rounding import statistic

__all__ = [
    "rms_norm",
    "rms_norm_backward",
    "local_response_norm",
    "local_response_norm_backward",
    "cross_map_lrn2d",
    "cross_map_lrn2d_backward",
]


# -- rms_norm ---------------------------------------------------------------------------


def default_eps(dtype: np.dtype) -> float:
    """torch's ``eps=None``: the machine epsilon of the computation (opmath) type.

    float16 (and bfloat16) inputs are computed in float32 and get float32's epsilon,
    not their own; float32 gets float32's, float64 float64's.
    """
    return float(np.finfo(np.float64 if dtype == np.float64 else np.float32).eps)


def _rms_setup(
    input: Any, normalized_shape: int | Sequence[int], weight: Any, eps: float | None, name: str
) -> tuple[np.ndarray, tuple[int, ...], np.ndarray | None, float, tuple[int, ...]]:
    """Checked ``(x, shape, weight, eps, axes)``; ``x`` in the computation dtype (float16 ->
    float32), ``weight`` cast to it, ``eps`` resolved, ``axes`` the normalized ones."""
    input, shape, weight, _ = _check_layer_norm(input, normalized_shape, weight, None, name)
    compute = np.float32 if input.dtype == np.float16 else input.dtype
    x = input.astype(compute, copy=False)
    if weight is not None:
        weight = weight.astype(compute, copy=False)  # torch: the output takes the input's dtype
    eps = default_eps(input.dtype) if eps is None else float(eps)
    return x, shape, weight, eps, tuple(range(input.ndim - len(shape), input.ndim))


def _normalize_rms(x: np.ndarray, axes: tuple[int, ...], eps: float) -> tuple[np.ndarray, ...]:
    r"""``(x_hat, inv_rms)``: :math:`\hat x = x / \sqrt{\overline{x^2} + \epsilon}`.

    The mean of squares is summed in float64, rounded once to ``x``'s dtype and passed
    through :func:`.rounding.statistic` (an error model may sample its rounding).
    """
    squares = x * x
    mean_square = squares.mean(axis=axes, keepdims=True, dtype=np.float64).astype(x.dtype)
    mean_square = statistic(mean_square, squares, axes)
    inv_rms = 1 / np.sqrt(mean_square + eps)
    return x * inv_rms, inv_rms


def rms_norm(
    input: np.ndarray,
    normalized_shape: int | Sequence[int],
    weight: np.ndarray | None = None,
    eps: float | None = None,
) -> np.ndarray:
    r"""Divide each sample by the root mean square of its trailing ``normalized_shape`` dims.

    .. math:: y = \frac{x}{\sqrt{\frac1m \sum x^2 + \epsilon}}\,\gamma

    (:math:`m` elements per sample; :math:`\gamma` elementwise, of shape
    ``normalized_shape``). ``eps=None`` is torch's default: ``finfo(float32).eps`` for
    float16 and float32 inputs, ``finfo(float64).eps`` for float64 (:func:`default_eps`).
    A float16 input is computed in float32; the output has the input's dtype.

    Shapes: input ``(*, *normalized_shape)``, weight ``normalized_shape`` -> the input's.
    Torch: ``torch.nn.functional.rms_norm``.
    """
    x, _, weight, eps, axes = _rms_setup(input, normalized_shape, weight, eps, "rms_norm")
    if x.size == 0:
        return np.zeros_like(input)
    output = _normalize_rms(x, axes, eps)[0]
    if weight is not None:
        output = output * weight
    return output.astype(input.dtype, copy=False)


def rms_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    normalized_shape: int | Sequence[int],
    weight: np.ndarray | None = None,
    eps: float | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`rms_norm`: ``(grad_input, grad_weight)``.

    With :math:`r = (\overline{x^2} + \epsilon)^{-1/2}`, :math:`\hat x = x r` and
    :math:`\hat g = \gamma g`:

    .. math::
        \frac{\partial L}{\partial x} = r\,\big(\hat g - \hat x\,\overline{\hat g \hat x}\big),
        \qquad
        \frac{\partial L}{\partial \gamma} = \sum_{\text{samples}} g \hat x

    (bar: the mean over the normalized axes; the subtracted term is the path through
    :math:`r`, as :math:`\partial r / \partial x_j = -r^3 x_j / m`). ``grad_weight`` is
    ``None`` without a weight, else in the weight's dtype.
    """
    x, shape, w, eps, axes = _rms_setup(input, normalized_shape, weight, eps, "rms_norm_backward")
    grad_output = check_grad_shape(grad_output, x, "rms_norm_backward")
    g = grad_output.astype(x.dtype, copy=False)
    leading = tuple(range(x.ndim - len(shape)))
    if x.size == 0:
        x_hat, inv_rms = np.zeros_like(x), np.zeros_like(x)
    else:
        x_hat, inv_rms = _normalize_rms(x, axes, eps)
    grad_weight = None
    if w is not None:
        grad_weight = (g * x_hat).sum(axis=leading).astype(np.asarray(weight).dtype)
        g = g * w
    if x.size == 0:
        return np.zeros_like(input), grad_weight
    terms = g * x_hat
    mean_terms = statistic(terms.mean(axis=axes, keepdims=True), terms, axes)
    grad_input = inv_rms * (g - x_hat * mean_terms)
    return grad_input.astype(input.dtype, copy=False), grad_weight


# -- local_response_norm ----------------------------------------------------------------


def _check_lrn(input: Any, size: Any, name: str) -> tuple[np.ndarray, int]:
    input = as_float_array(input, name)
    if input.ndim < 3:
        raise ValueError(
            f"{name}: expected input of shape (N, C, *) with 3 or more dimensions, got "
            f"{input.shape}; torch has no unbatched form: add a batch dimension with input[None]"
        )
    return input, check_positive_int(size, name, "size (the channel window)")


def _channel_window_sum(a: np.ndarray, before: int, after: int, size: int) -> np.ndarray:
    """Sums of ``size`` consecutive channels (dim 1) of ``a``, zero-padded by ``before`` and
    ``after`` channels (``before + after = size - 1``, so the channel count is kept)."""
    pad = [(0, 0)] * a.ndim
    pad[1] = (before, after)
    padded = np.pad(a, pad)  # (N, C, *) -> (N, C + size - 1, *)
    windows = sliding_window_view(padded, size, axis=1)  # (N, C, *, size), a view
    return windows.sum(axis=-1)  # (N, C, *)


def _lrn_base(x: np.ndarray, size: int, alpha: float, k: float) -> np.ndarray:
    r""":math:`d_c = k + \frac{\alpha}{n}\sum_{j \in W(c)} x_j^2`, the window torch pads as
    ``(size // 2, (size - 1) // 2)``."""
    window_mean = _channel_window_sum(x * x, size // 2, (size - 1) // 2, size) / size
    return window_mean * alpha + k


def local_response_norm(
    input: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> np.ndarray:
    r"""Divide each value by a power of the mean square over ``size`` neighbouring channels.

    .. math:: y_c = \frac{x_c}{d_c^{\,\beta}}, \qquad
              d_c = k + \frac{\alpha}{n} \sum_{j = c - \lfloor n/2 \rfloor}^{c + \lfloor (n-1)/2
              \rfloor} x_j^2

    (:math:`n` = ``size``; channels outside ``[0, C)`` count as zeros, and the sum is
    divided by :math:`n` even at the edges, as torch's zero-padded average pool does).

    Shapes: input ``(N, C, *)`` with at least one trailing dim (3-d, 4-d, 5-d...) -> the
    input's. Torch: ``torch.nn.functional.local_response_norm``.
    """
    input, size = _check_lrn(input, size, "local_response_norm")
    if input.size == 0:
        return input.copy()
    return input / _lrn_base(input, size, alpha, k) ** beta


def local_response_norm_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1.0,
) -> np.ndarray:
    r"""Gradient of :func:`local_response_norm` wrt its input.

    Channel :math:`i` enters its own output and, through :math:`d_c`, every output
    :math:`c` whose window holds it, :math:`c \in [i - \lfloor (n-1)/2 \rfloor,
    i + \lfloor n/2 \rfloor]` (the transposed window):

    .. math:: \frac{\partial L}{\partial x_i} = g_i\, d_i^{-\beta}
              - \frac{2\alpha\beta}{n}\, x_i \sum_{c\,:\, i \in W(c)} g_c\, x_c\, d_c^{-\beta-1}
    """
    input, size = _check_lrn(input, size, "local_response_norm_backward")
    grad_output = check_grad_shape(grad_output, input, "local_response_norm_backward")
    if input.size == 0:
        return np.zeros_like(input)
    base = _lrn_base(input, size, alpha, k)  # d, (N, C, *)
    scale = base**-beta  # d^-beta
    through_base = grad_output * input * scale / base  # g_c x_c d_c^(-beta-1)
    gathered = _channel_window_sum(through_base, (size - 1) // 2, size // 2, size)
    return grad_output * scale - (2 * alpha * beta / size) * input * gathered


# -- cross_map_lrn2d (torch.nn.CrossMapLRN2d) -------------------------------------------


def _check_cross_map(input: Any, size: Any, name: str) -> tuple[np.ndarray, int]:
    input = as_float_array(input, name)
    if input.ndim != 4:
        raise ValueError(f"{name}: expected a 4-D input (N, C, H, W), got shape {input.shape}")
    if input.shape[1] == 0:
        raise ValueError(f"{name}: expected at least one channel, got input of shape {input.shape}")
    return input, check_positive_int(size, name, "size (the channel window)")


def _cross_map_base(x: np.ndarray, size: int, alpha: float, k: float) -> np.ndarray:
    r"""torch's :math:`d_c = k + \frac{\alpha}{n}\big(\sum_{|j - c| < P} x_j^2
    + [c \ge P]\,x_0^2\big)`, :math:`P = \lfloor (n-1)/2 \rfloor + 1`."""
    reach = (size - 1) // 2 + 1  # torch's pre_pad, P
    squares = x * x
    sums = _channel_window_sum(squares, reach - 1, reach - 1, 2 * reach - 1)
    sums[:, reach:] += squares[:, :1]  # torch's running sum never takes channel 0 out
    return sums * (alpha / size) + k


def cross_map_lrn2d(
    input: np.ndarray, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1
) -> np.ndarray:
    r"""``torch.nn.CrossMapLRN2d``'s forward, as torch computes it.

    .. math:: y_c = x_c\, d_c^{-\beta}, \qquad d_c = k + \frac{\alpha}{n}
              \Big(\sum_{j = c - P + 1}^{c + P - 1} x_j^2 + [c \ge P]\; x_0^2\Big),
              \qquad P = \lfloor (n - 1)/2 \rfloor + 1

    (channels outside ``[0, C)`` count as zeros). Torch builds :math:`d` as a running sum
    over the channels (``torch/nn/modules/_functions.py``): it adds channel
    :math:`c + P - 1` and takes out channel :math:`c - P` only when :math:`c > P`, so
    channel 0, due out at :math:`c = P`, stays in every later window. Unlike
    :func:`local_response_norm`, an even ``size`` spans :math:`n - 1` channels (still
    divided by :math:`n`). Both quirks are torch's forward, kept here as they are.

    Shapes: input ``(N, C, H, W)`` -> the input's.
    """
    input, size = _check_cross_map(input, size, "cross_map_lrn2d")
    if input.size == 0:
        return input.copy()
    return input * _cross_map_base(input, size, alpha, k) ** -beta


def cross_map_lrn2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1,
) -> np.ndarray:
    r"""Gradient of :func:`cross_map_lrn2d` (the derivative of torch's forward).

    With :math:`r_c = g_c\, x_c\, d_c^{-\beta-1}` and :math:`W(c)` the channels in
    :math:`d_c`:

    .. math:: \frac{\partial L}{\partial x_i} = g_i\, d_i^{-\beta}
              - \frac{2\alpha\beta}{n}\, x_i \sum_{c\,:\,i \in W(c)} r_c,

    the symmetric window :math:`|c - i| < P`, and for :math:`i = 0` also every
    :math:`c \ge P`. Torch's hand-written backward is not this one: it gathers
    :math:`r` over :math:`[i - \lceil n/2 \rceil,\ i + \lfloor n/2 \rfloor - 1]`
    (:func:`cross_map_lrn2d_torch_backward`), a window one channel off the forward's and
    blind to channel 0's extra term, and it raises for ``size=1``.
    """
    input, size = _check_cross_map(input, size, "cross_map_lrn2d_backward")
    grad_output = check_grad_shape(grad_output, input, "cross_map_lrn2d_backward")
    if input.size == 0:
        return np.zeros_like(input)
    reach = (size - 1) // 2 + 1
    base = _cross_map_base(input, size, alpha, k)
    scale = base**-beta
    through_base = grad_output * input * scale / base  # r_c
    gathered = _channel_window_sum(through_base, reach - 1, reach - 1, 2 * reach - 1)
    gathered[:, 0] += through_base[:, reach:].sum(axis=1)  # channel 0 is in every d_c, c >= P
    return grad_output * scale - (2 * alpha * beta / size) * input * gathered


def cross_map_lrn2d_torch_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    size: int,
    alpha: float = 1e-4,
    beta: float = 0.75,
    k: float = 1,
) -> np.ndarray:
    r"""What torch's ``CrossMapLRN2d.backward`` returns, which is *not* the gradient of its
    forward (kept to document torch, not exported):

    .. math:: g_i\, d_i^{-\beta} - \frac{2\alpha\beta}{n}\, x_i
              \sum_{c = i - \lceil n/2 \rceil}^{i + \lfloor n/2 \rfloor - 1} \frac{g_c\, y_c}{d_c}

    (a port of Lua torch's 1-based ``narrow(1, inversePrePad, C)`` kept the start
    unshifted). It agrees with :func:`cross_map_lrn2d_backward` only where both windows
    cover every channel. ``size=1`` raises, as torch's does.
    """
    input, size = _check_cross_map(input, size, "cross_map_lrn2d_torch_backward")
    grad_output = check_grad_shape(grad_output, input, "cross_map_lrn2d_torch_backward")
    if size == 1:
        raise RuntimeError("cross_map_lrn2d_torch_backward: torch's backward fails for size=1")
    base = _cross_map_base(input, size, alpha, k)
    scale = base**-beta
    ratio = grad_output * input * scale / base  # g_c y_c / d_c
    gathered = _channel_window_sum(ratio, (size + 1) // 2, size // 2 - 1, size)
    return grad_output * scale - (2 * alpha * beta / size) * input * gathered
