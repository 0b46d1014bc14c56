r"""Max pooling, forward and backward (``torch.nn.functional.max_pool1d/2d/3d``).

A window slides over each channel of each sample and keeps its largest value.
It is computed as torch's scan (below), run over the kernel offsets with each
offset of every window taken at once as one strided slice of the padded input.
Every rank is computed as 3-d: a 2-d image is a volume of depth 1 and a 1-d
signal one of depth and height 1 (:func:`lift_to_3d`). The window geometry
here is shared with average and LP pooling (:mod:`.avg_pooling`, :mod:`.lp_pooling`).

**Output size** (torch's ``pooling_output_shape``), per spatial dim, with
:math:`e = d(k - 1) + 1` the window's extent:

.. math:: n_{out} = \left\lfloor \frac{n + 2p - e}{s} \right\rfloor + 1
          \quad\text{or, with ceil\_mode,}\quad
          \left\lceil \frac{n + 2p - e}{s} \right\rceil + 1

and with ``ceil_mode`` a last window that would *start* in the right padding
is dropped. A ceil-mode window may run past the right padding; the positions
beyond it are ignored (max) or not counted (average).

**Ties** follow torch's CPU kernel (verified by running it, 1-d to 3-d): the
window is scanned depth, then row, then column, and a value replaces the running
maximum when it is *greater*, or when it is NaN. So among equal maxima the first
in scan order wins, a window holding NaN returns NaN and points at its *last*
NaN, and a window whose values are all ``-inf`` points at its first in-bounds
element. The gradient goes to that one element. Indices are flat into the input
plane: ``l``, ``h * W + w``, ``(d * H + h) * W + w``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validate import as_float_array
from .conv import _positive, _tuple

__all__ = [
    "max_pool1d", "max_pool1d_backward", "max_pool2d", "max_pool2d_backward",
    "max_pool3d", "max_pool3d_backward",
]  # fmt: skip

SPATIAL = 3  # every pooling here runs on (N, C, D, H, W)


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Torch's ``pooling_output_shape`` for one dim (see the module docstring)."""
    extent = d * (k - 1) + 1
    out = (size + 2 * p - extent + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1  # the last window would start in the right padding
    return out


def lift_to_3d(x: np.ndarray, nd: int) -> np.ndarray:
    """``(N, C, *spatial)`` with ``nd`` spatial dims -> ``(N, C, D, H, W)``, unit dims in front.

    ``(N, C, L) -> (N, C, 1, 1, L)``, ``(N, C, H, W) -> (N, C, 1, H, W)``; a view.
    """
    return x.reshape(*x.shape[:2], *(1,) * (SPATIAL - nd), *x.shape[2:])


def drop_to_nd(y: np.ndarray, nd: int) -> np.ndarray:
    """Undo :func:`lift_to_3d`: drop the unit dims in front.

    ``(N, C, 1, 1, L) -> (N, C, L)``, ``(N, C, 1, H, W) -> (N, C, H, W)``; a view.
    """
    return y.reshape(*y.shape[:2], *y.shape[2 + SPATIAL - nd :])


def pad_front(values: tuple, nd: int, fill: int) -> tuple:
    """An ``nd``-tuple as a 3-tuple, ``fill`` (the dim's neutral value) in front."""
    return (fill,) * (SPATIAL - nd) + tuple(values)


def check_input(input: Any, nd: int, layer: str) -> np.ndarray:
    """A floating ``(C, *spatial)`` or ``(N, C, *spatial)`` array, empty only in the batch."""
    input = as_float_array(input, layer)
    if input.ndim not in (nd + 1, nd + 2) or 0 in input.shape[-nd - 1 :]:
        raise ValueError(
            f"{layer}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"non-empty except for the batch, got shape {input.shape}"
        )
    return input


def _geometry(input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer):
    """Validate; return the (N, C, D, H, W) input and 3-d kernel/stride/padding/dilation/out."""
    input = check_input(input, nd, layer)
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
    kernel, stride, dilation, out = (pad_front(v, nd, 1) for v in (kernel, stride, dilation, out))
    return lift_to_3d(x, nd), kernel, stride, pad_front(padding, nd, 0), dilation, out


def _restore(y: np.ndarray, input: np.ndarray, nd: int) -> np.ndarray:
    """Back to the caller's layout: drop the unit dims of 1-d/2-d, then a batch axis we added."""
    y = drop_to_nd(y, nd)
    return y[0] if np.ndim(input) == nd + 1 else y


def _window_padding(size, kernel, stride, padding, dilation, out):
    """``(before, after)`` per dim of ``(N, C, D, H, W)`` so that every window fits.

    The far side gets at least ``padding``, more when a ceil-mode window runs past it.
    """
    widths = [(0, 0), (0, 0)]
    for a in range(SPATIAL):
        extent = dilation[a] * (kernel[a] - 1) + 1
        needed = (out[a] - 1) * stride[a] + extent - size[a] - padding[a]
        widths.append((padding[a], max(padding[a], needed)))
    return widths


def kernel_offsets(kernel, stride, dilation, out) -> Iterator[tuple[tuple, tuple]]:
    """Each kernel offset ``(i, j, l)`` in scan order, with the slices of the padded input
    that hold that offset of every window: ``padded[..., slices]`` is ``(N, C, Do, Ho, Wo)``."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        yield (
            offset,
            tuple(
                slice(o * d, o * d + s * (n - 1) + 1, s)
                for o, d, s, n in zip(offset, dilation, stride, out)
            ),
        )


def _plane_index(coords: list[np.ndarray], size: tuple) -> np.ndarray:
    """Torch's flat index ``(d * H + h) * W + w`` for every (depth, row, column) triple."""
    d, h, w = coords
    return (d[:, None, None] * size[1] + h[None, :, None]) * size[2] + w[None, None, :]


def _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer):
    """Output and torch's indices (flat into each input plane), both in the caller's layout.

    Torch's scan, vectorized over every window at once: a loop over the kernel
    offsets (not over pixels) keeps a running maximum and its index; offset
    ``(i, j, l)`` of all windows is one strided slice of the padded input.
    """
    x, kernel, stride, padding, dilation, out = _geometry(
        input, kernel_size, stride, padding, dilation, ceil_mode, nd, layer
    )
    n, c, *size = x.shape
    widths = _window_padding(size, kernel, stride, padding, dilation, out)
    # -inf padding never replaces the running maximum (the comparison is strict),
    # so it acts as if the scan skipped it, as torch's does
    padded = np.pad(x, widths, constant_values=-np.inf) if any(map(any, widths)) else x
    starts = [np.arange(out[a]) * stride[a] - padding[a] for a in range(SPATIAL)]  # corners
    # Torch's scan starts at the first offset past the front padding,
    # ceil(overlap / dilation); a window holding only -inf (or only padding, which
    # dilation allows) keeps pointing there, even when that lies past the input.
    first = [starts[a] - (np.minimum(starts[a], 0) // dilation[a]) * dilation[a]
             for a in range(SPATIAL)]  # fmt: skip
    indices = np.broadcast_to(_plane_index(first, size), (n, c, *out))
    best = np.full((n, c, *out), -np.inf, dtype=x.dtype)  # the running maximum
    has_nan = bool(np.isnan(x).any())  # one pass; the NaN rule below only when needed
    for offset, window in kernel_offsets(kernel, stride, dilation, out):
        value = padded[
            (Ellipsis,) + tuple(window)
        ]  # this offset of every window: (N, C, Do, Ho, Wo)
        # torch's rule: replace when greater (ties keep the first) or when NaN
        # (so a NaN always wins, and the last NaN in scan order is kept)
        better = value > best
        if has_nan:
            better |= np.isnan(value)
        taps = [starts[a] + offset[a] * dilation[a] for a in range(SPATIAL)]
        indices = np.where(better, _plane_index(taps, size), indices)
        np.maximum(best, value, out=best)  # NaN-propagating: the same values as the rule
    return _restore(best, input, nd), _restore(indices, input, nd)


def scatter_to_plane(
    grad_output: np.ndarray, indices: np.ndarray, input_shape: tuple, plane: int, nd: int = 2
) -> np.ndarray:
    """Add each output gradient at its flat ``index`` into its (sample, channel) plane.

    ``grad_output`` and ``indices`` are ``(..., *out)`` with ``nd`` trailing spatial
    dims. ``np.bincount`` does the scatter-add in one vectorized call; it sums in
    float64 (wider than float32 inputs, which only removes rounding), then the
    result is cast back to the gradient's dtype.
    """
    g = np.asarray(grad_output)
    planes = int(np.prod(g.shape[:-nd]))  # one per (sample, channel)
    lead = np.arange(planes).reshape(*g.shape[:-nd], *(1,) * nd) * plane  # each plane's offset
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
    return scatter_to_plane(grad_output, indices, input.shape, plane, nd)


def max_pool3d(
    input: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
):
    r"""3-d max pooling: the largest value in each window.

    .. math:: y[n, c, t, h, w] = \max_{i < k_t,\, j < k_h,\, l < k_w}
              x_{pad}[n, c, t s_t + i d_t - p_t, h s_h + j d_h - p_h, w s_w + l d_w - p_w]

    padding is :math:`-\infty` (it never wins). Shapes: ``(N, C, D, H, W)`` or
    ``(C, D, H, W)`` -> ``(N, C, Do, Ho, Wo)``; ``stride`` defaults to ``kernel_size``.
    With ``return_indices`` also returns where each maximum came from, as a flat
    index ``(t * H + h) * W + w`` into its input volume (int64). Ties: see the
    module doc. Torch: ``torch.nn.functional.max_pool3d``.
    """
    output, indices = _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, 3,
                                "max_pool3d")  # fmt: skip
    return (output, indices) if return_indices else output


def max_pool3d_backward(
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
    r"""Gradient of :func:`max_pool3d`: each window's gradient goes to its maximum.

    .. math:: \frac{\partial L}{\partial x[n, c, u]} =
              \sum_{(t, h, w)\,:\,\text{index}[n, c, t, h, w] = u} g[n, c, t, h, w]

    ``indices`` are the forward's; recomputed from ``input`` when not given. A
    window of padding only gets no input element, as in :func:`max_pool2d_backward`.
    """
    return _max_pool_backward(grad_output, input, kernel_size, stride, padding, dilation,
                              ceil_mode, indices, 3, "max_pool3d")  # fmt: skip


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
