r"""Max unpooling, forward and backward (``torch.nn.functional.max_unpool1d/2d/3d``).

The partial inverse of max pooling: each input value goes back to the place
its ``indices`` (max pooling's ``return_indices``, flat into each output plane)
name; every other output element is 0.

.. math:: y[n, c, \text{index}[n, c, i]] = x[n, c, i], \qquad 0 \text{ elsewhere}

**Output size** per spatial dim, torch's ``_unpool_output_size``:
:math:`(n_{in} - 1)\, s + k - 2p`, or ``output_size`` when given, which must lie
strictly within one stride of it.

**Repeated indices** (overlapping pooling windows that picked the same element)
follow torch's CPU kernel, which writes the values in order: the *last* one
stays. The gradient is torch's too, a gather:

.. math:: \frac{\partial L}{\partial x[n, c, i]} = g[n, c, \text{index}[n, c, i]]

which gives *every* input sharing an index that output's gradient, although only
the last one reached it (the exact derivative of the others is 0). With distinct
indices, the usual case, the two agree. ``indices`` are integers: no gradient.

Every rank is computed on flat planes, ``(N*C, plane)``: the indices are
already flat, so the spatial rank only decides the output size.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import as_float_array
from .conv import _tuple

__all__ = [
    "max_unpool1d", "max_unpool1d_backward", "max_unpool2d", "max_unpool2d_backward",
    "max_unpool3d", "max_unpool3d_backward",
]  # fmt: skip


def _check_inputs(input, indices, nd, layer):
    """A floating input with torch's ranks and int64 indices of its shape."""
    input = as_float_array(input, layer)
    indices = np.asarray(indices)
    if indices.dtype != np.int64:
        raise TypeError(
            f"{layer}: indices must be int64, as max_pool{nd}d(return_indices=True) returns "
            f"them, got dtype {indices.dtype}; cast them with .astype(np.int64)"
        )
    if input.ndim not in (nd + 1, nd + 2) or 0 in input.shape[-nd - 1 :]:
        raise ValueError(
            f"{layer}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"non-empty except for the batch, got shape {input.shape}"
        )
    if indices.shape != input.shape:
        raise ValueError(
            f"{layer}: indices must have the input's shape {input.shape}, got {indices.shape}"
        )
    return input, indices


def _output_size(input_size, kernel, stride, padding, output_size, layer):
    """Torch's ``_unpool_output_size``: the default, or a checked ``output_size``."""
    nd = len(kernel)
    default = [(n - 1) * s + k - 2 * p for n, k, s, p in zip(input_size, kernel, stride, padding)]
    if output_size is None:
        sizes = default
    else:
        if not hasattr(output_size, "__len__"):
            raise TypeError(f"{layer}: output_size must be a sequence, got {output_size!r}")
        sizes = list(output_size)[2:] if len(output_size) == nd + 2 else list(output_size)
        if len(sizes) != nd:
            raise ValueError(
                f"{layer}: output_size should be a sequence containing {nd} or {nd + 2} "
                f"elements, but it has a length of {len(output_size)}"
            )
        if any(isinstance(o, bool) or not isinstance(o, (int, np.integer)) for o in sizes):
            raise TypeError(f"{layer}: output_size must hold ints, got {output_size!r}")
        for d, (o, s) in enumerate(zip(sizes, stride)):
            if not default[d] - s < o < default[d] + s:
                raise ValueError(
                    f"{layer}: invalid output_size {tuple(output_size)} (dim {d} must be "
                    f"between {default[d] - s} and {default[d] + s}, exclusive)"
                )
    for d, o in enumerate(sizes):
        if o < 0:
            raise ValueError(
                f"{layer}: output_size must contain non-negative spatial dimensions, but got "
                f"output_size[{d}]={o} (kernel_size={kernel}, stride={stride}, "
                f"padding={padding}, input spatial size {tuple(input_size)})"
            )
    return tuple(int(o) for o in sizes)


def _geometry(input, indices, kernel_size, stride, padding, output_size, nd, layer):
    """Validate; return input, indices, and the output's spatial size."""
    input, indices = _check_inputs(input, indices, nd, layer)
    kernel = _tuple(kernel_size, nd, "kernel_size", layer)
    stride = kernel if stride is None else _tuple(stride, nd, "stride", layer)
    padding = _tuple(padding, nd, "padding", layer)
    if nd == 3 and min(stride) <= 0:  # only torch's 3-d kernel checks it
        raise ValueError(f"{layer}: stride must be positive, got {stride}")
    out = _output_size(input.shape[-nd:], kernel, stride, padding, output_size, layer)
    return input, indices, out


def _check_indices(indices: np.ndarray, plane: int, out: tuple, layer: str) -> None:
    bad = (indices < 0) | (indices >= plane)
    if bad.any():
        raise RuntimeError(
            f"{layer}: found an invalid max index {int(indices[bad][0])} (output planes are "
            f"of size {'x'.join(map(str, out))}): indices must come from max pooling an "
            "input of the output's size, with the same kernel_size, stride and padding"
        )


def _max_unpool(input, indices, kernel_size, stride, padding, output_size, nd, layer):
    input, indices, out = _geometry(input, indices, kernel_size, stride, padding, output_size,
                                    nd, layer)  # fmt: skip
    lead = input.shape[:-nd]  # (N, C) or (C,)
    planes, plane = math.prod(lead), math.prod(out)
    output = np.zeros(planes * plane, dtype=input.dtype)
    if output.size == 0:  # torch returns an empty output without looking at the indices
        return output.reshape(*lead, *out)
    _check_indices(indices, plane, out, layer)
    # (..., *spatial) -> (planes, n_in): each value's flat target in the whole output
    target = (indices.reshape(planes, -1) + np.arange(planes)[:, None] * plane).ravel()
    values = input.reshape(-1)
    # torch writes in order, so the last of a repeated target stays: np.unique on the
    # reversed order finds each target's last writer
    unique, last_first = np.unique(target[::-1], return_index=True)
    output[unique] = values[::-1][last_first]
    return output.reshape(*lead, *out)


def _max_unpool_backward(grad_output, input, indices, kernel_size, stride, padding,
                         output_size, nd, layer):  # fmt: skip
    input, indices, out = _geometry(input, indices, kernel_size, stride, padding, output_size,
                                    nd, layer)  # fmt: skip
    lead = input.shape[:-nd]
    g = np.asarray(grad_output)
    if g.shape != (*lead, *out):
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {(*lead, *out)}, "
            f"got {g.shape}"
        )
    planes, plane = math.prod(lead), math.prod(out)
    if input.size == 0:
        return np.zeros(input.shape, dtype=g.dtype)
    _check_indices(indices, plane, out, layer)  # torch's gather refuses them too
    # a gather, torch's rule: (planes, plane) picked at (planes, n_in) -> input's shape
    picked = np.take_along_axis(g.reshape(planes, plane), indices.reshape(planes, -1), axis=1)
    return picked.reshape(input.shape)


def max_unpool3d(
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    r"""3-d max unpooling: each value to its flat index ``(t * H + h) * W + w``.

    Shapes: ``(N, C, D, H, W)`` or ``(C, D, H, W)`` with int64 ``indices`` of the
    same shape -> ``(N, C, Do, Ho, Wo)``, :math:`(n - 1) s + k - 2p` per dim or
    ``output_size`` (3 values, or 5 whose last 3 are used); ``stride`` defaults to
    ``kernel_size``. Torch: ``torch.nn.functional.max_unpool3d``.
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 3,
                       "max_unpool3d")  # fmt: skip


def max_unpool3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    r"""Gradient of :func:`max_unpool3d` wrt its input: a gather at the indices.

    .. math:: \frac{\partial L}{\partial x[n, c, i]} = g[n, c, \text{index}[n, c, i]]
    """
    return _max_unpool_backward(grad_output, input, indices, kernel_size, stride, padding,
                                output_size, 3, "max_unpool3d")  # fmt: skip


def max_unpool2d(
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    r"""2-d max unpooling: each value to its flat index ``h * W + w``.

    Shapes: ``(N, C, H, W)`` or ``(C, H, W)`` -> ``(N, C, Ho, Wo)``.
    Torch: ``torch.nn.functional.max_unpool2d``.
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 2,
                       "max_unpool2d")  # fmt: skip


def max_unpool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    r"""Gradient of :func:`max_unpool2d`: :math:`\partial L/\partial x_i = g[\text{index}_i]`."""
    return _max_unpool_backward(grad_output, input, indices, kernel_size, stride, padding,
                                output_size, 2, "max_unpool2d")  # fmt: skip


def max_unpool1d(
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    r"""1-d max unpooling: each value to its position ``index`` in the output signal.

    Shapes: ``(N, C, L)`` or ``(C, L)`` -> ``(N, C, L_o)``.
    Torch: ``torch.nn.functional.max_unpool1d``.
    """
    return _max_unpool(input, indices, kernel_size, stride, padding, output_size, 1,
                       "max_unpool1d")  # fmt: skip


def max_unpool1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    indices: np.ndarray,
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    output_size: Any = None,
) -> np.ndarray:
    r"""Gradient of :func:`max_unpool1d`: :math:`\partial L/\partial x_i = g[\text{index}_i]`."""
    return _max_unpool_backward(grad_output, input, indices, kernel_size, stride, padding,
                                output_size, 1, "max_unpool1d")  # fmt: skip
