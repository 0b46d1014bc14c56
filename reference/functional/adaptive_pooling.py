r"""Adaptive average and max pooling (``torch.nn.functional.adaptive_*_pool{1,2}d``).

The caller fixes the *output* size; window :math:`i` of an axis of length
:math:`L` pooled to :math:`n` outputs covers

.. math:: [\,\lfloor iL/n \rfloor,\ \lceil (i+1)L/n \rceil\,)

(torch's ``start_index``/``end_index``). Windows may differ in size and overlap
by one element, and when :math:`n > L` they repeat elements.

- **Average** pooling is linear and separable: with :math:`P` the :math:`(n, L)`
  matrix whose row :math:`i` holds :math:`1/|\text{window}_i|` on window
  :math:`i`, :math:`y = P_H\, x\, P_W^\top` per plane, so
  :math:`\partial L/\partial x = P_H^\top\, g\, P_W`: two matmuls each way.
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
from .conv import lift_1d
from .pooling import scatter_to_plane

__all__ = [
    "adaptive_avg_pool1d", "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d", "adaptive_avg_pool2d_backward",
    "adaptive_max_pool1d", "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d", "adaptive_max_pool2d_backward",
]  # fmt: skip


def adaptive_windows(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    """Start (inclusive) and end (exclusive) of each of the ``out`` windows over ``size``."""
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)  # floor and ceil of the bounds


def _prepare(input, output_size, nd, layer):
    """Validate; return the (N, C, H, W) input and the 2-d output size."""
    input = as_float_array(input, layer)
    if input.ndim not in (nd + 1, nd + 2) or 0 in input.shape[-nd - 1 :]:
        raise ValueError(
            f"{layer}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"non-empty except for the batch, got shape {input.shape}"
        )
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
    if nd == 1:
        x, sizes = lift_1d(x), (1, *sizes)
    return x, tuple(int(s) for s in sizes)


def _restore(y: np.ndarray, input: np.ndarray, nd: int) -> np.ndarray:
    if nd == 1:
        y = y[:, :, 0]  # (N, C, 1, L) -> (N, C, L)
    return y[0] if np.ndim(input) == nd + 1 else y


def _batched_grad(grad_output, input, out, nd, layer):
    expected = (*np.shape(input)[:-nd], *out[2 - nd :])
    if np.shape(grad_output) != expected:
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {expected}, got "
            f"{np.shape(grad_output)}"
        )
    g = np.asarray(grad_output)
    g = g[None] if np.ndim(input) == nd + 1 else g  # unbatched: (C, ...) -> (1, C, ...)
    return lift_1d(g) if nd == 1 else g  # (N, C, L) -> (N, C, 1, L)


def averaging_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """``P`` of shape ``(out, size)``: row ``i`` is ``1/len`` on window ``i``, 0 elsewhere."""
    start, end = adaptive_windows(size, out)
    positions = np.arange(size)
    inside = (positions >= start[:, None]) & (positions < end[:, None])  # (out, size)
    return (inside / (end - start)[:, None]).astype(dtype)


def _adaptive_avg(input, output_size, nd, layer):
    x, out = _prepare(input, output_size, nd, layer)
    p_h = averaging_matrix(x.shape[2], out[0], x.dtype)
    p_w = averaging_matrix(x.shape[3], out[1], x.dtype)
    return _restore(p_h @ x @ p_w.T, input, nd)  # (Ho, H) @ (N, C, H, W) @ (W, Wo)


def _adaptive_avg_backward(grad_output, input, output_size, nd, layer):
    x, out = _prepare(input, output_size, nd, layer)
    g = _batched_grad(grad_output, input, out, nd, layer)
    p_h = averaging_matrix(x.shape[2], out[0], g.dtype)
    p_w = averaging_matrix(x.shape[3], out[1], g.dtype)
    return _restore(p_h.T @ g @ p_w, input, nd)  # (H, Ho) @ (N, C, Ho, Wo) @ (Wo, W)


def _gather_index(size: int, out: int) -> np.ndarray:
    """``(out, longest window)`` input positions; short windows repeat their last element."""
    start, end = adaptive_windows(size, out)
    longest = int((end - start).max(initial=1))
    return np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)


def _adaptive_max(input, output_size, nd, layer):
    x, out = _prepare(input, output_size, nd, layer)
    n, c, height, width = x.shape
    rows, cols = _gather_index(height, out[0]), _gather_index(width, out[1])
    kh, kw = rows.shape[1], cols.shape[1]
    windows = x[:, :, rows[:, None, :, None], cols[None, :, None, :]]  # (N, C, Ho, Wo, kh, kw)
    flat = windows.reshape(n, c, *out, kh * kw)  # (N, C, Ho, Wo, kh*kw)
    arg = flat.argmax(axis=-1)  # first maximum in scan order, as torch
    is_nan = np.isnan(flat)
    if is_nan.any():
        last_nan = kh * kw - 1 - is_nan[..., ::-1].argmax(axis=-1)  # torch: the last NaN wins
        arg = np.where(is_nan.any(axis=-1), last_nan, arg)
    values = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    ki, kj = np.divmod(arg, kw)
    h = rows[np.arange(out[0])[:, None], ki]  # (Ho, 1) picks from (Ho, kh) -> (N, C, Ho, Wo)
    w = cols[np.arange(out[1])[None, :], kj]
    indices = (h * width + w).astype(np.int64)  # flat index into the input plane, as torch
    return _restore(values, input, nd), _restore(indices, input, nd)


def _adaptive_max_backward(grad_output, input, output_size, indices, nd, layer):
    if indices is None:
        _, indices = _adaptive_max(input, output_size, nd, layer)
    x, out = _prepare(input, output_size, nd, layer)
    g = _batched_grad(grad_output, input, out, nd, layer)
    indices = np.asarray(indices)
    indices = indices[None] if np.ndim(input) == nd + 1 else indices
    indices = lift_1d(indices) if nd == 1 else indices
    plane = x.shape[2] * x.shape[3]
    return scatter_to_plane(g, indices, np.shape(input), plane)


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
