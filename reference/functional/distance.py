r"""Distances between two inputs, forward and backward: ``cosine_similarity`` and
``pairwise_distance`` (``torch.nn.functional``).

Both broadcast ``x1`` against ``x2`` as torch does; the backward computes the gradient
at the broadcast shape and sums it back over the dims each input was broadcast along.
Both follow torch's exact formulas, which differ from the textbook ones near zero:

- ``cosine_similarity`` normalises each input separately by :math:`\max(\lVert x\rVert,
  \epsilon)` (torch's ``Distance.cpp``), and clamps in place under ``no_grad``: at the
  clamp the norm's gradient still flows as if unclamped (see
  :func:`cosine_similarity_backward`), which is not the derivative of the forward.
- ``pairwise_distance`` is :math:`\lVert x_1 - x_2 + \epsilon\rVert_p`: ``eps`` is added
  to the difference, not to the norm. Its gradient at a zero difference or a zero norm is
  torch's ``norm_backward``'s choice (0; ``p = inf`` splits among ties).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import normalize_dim
from .rounding import difference

__all__ = [
    "cosine_similarity",
    "cosine_similarity_backward",
    "pairwise_distance",
    "pairwise_distance_backward",
]


def _common(x1: Any, x2: Any, layer: str, integers: np.dtype | None) -> tuple[np.ndarray, ...]:
    """Both inputs broadcast together, in torch's result dtype: the wider float of the two
    (an integer or bool input takes the other's); two integer inputs give ``integers``
    (``None``: torch refuses them)."""
    a, b = np.asarray(x1), np.asarray(x2)
    floats = [x.dtype for x in (a, b) if x.dtype.kind == "f"]
    if any(x.dtype.kind not in "fiub" for x in (a, b)) or (not floats and integers is None):
        raise TypeError(
            f"{layer}: x1 and x2 must be floating arrays (an integer one is cast to the other's "
            f"dtype), got dtypes {a.dtype} and {b.dtype}; cast them with .astype(np.float32)"
        )
    dtype = np.result_type(*floats) if floats else np.dtype(integers)
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{layer}: x1 {a.shape} and x2 {b.shape} do not broadcast: each dim must match "
            "or be 1 (aligned from the right)"
        ) from None
    return tuple(np.broadcast_to(x, shape).astype(dtype) for x in (a, b))


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the dims an input of ``shape`` was broadcast along."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))  # the leading dims it lacked
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def _check_grad(grad_output: Any, expected: tuple[int, ...], layer: str) -> np.ndarray:
    grad_output = np.asarray(grad_output)
    if grad_output.shape != expected:
        raise ValueError(
            f"{layer}: grad_output must have the output's shape {expected}, got {grad_output.shape}"
        )
    return grad_output


def _cosine_parts(x1: Any, x2: Any, dim: int, eps: float, layer: str):
    """Broadcast inputs (at least 1-D), the axis, the norms, the clamped norms, the output."""
    if eps < 0:
        raise ValueError(f"{layer}: eps must be non-negative, got {eps}")
    a, b = _common(x1, x2, layer, None)
    axis = normalize_dim(dim, a.ndim, layer)  # a 0-d input takes dim 0 or -1, as in torch
    a, b = (x.reshape(x.shape or (1,)) for x in (a, b))  # () -> (1,): the one entry is the dim
    n1, n2 = (np.sqrt(np.sum(x * x, axis=axis, keepdims=True)) for x in (a, b))
    eps_ = a.dtype.type(eps)  # torch clamps with eps as a tensor of the inputs' dtype
    c1, c2 = np.maximum(n1, eps_), np.maximum(n2, eps_)
    out = np.sum((a / c1) * (b / c2), axis=axis)  # torch: each input normalised first
    return a, b, axis, (n1, n2), (c1, c2), out


def cosine_similarity(
    x1: np.ndarray, x2: np.ndarray, dim: int = 1, eps: float = 1e-8
) -> np.ndarray:
    r"""Cosine of the angle between ``x1`` and ``x2`` along ``dim``, torch's way:

    .. math:: y = \sum_{\text{dim}} \frac{x_1}{\max(\lVert x_1\rVert_2, \epsilon)}
              \cdot \frac{x_2}{\max(\lVert x_2\rVert_2, \epsilon)}

    (each input clamped separately, so :math:`|y| \le 1`; not the older
    :math:`\langle x_1, x_2\rangle / \max(\lVert x_1\rVert \lVert x_2\rVert, \epsilon)`).
    Shapes: ``x1`` and ``x2`` broadcast to a common shape; ``dim`` is removed from it. 0-d
    inputs take ``dim`` 0 or -1. ``eps`` must be >= 0. Torch:
    ``torch.nn.functional.cosine_similarity``.
    """
    *_, out = _cosine_parts(x1, x2, dim, eps, "cosine_similarity")
    return out


def cosine_similarity_backward(
    grad_output: np.ndarray, x1: np.ndarray, x2: np.ndarray, dim: int = 1, eps: float = 1e-8
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients of :func:`cosine_similarity` wrt ``x1`` and ``x2``, as torch's autograd
    computes them.

    With :math:`n_k = \lVert x_k\rVert`, :math:`c_k = \max(n_k, \epsilon)` and
    :math:`\hat x_k = x_k / c_k`:

    .. math:: \frac{\partial L}{\partial x_1} = \frac{g}{c_1}\Big(\hat x_2
              - y\, \frac{x_1}{n_1}\Big), \qquad
              \frac{\partial L}{\partial x_2} = \frac{g}{c_2}\Big(\hat x_1
              - y\, \frac{x_2}{n_2}\Big)

    (:math:`x/n := 0` at :math:`n = 0`: torch's norm backward). Above the clamp,
    :math:`c = n` and this is the exact derivative. Below it (:math:`0 < n_1 < \epsilon`)
    the true derivative has no second term, since :math:`c_1 = \epsilon` is constant;
    torch keeps it, because it clamps the norm in place under ``no_grad`` and the norm's
    backward still runs. We follow torch. Returns ``(grad_x1, grad_x2)``, each summed
    over the dims its input was broadcast along.
    """
    name = "cosine_similarity_backward"
    a, b, axis, (n1, n2), (c1, c2), out = _cosine_parts(x1, x2, dim, eps, name)
    g = _check_grad(grad_output, out.shape, name)
    g = np.expand_dims(g, axis)  # the reduced dim back, to broadcast along it
    y = np.expand_dims(out, axis)
    unit1 = np.where(n1 == 0, 0, a / np.where(n1 == 0, 1, n1))  # x1 / n1, 0 at n1 = 0
    unit2 = np.where(n2 == 0, 0, b / np.where(n2 == 0, 1, n2))
    # the two terms cancel where x1 and x2 are parallel (one nonzero entry, or x1 = x2):
    # their rounding is sampled at the terms' size (reference.functional.rounding)
    grad1 = g * difference(b / c2, y * unit1) / c1
    grad2 = g * difference(a / c1, y * unit2) / c2
    shape = np.broadcast_shapes(np.shape(x1), np.shape(x2))
    return (
        _unbroadcast(grad1.reshape(shape), np.shape(x1)),  # (1,) -> () for 0-d inputs
        _unbroadcast(grad2.reshape(shape), np.shape(x2)),
    )


def _p_norm(d: np.ndarray, p: float, layer: str) -> np.ndarray:
    r""":math:`\lVert d\rVert_p` over the last dim, keepdims, in ``d``'s dtype, as torch's
    ``norm``: ``p = 0`` counts non-zeros, ``inf``/``-inf`` are max/min of :math:`|d|`,
    and a negative ``p`` gives 0 when an entry is 0."""
    a = np.abs(d)
    if d.shape[-1] == 0 and (np.isinf(p) or p < 0):
        raise ValueError(
            f"{layer}: the {p} norm of an empty last dim is undefined (torch raises: the "
            f"reduction has no identity); got a difference of shape {d.shape}"
        )
    if p == 0:
        return np.count_nonzero(a, axis=-1, keepdims=True).astype(d.dtype)
    if np.isinf(p):
        return a.max(axis=-1, keepdims=True) if p > 0 else a.min(axis=-1, keepdims=True)
    if p == 1:
        return a.sum(axis=-1, keepdims=True)
    if p == 2:
        return np.sqrt(np.sum(a * a, axis=-1, keepdims=True))
    with np.errstate(divide="ignore"):  # 0 ** p = inf for p < 0; its sum ** (1/p) is 0
        return np.sum(a**p, axis=-1, keepdims=True) ** (1 / p)


def _p_norm_backward(g: np.ndarray, d: np.ndarray, norm: np.ndarray, p: float) -> np.ndarray:
    r"""torch's ``norm_backward`` (FunctionsManual.cpp), branch for branch: 0 for ``p = 0``;
    ``sign(d)`` for ``p = 1`` (0 at ``d = 0``); 0 where the norm is 0 for ``p >= 1``;
    ``inf`` splits the gradient evenly among the tied extreme entries."""
    a, sign = np.abs(d), np.sign(d)
    safe_norm = np.where(norm == 0, 1, norm)
    if p == 0:
        return np.zeros_like(d)
    if p == 1:
        return sign * g
    if p == 2:
        return g * np.where(norm == 0, 0, d / safe_norm)
    if np.isinf(p):
        ties = a == norm
        return sign * (g / ties.sum(axis=-1, keepdims=True)) * ties
    if p < 1:  # d = 0 would be 0 * inf: torch masks it to 0; the norm's power is >= 0
        powered = np.where(d == 0, 0, np.where(d == 0, 1, a) ** (p - 1))
        return sign * powered * g * norm ** (1 - p)
    scale = np.where(norm == 0, 0, g / safe_norm ** (p - 1))
    if p < 2:
        return sign * a ** (p - 1) * scale
    return d * a ** (p - 2) * scale


def _difference(x1: Any, x2: Any, eps: float, layer: str) -> np.ndarray:
    """``x1 - x2 + eps`` at the broadcast shape, at least 1-D (a 0-d one is its own last dim)."""
    if np.asarray(x1).dtype == bool or np.asarray(x2).dtype == bool:
        raise TypeError(f"{layer}: x1 - x2 is not defined for bool arrays (torch refuses too)")
    a, b = _common(x1, x2, layer, np.dtype(np.float32))  # ints: torch's default dtype
    d = a - b + a.dtype.type(eps)  # torch adds eps as a scalar of the inputs' dtype
    return d.reshape(d.shape or (1,))  # () -> (1,)


def pairwise_distance(
    x1: np.ndarray, x2: np.ndarray, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> np.ndarray:
    r"""The p-norm of the difference along the last dim, torch's way:

    .. math:: y = \lVert x_1 - x_2 + \epsilon \rVert_p
              = \Big(\sum_{\text{last dim}} |x_1 - x_2 + \epsilon|^p\Big)^{1/p}

    ``p`` is any float: 0 (count of non-zeros), ``inf``, ``-inf``, fractional, negative.
    Shapes: ``x1`` and ``x2`` broadcast; the last dim of the broadcast shape is reduced
    (kept as 1 with ``keepdim``; a 0-d broadcast shape gives a 0-d output). Integer inputs
    promote as in torch. Torch: ``torch.nn.functional.pairwise_distance``.
    """
    d = _difference(x1, x2, eps, "pairwise_distance")
    norm = _p_norm(d, p, "pairwise_distance")
    shape = np.broadcast_shapes(np.shape(x1), np.shape(x2))
    return norm.reshape(_output_shape(shape, keepdim))


def _output_shape(shape: tuple[int, ...], keepdim: bool) -> tuple[int, ...]:
    if not shape:
        return ()
    return shape[:-1] + (1,) if keepdim else shape[:-1]


def pairwise_distance_backward(
    grad_output: np.ndarray,
    x1: np.ndarray,
    x2: np.ndarray,
    p: float = 2.0,
    eps: float = 1e-6,
    keepdim: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Gradients of :func:`pairwise_distance` wrt ``x1`` and ``x2``.

    With :math:`d = x_1 - x_2 + \epsilon` and :math:`y = \lVert d\rVert_p`,

    .. math:: \frac{\partial L}{\partial x_1} = -\frac{\partial L}{\partial x_2}
              = g\, \operatorname{sign}(d)\, \frac{|d|^{p-1}}{y^{p-1}}

    with torch's choices where that is undefined: 0 at :math:`d_i = 0` (``p <= 1``) and
    at :math:`y = 0`; ``p = 0`` has gradient 0 (torch returns none); ``p = \pm\infty``
    sends :math:`g\,\operatorname{sign}(d_i)/k` to each of the :math:`k` entries tied at
    the max (min) :math:`|d_i|`. Returns ``(grad_x1, grad_x2)``, each summed over the dims
    its input was broadcast along.
    """
    name = "pairwise_distance_backward"
    d = _difference(x1, x2, eps, name)
    norm = _p_norm(d, p, name)
    shape = np.broadcast_shapes(np.shape(x1), np.shape(x2))
    g = _check_grad(grad_output, _output_shape(shape, keepdim), name)
    g = g.reshape(norm.shape)  # (*,) or (*, 1) -> (*, 1): broadcasts along the last dim
    grad = _p_norm_backward(g, d, norm, p).reshape(shape)  # (1,) -> () for 0-d inputs
    return _unbroadcast(grad, np.shape(x1)), -_unbroadcast(grad, np.shape(x2))
