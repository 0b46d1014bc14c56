r"""``MultiheadAttention`` (``torch.nn.MultiheadAttention``), following torch's
``multi_head_attention_forward``: project, split into heads, attend, merge, project.

.. math::
    q = x_q W_q^\top + b_q,\ k = x_k W_k^\top + b_k,\ v = x_v W_v^\top + b_v;\quad
    O_h = \mathrm{softmax}(q_h k_h^\top / \sqrt{d_h} + M)\, v_h;\quad
    y = [O_1 \dots O_H] W_o^\top + b_o

``backward(grad_attn_output)`` runs that chain backwards
(:func:`reference.functional.attention.attention_core_backward`). The attention
weights output is not differentiated through. If one array is passed as query, key
and value, its gradient is the sum of the three returned ones (the caller sums).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import as_float_array, check_dtypes
from ..functional.attention import (
    additive_mask,
    attention_core_backward,
    attention_dropout_factor,
    attention_probs,
)
from ..functional.dropout import check_p, dropout_mask
from .init import resolve_dtype, resolve_rng
from .init_functions import xavier_normal_, xavier_uniform_
from .linear import Linear
from .module import Module, Parameter

# Not exported yet: tests/reference/test_module_db.py's ``_positional`` drops unbound
# defaults, so torch's own samples (attn_mask given, need_weights not) reach torch's
# forward with attn_mask in need_weights' place and torch raises. Import it from here.
__all__ = ["MultiheadAttention"]


def _float_mask(mask: Any, name: str, dtype: np.dtype) -> np.ndarray | None:
    """torch's ``_canonical_mask``: bool ``True`` = masked out -> :math:`-\\infty`."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return np.where(mask, -np.inf, 0.0).astype(dtype)
    if mask.dtype.kind != "f":
        raise TypeError(  # torch: AssertionError
            f"MultiheadAttention: only bool and floating types of {name} are supported, "
            f"got {mask.dtype}"
        )
    return mask.astype(dtype, copy=False)


def _rows(x: np.ndarray) -> np.ndarray:
    """``(N, L, F) -> (N L, F)``: one 2-D product runs several times faster than NumPy's
    batched 3-D one."""
    return x.reshape(-1, x.shape[-1])


def _times(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """``x @ w (+ b)`` for ``x (N, L, F)``, ``w (F, G)``, as one 2-D product -> ``(N, L, G)``."""
    y = _rows(x) @ w  # (N L, F) @ (F, G)
    if b is not None:
        y = y + b
    return y.reshape(*x.shape[:-1], w.shape[-1])


class MultiheadAttention(Module):
    """``torch.nn.MultiheadAttention``; parameters, init and ``state_dict`` as torch's.

    ``in_proj_weight (3E, E)`` (or ``q_proj_weight (E, E)``, ``k_proj_weight (E, kdim)``,
    ``v_proj_weight (E, vdim)`` when kdim/vdim differ from E) xavier-uniform;
    ``in_proj_bias (3E,)`` and ``out_proj.bias`` zero; ``bias_k``, ``bias_v (1, 1, E)``
    xavier-normal; ``out_proj`` a :class:`Linear` with its default weight init.
    Dropout (training, ``dropout > 0``) acts on the attention probabilities ``(N, H, L, S')``
    (``S'`` with the bias_k and zero keys): each training forward draws a keep-mask from
    ``rng`` unless one was imposed as ``module.mask`` (bool, broadcastable to that shape;
    used once, then cleared, as :mod:`reference.nn.dropout` does); ``last_mask`` keeps
    the one used. Torch's own draw cannot be read back, so a differential run imposes it.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"MultiheadAttention: embed_dim and num_heads must be greater than 0, got "
                f"embed_dim={embed_dim} and num_heads={num_heads} instead"
            )
        if embed_dim // num_heads * num_heads != embed_dim:
            raise ValueError(
                f"MultiheadAttention: embed_dim must be divisible by num_heads, got "
                f"embed_dim={embed_dim}, num_heads={num_heads}"
            )
        rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.dropout = check_p(dropout, "MultiheadAttention")
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first, self.head_dim = batch_first, embed_dim // num_heads
        self.add_zero_attn = add_zero_attn
        E = embed_dim
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(np.empty((E, E), dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * E, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype, rng=rng)
        if add_bias_kv:
            self.bias_k = Parameter(np.empty((1, 1, E), dtype))
            self.bias_v = Parameter(np.empty((1, 1, E), dtype))
        else:
            self.register_parameter("bias_k", None)
            self.register_parameter("bias_v", None)
        for w in self._proj_weights():
            xavier_uniform_(w, generator=rng)
        if self.out_proj.bias is not None:
            self.out_proj.bias.data[...] = 0.0
        if add_bias_kv:
            xavier_normal_(self.bias_k, generator=rng)
            xavier_normal_(self.bias_v, generator=rng)
        self.rng = rng
        self.mask: np.ndarray | None = None
        self._unbatched = False  # of the last forward: an unbatched kpm is (S,)
        self.last_mask: np.ndarray | None = None
        self._cache: dict | None = None

    def _proj_weights(self) -> list[Parameter]:
        if self._qkv_same_embed_dim:
            return [self.in_proj_weight]
        return [self.q_proj_weight, self.k_proj_weight, self.v_proj_weight]

    def _split_weights(self) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
        E = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight.data
            weights = [w[:E], w[E : 2 * E], w[2 * E :]]
        else:
            weights = [p.data for p in self._proj_weights()]
        b = None if self.in_proj_bias is None else self.in_proj_bias.data
        biases: list[np.ndarray | None] = [None, None, None]
        if b is not None:
            biases = [b[:E], b[E : 2 * E], b[2 * E :]]
        return weights, biases

    def _to_nle(self, x: np.ndarray, name: str, width: int, batched: bool) -> np.ndarray:
        if x.ndim != (3 if batched else 2) or x.shape[-1] != width:
            raise RuntimeError(
                f"{self!r}: {name} must be {'(N, L, E)/(L, N, E)' if batched else '(L, E)'} "
                f"with last dim {width} (as query's rank says), got {x.shape}"
            )
        if not batched:
            return x[None]  # (L, E) -> (1, L, E)
        return x if self.batch_first else np.swapaxes(x, 0, 1)  # (L, N, E) -> (N, L, E)

    def _from_nle(self, x: np.ndarray, batched: bool) -> np.ndarray:
        if not batched:
            return x[0]  # (1, L, E) -> (L, E)
        return x if self.batch_first else np.swapaxes(x, 0, 1)  # (N, L, E) -> (L, N, E)

    def _heads(self, x: np.ndarray) -> np.ndarray:
        n, length, _ = x.shape  # (N, L, E) -> (N, L, H, hd) -> (N, H, L, hd)
        return x.reshape(n, length, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _merge(self, x: np.ndarray) -> np.ndarray:
        n, _, length, _ = x.shape  # (N, H, L, hd) -> (N, L, H, hd) -> (N, L, E)
        return x.transpose(0, 2, 1, 3).reshape(n, length, self.embed_dim)

    def _mask(self, attn_mask, key_padding_mask, n, L, S, pad, dtype) -> np.ndarray | None:
        """The additive mask ``(N, H, L, S + pad)`` (or broadcastable), or ``None``."""
        mask = _float_mask(attn_mask, "attn_mask", dtype)
        if mask is not None:
            want = {2: (L, S), 3: (n * self.num_heads, L, S)}
            if mask.ndim not in want:
                raise RuntimeError(f"attn_mask's dimension {mask.ndim} is not supported")
            if mask.shape != want[mask.ndim]:
                raise RuntimeError(
                    f"The shape of the {mask.ndim}D attn_mask is {mask.shape}, but should be "
                    f"{want[mask.ndim]}."
                )
            # (L, S) or (N*H, L, S) -> (N or 1, H or 1, L, S), padded with 0 for the extra keys
            mask = mask.reshape((1, 1, L, S) if mask.ndim == 2 else (n, self.num_heads, L, S))
            mask = np.pad(mask, [(0, 0)] * 3 + [(0, pad)])
        kpm = _float_mask(key_padding_mask, "key_padding_mask", dtype)
        if kpm is not None:
            if kpm.shape != (n, S) and not (kpm.shape == (S,) and self._unbatched):
                raise RuntimeError(
                    f"{self!r}: expected key_padding_mask of shape {(n, S)} (or ({S},) "
                    f"unbatched), got {kpm.shape}"
                )
            kpm = np.pad(kpm.reshape(n, 1, 1, S), [(0, 0)] * 3 + [(0, pad)])  # (N, 1, 1, S')
            mask = kpm if mask is None else mask + kpm
        return mask

    def _project(self, xq, xk, xv) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """In-projections, bias_k/bias_v, heads, the zero key: ``(N, H, L|S', hd)`` each."""
        weights, biases = self._split_weights()
        q, k, v = (_times(x, w.T, b) for x, w, b in zip((xq, xk, xv), weights, biases))
        n, E = xq.shape[0], self.embed_dim
        if self.bias_k is not None:  # one more key: (N, S, E) -> (N, S + 1, E)
            k = np.concatenate([k, np.broadcast_to(self.bias_k.data[0], (n, 1, E))], axis=1)
            v = np.concatenate([v, np.broadcast_to(self.bias_v.data[0], (n, 1, E))], axis=1)
        qh, kh, vh = self._heads(q), self._heads(k), self._heads(v)
        if self.add_zero_attn:  # (N, H, S', hd) -> (N, H, S' + 1, hd)
            zeros = np.zeros(kh.shape[:2] + (1, self.head_dim), kh.dtype)
            kh, vh = np.concatenate([kh, zeros], axis=2), np.concatenate([vh, zeros], axis=2)
        return qh, kh, vh

    def _inputs(self, query, key, value) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray]:
        query = as_float_array(query, repr(self), "query")
        key = as_float_array(key, repr(self), "key")
        value = as_float_array(value, repr(self), "value")
        batched = query.ndim == 3
        xq = self._to_nle(query, "query", self.embed_dim, batched)
        xk = self._to_nle(key, "key", self.kdim, batched)
        xv = self._to_nle(value, "value", self.vdim, batched)
        if xk.shape[:2] != xv.shape[:2] or xk.shape[0] != xq.shape[0]:
            raise RuntimeError(
                f"{self!r}: key {key.shape} and value {value.shape} must match (and the "
                f"batch must match query's {query.shape})"
            )
        check_dtypes(query, {"in_proj": self._split_weights()[0][0]}, repr(self), "mat1")
        return batched, xq, xk, xv

    def _dropout(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """The keep-mask factor ``D / (1 - p)`` over ``(N, H, L, S')`` in training."""
        if not self.training or self.dropout == 0:
            self.last_mask = None
            return None
        mask = self.mask if self.mask is not None else dropout_mask(shape, self.dropout, self.rng)
        factor = attention_dropout_factor(self.dropout, mask, shape, None, dtype)
        self.mask, self.last_mask = None, np.asarray(mask)
        return factor

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):  # fmt: skip
        """``(attn_output, attn_weights or None)``, shapes as torch's (``(L, E)`` unbatched)."""
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        batched, xq, xk, xv = self._inputs(query, key, value)
        self._unbatched = not batched
        qh, kh, vh = self._project(xq, xk, xv)
        n, L, S = xq.shape[0], xq.shape[1], xk.shape[1]
        scale = 1.0 / math.sqrt(self.head_dim)
        scores = (qh @ np.swapaxes(kh, -1, -2)) * scale  # (N, H, L, hd) @ (N, H, hd, S')
        # torch drops attn_mask for SDPA's is_causal when it needs neither weights nor kpm
        causal = is_causal and key_padding_mask is None and not need_weights
        if causal:
            mask = additive_mask(None, True, scores.shape, scores.dtype)
        else:
            mask = self._mask(attn_mask, key_padding_mask, n, L, S, kh.shape[2] - S, scores.dtype)
        if mask is not None:
            scores = scores + mask
        # torch's weights path uses plain softmax (NaN rows), its SDPA path _safe_softmax
        probs = attention_probs(scores, safe=not need_weights)
        factor = self._dropout(probs.shape, probs.dtype)
        dropped = probs if factor is None else probs * factor  # torch returns these weights
        attended = dropped @ vh  # (N, H, L, S') @ (N, H, S', hd)
        out = self.out_proj(self._merge(attended))
        self._cache = dict(x=(xq, xk, xv), heads=(qh, kh, vh), probs=probs, scale=scale,
                           S=S, batched=batched, proj_w=self._split_weights()[0],
                           factor=factor, attended=attended)  # fmt: skip
        attn = None
        if need_weights:
            attn = dropped.mean(axis=1) if average_attn_weights else dropped  # (N, [H,] L, S')
            attn = attn if batched else attn[0]
        return self._from_nle(out, batched), attn

    def backward(self, grad_attn_output: np.ndarray) -> tuple[np.ndarray, ...]:
        c = self._require_cache(self._cache)
        g = as_float_array(grad_attn_output, repr(self), "grad_attn_output")
        xq, xk, xv = c["x"]
        expected = self._from_nle(np.empty_like(xq), c["batched"]).shape
        if g.shape != expected:
            raise ValueError(
                f"{self!r}.backward: grad must have the output's shape {expected}, got {g.shape}"
            )
        g = self._to_nle(g, "grad_attn_output", self.embed_dim, c["batched"])
        g_merged = self.out_proj.backward(g)  # (N, L, E)
        qh, kh, vh = c["heads"]
        gq, gk, gv = attention_core_backward(self._heads(g_merged), qh, kh, vh, c["probs"],
                                             c["factor"], c["scale"], c["attended"])  # fmt: skip
        S, E = c["S"], self.embed_dim
        s_b = S + (self.bias_k is not None)
        gq = self._merge(gq)
        gk, gv = self._merge(gk[:, :, :s_b]), self._merge(gv[:, :, :s_b])  # drop the zero key
        if self.bias_k is not None:
            self.bias_k.accumulate_grad(gk[:, S:].sum(axis=0, keepdims=True).reshape(1, 1, E))
            self.bias_v.accumulate_grad(gv[:, S:].sum(axis=0, keepdims=True).reshape(1, 1, E))
            gk, gv = gk[:, :S], gv[:, :S]
        grads = [gq, gk, gv]
        g_w = [_rows(gp).T @ _rows(x) for gp, x in zip(grads, (xq, xk, xv))]  # (E, NL) @ (NL, F)
        if self._qkv_same_embed_dim:
            self.in_proj_weight.accumulate_grad(np.concatenate(g_w, 0))
        else:
            for p, gw in zip(self._proj_weights(), g_w):
                p.accumulate_grad(gw)
        if self.in_proj_bias is not None:
            self.in_proj_bias.accumulate_grad(np.concatenate([gp.sum(axis=(0, 1)) for gp in grads]))
        dtype = xq.dtype
        return tuple(self._from_nle(_times(gp, w).astype(dtype, copy=False), c["batched"])
                     for gp, w in zip(grads, c["proj_w"]))  # fmt: skip

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
