r"""The pieces every convolution here is built from, on channels-first arrays.

``(C, N, H, W)`` instead of torch's ``(N, C, H, W)``: the batch then sits next to
the pixels, and each step below is one large 2-D matmul over all samples at once.

==============================  ===============================================
piece                           what it computes
==============================  ===============================================
:func:`im2col`                  every window of the padded input as one column
:func:`apply_kernel`            weight @ columns: the convolution's output
:func:`conv_weight_grad`        grad_output @ columns^T: the weight gradient
:func:`conv_transpose_scatter`  weight^T @ grad_output, added back at each
                                kernel offset: the input gradient, which is
                                the transposed convolution
==============================  ===============================================

:mod:`.conv` and :mod:`.conv_transpose` combine them.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__: list[str] = []  # building blocks; the public pairs are in .conv, .conv_transpose

Pads = tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right))


def channels_first(x: np.ndarray, pads: Pads = ((0, 0), (0, 0))) -> np.ndarray:
    """``(N, C, H, W)`` as a padded, contiguous ``(C, N, H + top + bottom, W + left + right)``."""
    return np.pad(x.transpose(1, 0, 2, 3), ((0, 0), (0, 0), *pads))  # one copy, zeros around


def batch_first(y: np.ndarray) -> np.ndarray:
    """``(C, N, H, W) -> (N, C, H, W)``, contiguous: the layout the caller sees."""
    return np.ascontiguousarray(y.transpose(1, 0, 2, 3))


def im2col(
    padded: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_size: tuple[int, int],
) -> np.ndarray:
    """Windows of a padded ``(C, N, Hp, Wp)`` input as columns ``(C*kh*kw, N*Ho*Wo)``.

    Column ``(n, oh, ow)`` holds ``padded[c, n, oh*sh + i*dh, ow*sw + j*dw]`` in the
    row order ``(c, i, j)``, the order of ``weight.reshape(O, -1)``. Only the first
    ``out_size`` windows are taken (the transposed convolution's backward may fit more).
    """
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel, stride, dilation, out_size
    c, n = padded.shape[:2]
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)  # the kernel's extent with its holes
    windows = sliding_window_view(padded, span, axis=(2, 3))  # (C, N, Hp-.., Wp-.., span)
    windows = windows[:, :, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw, ::dh, ::dw]
    cols = windows.transpose(0, 4, 5, 1, 2, 3)  # (C, N, Ho, Wo, kh, kw) -> (C, kh, kw, N, Ho, Wo)
    return cols.reshape(c * kh * kw, n * ho * wo)  # the one copy: (C*kh*kw, N*Ho*Wo)


def apply_kernel(cols: np.ndarray, weight: np.ndarray, groups: int) -> np.ndarray:
    """The forward's matmul: ``weight (O, C/g, kh, kw)`` times the columns -> ``(O, N*Ho*Wo)``."""
    out_ch = weight.shape[0]
    w = weight.reshape(groups, out_ch // groups, -1)  # (O, C/g, kh, kw) -> (g, O/g, C/g*K)
    c = cols.reshape(groups, -1, cols.shape[1])  # (C*K, NP) -> (g, C/g*K, NP)
    return np.matmul(w, c).reshape(out_ch, -1)  # (g, O/g, NP) -> (O, NP)


def conv_weight_grad(
    grad_output: np.ndarray, cols: np.ndarray, weight_shape: tuple, groups: int
) -> np.ndarray:
    r""":math:`\partial L/\partial W = g\, \mathrm{cols}^\top` per group, summed over the batch.

    ``grad_output (O, N*Ho*Wo)`` (channels first), ``cols (C*kh*kw, N*Ho*Wo)`` from
    :func:`im2col`.
    """
    out_ch, points = grad_output.shape
    g = grad_output.reshape(groups, out_ch // groups, points)  # (O, NP) -> (g, O/g, NP)
    c = cols.reshape(groups, -1, points)  # (C*K, NP) -> (g, C/g*K, NP)
    return np.matmul(g, c.transpose(0, 2, 1)).reshape(weight_shape)  # (g, O/g, C/g*K) -> W


def conv_transpose_scatter(
    grad_output: np.ndarray,
    weight: np.ndarray,
    padded_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    r"""Send ``grad_output (O, N, Ho, Wo)`` (channels first) back through ``weight``.

    .. math:: \frac{\partial L}{\partial x_{pad}}[n, c, h s_h + i d_h, w s_w + j d_w]
              \mathrel{+}= \sum_o W[o, c, i, j]\, g[n, o, h, w]

    ``weight`` is ``(O, C/g, kh, kw)``. Returns the gradient wrt the *padded* input,
    channels first: ``(C, N, Hp, Wp)`` with ``(Hp, Wp) = padded_size``.

    Two steps, the forward's im2col read backwards (*col2im*): one matmul
    :math:`W^\top g` gives every column's gradient at once, then a loop over the
    kernel offsets ``(i, j)`` (not over samples or pixels) adds each offset's slice
    back at the input positions that offset read. The scratch array keeps the batch
    axis last, so each add runs over contiguous runs of ``N`` values rather than
    rows only ``Wo`` wide (about twice as fast); the result is a transposed view.
    """
    out_ch, n, ho, wo = grad_output.shape
    _, in_per_group, kh, kw = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    g = np.ascontiguousarray(grad_output.transpose(0, 2, 3, 1))  # (O, N, Ho, Wo) -> (O, Ho, Wo, N)
    g = g.reshape(groups, out_ch // groups, -1)  # (O, Ho, Wo, N) -> (g, O/g, Ho*Wo*N)
    w = weight.reshape(groups, out_ch // groups, -1)  # (O, C/g, kh, kw) -> (g, O/g, C/g*K)
    cols_grad = np.matmul(w.transpose(0, 2, 1), g)  # (g, C/g*K, O/g) @ (g, O/g, Ho*Wo*N)
    cols_grad = cols_grad.reshape(-1, kh, kw, ho, wo, n)  # -> (C, kh, kw, Ho, Wo, N)
    padded = np.zeros((groups * in_per_group, *padded_size, n), dtype=cols_grad.dtype)
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
            cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
            padded[:, rows, cols, :] += cols_grad[:, i, j]  # (C, Ho, Wo, N)
    return padded.transpose(0, 3, 1, 2)  # (C, Hp, Wp, N) -> (C, N, Hp, Wp), a view
