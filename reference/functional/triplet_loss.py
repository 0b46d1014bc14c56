r"""The triplet margin loss as a forward/backward pair (``torch.nn.functional``), with the
p-norm distance it is built on.

:math:`\ell_i = \max(0, d(a_i, p_i) - d(a_i, n_i) + m)` with torch's
``pairwise_distance``: eps added to the difference, not to the norm. The hinge passes
its gradient at exactly 0 (torch's ``clamp_min``); a tie in the swap's ``min`` splits
it in half.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_same_shape
from .loss import _reduce, _reduce_backward
from .margin_loss import _check_three

__all__ = ["triplet_margin_loss", "triplet_margin_loss_backward"]


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
