"""Margin (hinge) losses as forward/backward pairs (``torch.nn.functional``).

Multi-class and multi-label hinges, hinge embedding, ranking and cosine embedding
losses (the triplet loss is in ``triplet_loss.py``). Each backward takes
``grad_output``, then what its forward took, and returns the input's gradient, or a
tuple, one per floating input but the ±1 target. Of the ±1 targets only the ranking
loss's has a gradient in torch (it multiplies; hinge and cosine embedding only select
a branch with it): ``margin_ranking_loss_target_backward``.

Kinks follow torch: where a hinge is computed with ``clamp_min`` its gradient passes
at exactly 0 (hinge embedding, ranking, cosine, triplet), where torch's kernel tests
``z > 0`` it does not (multi-margin, multilabel margin); a tie in the triplet swap's
``min`` splits the gradient in half.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_float_array, as_target_array, check_reduction, check_same_shape
from .classification_loss import _check_class_input, _check_class_weight
from .loss import _check_pair, _reduce, _reduce_backward
from .rounding import summed

__all__ = [
    "multi_margin_loss", "multi_margin_loss_backward",
    "multilabel_margin_loss", "multilabel_margin_loss_backward",
    "hinge_embedding_loss", "hinge_embedding_loss_backward",
    "margin_ranking_loss", "margin_ranking_loss_backward", "margin_ranking_loss_target_backward",
    "cosine_embedding_loss", "cosine_embedding_loss_backward",
]  # fmt: skip


def _check_index_target(input, target, multilabel: bool, name: str):
    """A ``(C,)`` or ``(N, C)`` input and its int64 class indices: one per sample in
    ``[0, C)``, or (``multilabel``) a row of the input's shape in ``[-1, C)``."""
    input, _, num_classes = _check_class_input(input, name)
    if input.ndim > 2:
        raise ValueError(f"{name}: input must be (C,) or (N, C), got shape {input.shape}")
    expected, low = (input.shape, -1) if multilabel else (input.shape[:-1], 0)
    target = np.asarray(target)
    if target.dtype != np.int64:
        raise TypeError(f"{name}: target must be int64 class indices, got dtype {target.dtype}")
    if target.shape != expected:
        raise ValueError(f"{name}: target must have shape {expected}, got {target.shape}")
    bad = (target < low) | (target >= num_classes)
    if bad.any():
        raise ValueError(
            f"{name}: target out of range: {target[bad].flat[0]} is not in [{low}, {num_classes})"
        )
    return input, target, num_classes


def _check_multi_margin(input, target, p, weight, reduction):
    name = "multi_margin_loss"
    check_reduction(reduction, name)
    if p not in (1, 2):
        raise ValueError(f"{name}: only p == 1 and p == 2 are supported, got {p!r}")
    input, target, num_classes = _check_index_target(input, target, False, name)
    weight = _check_class_weight(weight, num_classes, name, input.dtype)
    return input, target, weight


def _multi_margin_parts(input, target, margin, weight):
    """``z = margin - x_y + x_c``, where it counts (``z > 0``, ``c != y``), and ``w_y``."""
    picked = np.take_along_axis(input, target[..., None], axis=-1)  # (N, C) -> (N, 1)
    z = margin - picked + input
    classes = np.arange(input.shape[-1])
    active = (z > 0) & (classes != target[..., None])
    w_y = np.ones(target.shape, input.dtype) if weight is None else weight[target]
    return z, active, w_y


def multi_margin_loss(
    input: np.ndarray,
    target: np.ndarray,
    p: int = 1,
    margin: float = 1.0,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Multi-class hinge of class scores :math:`x` against the target class :math:`y`.

    .. math::
        \ell_i = \frac{w_{y_i}}{C} \sum_{c \ne y_i} \max(0, m - x_{i y_i} + x_{ic})^p,
        \qquad p \in \{1, 2\}

    A term at exactly 0 counts as inactive (torch's ``z > 0``). ``'mean'`` divides by
    :math:`N` (not by the weights). Shapes: input ``(C,)`` or ``(N, C)``, target
    ``()`` or ``(N,)`` int64 in :math:`[0, C)`. Torch: ``torch.nn.functional.multi_margin_loss``.
    """
    input, target, weight = _check_multi_margin(input, target, p, weight, reduction)
    z, active, w_y = _multi_margin_parts(input, target, margin, weight)
    hinge = np.where(active, z if p == 1 else z * z, 0)
    # a term per class: their sum's rounding is the error model's to sample (rounding.py)
    loss = w_y * summed(hinge, (-1,))[..., 0] / input.shape[-1]
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def multi_margin_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    p: int = 1,
    margin: float = 1.0,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Each active term :math:`c` gets :math:`s_i w_{y_i} h'_{ic}/C` (:math:`h' = 1` or
    :math:`2z`), and the target class minus their sum; :math:`s_i` is the upstream gradient."""
    input, target, weight = _check_multi_margin(input, target, p, weight, reduction)
    z, active, w_y = _multi_margin_parts(input, target, margin, weight)
    scale = _reduce_backward(grad_output, target.shape, reduction, input.dtype)
    slope = np.where(active, 1 if p == 1 else 2 * z, 0) * (w_y * scale / input.shape[-1])[..., None]
    grad = slope.astype(input.dtype, copy=True)
    picked = -summed(slope, (-1,))  # the target class gathers every active term
    np.put_along_axis(grad, target[..., None], picked.astype(input.dtype), axis=-1)
    return grad


def _multilabel_margin_parts(input, target):
    """``coef[.., j, k]``: how often ``j`` is a target, times ``k`` a non-target and active."""
    name = "multilabel_margin_loss"
    input, target, num_classes = _check_index_target(input, target, True, name)
    valid = np.cumprod(target >= 0, axis=-1).astype(bool)  # the targets before the first -1
    one_hot = (target[..., None] == np.arange(num_classes)) & valid[..., None]  # (N, pos, C)
    count = one_hot.sum(axis=-2).astype(input.dtype)  # (N, C): duplicates count twice
    z = 1 - input[..., :, None] + input[..., None, :]  # (N, j, k)
    coef = count[..., :, None] * (count == 0)[..., None, :] * (z > 0)
    return input, z, coef


def multilabel_margin_loss(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r"""Multi-label hinge: every target class should beat every other class by 1.

    .. math::
        \ell_i = \frac1C \sum_{j \in T_i} \sum_{k \notin T_i} \max(0, 1 - (x_{ij} - x_{ik}))

    :math:`T_i` is read from ``target[i]`` up to its first ``-1``; a class listed
    twice is summed twice, and a term at exactly 0 is inactive (both as torch's
    kernel). Shapes: input ``(C,)`` or ``(N, C)``, target the same, int64 in
    :math:`[-1, C)`. Torch: ``torch.nn.functional.multilabel_margin_loss``.
    """
    check_reduction(reduction, "multilabel_margin_loss")
    input, z, coef = _multilabel_margin_parts(input, target)
    # C^2 terms a sample: their sum's rounding is the error model's to sample (rounding.py)
    loss = summed(coef * z, (-2, -1))[..., 0, 0] / input.shape[-1]
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def multilabel_margin_loss_backward(
    grad_output: np.ndarray, input: np.ndarray, target: np.ndarray, reduction: str = "mean"
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_{ik} = \frac1C \sum_j c_{jk}`, and
    :math:`-\frac1C \sum_k c_{jk}` for a target :math:`j` (:math:`c` the active terms)."""
    input, _, coef = _multilabel_margin_parts(input, target)
    scale = _reduce_backward(grad_output, input.shape[:-1], reduction, input.dtype)
    terms = coef * (scale / input.shape[-1])[..., None, None]  # (N, j, k): each g / C
    # a class gathers g / C from every active pair it is in: sums the error model samples
    grad = summed(terms, (-2,))[..., 0, :] - summed(terms, (-1,))[..., 0]
    return grad.astype(input.dtype, copy=False)


def hinge_embedding_loss(
    input: np.ndarray, target: np.ndarray, margin: float = 1.0, reduction: str = "mean"
) -> np.ndarray:
    r"""Hinge embedding of distances :math:`x` with labels :math:`y \in \{-1, 1\}`.

    .. math::
        \ell_i = [y_i \ne 1] \max(0, m - x_i) + [y_i \ne -1]\, x_i

    (both terms for a label that is neither, as torch's ``where``s). Shapes: input and
    target ``(*)``, the same. Torch: ``torch.nn.functional.hinge_embedding_loss``.
    """
    input, target = _check_pair(input, target, reduction, "hinge_embedding_loss")
    loss = np.where(target != 1, np.maximum(margin - input, 0), 0)
    loss = loss + np.where(target != -1, input, 0)
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def hinge_embedding_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    margin: float = 1.0,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`-[y \ne 1][x \le m] + [y \ne -1]`: at :math:`x = m` the hinge's -1 passes
    (torch's ``clamp_min`` keeps the gradient where its input equals the bound)."""
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    slope = np.where(target != -1, 1, 0) - np.where((target != 1) & (margin - input >= 0), 1, 0)
    return (slope * grad_loss).astype(input.dtype, copy=False)


def _check_three(a, b, c, reduction, name, names=("input1", "input2", "target")):
    check_reduction(reduction, name)
    arrays = [as_float_array(x, name, n) for x, n in zip((a, b), names)]
    arrays.append(as_target_array(c, arrays[0], name, names[2]))  # ints promoted, as torch
    check_same_shape(arrays[0], arrays[1], name, f"{names[0]}, {names[1]}")
    return arrays


def margin_ranking_loss(
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Ranking hinge :math:`\ell_i = \max(0, -y_i (x^1_i - x^2_i) + m)`, :math:`y = \pm 1`
    saying which should rank higher. Shapes: input1, input2 and target ``(*)``, the same
    (torch broadcasts; the reference refuses). Torch: ``torch.nn.functional.margin_ranking_loss``.
    """
    input1, input2, target = _check_three(input1, input2, target, reduction, "margin_ranking_loss")
    check_same_shape(input1, target, "margin_ranking_loss", "input1, target")
    loss = np.maximum(-target * (input1 - input2) + margin, 0)
    return _reduce(loss.astype(input1.dtype, copy=False), reduction)


def margin_ranking_loss_backward(
    grad_output: np.ndarray,
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(grad_input1, grad_input2)`` :math:`= (-y, y)` where the hinge is :math:`\ge 0`
    (the gradient passes at exactly 0, torch's ``clamp_min``), else 0."""
    grad_loss = _reduce_backward(grad_output, input1.shape, reduction, input1.dtype)
    active = _ranking_active(input1, input2, target, margin)
    grad1 = np.where(active, -target * grad_loss, 0).astype(input1.dtype, copy=False)
    return grad1, -grad1


def _ranking_active(input1, input2, target, margin) -> np.ndarray:
    """Where the ranking hinge passes its gradient: :math:`\\ge 0` (torch's ``clamp_min``)."""
    return -target * (input1 - input2) + margin >= 0


def margin_ranking_loss_target_backward(
    grad_output: np.ndarray,
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial y_i = -(x^1_i - x^2_i)` where the hinge is :math:`\ge 0`
    (at exactly 0 too, as for the inputs), else 0; times the reduction's gradient."""
    grad_loss = _reduce_backward(grad_output, input1.shape, reduction, input1.dtype)
    active = _ranking_active(input1, input2, target, margin)
    grad = np.where(active, -(input1 - input2) * grad_loss, 0)
    return grad.astype(input1.dtype, copy=False)


_COSINE_EPS = 1e-12  # torch's EPSILON, added to each squared norm


def _cosine_parts(input1, input2, target, reduction):
    name = "cosine_embedding_loss"
    input1, input2, target = _check_three(input1, input2, target, reduction, name)
    if target.ndim > 1 or input1.ndim != target.ndim + 1:
        raise ValueError(
            f"{name}: a 0-d target goes with 1-D inputs, a 1-D target with 2-D inputs; got "
            f"target {target.shape} and inputs {input1.shape} (multi-target not supported)"
        )
    if input1.shape[:-1] != target.shape:
        raise ValueError(f"{name}: target {target.shape} must have the inputs' batch size")
    square1 = (input1 * input1).sum(axis=-1) + _COSINE_EPS
    square2 = (input2 * input2).sum(axis=-1) + _COSINE_EPS
    denom = np.sqrt(square1 * square2)
    cos = (input1 * input2).sum(axis=-1) / denom
    return input1, input2, target, cos, (square1, square2, denom)


def cosine_embedding_loss(
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Cosine embedding loss of pairs labelled similar (:math:`y = 1`) or not (:math:`-1`).

    .. math::
        \ell_i = \begin{cases} 1 - \cos_i & y_i = 1 \\ \max(0, \cos_i - m) & y_i = -1 \\
                 0 & \text{otherwise} \end{cases}, \qquad
        \cos_i = \frac{x^1_i \cdot x^2_i}{\sqrt{(\|x^1_i\|^2 + \epsilon)(\|x^2_i\|^2 + \epsilon)}}

    with torch's :math:`\epsilon = 10^{-12}`. Shapes: inputs ``(D,)`` with target ``()``,
    or ``(N, D)`` with ``(N,)``. Torch: ``torch.nn.functional.cosine_embedding_loss``.
    """
    input1, _, target, cos, _ = _cosine_parts(input1, input2, target, reduction)
    hinge = np.maximum(cos - margin, 0)
    loss = np.where(target == 1, 1 - cos, 0) + np.where(target == -1, hinge, 0)
    return _reduce(loss.astype(input1.dtype, copy=False), reduction)


def cosine_embedding_loss_backward(
    grad_output: np.ndarray,
    input1: np.ndarray,
    input2: np.ndarray,
    target: np.ndarray,
    margin: float = 0.0,
    reduction: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(grad_input1, grad_input2)`` from :math:`\partial\ell/\partial\cos` (-1, or 1 where
    :math:`\cos \ge m` for :math:`y = -1`) and

    .. math:: \frac{\partial \cos}{\partial x^1} = \frac{x^2}{\text{denom}}
              - \cos \frac{x^1}{\|x^1\|^2 + \epsilon}

    For (anti)parallel inputs (always, in one dim) the two terms cancel to rounding
    noise, which neither side computes the same way.
    """
    input1, input2, target, cos, parts = _cosine_parts(input1, input2, target, reduction)
    square1, square2, denom = parts
    grad_loss = _reduce_backward(grad_output, target.shape, reduction, input1.dtype)
    dcos = np.where(target == 1, -1, 0) + np.where((target == -1) & (cos - margin >= 0), 1, 0)
    s = (dcos * grad_loss)[..., None]
    grad1 = s * (input2 / denom[..., None] - (cos / square1)[..., None] * input1)
    grad2 = s * (input1 / denom[..., None] - (cos / square2)[..., None] * input2)
    return grad1.astype(input1.dtype, copy=False), grad2.astype(input1.dtype, copy=False)
