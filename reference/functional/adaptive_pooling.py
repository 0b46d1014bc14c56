r"""Adaptive average and max pooling (``torch.nn.functional.adaptive_*_pool{1,2,3}d``).

The caller fixes the *output* size; window :math:`i` of an axis of length
:math:`L` pooled to :math:`n` outputs covers

.. math:: [\,\lfloor iL/n \rfloor,\ \lceil (i+1)L/n \rceil\,)

(torch's ``start_index``/``end_index``). Windows may differ in size and overlap
by one element, and when :math:`n > L` they repeat elements. Every rank runs as
3-d, ``(N, C, D, H, W)`` (a 2-d image has depth 1, a 1-d signal depth and height 1).

- **Average** pooling is linear and separable: with :math:`P` the :math:`(n, L)`
  matrix whose row :math:`i` holds :math:`1/|\text{window}_i|` on window
  :math:`i`, :math:`y = x \times_D P_D \times_H P_H \times_W P_W` (each matrix
  applied along its axis), so :math:`\partial L/\partial x` applies the
  transposes: three small contractions each way.
- **Max** pooling gathers each window (a fancy-index view padded to the largest
  window by repeating the window's last element, which changes neither the
  maximum nor which element wins) and takes the argmax with torch's tie rules
  (first maximum in scan order; a NaN always wins, so the last NaN). The
  gradient goes back to that element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array
from .pooling import SPATIAL, _restore, check_input, lift_to_3d, pad_front, scatter_to_plane

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d", "adaptive_avg_pool3d_backward",
    "adaptive_max_pool1d", "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d", "adaptive_max_pool3d_backward",
]  # fmt: skip


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) of each of the ``out`` windows over ``size``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)  # floor and ceil of the bounds


def _prepare(input, output_size, nd, layer):
    """Validate; return the (N, C, D, H, W) input and the 3-d output size."""
    input = check_input(input, nd, layer)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    if len(sizes) != nd:
        raise ValueError(f"{layer}: output_size must be an int or {nd} values, got {output_size!r}")
    # None keeps that dim's input size, as in torch
    sizes = tuple(input.shape[-nd + a] if s is None else s for a, s in enumerate(sizes))
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0 for s in sizes):
        raise ValueError(
            f"{layer}: output_size must hold non-negative ints or None, got {output_size!r}"
        )
    x = input[None] if input.ndim == nd + 1 else input  # (C, ...) -> (1, C, ...)
    return lift_to_3d(x, nd), pad_front(tuple(int(s) for s in sizes), nd, 1)


def _batched_grad(grad_output, input, out, nd, layer):
    expected = (*np.shape(input)[:-nd], *out[SPATIAL - nd :])
    if np.shape(grad_output) != expected:
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {expected}, got "
            f"{np.shape(grad_output)}"
        )
    if 0 in out:  # torch's backward refuses it too (the forward's output is empty)
        raise ValueError(
            f"{layer}_backward: output_size {out[SPATIAL - nd :]} has a 0: torch's backward "
            "refuses an empty grad_output; there is no gradient to propagate"
        )
    batch = np.shape(input)[0] if np.ndim(input) == nd + 2 else 1
    return np.reshape(grad_output, (batch, np.shape(input)[-nd - 1], *out))  # (N, C, Do, Ho, Wo)


def averaging_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """``P`` of shape ``(out, size)``: row ``i`` is ``1/len`` on window ``i``, 0 elsewhere."""
    start, end = adaptive_windows(size, out)
    positions = np.arange(size)
    inside = (positions >= start[:, None]) & (positions < end[:, None])  # (out, size)
    return (inside / (end - start)[:, None]).astype(dtype)


def _along(matrix: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """``matrix`` (m, n) applied along ``axis`` of ``x``: that axis' length n becomes m."""
    # tensordot puts the new axis first: (m, ...rest) -> back at ``axis``
    return np.moveaxis(np.tensordot(matrix, x, axes=(1, axis)), 0, axis)


def _mean_of_nothing(input: Any, output_size: Any, nd: int) -> bool:
    """An empty plane averaged to size 1: torch takes its mean shortcut there and gives NaN
    (0/0), where any other output size raises, as adaptive max pooling always does."""
    x = np.asarray(input)
    sizes = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size,) * nd
    return x.ndim in (nd + 1, nd + 2) and 0 in x.shape[-nd:] and all(s == 1 for s in sizes)


def _adaptive_avg(input, output_size, nd, layer):
    if _mean_of_nothing(input, output_size, nd):
        x = as_float_array(input, layer)
        return np.full((*x.shape[:-nd], *(1,) * nd), np.nan, dtype=x.dtype)
    x, out = _prepare(input, output_size, nd, layer)
    y = x
    for a in range(SPATIAL):  # (N, C, D, H, W) -> (N, C, Do, H, W) -> ... -> (N, C, Do, Ho, Wo)
        y = _along(averaging_matrix(x.shape[2 + a], out[a], x.dtype), y, 2 + a)
    return _restore(y, input, nd)


def _adaptive_avg_backward(grad_output, input, output_size, nd, layer):
    if _mean_of_nothing(input, output_size, nd):
        return np.zeros_like(as_float_array(input, layer))  # nothing to send a gradient to
    x, out = _prepare(input, output_size, nd, layer)
    g = _batched_grad(grad_output, input, out, nd, layer)
    for a in range(SPATIAL):  # (N, C, Do, Ho, Wo) -> (N, C, D, Ho, Wo) -> ... -> (N, C, D, H, W)
        g = _along(averaging_matrix(x.shape[2 + a], out[a], g.dtype).T, g, 2 + a)
    return _restore(g, input, nd)


def _gather_index(size: int, out: int) -> np.ndarray:
    """``(out, longest window)`` input positions; short windows repeat their last element."""
    start, end = adaptive_windows(size, out)
    longest = int((end - start).max(initial=1))
    return np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)


def _adaptive_max(input, output_size, nd, layer):
    x, out = _prepare(input, output_size, nd, layer)
    n, c, *size = x.shape
    depth, rows, cols = (_gather_index(size[a], out[a]) for a in range(SPATIAL))
    k = (depth.shape[1], rows.shape[1], cols.shape[1])
    windows = x[:, :, depth[:, None, None, :, None, None], rows[None, :, None, None, :, None],
                cols[None, None, :, None, None, :]]  # (N, C, Do, Ho, Wo, kd, kh, kw)  # fmt: skip
    flat = windows.reshape(n, c, *out, k[0] * k[1] * k[2])  # (N, C, Do, Ho, Wo, kd*kh*kw)
    arg = flat.argmax(axis=-1)  # first maximum in scan order, as torch
    is_nan = np.isnan(flat)
    if is_nan.any():
        last_nan = flat.shape[-1] - 1 - is_nan[..., ::-1].argmax(axis=-1)  # the last NaN wins
        arg = np.where(is_nan.any(axis=-1), last_nan, arg)
    values = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    ki, kj, kl = np.unravel_index(arg, k)  # offsets within the window, each (N, C, Do, Ho, Wo)
    t = depth[np.arange(out[0])[:, None, None], ki]  # (Do, 1, 1) picks from (Do, kd)
    h = rows[np.arange(out[1])[:, None], kj]
    w = cols[np.arange(out[2]), kl]
    indices = ((t * size[1] + h) * size[2] + w).astype(np.int64)  # flat into the plane, as torch
    return _restore(values, input, nd), _restore(indices, input, nd)


def _adaptive_max_backward(grad_output, input, output_size, indices, nd, layer):
    if indices is None:
        _, indices = _adaptive_max(input, output_size, nd, layer)
    x, out = _prepare(input, output_size, nd, layer)
    g = _batched_grad(grad_output, input, out, nd, layer)
    indices = np.reshape(indices, g.shape)  # caller's layout -> (N, C, Do, Ho, Wo)
    plane = int(np.prod(x.shape[2:]))
    return scatter_to_plane(g, indices, np.shape(input), plane, SPATIAL)


def adaptive_avg_pool3d(input: np.ndarray, output_size: Any) -> np.ndarray:
    r"""Average over torch's adaptive windows, one separable matrix per axis.

    .. math:: y[n, c, i, j, l] = \frac{1}{|T_i||R_j||C_l|}
              \sum_{t \in T_i} \sum_{h \in R_j} \sum_{w \in C_l} x[n, c, t, h, w]

    ``output_size``: an int, or a triple whose ``None`` keeps the input's size.
    Shapes: ``(N, C, D, H, W)`` or ``(C, D, H, W)`` -> ``(N, C, Do, Ho, Wo)``.
    Torch: ``torch.nn.functional.adaptive_avg_pool3d``.
    """
    return _adaptive_avg(input, output_size, 3, "adaptive_avg_pool3d")


def adaptive_avg_pool3d_backward(
    grad_output: np.ndarray, input: np.ndarray, output_size: Any
) -> np.ndarray:
    r"""Gradient of :func:`adaptive_avg_pool3d`: the transposed matrices along each axis.

    Each element receives :math:`g_{ijl} / (|T_i||R_j||C_l|)` from every window it is in.
    """
    return _adaptive_avg_backward(grad_output, input, output_size, 3, "adaptive_avg_pool3d")


def adaptive_max_pool3d(input: np.ndarray, output_size: Any, return_indices: bool = False):
    r"""Maximum over torch's adaptive windows.

    .. math:: y[n, c, i, j, l] = \max_{t \in T_i,\, h \in R_j,\, w \in C_l} x[n, c, t, h, w]

    With ``return_indices`` also the flat index ``(t * H + h) * W + w`` of each
    maximum. Torch: ``torch.nn.functional.adaptive_max_pool3d``.
    """
    output, indices = _adaptive_max(input, output_size, 3, "adaptive_max_pool3d")
    return (output, indices) if return_indices else output


def adaptive_max_pool3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: Any,
    return_indices: bool = False,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`adaptive_max_pool3d`: each window's gradient goes to its maximum.

    .. math:: \frac{\partial L}{\partial x[n, c, u]} = \sum_{(i, j, l)\,:\,
              \text{index}[n, c, i, j, l] = u} g[n, c, i, j, l]

    ``indices`` are the forward's; recomputed from ``input`` when not given.
    """
    return _adaptive_max_backward(grad_output, input, output_size, indices, 3,
                                  "adaptive_max_pool3d")  # fmt: skip


def adaptive_avg_pool2d(input: np.ndarray, output_size: Any) -> np.ndarray:
    r"""Average over torch's adaptive windows: :math:`y = P_H\, x\, P_W^\top` per plane.

    .. math:: y[n, c, i, j] = \frac{1}{|R_i||C_j|} \sum_{h \in R_i} \sum_{w \in C_j}
              x[n, c, h, w]

    ``output_size``: an int, or a pair whose ``None`` keeps the input's size.
    Shapes: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, Ho, Wo)``.
    Torch: ``torch.nn.functional.adaptive_avg_pool2d``.
    """
    return _adaptive_avg(input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool2d_backward(
    grad_output: np.ndarray, input: np.ndarray, output_size: Any
) -> np.ndarray:
    r"""Gradient of :func:`adaptive_avg_pool2d`: :math:`\partial L/\partial x = P_H^\top g P_W`.

    Each element receives :math:`g_{ij} / (|R_i||C_j|)` from every window it is in.
    """
    return _adaptive_avg_backward(grad_output, input, output_size, 2, "adaptive_avg_pool2d")


def adaptive_avg_pool1d(input: np.ndarray, output_size: Any) -> np.ndarray:
    r"""1-d adaptive average: :math:`y[n, c, i] = \frac{1}{|R_i|}\sum_{l \in R_i} x[n, c, l]`.

    Shapes: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_o)``.
    Torch: ``torch.nn.functional.adaptive_avg_pool1d``.
    """
    return _adaptive_avg(input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_avg_pool1d_backward(
    grad_output: np.ndarray, input: np.ndarray, output_size: Any
) -> np.ndarray:
    r"""Gradient of :func:`adaptive_avg_pool1d`: :math:`\partial L/\partial x = g P`."""
    return _adaptive_avg_backward(grad_output, input, output_size, 1, "adaptive_avg_pool1d")


def adaptive_max_pool2d(input: np.ndarray, output_size: Any, return_indices: bool = False):
    r"""Maximum over torch's adaptive windows.

    .. math:: y[n, c, i, j] = \max_{h \in R_i,\, w \in C_j} x[n, c, h, w]

    With ``return_indices`` also the flat index ``h * W + w`` of each maximum.
    Torch: ``torch.nn.functional.adaptive_max_pool2d``.
    """
    output, indices = _adaptive_max(input, output_size, 2, "adaptive_max_pool2d")
    return (output, indices) if return_indices else output


def adaptive_max_pool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: Any,
    return_indices: bool = False,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`adaptive_max_pool2d`: each window's gradient goes to its maximum.

    .. math:: \frac{\partial L}{\partial x[n, c, u]} = \sum_{(i, j)\,:\,
              \text{index}[n, c, i, j] = u} g[n, c, i, j]

    ``indices`` are the forward's; recomputed from ``input`` when not given.
    """
    return _adaptive_max_backward(grad_output, input, output_size, indices, 2,
                                  "adaptive_max_pool2d")  # fmt: skip


def adaptive_max_pool1d(input: np.ndarray, output_size: Any, return_indices: bool = False):
    r"""1-d adaptive maximum: :math:`y[n, c, i] = \max_{l \in R_i} x[n, c, l]`.

    Torch: ``torch.nn.functional.adaptive_max_pool1d``.
    """
    output, indices = _adaptive_max(input, output_size, 1, "adaptive_max_pool1d")
    return (output, indices) if return_indices else output


def adaptive_max_pool1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    output_size: Any,
    return_indices: bool = False,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`adaptive_max_pool1d`: each window's gradient goes to its maximum.

    .. math:: \frac{\partial L}{\partial x[n, c, u]} = \sum_{i\,:\,\text{index}[n, c, i] = u}
              g[n, c, i]
    """
    return _adaptive_max_backward(grad_output, input, output_size, indices, 1,
                                  "adaptive_max_pool1d")  # fmt: skip
