r"""Average pooling, forward and backward (``torch.nn.functional.avg_pool1d/2d``).

Each window's sum, over a strided view of the zero-padded input
(``sliding_window_view``), divided by torch's divisor. The window geometry
(output size, ``ceil_mode``) is max pooling's, in :mod:`.pooling`; the 1-d
version is the 2-d one on a signal of height 1.

**Divisor** (torch's ``avg_pool2d`` CPU kernel), per window:
``divisor_override`` if given; else, with ``count_include_pad``, the window's
size clipped to the padded input (padding counts, the ceil-mode overhang past
the padding does not); else the number of real input elements in the window.

**Gradient**: every element of a window receives that window's
:math:`g / D`; a loop over the ``kh*kw`` kernel offsets adds offset ``(i, j)``
of all windows at once, one strided slice each.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .conv import lift_1d
from .pooling import _check_grad, _geometry, _restore, _window_padding

__all__ = ["avg_pool1d", "avg_pool1d_backward", "avg_pool2d", "avg_pool2d_backward"]


def _windows(padded, kernel, stride, dilation, out):
    """Every window of ``padded`` as a view ``(N, C, Ho, Wo, kh, kw)``."""
    span = tuple(dilation[a] * (kernel[a] - 1) + 1 for a in range(2))
    view = sliding_window_view(padded, span, axis=(2, 3))  # (N, C, .., .., span_h, span_w)
    rows, cols = (slice(0, stride[a] * (out[a] - 1) + 1, stride[a]) for a in range(2))
    return view[:, :, rows, cols, :: dilation[0], :: dilation[1]]


def _avg_divisor(size, kernel, stride, padding, out, count_include_pad, divisor_override):
    """Torch's divisor per output position, ``(Ho, Wo)`` (see the module docstring)."""
    if divisor_override is not None:
        return np.full(out, divisor_override)
    counts = []
    for a in range(2):
        start = np.arange(out[a]) * stride[a] - padding[a]
        end = np.minimum(start + kernel[a], size[a] + padding[a])  # clipped to the padding
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size[a])  # real elements only
        counts.append(end - start)
    return counts[0][:, None] * counts[1][None, :]


def _avg_pool_args(input, kernel_size, stride, padding, ceil_mode, divisor_override, nd, layer):
    if divisor_override is not None and (
        isinstance(divisor_override, bool)
        or not isinstance(divisor_override, (int, np.integer))
        or divisor_override == 0
    ):
        raise ValueError(f"{layer}: divisor_override must be a non-zero int, got "
                         f"{divisor_override!r}")  # fmt: skip
    return _geometry(input, kernel_size, stride, padding, 1, ceil_mode, nd, layer)


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, nd, layer):  # fmt: skip
    x, kernel, stride, padding, dilation, out = _avg_pool_args(
        input, kernel_size, stride, padding, ceil_mode, divisor_override, nd, layer
    )
    padded = np.pad(x, _window_padding(x.shape[2:], kernel, stride, padding, dilation, out))
    sums = _windows(padded, kernel, stride, dilation, out).sum(axis=(-2, -1))  # (N, C, Ho, Wo)
    divisor = _avg_divisor(x.shape[2:], kernel, stride, padding, out, count_include_pad,
                           divisor_override)  # fmt: skip
    return _restore(sums / divisor.astype(sums.dtype), input, nd)


def _avg_pool_backward(grad_output, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override, nd, layer):  # fmt: skip
    x, kernel, stride, padding, dilation, out = _avg_pool_args(
        input, kernel_size, stride, padding, ceil_mode, divisor_override, nd, layer
    )
    g = np.asarray(grad_output)
    _check_grad(g, (*np.shape(input)[:-nd], *out[2 - nd :]), layer)
    g = g[None] if np.ndim(input) == nd + 1 else g  # unbatched: (C, ...) -> (1, C, ...)
    g = lift_1d(g) if nd == 1 else g  # (N, C, L) -> (N, C, 1, L)
    divisor = _avg_divisor(x.shape[2:], kernel, stride, padding, out, count_include_pad,
                           divisor_override)  # fmt: skip
    share = g / divisor.astype(g.dtype)  # what each window element receives
    widths = _window_padding(x.shape[2:], kernel, stride, padding, dilation, out)
    (top, bottom), (left, right) = widths[2:]
    padded = np.zeros((*x.shape[:2], top + x.shape[2] + bottom, left + x.shape[3] + right),
                      dtype=share.dtype)  # fmt: skip
    # a loop over the kh*kw kernel offsets (not over pixels): offset (i, j) of every
    # window sits at padded[.., h*s_h + i, w*s_w + j]
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            padded[:, :, i : i + stride[0] * (out[0] - 1) + 1 : stride[0],
                   j : j + stride[1] * (out[1] - 1) + 1 : stride[1]] += share  # fmt: skip
    grad = padded[:, :, top : top + x.shape[2], left : left + x.shape[3]]  # drop the padding
    return _restore(grad, input, nd)


def avg_pool2d(
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    r"""2-d average pooling: each window's sum over its divisor.

    .. math:: y[n, c, h, w] = \frac{1}{D_{hw}} \sum_{i < k_h,\, j < k_w}
              x_{pad}[n, c, h s_h + i - p_h, w s_w + j - p_w]

    with zero padding and :math:`D_{hw}` torch's divisor (module docstring).
    Shapes: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, Ho, Wo)``.
    Torch: ``torch.nn.functional.avg_pool2d``.
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 2, "avg_pool2d")  # fmt: skip


def avg_pool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`avg_pool2d`: every element of a window gets :math:`g / D`.

    .. math:: \frac{\partial L}{\partial x_{pad}}[n, c, h s_h + i, w s_w + j]
              \mathrel{+}= \frac{g[n, c, h, w]}{D_{hw}}

    then the padding is cut away (its share of the gradient is dropped).
    """
    return _avg_pool_backward(grad_output, input, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override, 2, "avg_pool2d")  # fmt: skip


def avg_pool1d(
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    r"""1-d average pooling: :func:`avg_pool2d` on a signal of height 1.

    .. math:: y[n, c, l] = \frac{1}{D_l} \sum_{i < k} x_{pad}[n, c, l s + i - p]

    Shapes: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_o)``. Torch:
    ``torch.nn.functional.avg_pool1d`` (which has no ``divisor_override``).
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None,
                     1, "avg_pool1d")  # fmt: skip


def avg_pool1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    r"""Gradient of :func:`avg_pool1d`.

    .. math:: \frac{\partial L}{\partial x_{pad}}[n, c, l s + i] \mathrel{+}= g[n, c, l] / D_l
    """
    return _avg_pool_backward(grad_output, input, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, None, 1, "avg_pool1d")  # fmt: skip
