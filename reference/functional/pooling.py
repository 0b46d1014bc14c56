r"""Max pooling, forward and backward (``torch.nn.functional.max_pool1d/2d``).

A window slides over each channel of each sample and keeps its largest value.
It is computed as torch's scan (below), run over the kernel offsets with each
offset of every window taken at once as one strided slice of the padded input.
The 1-d version is the 2-d one on a signal of height 1. The window geometry
here is shared with average pooling (:mod:`.avg_pooling`).

**Output size** (torch's ``pooling_output_shape``), per spatial dim, with
:math:`e = d(k - 1) + 1` the window's extent:

.. math:: n_{out} = \left\lfloor \frac{n + 2p - e}{s} \right\rfloor + 1
          \quad\text{or, with ceil\_mode,}\quad
          \left\lceil \frac{n + 2p - e}{s} \right\rceil + 1

and with ``ceil_mode`` a last window that would *start* in the right padding
is dropped. A ceil-mode window may run past the right padding; the positions
beyond it are ignored (max) or not counted (average).

**Ties** follow torch's CPU kernel (verified by running it): the window is
scanned row by row and a value replaces the running maximum when it is
*greater*, or when it is NaN. So among equal maxima the first in scan order
wins, a window holding NaN returns NaN and points at its *last* NaN, and a
window whose values are all ``-inf`` points at its first in-bounds element. The
gradient goes to that one element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array
from .conv import _positive, _tuple, lift_1d

__all__ = ["max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward"]


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Torch's ``pooling_output_shape`` for one dim (see the module docstring)."""
    extent = d * (k - 1) + 1
    out = (size + 2 * p - extent + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window would start in the right padding
    return out


def _geometry(input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer):
    """Validate; return the (N, C, H, W) input, 2-d kernel/stride/padding/dilation, out size."""
    input = as_float_array(input, layer)
    if input.ndim not in (nd + 1, nd + 2) or 0 in input.shape[-nd - 1 :]:
        raise ValueError(
            f"{layer}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"non-empty except for the batch, got shape {input.shape}"
        )
    kernel = _positive(kernel_size, nd, "kernel_size", layer)
    stride = kernel if stride is None else _positive(stride, nd, "stride", layer)
    dilation = _positive(dilation, nd, "dilation", layer)
    padding = _tuple(padding, nd, "padding", layer)
    if min(padding) < 0 or any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{layer}: padding must be non-negative and at most half the kernel size, got "
            f"padding={padding} for kernel_size={kernel}"
        )
    size = input.shape[-nd:]
    out = tuple(pool_output_size(size[a], kernel[a], stride[a], padding[a], dilation[a], ceil_mode)
                for a in range(nd))  # fmt: skip
    if min(out) < 1:
        raise ValueError(
            f"{layer}: input of shape {input.shape} gives output size {out}, which is too small "
            f"(kernel_size={kernel}, stride={stride}, padding={padding}, dilation={dilation})"
        )
    x = input[None] if input.ndim == nd + 1 else input  # (C, ...) -> (1, C, ...)
    if nd == 1:
        x = lift_1d(x)
        kernel, stride, padding, dilation, out = (
            (1, *kernel),
            (1, *stride),
            (0, *padding),
            (1, *dilation),
            (1, *out),
        )
    return x, kernel, stride, padding, dilation, out


def _restore(y: np.ndarray, input: np.ndarray, nd: int) -> np.ndarray:
    """Back to the caller's layout: drop the unit height of 1-d, then a batch axis we added."""
    if nd == 1:
        y = y[:, :, 0]  # (N, C, 1, L) -> (N, C, L)
    return y[0] if input.ndim == nd + 1 else y


def _window_padding(size, kernel, stride, padding, dilation, out):
    """``(before, after)`` per dim so that every one of the ``out`` windows fits.

    The bottom/right side gets at least ``padding``, more when a ceil-mode window
    runs past it.
    """
    widths = [(0, 0), (0, 0)]
    for a in range(2):
        extent = dilation[a] * (kernel[a] - 1) + 1
        needed = (out[a] - 1) * stride[a] + extent - size[a] - padding[a]
        widths.append((padding[a], max(padding[a], needed)))
    return widths


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer):
    """Output and torch's indices (flat into each input plane), both in the caller's layout.

    Torch's scan, vectorized over every window at once: a loop over the ``kh*kw``
    kernel offsets (not over pixels) keeps a running maximum and its index; offset
    ``(i, j)`` of all windows is one strided slice of the padded input.
    """
    x, kernel, stride, padding, dilation, out = _geometry(
        input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer
    )
    n, c, _, width = x.shape
    widths = _window_padding(x.shape[2:], kernel, stride, padding, dilation, out)
    # -inf padding never replaces the running maximum (the comparison is strict),
    # so it acts as if the scan skipped it, as torch's does
    padded = np.pad(x, widths, constant_values=-np.inf) if any(map(any, widths)) else x
    kh, kw = kernel
    (sh, sw), (dh, dw) = stride, dilation
    starts = [np.arange(out[a]) * stride[a] - padding[a] for a in range(2)]  # window corners

    def plane_index(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Torch's index ``h * W + w`` for one row per output row, one column per column."""
        return rows[:, None] * width + cols[None, :]  # (Ho, Wo)

    # Torch's scan starts at the first offset past the top/left padding,
    # ceil(overlap / dilation); a window holding only -inf (or only padding, which
    # dilation allows) keeps pointing there, even when that lies past the input.
    first = [starts[a] - (np.minimum(starts[a], 0) // dilation[a]) * dilation[a]
             for a in range(2)]  # fmt: skip
    indices = np.broadcast_to(plane_index(*first), (n, c, *out))
    best = np.full((n, c, *out), -np.inf, dtype=x.dtype)  # the running maximum
    has_nan = bool(np.isnan(x).any())  # one pass; the NaN rule below only when needed
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (out[0] - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (out[1] - 1) + 1, sw)
            value = padded[:, :, rows, cols]  # offset (i, j) of every window: (N, C, Ho, Wo)
            # torch's rule: replace when greater (ties keep the first) or when NaN
            # (so a NaN always wins, and the last NaN in scan order is kept)
            better = value > best
            if has_nan:
                better |= np.isnan(value)
            indices = np.where(better, plane_index(starts[0] + i * dh, starts[1] + j * dw), indices)
            np.maximum(best, value, out=best)  # NaN-propagating: the same values as the rule
    return _restore(best, input, nd), _restore(indices, input, nd)


def scatter_to_plane(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple, plane: int
) -> np.ndarray:
    """Add each output gradient at its flat ``index`` into its (sample, channel) plane.

    ``np.bincount`` does the scatter-add in one vectorized call; it sums in float64
    (wider than float32 inputs, which only removes rounding), then the result is
    cast back to the gradient's dtype.
    """
    g = np.asarray(grad_output)
    planes = g.size // max(indices.shape[-1] * indices.shape[-2], 1)
    lead = np.arange(planes).reshape(*g.shape[:-2], 1, 1) * plane  # offset of each plane
    # an index outside the plane marks a window that held only padding: its maximum
    # is the -inf padding, which has no input element to send a gradient to
    inside = (indices >= 0) & (indices < plane)
    flat = np.where(inside, lead + indices, 0)
    total = np.bincount(flat.ravel(), weights=np.where(inside, g, 0).ravel(),
                        minlength=planes * plane)  # fmt: skip
    return total.astype(g.dtype).reshape(input_shape)


def _check_grad(grad_output, expected, layer):
    if np.shape(grad_output) != tuple(expected):
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {tuple(expected)}, "
            f"got {np.shape(grad_output)}"
        )


def _max_pool_backward(grad_output, input, kernel_size, stride, padding, dilation, ceil_mode,
                       indices, nd, layer):  # fmt: skip
    if indices is None:
        _, indices = _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer)
    indices = np.asarray(indices)
    _check_grad(grad_output, indices.shape, layer)
    input = np.asarray(input)
    plane = int(np.prod(input.shape[-nd:]))
    g = np.asarray(grad_output)
    if input.ndim == nd + 1:
        g, indices = g[None], indices[None]  # unbatched: (C, ...) -> (1, C, ...)
    if nd == 1:
        g, indices = lift_1d(g), lift_1d(indices)  # (N, C, L) -> (N, C, 1, L)
    return scatter_to_plane(g, indices, input.shape, plane)


def max_pool2d(
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    r"""2-d max pooling: the largest value in each window.

    .. math:: y[n, c, h, w] = \max_{i < k_h,\, j < k_w}
              x_{pad}[n, c, h s_h + i d_h - p_h, w s_w + j d_w - p_w]

    padding is :math:`-\infty` (it never wins). Shapes: ``(N, C, H, W)`` or
    ``(C, H, W)`` -> ``(N, C, Ho, Wo)``; ``stride`` defaults to ``kernel_size``.
    With ``return_indices`` also returns where each maximum came from, as a flat
    index ``h * W + w`` into its input plane (int64). Ties: see the module doc.
    Torch: ``torch.nn.functional.max_pool2d``.
    """
    output, indices = _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, 2,
                                "max_pool2d")  # fmt: skip
    return (output, indices) if return_indices else output


def max_pool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`max_pool2d`: each window's gradient goes to its maximum.

    .. math:: \frac{\partial L}{\partial x[n, c, u]} =
              \sum_{(h, w)\,:\,\text{index}[n, c, h, w] = u} g[n, c, h, w]

    (overlapping windows may send several). ``indices`` are the forward's; when
    not given they are recomputed from ``input``.

    A dilated window can hold padding only (e.g. ``kernel_size=2, dilation=3,
    padding=1`` over a length-2 input): its output is ``-inf`` and its index, as
    torch computes it, points past the input. Its gradient is dropped here (the
    maximum is padding). Torch 2.x on CPU adds it at that flat offset instead,
    i.e. into the *next channel's* element, or nowhere for the last channel.
    """
    return _max_pool_backward(grad_output, input, kernel_size, stride, padding, dilation,
                              ceil_mode, indices, 2, "max_pool2d")  # fmt: skip


def max_pool1d(
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    r"""1-d max pooling: :math:`y[n, c, l] = \max_{i < k} x_{pad}[n, c, l s + i d - p]`.

    Shapes: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_o)``; indices are positions in
    ``L``. Torch: ``torch.nn.functional.max_pool1d``.
    """
    output, indices = _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, 1,
                                "max_pool1d")  # fmt: skip
    return (output, indices) if return_indices else output


def max_pool1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`max_pool1d`: each window's gradient goes to its maximum.

    .. math:: \frac{\partial L}{\partial x[n, c, u]} = \sum_{l\,:\,\text{index}[n, c, l] = u}
              g[n, c, l]
    """
    return _max_pool_backward(grad_output, input, kernel_size, stride, padding, dilation,
                              ceil_mode, indices, 1, "max_pool1d")  # fmt: skip
