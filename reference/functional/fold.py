r"""Sliding blocks, forward and backward: ``unfold`` (im2col) and ``fold`` (col2im).

``unfold`` copies every ``kh x kw`` block of the zero-padded image into a column;
``fold`` adds every column back at the block it came from, summing where blocks overlap.
Each is the other's adjoint, so each one's backward is the other:

.. math::
    \langle \mathrm{unfold}(x), c \rangle = \langle x, \mathrm{fold}(c) \rangle
    \quad\Longrightarrow\quad
    \frac{\partial L}{\partial x} = \mathrm{fold}(g), \qquad
    \frac{\partial L}{\partial c} = \mathrm{unfold}(g)

The number of blocks along a spatial dim of size :math:`H` is torch's
:math:`\lfloor (H + 2p - d(k - 1) - 1) / s \rfloor + 1`, and must be at least 1. Rows of a
column are ordered ``(c, i, j)`` (channel, kernel row, kernel column) and the columns
``(oh, ow)`` row-major, as torch's ``im2col``. Batched ``(N, C, H, W)`` /
``(N, C*kh*kw, L)`` and unbatched ``(C, H, W)`` / ``(C*kh*kw, L)``; ``N`` may be 0, no
other dim. Floating dtypes only (torch's kernels refuse integers too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._validate import as_float_array

__all__ = ["unfold", "unfold_backward", "fold", "fold_backward"]

Pair = tuple[int, int]


def _pair(value: Any, name: str, layer: str) -> Pair:
    """torch's ``_pair``: an int twice, or a sequence of exactly two ints."""
    values = tuple(value) if isinstance(value, Sequence) else (value, value)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in values):
        raise TypeError(f"{layer}: {name} must be an int or a tuple of two ints, got {value!r}")
    if len(values) != 2:
        raise ValueError(
            f"{layer}: {name} must be an int or a tuple of two ints (height, width), got "
            f"{value!r} with {len(values)} entries"
        )
    return int(values[0]), int(values[1])


def _geometry(
    kernel_size: Any, dilation: Any, padding: Any, stride: Any, layer: str
) -> tuple[Pair, Pair, Pair, Pair]:
    """The four pairs, checked as torch's ``im2col``/``col2im`` shape checks do."""
    kernel = _pair(kernel_size, "kernel_size", layer)
    dil = _pair(dilation, "dilation", layer)
    pad = _pair(padding, "padding", layer)
    step = _pair(stride, "stride", layer)
    checks = [("kernel_size", kernel, 1), ("stride", step, 1), ("dilation", dil, 1)]
    for name, pair, low in [*checks, ("padding", pad, 0)]:
        if min(pair) < low:
            bound = "greater than zero" if low else "non-negative"
            raise ValueError(f"{layer}: {name} must be {bound}, got {pair}")
    return kernel, dil, pad, step


def _blocks(size: Pair, kernel: Pair, dil: Pair, pad: Pair, step: Pair) -> Pair:
    """Blocks along each spatial dim (Python's floor division is torch's here)."""
    h, w = ((size[a] + 2 * pad[a] - dil[a] * (kernel[a] - 1) - 1) // step[a] + 1 for a in (0, 1))
    return h, w


def _check_image(input: Any, layer: str) -> np.ndarray:
    input = as_float_array(input, layer)
    if input.ndim not in (3, 4) or 0 in input.shape[-3:]:
        raise ValueError(
            f"{layer}: expected a (C, H, W) or (N, C, H, W) input, N possibly 0 and every "
            f"other dim non-zero, got shape {input.shape}"
        )
    return input


def _unfold(x: np.ndarray, kernel: Pair, dil: Pair, pad: Pair, step: Pair, layer: str):
    """``(N, C, H, W) -> (N, C*kh*kw, L)``: strided windows of the padded image, one copy."""
    n, c, h, w = x.shape
    bh, bw = _blocks((h, w), kernel, dil, pad, step)
    if bh < 1 or bw < 1:
        raise ValueError(
            f"{layer}: an input of spatial size {(h, w)} with kernel_size={kernel}, "
            f"dilation={dil}, padding={pad} has ({bh}, {bw}) sliding blocks; each must be at "
            "least 1: pad more, or use a smaller kernel or dilation"
        )
    padded = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    span = (dil[0] * (kernel[0] - 1) + 1, dil[1] * (kernel[1] - 1) + 1)  # kernel with holes
    windows = sliding_window_view(padded, span, axis=(2, 3))  # (N, C, Hp-.., Wp-.., *span)
    rows = slice(0, step[0] * (bh - 1) + 1, step[0])  # the first bh window origins
    cols = slice(0, step[1] * (bw - 1) + 1, step[1])
    windows = windows[:, :, rows, cols, :: dil[0], :: dil[1]]  # -> (N, C, bh, bw, kh, kw)
    blocks = windows.transpose(0, 1, 4, 5, 2, 3)  # -> (N, C, kh, kw, bh, bw)
    return blocks.reshape(n, c * kernel[0] * kernel[1], bh * bw)  # -> (N, C*kh*kw, L), a copy


def _fold(cols: np.ndarray, size: Pair, kernel: Pair, dil: Pair, pad: Pair, step: Pair):
    """``(N, C*kh*kw, L) -> (N, C, H, W)``: each kernel offset's slice added back where it
    was read (a loop over the ``kh*kw`` offsets only), then the padding cropped."""
    n, rows, _ = cols.shape
    (kh, kw), (bh, bw) = kernel, _blocks(size, kernel, dil, pad, step)
    c = rows // (kh * kw)
    blocks = cols.reshape(n, c, kh, kw, bh, bw)  # (N, C*kh*kw, L) -> (N, C, kh, kw, bh, bw)
    out = np.zeros((n, c, size[0] + 2 * pad[0], size[1] + 2 * pad[1]), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            top, left = i * dil[0], j * dil[1]
            rows_at = slice(top, top + step[0] * (bh - 1) + 1, step[0])
            cols_at = slice(left, left + step[1] * (bw - 1) + 1, step[1])
            out[:, :, rows_at, cols_at] += blocks[:, :, i, j]  # (N, C, bh, bw)
    return out[:, :, pad[0] : pad[0] + size[0], pad[1] : pad[1] + size[1]].copy()


def _check_grad(grad_output: Any, expected: tuple[int, ...], layer: str) -> np.ndarray:
    grad_output = as_float_array(grad_output, layer, "grad_output")
    if grad_output.shape != expected:
        raise ValueError(
            f"{layer}: grad_output must have the forward output's shape {expected}, got "
            f"{grad_output.shape}"
        )
    return grad_output


def unfold(
    input: np.ndarray, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
) -> np.ndarray:
    r"""Extract sliding blocks as columns (im2col).

    .. math:: y[n, (c, i, j), (h, w)] = x_{pad}[n, c, h s_0 + i d_0, w s_1 + j d_1]

    Shapes: ``(N, C, H, W) -> (N, C*kh*kw, L)`` or unbatched ``(C, H, W) -> (C*kh*kw, L)``
    with :math:`L = b_h b_w` blocks. ``kernel_size``, ``dilation``, ``padding``, ``stride``:
    an int or a pair. Torch: ``torch.nn.functional.unfold``.
    """
    x = _check_image(input, "unfold")
    geometry = _geometry(kernel_size, dilation, padding, stride, "unfold")
    batched = x if x.ndim == 4 else x[None]  # (C, H, W) -> (1, C, H, W)
    out = _unfold(batched, *geometry, "unfold")
    return out if x.ndim == 4 else out[0]  # (1, C*K, L) -> (C*K, L)


def unfold_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> np.ndarray:
    r"""Gradient of :func:`unfold` wrt its input: fold the upstream gradient back.

    .. math:: \frac{\partial L}{\partial x[n, c, a, b]} = \sum_{(i, j, h, w):\
              h s_0 + i d_0 - p_0 = a,\ w s_1 + j d_1 - p_1 = b} g[n, (c, i, j), (h, w)]

    Each pixel collects the gradient of every column entry that copied it; padding
    positions are dropped. Shapes: ``grad_output`` as the output, result as ``input``.
    """
    x = _check_image(input, "unfold_backward")
    kernel, dil, pad, step = _geometry(kernel_size, dilation, padding, stride, "unfold_backward")
    size = x.shape[-2:]
    bh, bw = _blocks(size, kernel, dil, pad, step)
    expected = (*x.shape[:-3], x.shape[-3] * kernel[0] * kernel[1], bh * bw)
    g = _check_grad(grad_output, expected, "unfold_backward")
    batched = g if x.ndim == 4 else g[None]  # (C*K, L) -> (1, C*K, L)
    grad = _fold(batched, size, kernel, dil, pad, step)
    return grad if x.ndim == 4 else grad[0]  # (1, C, H, W) -> (C, H, W)


def _check_columns(
    input: Any, output_size: Any, geometry: tuple[Pair, Pair, Pair, Pair], layer: str
) -> tuple[np.ndarray, Pair]:
    """A ``(C*kh*kw, L)`` or ``(N, C*kh*kw, L)`` input whose ``L`` fits ``output_size``."""
    cols = as_float_array(input, layer)
    size = _pair(output_size, "output_size", layer)
    kernel = geometry[0]
    if cols.ndim not in (2, 3) or 0 in cols.shape[-2:]:
        raise ValueError(
            f"{layer}: expected a (C*kh*kw, L) or (N, C*kh*kw, L) input, N possibly 0 and "
            f"every other dim non-zero, got shape {cols.shape}"
        )
    if cols.shape[-2] % (kernel[0] * kernel[1]):
        raise ValueError(
            f"{layer}: the input's dim -2 ({cols.shape[-2]}, input shape {cols.shape}) must "
            f"be divisible by the product of kernel_size {kernel}"
        )
    bh, bw = _blocks(size, *geometry)
    if bh < 1 or bw < 1 or cols.shape[-1] != bh * bw:
        raise ValueError(
            f"{layer}: output_size={size} with kernel_size={kernel}, dilation={geometry[1]}, "
            f"padding={geometry[2]}, stride={geometry[3]} has ({bh}, {bw}) sliding blocks "
            f"(each must be at least 1), so the input's last dim must be {bh} * {bw}; got "
            f"input shape {cols.shape}"
        )
    return cols, size


def fold(
    input: np.ndarray,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> np.ndarray:
    r"""Sum sliding blocks back into an image (col2im), the adjoint of :func:`unfold`.

    .. math:: y[n, c, a, b] = \sum_{(i, j, h, w):\ h s_0 + i d_0 - p_0 = a,\
              w s_1 + j d_1 - p_1 = b} x[n, (c, i, j), (h, w)]

    Shapes: ``(N, C*kh*kw, L) -> (N, C, H, W)`` or unbatched ``(C*kh*kw, L) -> (C, H, W)``,
    ``(H, W) = output_size``; ``L`` must be the number of blocks that fit. Torch:
    ``torch.nn.functional.fold``.
    """
    geometry = _geometry(kernel_size, dilation, padding, stride, "fold")
    cols, size = _check_columns(input, output_size, geometry, "fold")
    batched = cols if cols.ndim == 3 else cols[None]  # (C*K, L) -> (1, C*K, L)
    out = _fold(batched, size, *geometry)
    return out if cols.ndim == 3 else out[0]  # (1, C, H, W) -> (C, H, W)


def fold_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: Any,
    kernel_size: Any,
    dilation: Any = 1,
    padding: Any = 0,
    stride: Any = 1,
) -> np.ndarray:
    r"""Gradient of :func:`fold` wrt its input: unfold the upstream gradient.

    .. math:: \frac{\partial L}{\partial x[n, (c, i, j), (h, w)]}
              = g_{pad}[n, c, h s_0 + i d_0, w s_1 + j d_1]

    Every column entry was added to one pixel (or to the padding, whose gradient is 0).
    Shapes: ``grad_output`` as the output ``(N, C, H, W)``, result as ``input``.
    """
    geometry = _geometry(kernel_size, dilation, padding, stride, "fold_backward")
    cols, size = _check_columns(input, output_size, geometry, "fold_backward")
    kernel = geometry[0]
    expected = (*cols.shape[:-2], cols.shape[-2] // (kernel[0] * kernel[1]), *size)
    g = _check_grad(grad_output, expected, "fold_backward")
    batched = g if g.ndim == 4 else g[None]  # (C, H, W) -> (1, C, H, W)
    grad = _unfold(batched, *geometry, "fold_backward")
    return grad if g.ndim == 4 else grad[0]  # (1, C*K, L) -> (C*K, L)
