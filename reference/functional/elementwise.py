r"""Elementwise and joining ops between two tensors, forward and backward: ``add``, ``sub``,
``mul`` (``torch.add``, ``torch.sub``, ``torch.mul``, which broadcast) and ``cat``
(``torch.cat``).

These are the joins of a network that is not a chain: a residual connection
:math:`x + f(x)`, a gate :math:`x \cdot \sigma(g(x))`, branches concatenated along the
channels. The backward of a broadcasting op computes the gradient at the broadcast shape
and sums it back over the dims each input was broadcast along (its reduction), so each
input gets a gradient of its own shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import normalize_dim

__all__ = [
    "add",
    "add_backward",
    "sub",
    "sub_backward",
    "mul",
    "mul_backward",
    "cat",
    "cat_backward",
    "tile",
    "tile_backward",
]


def _pair(x1: Any, x2: Any, op: str) -> tuple[np.ndarray, np.ndarray]:
    """The two inputs as arrays, checked to broadcast (torch's error otherwise)."""
    a, b = np.asarray(x1), np.asarray(x2)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op}: input {a.shape} and other {b.shape} do not broadcast: each dim must match "
            "or be 1 (aligned from the right)"
        ) from None
    return a, b


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the dims an input of ``shape`` was broadcast along: the leading
    dims it lacked, and its size-1 dims that were stretched."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # (*extra, *shape') -> shape'
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def add(input: Any, other: Any) -> np.ndarray:
    r"""Elementwise sum, broadcasting (``torch.add(input, other)``).

    .. math::
        y = x_1 + x_2, \qquad
        \frac{\partial L}{\partial x_1} = \sum_{\text{bcast}_1} g, \quad
        \frac{\partial L}{\partial x_2} = \sum_{\text{bcast}_2} g

    where :math:`\sum_{\text{bcast}_k}` sums over the dims input :math:`k` was broadcast
    along. Shapes: the inputs broadcast to the output's shape.
    """
    a, b = _pair(input, other, "add")
    return a + b


def add_backward(grad_output: np.ndarray, input: Any, other: Any) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of :func:`add` wrt ``input`` and ``other``, each of its input's shape."""
    a, b = _pair(input, other, "add")
    g = np.asarray(grad_output)
    return _unbroadcast(g, a.shape).astype(a.dtype), _unbroadcast(g, b.shape).astype(b.dtype)


def sub(input: Any, other: Any) -> np.ndarray:
    r"""Elementwise difference, broadcasting (``torch.sub(input, other)``).

    .. math::
        y = x_1 - x_2, \qquad
        \frac{\partial L}{\partial x_1} = \sum_{\text{bcast}_1} g, \quad
        \frac{\partial L}{\partial x_2} = -\sum_{\text{bcast}_2} g
    """
    a, b = _pair(input, other, "sub")
    return a - b


def sub_backward(grad_output: np.ndarray, input: Any, other: Any) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of :func:`sub` wrt ``input`` and ``other``."""
    a, b = _pair(input, other, "sub")
    g = np.asarray(grad_output)
    return _unbroadcast(g, a.shape).astype(a.dtype), (-_unbroadcast(g, b.shape)).astype(b.dtype)


def mul(input: Any, other: Any) -> np.ndarray:
    r"""Elementwise product, broadcasting (``torch.mul(input, other)``).

    .. math::
        y = x_1 x_2, \qquad
        \frac{\partial L}{\partial x_1} = \sum_{\text{bcast}_1} g\, x_2, \quad
        \frac{\partial L}{\partial x_2} = \sum_{\text{bcast}_2} g\, x_1
    """
    a, b = _pair(input, other, "mul")
    return a * b


def mul_backward(grad_output: np.ndarray, input: Any, other: Any) -> tuple[np.ndarray, np.ndarray]:
    """The gradients of :func:`mul` wrt ``input`` and ``other``."""
    a, b = _pair(input, other, "mul")
    g = np.asarray(grad_output)
    return (
        _unbroadcast(g * b, a.shape).astype(a.dtype),
        _unbroadcast(g * a, b.shape).astype(b.dtype),
    )


def cat(tensors: Any, dim: int = 0) -> np.ndarray:
    r"""Concatenation along ``dim`` (``torch.cat(tensors, dim)``).

    .. math::
        y = [x_1; x_2; \dots]_{\text{dim}}, \qquad
        \frac{\partial L}{\partial x_k} = g[\dots, o_k : o_k + n_k, \dots]

    with :math:`o_k` the offset of input :math:`k` along ``dim`` and :math:`n_k` its size
    there: the gradient is sliced back into the pieces. Every input has the same shape
    except along ``dim``.
    """
    arrays = [np.asarray(t) for t in tensors]
    if not arrays:
        raise ValueError("cat: expected a non-empty list of tensors")
    ndim = arrays[0].ndim
    axis = normalize_dim(dim, ndim, "cat")
    for k, a in enumerate(arrays):
        if a.ndim != ndim or a.shape[:axis] + a.shape[axis + 1 :] != (
            arrays[0].shape[:axis] + arrays[0].shape[axis + 1 :]
        ):
            raise ValueError(
                f"cat: tensor {k} has shape {a.shape}, tensor 0 {arrays[0].shape}: sizes must "
                f"match except in dim {dim}"
            )
    return np.concatenate(arrays, axis=axis)


def cat_backward(grad_output: np.ndarray, tensors: Any, dim: int = 0) -> tuple[np.ndarray, ...]:
    """The gradient of :func:`cat` wrt each of ``tensors``: ``grad_output`` sliced."""
    g = np.asarray(grad_output)
    axis = normalize_dim(dim, g.ndim, "cat")
    sizes = [np.shape(t)[axis] for t in tensors]
    bounds = np.cumsum([0, *sizes])
    return tuple(
        np.take(g, np.arange(lo, hi), axis=axis) for lo, hi in zip(bounds[:-1], bounds[1:])
    )


def tile(input: Any, copies: int) -> np.ndarray:
    r""":math:`y_k = x` for :math:`k < K`: ``(*) -> (K, *)``, ``K`` copies stacked along a new
    first dim (``torch.stack([x] * K)``), as a recurrent layer's initial state repeats one
    vector per layer and direction.

    Backward: each copy fed one slice, so :math:`\bar x = \sum_k \bar y_k`.
    """
    x = np.asarray(input)
    if copies < 1:
        raise ValueError(f"tile: copies must be at least 1, got {copies}")
    return np.broadcast_to(x, (copies, *x.shape)).copy()  # (*) -> (K, *)


def tile_backward(grad_output: np.ndarray, input: Any, copies: int) -> np.ndarray:
    """Gradient of :func:`tile`: the copies' gradients summed, ``(K, *) -> (*)``."""
    return np.asarray(grad_output).sum(axis=0)
