r"""The triplet margin losses as forward/backward pairs (``torch.nn.functional``), with the
p-norm distance they are built on.

:math:`\ell_i = \max(0, d(a_i, p_i) - d(a_i, n_i) + m)` with torch's
``pairwise_distance``: eps added to the difference, not to the norm. The hinge passes
its gradient at exactly 0 (torch's ``clamp_min``); a tie in the swap's ``min`` splits
it in half. ``triplet_margin_with_distance_loss`` takes any distance, given with its
backward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import as_float_array, check_reduction, check_same_shape
from .loss import _reduce, _reduce_backward
from .margin_loss import _check_three

__all__ = [
    "triplet_margin_loss", "triplet_margin_loss_backward",
    "triplet_margin_with_distance_loss", "triplet_margin_with_distance_loss_backward",
]  # fmt: skip

Distance = Callable[[np.ndarray, np.ndarray], np.ndarray]
DistanceBackward = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _norm(u: np.ndarray, p: float) -> np.ndarray:
    """:math:`\\|u\\|_p` over the last dim (``p = 0``: the count of non-zeros), in float64
    and rounded once, as torch's CPU norm accumulates float32 (in 1-D it is then ``|u|``)."""
    a = np.abs(u).astype(np.float64)
    if p != 0 and u.shape[-1] == 1:  # |u| exactly, as torch; (|u|^p)^(1/p) may round off
        norm = a[..., 0]
    elif p == np.inf:
        norm = a.max(axis=-1)
    elif p == 0:
        norm = (a != 0).sum(axis=-1).astype(np.float64)
    elif p == 1:
        norm = a.sum(axis=-1)
    elif p == 2:
        norm = np.sqrt((a * a).sum(axis=-1))
    else:
        norm = (a**p).sum(axis=-1) ** (1 / p)
    return norm.astype(u.dtype)


def _norm_backward(u: np.ndarray, norm: np.ndarray, p: float) -> np.ndarray:
    """:math:`\\partial\\|u\\|_p/\\partial u` as torch's ``linalg_vector_norm_backward``:
    0 at a zero norm; ``inf`` splits evenly among the tied largest entries."""
    n = norm[..., None]
    if p == 0:
        return np.zeros_like(u)
    if p == 1:
        return np.sign(u)
    if p == np.inf:
        mask = np.abs(u) == n
        return np.sign(u) * mask / mask.sum(axis=-1, keepdims=True)
    safe = np.where(n == 0, 1, n)
    if p == 2:
        return np.where(n == 0, 0, u / safe)
    a = np.abs(u)
    with np.errstate(divide="ignore"):  # 0 ** (p - 1) for p < 1, masked below
        powered = np.where(u == 0, 0, a ** (p - 1))
    return np.where(n == 0, 0, np.sign(u) * powered / safe ** (p - 1))


def _triplet_parts(anchor, positive, negative, margin, p, eps, swap, reduction):
    """The three (or two) differences ``x1 - x2 + eps``, their norms, and the swap's choice."""
    name, names = "triplet_margin_loss", ("anchor", "positive", "negative")
    anchor, positive, negative = _check_three(anchor, positive, negative, reduction, name, names)
    check_same_shape(anchor, negative, name, "anchor, negative")
    if not margin > 0:
        raise ValueError(f"{name}: margin must be greater than 0, got {margin!r}")
    if not p >= 0:
        raise ValueError(f"{name}: p must be >= 0 (the reference has no negative p), got {p!r}")
    if anchor.ndim == 0:
        raise ValueError(f"{name}: inputs must be (D,) or (N, D), got 0-d arrays")
    diffs = [anchor - positive + eps, anchor - negative + eps]
    if swap:
        diffs.append(positive - negative + eps)
    norms = [_norm(d, p) for d in diffs]
    share, d_neg = np.ones_like(norms[1]), norms[1]
    if swap:  # torch's min(d_an, d_pn): the gradient to the smaller, half to each on a tie
        share = np.where(norms[1] < norms[2], 1.0, np.where(norms[1] == norms[2], 0.5, 0.0))
        d_neg = np.minimum(norms[1], norms[2])
    return (anchor, positive, negative), diffs, norms, d_neg, share.astype(anchor.dtype)


def triplet_margin_loss(
    anchor: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Triplet loss: the anchor should be nearer the positive than the negative, by ``margin``.

    .. math::
        \ell_i = \max(0, m + d(a_i, p_i) - d(a_i, n_i)), \qquad
        d(x, y) = \|x - y + \epsilon\|_p

    with torch's ``pairwise_distance``, whose ``eps`` is added to the *difference*
    (not to the norm), over the last dim. ``swap`` replaces :math:`d(a, n)` by
    :math:`\min(d(a, n), d(p, n))`. ``margin <= 0`` raises (torch). Shapes: anchor,
    positive and negative ``(D,)`` or ``(N, D)``, the same. Torch:
    ``torch.nn.functional.triplet_margin_loss``.
    """
    args = (anchor, positive, negative, margin, p, eps, swap, reduction)
    (anchor, _, _), _, norms, d_neg, _ = _triplet_parts(*args)
    loss = np.maximum(margin + norms[0] - d_neg, 0)
    return _reduce(loss.astype(anchor.dtype, copy=False), reduction)


def triplet_margin_loss_backward(
    grad_output: np.ndarray,
    anchor: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(grad_anchor, grad_positive, grad_negative)``: where the hinge is :math:`\ge 0`
    (it passes at exactly 0), :math:`\partial d(x, y)/\partial x = \nabla\|u\|_p = -\partial
    d/\partial y`, with :math:`+1` for :math:`d(a, p)` and :math:`-1` for the negative
    distance (shared on a swap tie)."""
    args = (anchor, positive, negative, margin, p, eps, swap, reduction)
    (anchor, _, _), diffs, norms, d_neg, share = _triplet_parts(*args)
    grad_loss = _reduce_backward(grad_output, norms[0].shape, reduction, anchor.dtype)
    s = np.where(margin + norms[0] - d_neg >= 0, grad_loss, 0)
    g_ap = s[..., None] * _norm_backward(diffs[0], norms[0], p)
    g_an = -(s * share)[..., None] * _norm_backward(diffs[1], norms[1], p)
    grad_a, grad_p, grad_n = g_ap + g_an, -g_ap, -g_an
    if swap:
        g_pn = -(s * (1 - share))[..., None] * _norm_backward(diffs[2], norms[2], p)
        grad_p, grad_n = grad_p + g_pn, grad_n - g_pn
    return grad_a.astype(anchor.dtype), grad_p.astype(anchor.dtype), grad_n.astype(anchor.dtype)


# -- with any distance ---------------------------------------------------------------------

_DISTANCE_EPS = 1e-6  # torch.pairwise_distance's default, which the default distance uses


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the gradient of an input NumPy broadcast to ``grad``'s."""
    lead = grad.ndim - len(shape)
    grad = grad.sum(axis=tuple(range(lead))) if lead > 0 else grad
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=stretched, keepdims=True) if stretched else grad


def _pairwise_distance(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    r"""torch's default: ``pairwise_distance(x1, x2)`` = :math:`\|x_1 - x_2 + 10^{-6}\|_2` over
    the last dim (broadcast; a 0-d pair gives :math:`|x_1 - x_2 + 10^{-6}|`)."""
    diff = np.asarray(x1 - x2 + _DISTANCE_EPS)
    return np.abs(diff) if diff.ndim == 0 else _norm(diff, 2)


def _pairwise_distance_backward(grad, x1, x2) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\partial d/\partial x_1 = u / \|u\| = -\partial d/\partial x_2` (0 at u = 0)."""
    diff = np.asarray(x1 - x2 + _DISTANCE_EPS)
    norm = _pairwise_distance(x1, x2)
    if diff.ndim == 0:
        unit = np.sign(diff)
    else:
        unit = _norm_backward(diff, norm, 2)
        grad = np.asarray(grad)[..., None]  # (*) -> (*, 1): one distance per row of D
    g = grad * unit
    return _unbroadcast(g, x1.shape).astype(x1.dtype), _unbroadcast(-g, x2.shape).astype(x2.dtype)


def _check_with_distance(anchor, positive, negative, distance_function, margin, reduction):
    name = "triplet_margin_with_distance_loss"
    check_reduction(reduction, name)  # first, as torch
    if not margin > 0:
        raise ValueError(f"{name}: margin must be greater than 0, got {margin!r}")
    names = ("anchor", "positive", "negative")
    arrays = [as_float_array(x, name, n) for x, n in zip((anchor, positive, negative), names)]
    if len({x.ndim for x in arrays}) != 1:
        shapes = ", ".join(f"{n} {x.shape}" for n, x in zip(names, arrays))
        raise RuntimeError(
            f"{name}: anchor, positive and negative must have the same number of dimensions, "
            f"got {shapes}"
        )
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            f"{name}: distance_function must be callable or None, got {distance_function!r}"
        )
    return arrays, distance_function or _pairwise_distance


def _distances(anchor, positive, negative, distance: Distance, swap: bool):
    """:math:`d(a, p)`, the negative distance (the swap's min), the share of its gradient
    that goes to :math:`d(a, n)`, and the shapes of :math:`d(a, n)` and :math:`d(p, n)`."""
    d_pos, d_neg = (np.asarray(distance(anchor, x)) for x in (positive, negative))
    share, shapes = np.ones_like(d_neg), (d_neg.shape, d_neg.shape)
    if swap:  # torch.minimum: the gradient to the smaller, half to each on a tie
        d_swap = np.asarray(distance(positive, negative))
        share = np.where(d_neg < d_swap, 1.0, np.where(d_neg == d_swap, 0.5, 0.0))
        shapes, d_neg = (d_neg.shape, d_swap.shape), np.minimum(d_neg, d_swap)
    return d_pos, d_neg, share.astype(d_neg.dtype), shapes


def triplet_margin_with_distance_loss(
    anchor: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    *,
    distance_function: Distance | None = None,
    distance_backward: DistanceBackward | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Triplet loss with a distance of the caller's choice.

    .. math::
        \ell = \max(0, m + d(a, p) - d(a, n)), \qquad
        d = \texttt{distance\_function}, \text{ default } \|x - y + 10^{-6}\|_2

    over the last dim (torch's ``pairwise_distance``). ``swap`` uses
    :math:`\min(d(a, n), d(p, n))`. The loss has the distances' shape, then is reduced
    ('mean' over every element). ``distance_backward`` is unused here: the forward
    needs the distance alone. Shapes: anchor, positive and negative of one number of
    dims (torch's check), broadcast as ``distance_function`` broadcasts them.
    Torch: ``torch.nn.functional.triplet_margin_with_distance_loss``.
    """
    (anchor, positive, negative), distance = _check_with_distance(
        anchor, positive, negative, distance_function, margin, reduction
    )
    d_pos, d_neg, _, _ = _distances(anchor, positive, negative, distance, swap)
    loss = np.maximum(margin + d_pos - d_neg, 0)
    return _reduce(loss.astype(np.result_type(d_pos, d_neg), copy=False), reduction)


def _distance_backward_of(distance_function, distance_backward) -> DistanceBackward:
    if distance_function is None:
        return _pairwise_distance_backward
    if distance_backward is None:
        raise TypeError(
            "triplet_margin_with_distance_loss_backward: distance_function "
            f"{getattr(distance_function, '__name__', distance_function)!r} was given without "
            "distance_backward, and the reference cannot differentiate a Python callable; pass "
            "distance_backward=g(grad_d, x1, x2) -> (grad_x1, grad_x2) as well"
        )
    return distance_backward


def triplet_margin_with_distance_loss_backward(
    grad_output: np.ndarray,
    anchor: np.ndarray,
    positive: np.ndarray,
    negative: np.ndarray,
    *,
    distance_function: Distance | None = None,
    distance_backward: DistanceBackward | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(grad_anchor, grad_positive, grad_negative)`` through the distance's own backward.

    Where the hinge is :math:`\ge 0` (it passes at exactly 0, torch's ``clamp_min``),
    :math:`\partial \ell/\partial d(a, p) = 1` and :math:`\partial \ell/\partial d(a, n)
    = -1` (with ``swap``, :math:`-1` to the smaller of :math:`d(a, n), d(p, n)`, half to
    each on a tie); ``distance_backward(grad_d, x1, x2)`` turns each into gradients of
    its two inputs, which add up. A custom ``distance_function`` needs its
    ``distance_backward``, else this raises ``TypeError``.
    """
    backward = _distance_backward_of(distance_function, distance_backward)
    (anchor, positive, negative), distance = _check_with_distance(
        anchor, positive, negative, distance_function, margin, reduction
    )
    d_pos, d_neg, share, (an_shape, pn_shape) = _distances(
        anchor, positive, negative, distance, swap
    )
    hinge = margin + d_pos - d_neg
    grad_loss = _reduce_backward(grad_output, hinge.shape, reduction, hinge.dtype)
    passed = np.where(hinge >= 0, grad_loss, 0)  # clamp_min passes the gradient at 0
    grads: dict[str, Any] = {"a": 0, "p": 0, "n": 0}
    pairs = [("a", "p", _unbroadcast(passed, d_pos.shape)),
             ("a", "n", -_unbroadcast(passed * share, an_shape))]  # fmt: skip
    if swap:
        pairs.append(("p", "n", -_unbroadcast(passed * (1 - share), pn_shape)))
    inputs = {"a": anchor, "p": positive, "n": negative}
    for first, second, grad_d in pairs:
        g1, g2 = backward(grad_d, inputs[first], inputs[second])
        # summed down to each input's shape, should the distance have broadcast them
        grads[first] = grads[first] + _unbroadcast(np.asarray(g1), inputs[first].shape)
        grads[second] = grads[second] + _unbroadcast(np.asarray(g2), inputs[second].shape)
    return tuple(  # type: ignore[return-value]
        np.broadcast_to(grads[k], inputs[k].shape).astype(inputs[k].dtype) for k in "apn"
    )
