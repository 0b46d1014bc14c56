r"""Scaled dot-product attention (``torch.nn.functional.scaled_dot_product_attention``).

Forward, with scale :math:`s` (default :math:`1/\sqrt{E}`) and additive mask :math:`M`
(a float mask as given; a bool mask as 0 where ``True`` = takes part, :math:`-\infty`
elsewhere; ``is_causal``: torch's ``tril`` of ones ``(L, S)`` as a bool mask):

.. math::
    S = Q K^\top s + M, \qquad P = \mathrm{softmax}_{\text{row}}(S), \qquad
    \tilde P = P \odot D / (1 - p), \qquad O = \tilde P V

(:math:`D` the dropout keep-mask, :math:`\tilde P = P` without dropout). Backward:

.. math::
    dV = \tilde P^\top dO, \quad d\tilde P = dO\, V^\top, \quad dP = d\tilde P \odot D/(1-p),
    \quad dS = P \odot \bigl(dP - \mathrm{rowsum}(dP \odot P)\bigr), \quad
    dQ = dS\, K s, \quad dK = dS^\top Q s.

A fully masked row (every score :math:`-\infty`) gives a zero output row and zero
gradients, as torch does on CPU: its math path (``_safe_softmax``, taken for 3-D input)
and its fused flash kernel (taken for 4-D input) both give 0 (measured on torch 2.13,
bool and float masks, float32 and float64; never NaN).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import as_float_array
from .rounding import difference, summed
from .softmax import softmax

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_backward"]

_NAME = "scaled_dot_product_attention"


def _check_shapes(query: np.ndarray, key: np.ndarray, value: np.ndarray, enable_gqa: bool) -> int:
    """Validate ``(..., L, E)``, ``(..., S, E)``, ``(..., S, Ev)``; the GQA group size."""
    for name, x in (("query", query), ("key", key), ("value", value)):
        if x.ndim < 2:
            raise RuntimeError(
                f"{_NAME}: {name} must be at least 2-D (..., seq, dim), got {x.shape}"
            )
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            f"{_NAME}: expected query (..., L, E), key (..., S, E), value (..., S, Ev); got "
            f"{query.shape}, {key.shape}, {value.shape}"
        )
    if key.shape[:-2] != value.shape[:-2] or query.ndim != key.ndim:
        raise RuntimeError(
            f"{_NAME}: query, key and value need the same leading dims; got "
            f"{query.shape}, {key.shape}, {value.shape}"
        )
    group = 1
    if enable_gqa and query.ndim >= 3 and query.shape[-3] != key.shape[-3]:
        hq, hk = query.shape[-3], key.shape[-3]
        if hq % hk != 0:
            raise RuntimeError(
                f"{_NAME}: with enable_gqa the query heads ({hq}) must be a multiple of the "
                f"key/value heads ({hk})"
            )
        group = hq // hk
    lead_k = key.shape[:-3] + (key.shape[-3] * group,) if key.ndim >= 3 else ()
    if query.shape[:-2] != lead_k:
        raise RuntimeError(
            f"{_NAME}: query's leading dims {query.shape[:-2]} do not match key's "
            f"{key.shape[:-2]} (pass enable_gqa=True for fewer key/value heads)"
        )
    return group


def _repeat_heads(x: np.ndarray, group: int) -> np.ndarray:
    # (..., Hk, S, E) -> (..., Hk * group, S, E), each head repeated ``group`` times in a row
    return x if group == 1 else np.repeat(x, group, axis=-3)


def _sum_heads(grad: np.ndarray, group: int) -> np.ndarray:
    if group == 1:
        return grad
    # (..., Hk * group, S, E) -> (..., Hk, group, S, E), summed over the group
    shape = grad.shape[:-3] + (grad.shape[-3] // group, group) + grad.shape[-2:]
    return grad.reshape(shape).sum(axis=-3)


def additive_mask(
    attn_mask: Any, is_causal: bool, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray | None:
    """The float mask added to the scores (``None``: nothing), broadcast to ``shape``."""
    L, S = shape[-2:]
    if is_causal:
        if attn_mask is not None:
            raise RuntimeError(f"{_NAME}: Explicit attn_mask should not be set when is_causal=True")
        attn_mask = np.tril(np.ones((L, S), dtype=bool))
    if attn_mask is None:
        return None
    mask = np.asarray(attn_mask)
    if mask.dtype == bool:
        mask = np.where(mask, 0.0, -np.inf).astype(dtype)  # True takes part
    elif mask.dtype.kind != "f":
        raise TypeError(f"{_NAME}: attn_mask must be bool or floating, got {mask.dtype}")
    try:
        return np.broadcast_to(mask.astype(dtype, copy=False), shape)
    except ValueError:
        raise RuntimeError(
            f"{_NAME}: attn_mask of shape {mask.shape} does not broadcast to the scores' "
            f"shape {shape} (..., L, S)"
        ) from None


def attention_probs(scores: np.ndarray, safe: bool = True) -> np.ndarray:
    """Row softmax of ``scores``; fully :math:`-\\infty` rows give 0 (``safe``, torch's
    ``_safe_softmax``) or NaN (plain softmax, as MultiheadAttention's weights path)."""
    dead = np.all(scores == -np.inf, axis=-1, keepdims=True)
    probs = softmax(np.where(dead, 0.0, scores).astype(scores.dtype, copy=False), dim=-1)
    return np.where(dead, 0.0 if safe else np.nan, probs).astype(scores.dtype, copy=False)


def attention_dropout_factor(
    dropout_p: float, dropout_mask: Any, shape: tuple, rng: Any, dtype: np.dtype
) -> Any:
    """``D / (1 - p)`` in ``dtype`` (``None`` without dropout); ``D`` drawn from ``rng``
    when no ``dropout_mask`` is given."""
    if not 0.0 <= dropout_p <= 1.0:
        raise ValueError(f"{_NAME}: dropout_p must be in [0, 1], got {dropout_p}")
    if dropout_p == 0.0:
        return None
    if dropout_mask is None:
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        dropout_mask = rng.random(shape) >= dropout_p
    mask = np.asarray(dropout_mask)
    try:
        fits = mask.dtype == bool and np.broadcast_shapes(mask.shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{_NAME}: dropout_mask must be a bool array broadcastable to {shape}, got "
            f"{mask.dtype} {mask.shape}"
        )
    factor = mask / (1.0 - dropout_p) if dropout_p < 1.0 else np.zeros(mask.shape)
    return factor.astype(dtype, copy=False)  # in the input's dtype: no silent upcast


def _forward_parts(query, key, value, attn_mask, dropout_p, is_causal, scale, enable_gqa,
                   dropout_mask, rng):  # fmt: skip
    q = as_float_array(query, _NAME, "query")
    k = as_float_array(key, _NAME, "key")
    v = as_float_array(value, _NAME, "value")
    group = _check_shapes(q, k, v, enable_gqa)
    k, v = _repeat_heads(k, group), _repeat_heads(v, group)
    s = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    scores = (q @ np.swapaxes(k, -1, -2)) * s  # (..., L, E) @ (..., E, S) -> (..., L, S)
    scores = scores.astype(q.dtype, copy=False)
    mask = additive_mask(attn_mask, is_causal, scores.shape, q.dtype)
    if mask is not None:
        scores = scores + mask
    probs = attention_probs(scores)
    factor = attention_dropout_factor(float(dropout_p), dropout_mask, probs.shape, rng, q.dtype)
    dropped = probs if factor is None else (probs * factor).astype(q.dtype, copy=False)
    return q, k, v, group, s, probs, factor, dropped


def scaled_dot_product_attention(
    query: np.ndarray,
    key: np.ndarray,
    value: np.ndarray,
    attn_mask: np.ndarray | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    dropout_mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r""":math:`O = \mathrm{softmax}(Q K^\top s + M)\, V` (see the module docstring).

    Shapes: ``query (..., L, E)``, ``key (..., S, E)``, ``value (..., S, Ev)`` with the
    same leading dims (with ``enable_gqa``, key/value may have fewer heads at dim -3,
    each repeated ``Hq / Hk`` times); ``attn_mask`` broadcastable to ``(..., L, S)``;
    output ``(..., L, Ev)``. Dropout (``dropout_p > 0``) multiplies the probabilities by
    a keep-mask over ``(..., L, S)`` scaled by ``1/(1-p)``: pass ``dropout_mask`` (bool)
    to impose one (differential runs impose torch's), else one is drawn from ``rng``
    (a NumPy Generator or a seed). Torch: ``torch.nn.functional.scaled_dot_product_attention``
    (its math path; torch's dropout is always drawn, so it takes no mask).
    """
    parts = _forward_parts(query, key, value, attn_mask, dropout_p, is_causal, scale,
                           enable_gqa, dropout_mask, rng)  # fmt: skip
    q, _, v, _, _, _, _, dropped = parts
    return (dropped @ v).astype(q.dtype, copy=False)  # (..., L, S) @ (..., S, Ev)


def attention_core_backward(
    grad_output: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
    probs: np.ndarray, factor: Any, scale: float, output: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    r"""``(dQ, dK, dV)`` from the forward's pieces (``k``, ``v`` with heads repeated;
    ``output`` the forward's :math:`O`, recomputed if not given).

    The softmax backward :math:`dS = P \circ (dP - D)` needs the row sums
    :math:`D_i = \sum_j P_{ij}\, dP_{ij}`; they equal :math:`\sum_e dO_{ie}\, O_{ie}`
    (substitute :math:`dP = dO\, V^	op` and :math:`O = P V`; with dropout, the kept
    mask's factor cancels the same way), which is how torch's fused CPU and CUDA
    kernels take them (FlashAttention's trick, an :math:`L 	imes E_v` sum instead of
    :math:`L 	imes S`). Taking them the same way makes the rounding of :math:`dP - D`
    the one those kernels have: from two dot products over :math:`E_v`, not zero.
    """
    dropped = probs if factor is None else probs * factor
    if output is None:
        output = dropped @ v  # (..., L, S) @ (..., S, Ev)
    grad_v = np.swapaxes(dropped, -1, -2) @ grad_output  # (..., S, L) @ (..., L, Ev)
    grad_dropped = grad_output @ np.swapaxes(v, -1, -2)  # (..., L, Ev) @ (..., Ev, S)
    grad_probs = grad_dropped if factor is None else grad_dropped * factor
    # dead rows (every key masked) have P = 0, so dS = 0 there
    row_sums = summed(grad_output * output, (-1,))  # (..., L, 1)
    grad_scores = probs * difference(grad_probs, row_sums)
    grad_q = (grad_scores @ k) * scale  # (..., L, S) @ (..., S, E)
    grad_k = (np.swapaxes(grad_scores, -1, -2) @ q) * scale  # (..., S, L) @ (..., L, E)
    return grad_q, grad_k, grad_v


def scaled_dot_product_attention_backward(
    grad_output: np.ndarray,
    query: np.ndarray,
    key: np.ndarray,
    value: np.ndarray,
    attn_mask: np.ndarray | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
    *,
    dropout_mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(grad_query, grad_key, grad_value)`` of :func:`scaled_dot_product_attention`.

    .. math::
        dV = \tilde P^\top dO,\quad dP = dO\,V^\top \odot D/(1-p),\quad
        dS = P \odot (dP - \mathrm{rowsum}(dP \odot P)),\quad dQ = dS\,K s,\quad
        dK = dS^\top Q s

    With ``enable_gqa`` the repeated heads' key/value gradients are summed back onto
    their head. With ``dropout_p > 0`` pass the forward's ``dropout_mask`` (a new draw
    from ``rng`` would differentiate another function). The mask gets no gradient.
    """
    parts = _forward_parts(query, key, value, attn_mask, dropout_p, is_causal, scale,
                           enable_gqa, dropout_mask, rng)  # fmt: skip
    q, k, v, group, s, probs, factor, _ = parts
    g = as_float_array(grad_output, _NAME, "grad_output")
    expected = q.shape[:-1] + (v.shape[-1],)
    if g.shape != expected:
        raise ValueError(
            f"{_NAME}_backward: grad_output must have the output's shape {expected}, got {g.shape}"
        )
    gq, gk, gv = attention_core_backward(g.astype(q.dtype, copy=False), q, k, v, probs, factor, s)
    dtype = q.dtype
    return (gq.astype(dtype, copy=False), _sum_heads(gk, group).astype(dtype, copy=False),
            _sum_heads(gv, group).astype(dtype, copy=False))  # fmt: skip
