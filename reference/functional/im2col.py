r"""The pieces every convolution here is built from, on channels-first arrays.

``(C, N, *spatial)`` instead of torch's ``(N, C, *spatial)``: the batch then sits
next to the pixels, and each step below is one large 2-D matmul over all samples at
once. Every piece works for any number of spatial dims (1, 2 or 3: signals, images,
volumes); the kernel, stride and dilation are tuples with one entry per dim.

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

import itertools
import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__: list[str] = []  # building blocks; the public pairs are in .conv, .conv_transpose

Pads = tuple[tuple[int, int], ...]  # (before, after) per spatial dim, e.g. ((top, bottom), ..)


def channels_first(x: np.ndarray, pads: Pads | None = None) -> np.ndarray:
    """``(N, C, *S)`` as a padded, contiguous ``(C, N, *(S + before + after))``."""
    pads = pads or ((0, 0),) * (x.ndim - 2)
    return np.pad(x.swapaxes(0, 1), ((0, 0), (0, 0), *pads))  # one copy, zeros around


def batch_first(y: np.ndarray) -> np.ndarray:
    """``(C, N, *S) -> (N, C, *S)``, contiguous: the layout the caller sees."""
    return np.ascontiguousarray(y.swapaxes(0, 1))


def im2col(
    padded: np.ndarray,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out_size: tuple[int, ...],
) -> np.ndarray:
    """Windows of a padded ``(C, N, *P)`` input as columns ``(C*prod(K), N*prod(O))``.

    In 2-d, column ``(n, oh, ow)`` holds ``padded[c, n, oh*sh + i*dh, ow*sw + j*dw]`` in
    the row order ``(c, i, j)``, the order of ``weight.reshape(O, -1)``; in other dims
    likewise, one index per dim. Only the first ``out_size`` windows are taken (the
    transposed convolution's backward may fit more).
    """
    nd = len(kernel)
    c, n = padded.shape[:2]
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))  # extent with the holes
    spatial = tuple(range(2, 2 + nd))
    windows = sliding_window_view(padded, span, axis=spatial)  # (C, N, *P-.., *span)
    starts = tuple(slice(0, s * (o - 1) + 1, s) for s, o in zip(stride, out_size))
    taps = tuple(slice(None, None, d) for d in dilation)
    windows = windows[(slice(None), slice(None)) + tuple(starts) + tuple(taps)]  # (C, N, *O, *K)
    kernel_axes = range(2 + nd, 2 + 2 * nd)
    cols = windows.transpose(0, *kernel_axes, 1, *spatial)  # (C, N, *O, *K) -> (C, *K, N, *O)
    return cols.reshape(c * math.prod(kernel), n * math.prod(out_size))  # the one copy


def apply_kernel(cols: np.ndarray, weight: np.ndarray, groups: int) -> np.ndarray:
    """The forward's matmul: ``weight (O, C/g, *K)`` times the columns -> ``(O, N*prod(O))``."""
    out_ch = weight.shape[0]
    w = weight.reshape(groups, out_ch // groups, -1)  # (O, C/g, *K) -> (g, O/g, C/g*K)
    c = cols.reshape(groups, -1, cols.shape[1])  # (C*K, NP) -> (g, C/g*K, NP)
    return np.matmul(w, c).reshape(out_ch, -1)  # (g, O/g, NP) -> (O, NP)


def conv_weight_grad(
    grad_output: np.ndarray, cols: np.ndarray, weight_shape: tuple, groups: int
) -> np.ndarray:
    r""":math:`\partial L/\partial W = g\, \mathrm{cols}^\top` per group, summed over the batch.

    ``grad_output (O, N*prod(O))`` (channels first), ``cols (C*prod(K), N*prod(O))``
    from :func:`im2col`.
    """
    out_ch, points = grad_output.shape
    g = grad_output.reshape(groups, out_ch // groups, points)  # (O, NP) -> (g, O/g, NP)
    c = cols.reshape(groups, -1, points)  # (C*K, NP) -> (g, C/g*K, NP)
    return np.matmul(g, c.transpose(0, 2, 1)).reshape(weight_shape)  # (g, O/g, C/g*K) -> W


def conv_transpose_scatter(
    grad_output: np.ndarray,
    weight: np.ndarray,
    padded_size: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    r"""Send ``grad_output (O, N, *So)`` (channels first) back through ``weight``.

    In 2-d (other dims likewise, one index per dim):

    .. math:: \frac{\partial L}{\partial x_{pad}}[n, c, h s_h + i d_h, w s_w + j d_w]
              \mathrel{+}= \sum_o W[o, c, i, j]\, g[n, o, h, w]

    ``weight`` is ``(O, C/g, *K)``. Returns the gradient wrt the *padded* input,
    channels first: ``(C, N, *padded_size)``.

    Two steps, the forward's im2col read backwards (*col2im*): one matmul
    :math:`W^\top g` gives every column's gradient at once, then a loop over the
    kernel offsets (``(i, j)`` in 2-d; not over samples or pixels) adds each offset's
    slice back at the input positions that offset read. The scratch array keeps the
    batch axis last, so each add runs over contiguous runs of ``N`` values rather than
    rows only ``Wo`` wide (about twice as fast); the result is a transposed view.
    """
    out_ch, n, *out_size = grad_output.shape
    _, in_per_group, *kernel = weight.shape
    g = np.ascontiguousarray(np.moveaxis(grad_output, 1, -1))  # (O, N, *So) -> (O, *So, N)
    g = g.reshape(groups, out_ch // groups, -1)  # (O, *So, N) -> (g, O/g, prod(So)*N)
    w = weight.reshape(groups, out_ch // groups, -1)  # (O, C/g, *K) -> (g, O/g, C/g*K)
    cols_grad = np.matmul(w.transpose(0, 2, 1), g)  # (g, C/g*K, O/g) @ (g, O/g, prod(So)*N)
    cols_grad = cols_grad.reshape(-1, *kernel, *out_size, n)  # -> (C, *K, *So, N)
    padded = np.zeros((groups * in_per_group, *padded_size, n), dtype=cols_grad.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        # the input positions this offset read: offset*d + (0, s, 2s, .., s*(So-1))
        window = tuple(slice(i * d, i * d + s * (o - 1) + 1, s)
                       for i, d, s, o in zip(offset, dilation, stride, out_size))  # fmt: skip
        padded[(slice(None),) + tuple(window)] += cols_grad[
            (slice(None),) + tuple(offset)
        ]  # (C, *So, N)
    return np.moveaxis(padded, -1, 1)  # (C, *Sp, N) -> (C, N, *Sp), a view
