r"""Average pooling, forward and backward (``torch.nn.functional.avg_pool1d/2d/3d``).

Each window's sum over torch's divisor. The window geometry (output size,
``ceil_mode``) is max pooling's, in :mod:`.pooling`, and so is the layout: every
rank runs as 3-d (a 2-d image has depth 1, a 1-d signal depth and height 1).

**Divisor** (torch's ``avg_pool2d``/``avg_pool3d`` CPU kernels), per window:
``divisor_override`` if given; else, with ``count_include_pad``, the window's
size clipped to the padded input (padding counts, the ceil-mode overhang past
the padding does not); else the number of real input elements in the window.

**Forward and gradient** loop over the kernel offsets (not over pixels): offset
``(i, j, l)`` of every window is one strided slice of the zero-padded input, so
the forward adds those slices (in torch's scan order) and the backward adds each
window's :math:`g / D` back into them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .pooling import SPATIAL, _check_grad, _geometry, _restore, _window_padding, kernel_offsets

__all__ = [
    "avg_pool1d", "avg_pool1d_backward", "avg_pool2d", "avg_pool2d_backward",
    "avg_pool3d", "avg_pool3d_backward",
]  # fmt: skip


def _avg_divisor(size, kernel, stride, padding, out, count_include_pad, divisor_override):
    """Torch's divisor per output position, ``(Do, Ho, Wo)`` (see the module docstring)."""
    if divisor_override is not None:
        return np.full(out, divisor_override)
    counts = []
    for a in range(SPATIAL):
        start = np.arange(out[a]) * stride[a] - padding[a]
        end = np.minimum(start + kernel[a], size[a] + padding[a])  # clipped to the padding
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size[a])  # real elements only
        counts.append(end - start)
    return counts[0][:, None, None] * counts[1][None, :, None] * counts[2][None, None, :]


def _avg_pool_args(input, kernel_size, stride, padding, ceil_mode, divisor_override, nd, layer):
    if divisor_override is not None and (
        isinstance(divisor_override, bool)
        or not isinstance(divisor_override, (int, np.integer))
        or divisor_override == 0
    ):
        raise ValueError(f"{layer}: divisor_override must be a non-zero int, got "
                         f"{divisor_override!r}")  # fmt: skip
    geometry = _geometry(input, kernel_size, stride, padding, 1, ceil_mode, nd, layer)
    x, kernel = geometry[:2]
    if nd == 3 and any(n < k for n, k in zip(x.shape[2:], kernel)):
        # torch's avg_pool3d (only the 3-d one) checks the input itself, padding or not
        raise ValueError(
            f"{layer}: input of shape {np.shape(input)} is smaller than kernel_size "
            f"{kernel} in a spatial dim; torch's 3-d average needs every input dim at least "
            "the kernel's, even with padding or ceil_mode: use a smaller kernel"
        )
    return geometry


def _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override, nd, layer):  # fmt: skip
    x, kernel, stride, padding, dilation, out = _avg_pool_args(
        input, kernel_size, stride, padding, ceil_mode, divisor_override, nd, layer
    )
    padded = np.pad(x, _window_padding(x.shape[2:], kernel, stride, padding, dilation, out))
    sums = np.zeros((*x.shape[:2], *out), dtype=x.dtype)  # (N, C, Do, Ho, Wo)
    for _, window in kernel_offsets(kernel, stride, dilation, out):
        sums += padded[(Ellipsis,) + tuple(window)]  # this offset of every window
    divisor = _avg_divisor(x.shape[2:], kernel, stride, padding, out, count_include_pad,
                           divisor_override)  # fmt: skip
    return _restore(sums / divisor.astype(sums.dtype), input, nd)


def _avg_pool_backward(grad_output, input, kernel_size, stride, padding, ceil_mode,
                       count_include_pad, divisor_override, nd, layer):  # fmt: skip
    x, kernel, stride, padding, dilation, out = _avg_pool_args(
        input, kernel_size, stride, padding, ceil_mode, divisor_override, nd, layer
    )
    g = np.asarray(grad_output)
    _check_grad(g, (*np.shape(input)[:-nd], *out[SPATIAL - nd :]), layer)
    g = g.reshape(*x.shape[:2], *out)  # caller's layout -> (N, C, Do, Ho, Wo)
    divisor = _avg_divisor(x.shape[2:], kernel, stride, padding, out, count_include_pad,
                           divisor_override)  # fmt: skip
    share = g / divisor.astype(g.dtype)  # what each window element receives
    widths = _window_padding(x.shape[2:], kernel, stride, padding, dilation, out)
    padded = np.zeros([before + n + after for n, (before, after) in zip(x.shape, widths)],
                      dtype=share.dtype)  # fmt: skip
    # offset (i, j, l) of every window sits at padded[.., t*s_t + i, h*s_h + j, w*s_w + l]
    for _, window in kernel_offsets(kernel, stride, dilation, out):
        padded[(Ellipsis,) + tuple(window)] += share
    inner = tuple(slice(before, before + n) for n, (before, _) in zip(x.shape, widths))
    return _restore(padded[inner], input, nd)  # the padding's share is dropped


def avg_pool3d(
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    r"""3-d average pooling: each window's sum over its divisor.

    .. math:: y[n, c, t, h, w] = \frac{1}{D_{thw}} \sum_{i < k_t,\, j < k_h,\, l < k_w}
              x_{pad}[n, c, t s_t + i - p_t, h s_h + j - p_h, w s_w + l - p_w]

    with zero padding and :math:`D_{thw}` torch's divisor (module docstring).
    Shapes: ``(N, C, D, H, W)`` or ``(C, D, H, W)`` -> ``(N, C, Do, Ho, Wo)``.
    Torch: ``torch.nn.functional.avg_pool3d``.
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override, 3, "avg_pool3d")  # fmt: skip


def avg_pool3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`avg_pool3d`: every element of a window gets :math:`g / D`.

    .. math:: \frac{\partial L}{\partial x_{pad}}[n, c, t s_t + i, h s_h + j, w s_w + l]
              \mathrel{+}= \frac{g[n, c, t, h, w]}{D_{thw}}

    then the padding is cut away (its share of the gradient is dropped).
    """
    return _avg_pool_backward(grad_output, input, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override, 3, "avg_pool3d")  # fmt: skip


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
    r"""1-d average pooling: the 3-d pooling on a signal of unit depth and height.

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
