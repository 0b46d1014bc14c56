r"""Bags of embeddings, forward and backward (``torch.nn.functional.embedding_bag``).

A bag is a run of indices; its output is the sum, mean or max of the rows they look up:

.. math:: y_b = \bigoplus_{i \in \text{bag } b,\ i_k \ne \text{padding\_idx}} w_k\, W_{i_k}

with :math:`\oplus` = sum (weights :math:`w_k` = ``per_sample_weights``, else 1), mean
(divided by the bag's count of non-padding indices) or elementwise max. Bags come from a
2-D input ``(B, L)`` (each row one bag) or a 1-D input with ``offsets``, the start of each
bag (``include_last_offset``: one more entry, the end of the last bag, as in CSR). Every
position is mapped to its bag once, and each reduction is one unbuffered segment op
(``np.add.at``, ``np.maximum.at``) over all positions: no loop over bags.

An empty bag (or one holding only ``padding_idx``) gives zeros, in every mode, and no
gradient. Max mode's gradient goes, per feature, to the row that attained the max, the
first such position in the bag on a tie (torch scans the bag with a strict ``>``).
``max_norm`` renormalises the looked-up rows of ``weight`` **in place** before the
lookup, as torch does (outside autograd). The indices and offsets are integers and have
no gradient.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import as_float_array
from .embedding import INDEX_DTYPES, embedding_renorm_, normalize_padding_idx

__all__ = ["embedding_bag", "embedding_bag_backward"]


class Mode(enum.Enum):
    SUM = "sum"
    MEAN = "mean"
    MAX = "max"


@dataclass(frozen=True)
class Bags:
    """The positions of a flattened input, each mapped to its bag."""

    indices: np.ndarray  # (P,) the row each position looks up
    bag: np.ndarray  # (P,) the bag each position belongs to
    kept: np.ndarray  # (P,) bool: not padding_idx, so it enters its bag
    num_bags: int
    shape: tuple[int, ...]  # the input's shape, for per_sample_weights' gradient


def parse_mode(mode: Any, scale_grad_by_freq: bool, sparse: bool, layer: str) -> Mode:
    """``mode`` as a :class:`Mode`; max mode refuses what torch's refuses."""
    try:
        parsed = Mode(mode)
    except ValueError:
        raise ValueError(f"{layer}: mode has to be one of sum, mean or max, got {mode!r}") from None
    if parsed is Mode.MAX and scale_grad_by_freq:
        raise ValueError(
            f"{layer}: max mode does not support scaling the gradient by the frequency"
        )
    if parsed is Mode.MAX and sparse:
        raise ValueError(f"{layer}: max mode does not support sparse weights")
    return parsed


def _check_index_array(x: Any, what: str, layer: str) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype not in INDEX_DTYPES:
        raise TypeError(
            f"{layer}: {what} must be an int32 or int64 array, got dtype {array.dtype} with "
            f"shape {array.shape}; cast it with .astype(np.int64)"
        )
    return array


def _bag_starts(offsets: Any, numel: int, include_last_offset: bool, layer: str) -> np.ndarray:
    """The start of each bag of a 1-D input, checked (torch's checks, plus order: torch
    reads unordered offsets, or too few of them, out of bounds)."""
    if offsets is None:
        raise ValueError(f"{layer}: offsets has to be a 1D array for a 1-D input, got None")
    offsets = _check_index_array(offsets, "offsets", layer).astype(np.int64)
    if offsets.ndim != 1 or offsets.size < 1 + include_last_offset:
        need = "two entries (include_last_offset)" if include_last_offset else "one entry"
        raise ValueError(
            f"{layer}: offsets has to be a 1-D array of at least {need}, got shape {offsets.shape}"
        )
    if offsets[0] != 0:
        raise ValueError(
            f"{layer}: offsets[0] has to be 0 (the first bag starts at position "
            f"0), got {offsets[0]}"
        )
    if offsets[-1] > numel or np.any(np.diff(offsets) < 0):
        raise ValueError(
            f"{layer}: offsets must be non-decreasing and at most the input's "
            f"length {numel}, got {offsets.tolist()}"
        )
    if include_last_offset and offsets[-1] != numel:
        # torch's CPU and CUDA kernels end the last bag at the input's end whatever this
        # says; the documented contract is that it equals the input's length
        raise ValueError(
            f"{layer}: with include_last_offset, offsets[-1] ({offsets[-1]}) "
            f"must equal the input's length {numel}"
        )
    return offsets[:-1] if include_last_offset else offsets


def make_bags(
    input: Any,
    weight: np.ndarray,
    offsets: Any,
    include_last_offset: bool,
    padding_idx: int | None,
    layer: str,
) -> Bags:
    """Validate the indices and offsets as torch does and map every position to its bag."""
    indices = _check_index_array(input, "input", layer)
    num = weight.shape[0]
    if indices.size and (indices.min() < 0 or indices.max() >= num):
        raise ValueError(
            f"{layer}: every index must be in [0, {num - 1}] (num_embeddings = {num}), got "
            f"indices from {indices.min()} to {indices.max()}"
        )
    if indices.ndim == 2:
        if offsets is not None:
            raise ValueError(
                f"{layer}: if input is 2-D (B, L), offsets has to be None: each row is one bag"
            )
        if indices.shape[1] == 0:
            raise ValueError(
                f"{layer}: a 2-D input needs bags of length >= 1, got shape {indices.shape}"
            )
        bag = np.repeat(np.arange(indices.shape[0]), indices.shape[1])  # (B*L,)
        num_bags = indices.shape[0]
    elif indices.ndim == 1:
        starts = _bag_starts(offsets, indices.size, include_last_offset, layer)
        # position k belongs to the last bag starting at or before it (empty bags skipped)
        bag = np.searchsorted(starts, np.arange(indices.size), side="right") - 1
        num_bags = starts.size
    else:
        raise ValueError(f"{layer}: input has to be 1-D or 2-D, got shape {indices.shape}")
    flat = indices.reshape(-1).astype(np.int64)  # (B, L) -> (B*L,)
    pad = normalize_padding_idx(padding_idx, num, layer)
    kept = flat != pad if pad is not None else np.ones(flat.shape, bool)
    return Bags(flat, bag, kept, num_bags, indices.shape)


def _check_per_sample_weights(psw: Any, bags: Bags, weight: np.ndarray, mode: Mode, layer: str):
    """``None``, or a flat ``(P,)`` array of the weight's dtype (torch refuses any other)."""
    if psw is None:
        return None
    psw = np.asarray(psw)  # its shape is the input's: _prepare checked it first, as torch
    if mode is not Mode.SUM:
        raise NotImplementedError(
            f"{layer}: per_sample_weights is only supported for mode='sum' (got mode="
            f"'{mode.value}'), as in torch"
        )
    if psw.dtype != weight.dtype:
        raise RuntimeError(
            f"{layer}: per_sample_weights must have the weight's dtype "
            f"{weight.dtype}, got {psw.dtype} (torch refuses the mix too)"
        )
    return psw.reshape(-1)  # (B, L) -> (B*L,)


def _prepare(
    input: Any,
    weight: Any,
    offsets: Any,
    mode: Any,
    scale_grad_by_freq: bool,
    sparse: bool,
    psw: Any,
    include_last_offset: bool,
    padding_idx: int | None,
    layer: str,
) -> tuple[np.ndarray, Mode, Bags, np.ndarray | None]:
    """Every check, in torch's order, then the bags."""
    weight = as_float_array(weight, layer, "weight")
    if weight.ndim != 2:
        raise ValueError(
            f"{layer}: weight has to be 2-D (num_embeddings, embedding_dim), got "
            f"shape {weight.shape}"
        )
    if psw is not None and np.shape(psw) != np.shape(input):
        raise ValueError(
            f"{layer}: per_sample_weights must have the input's shape "
            f"{np.shape(input)}, got {np.shape(psw)}"
        )
    parsed = parse_mode(mode, scale_grad_by_freq, sparse, layer)
    bags = make_bags(input, weight, offsets, include_last_offset, padding_idx, layer)
    return weight, parsed, bags, _check_per_sample_weights(psw, bags, weight, parsed, layer)


def _counts(bags: Bags) -> np.ndarray:
    """``(B,)`` the non-padding indices of each bag: the mean's divisor, 0 for an empty bag."""
    return np.bincount(bags.bag[bags.kept], minlength=bags.num_bags)


def _argmax(bags: Bags, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each bag's elementwise max ``(B, D)`` (0 for an empty bag) and the position
    ``(B, D)`` that attained it, the first on a tie (``P`` for an empty bag)."""
    bag, rows = bags.bag[bags.kept], weight[bags.indices[bags.kept]]  # (K,), (K, D)
    positions = np.flatnonzero(bags.kept)  # (K,)
    best = np.full((bags.num_bags, weight.shape[1]), -np.inf, dtype=weight.dtype)
    np.maximum.at(best, bag, rows)
    first = np.full(best.shape, bags.indices.size)  # P: no position
    at_max = np.where(rows == best[bag], positions[:, None], bags.indices.size)  # (K, D)
    np.minimum.at(first, bag, at_max)
    best[_counts(bags) == 0] = 0  # empty bags: torch's zeros
    return best, first


def embedding_bag(
    input: np.ndarray,
    weight: np.ndarray,
    offsets: np.ndarray | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: np.ndarray | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> np.ndarray:
    r"""Sum, mean or max of the embeddings of each bag.

    .. math:: y_b = \frac{1}{c_b^{\,m}} \sum_{k \in b,\ i_k \ne \text{pad}} w_k W_{i_k}
              \quad\text{or}\quad y_{bd} = \max_{k \in b,\ i_k \ne \text{pad}} W_{i_k d}

    (:math:`c_b` the bag's non-padding count, :math:`m = 1` for the mean, else 0).
    Shapes: input ``(B, L)`` (offsets ``None``) or ``(P,)`` with offsets ``(B,)``
    (``(B + 1,)`` with ``include_last_offset``), int32/int64; weight ``(num_embeddings,
    D)``; per_sample_weights as input, ``mode='sum'`` only -> ``(B, D)``. ``max_norm``
    renormalises ``weight`` in place (:func:`~reference.functional.embedding_renorm_`).
    ``scale_grad_by_freq`` and ``sparse`` only affect the backward. Torch:
    ``torch.nn.functional.embedding_bag``.
    """
    weight, mode_, bags, psw = _prepare(
        input,
        weight,
        offsets,
        mode,
        scale_grad_by_freq,
        sparse,
        per_sample_weights,
        include_last_offset,
        padding_idx,
        "embedding_bag",
    )
    if max_norm is not None:
        embedding_renorm_(weight, bags.indices, max_norm, norm_type)
    if mode_ is Mode.MAX:
        return _argmax(bags, weight)[0]
    rows = weight[bags.indices[bags.kept]]  # (K, D)
    if psw is not None:
        rows = rows * psw[bags.kept][:, None]  # (K,) -> (K, 1)
    out = np.zeros((bags.num_bags, weight.shape[1]), dtype=weight.dtype)
    np.add.at(out, bags.bag[bags.kept], rows)  # in position order, as torch adds them
    if mode_ is Mode.MEAN:
        counts = _counts(bags)
        out /= np.maximum(counts, 1).astype(out.dtype)[:, None]  # empty bags stay 0
    return out


def _scales(bags: Bags, mode: Mode, scale_grad_by_freq: bool, psw, num: int) -> np.ndarray:
    """Each kept position's factor on its bag's gradient, in float64 as torch's kernel
    computes it (``double scale``): its weight, over its index's count in the whole input
    (``scale_grad_by_freq``), over its bag's count (mean)."""
    scale = np.ones(int(bags.kept.sum()))
    if psw is not None:
        scale = scale * psw[bags.kept]
    if scale_grad_by_freq:
        freq = np.bincount(bags.indices, minlength=num)  # (num_embeddings,)
        scale = scale / freq[bags.indices[bags.kept]]
    if mode is Mode.MEAN:
        scale = scale / _counts(bags)[bags.bag[bags.kept]]
    return scale


def _max_backward(g: np.ndarray, bags: Bags, weight: np.ndarray) -> np.ndarray:
    """Max mode: feature ``d`` of bag ``b``'s gradient to the row its max came from."""
    _, first = _argmax(bags, weight)
    hit = first < bags.indices.size  # (B, D): the bag was not empty
    features = np.broadcast_to(np.arange(weight.shape[1]), first.shape)  # (B, D)
    grad_weight = np.zeros_like(weight)
    np.add.at(grad_weight, (bags.indices[first[hit]], features[hit]), g[hit])
    return grad_weight


def embedding_bag_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    offsets: np.ndarray | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: np.ndarray | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> tuple[None, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`embedding_bag`: ``(None, grad_weight, grad_per_sample_weights)``.

    ``None`` for the integer indices. With :math:`g_b` the upstream gradient of bag
    :math:`b`, each non-padding position :math:`k` of it sends to row :math:`i_k`

    .. math:: \frac{\partial L}{\partial W_{i_k}} \mathrel{+}= \frac{w_k}{f_{i_k}^{\,s}
              c_b^{\,m}}\, g_b, \qquad \frac{\partial L}{\partial w_k} = g_b \cdot W_{i_k}

    (:math:`f_i` the count of index :math:`i` in the whole input, :math:`s = 1` with
    ``scale_grad_by_freq``; :math:`m = 1` for the mean); in max mode, :math:`g_{bd}` goes
    to feature :math:`d` of the argmax row only. ``padding_idx`` positions get nothing
    (:math:`\partial L/\partial w_k = 0` too). ``weight`` is the table the forward used (after
    its ``max_norm`` renorm, which is not differentiated and is not redone here). Dense,
    whatever ``sparse`` says. ``grad_per_sample_weights`` is ``None`` without them.
    """
    name = "embedding_bag_backward"
    weight, mode_, bags, psw = _prepare(
        input,
        weight,
        offsets,
        mode,
        scale_grad_by_freq,
        sparse,
        per_sample_weights,
        include_last_offset,
        padding_idx,
        name,
    )
    g = as_float_array(grad_output, name, "grad_output")
    if g.shape != (bags.num_bags, weight.shape[1]):
        raise ValueError(
            f"{name}: grad_output must have the output's shape "
            f"{(bags.num_bags, weight.shape[1])}, got {g.shape}"
        )
    if mode_ is Mode.MAX:
        return None, _max_backward(g, bags, weight), None
    scale = _scales(bags, mode_, scale_grad_by_freq, psw, weight.shape[0])
    contributions = g[bags.bag[bags.kept]] * scale.astype(g.dtype)[:, None]  # (K, D)
    grad_weight = np.zeros_like(weight)
    np.add.at(grad_weight, bags.indices[bags.kept], contributions)
    if psw is None:
        return None, grad_weight, None
    grad_psw = np.zeros(bags.indices.shape, dtype=weight.dtype)  # padding positions: 0
    kept_rows = weight[bags.indices[bags.kept]]  # (K, D)
    grad_psw[bags.kept] = np.einsum("kd,kd->k", g[bags.bag[bags.kept]], kept_rows)
    return None, grad_weight, grad_psw.reshape(bags.shape)  # (P,) -> the input's shape
