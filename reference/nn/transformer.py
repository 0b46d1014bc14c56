r"""Transformer layers (``torch.nn.TransformerEncoderLayer``, ``TransformerDecoderLayer``).

Both are compositions of modules that already have a hand-written backward:
:class:`MultiheadAttention`, :class:`Linear`, :class:`LayerNorm`, :class:`Dropout` and an
activation. With :math:`\mathrm{SA}(x) = \mathrm{drop_1}(\mathrm{MHA}(x, x, x))`,
:math:`\mathrm{CA}(x, m) = \mathrm{drop_2}(\mathrm{MHA}'(x, m, m))` and
:math:`\mathrm{FF}(x) = \mathrm{drop_{2|3}}(W_2\, \mathrm{drop}(\sigma(W_1 x + b_1)) + b_2)`:

.. math::
    \text{post-norm (default):}\quad x \leftarrow \mathrm{LN_1}(x + \mathrm{SA}(x));\
    [x \leftarrow \mathrm{LN_2}(x + \mathrm{CA}(x, m))];\
    x \leftarrow \mathrm{LN}(x + \mathrm{FF}(x))

    \text{pre-norm (norm_first):}\quad x \leftarrow x + \mathrm{SA}(\mathrm{LN_1}(x));\
    [x \leftarrow x + \mathrm{CA}(\mathrm{LN_2}(x), m)];\
    x \leftarrow x + \mathrm{FF}(\mathrm{LN}(x))

Backward runs the blocks in reverse. A residual :math:`y = x + B(x)` sends
:math:`g_x = g_y + J_B^\top g_y`; a post-norm :math:`y = \mathrm{LN}(x + B(x))` first takes
:math:`g \leftarrow J_{LN}^\top g_y`. Self-attention gets ``x`` as query, key and value, so
its three input gradients are summed; cross-attention's key and value gradients are the
memory's. Dropout masks can be imposed on every dropout (``module.dropout``,
``dropout1``... and each attention's own ``self_attn.mask``), as torch names them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .dropout import Dropout
from .init import resolve_dtype, resolve_rng
from .linear import Linear
from .module import Module
from .normalization import LayerNorm

__all__ = ["TransformerEncoderLayer", "TransformerDecoderLayer"]

# the reference functions torch's layer accepts by name, with their backwards
_FUNCTION_PAIRS = {F.relu: F.relu_backward, F.gelu: F.gelu_backward}
_BY_NAME = {"relu": F.relu, "gelu": F.gelu}


class _FunctionActivation:
    """A reference activation function and its backward, caching the input (not a Module:
    torch does not register a function activation as a submodule)."""

    def __init__(self, function: Any):
        self.function, self.backward_fn = function, _FUNCTION_PAIRS[function]
        self._input: np.ndarray | None = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._input = x
        return self.function(x)

    def backward(self, g: np.ndarray) -> np.ndarray:
        if self._input is None:
            raise RuntimeError("activation backward called before forward")
        return self.backward_fn(g, self._input)


def resolve_activation(activation: Any, layer: str) -> Any:
    """torch's ``activation`` argument as the reference can run it backwards.

    ``"relu"``/``"gelu"`` -> :func:`reference.functional.relu`/``gelu`` (as torch maps the
    strings to ``F.relu``/``F.gelu``); those two functions; or a reference :class:`Module`
    instance (its own backward is used). torch's own relu/gelu (function or module) map to
    the reference's. Any other callable is refused: the reference has no autograd to
    differentiate an arbitrary function.
    """
    if isinstance(activation, str):
        if activation not in _BY_NAME:
            raise RuntimeError(f"activation should be relu/gelu, not {activation}")
        return _BY_NAME[activation]
    if isinstance(activation, Module) or activation in _FUNCTION_PAIRS:
        return activation
    foreign = _foreign_activation(activation)
    if foreign is not None:
        return foreign
    raise TypeError(
        f"{layer}: activation must be 'relu', 'gelu', reference.functional.relu/gelu or a "
        f"reference.nn Module instance (e.g. reference.nn.GELU()), got {activation!r}; a "
        "plain callable has no hand-written backward to run"
    )


def _foreign_activation(activation: Any) -> Any:
    """torch's own ``F.relu``/``F.gelu`` or a ``ReLU``/``GELU`` module (as torch's module
    tests pass them; recognised by name, torch is never imported) -> the reference's."""
    if not str(getattr(type(activation), "__module__", "")).startswith("torch") and not str(
        getattr(activation, "__module__", "")
    ).startswith("torch"):
        return None
    kind = type(activation).__name__
    if kind == "GELU":
        return GELU(approximate=getattr(activation, "approximate", "none"))
    if kind == "ReLU":
        return ReLU()
    return _BY_NAME.get(str(getattr(activation, "__name__", "")))


def _runner(activation: Any) -> Any:
    return activation if isinstance(activation, Module) else _FunctionActivation(activation)


def _relu_or_gelu(activation: Any) -> int:
    """torch's ``activation_relu_or_gelu``: 1 relu, 2 gelu (exact form), 0 otherwise."""
    if activation is F.relu or isinstance(activation, ReLU):
        return 1
    if activation is F.gelu or isinstance(activation, GELU):
        return 2
    return 0


def check_sequence(layer: str, name: str, x: np.ndarray, d_model: int) -> None:
    """``(S, N, E)``/``(N, S, E)`` or unbatched ``(S, E)`` with ``E = d_model``."""
    if x.ndim not in (2, 3) or x.shape[-1] != d_model:
        raise RuntimeError(
            f"{layer}: {name} must be (S, N, E) ((N, S, E) with batch_first) or unbatched "
            f"(S, E) with E = d_model = {d_model}, got shape {x.shape}"
        )


def check_masks(layer, names, attn_mask, kpm, query, key, nhead, batch_first) -> None:
    """Refuse, naming the layer, masks whose shapes the attention would refuse."""
    batched = query.ndim == 3
    n = (query.shape[0] if batch_first else query.shape[1]) if batched else 1
    L = query.shape[1 if batched and batch_first else 0]
    S = key.shape[1 if batched and batch_first else 0]
    if attn_mask is not None:
        shape = np.shape(attn_mask)
        if shape not in ((L, S), (n * nhead, L, S)):
            raise RuntimeError(
                f"{layer}: {names[0]} must be ({L}, {S}) or ({n * nhead}, {L}, {S}) "
                f"(batch * nhead, target length, source length), got {shape}"
            )
    if kpm is not None:
        want = (n, S) if batched else (S,)
        if np.shape(kpm) != want:
            raise RuntimeError(
                f"{layer}: {names[1]} must be {want} (batch, source length; (S,) unbatched), "
                f"got {np.shape(kpm)}"
            )


def _rows(fn: Any, x: np.ndarray) -> np.ndarray:
    """``fn`` (a Linear or its backward) on ``x``'s rows: NumPy runs a 2-D matmul as one
    GEMM but a 3-D one as a GEMM per leading index, several times slower."""
    out = fn(x.reshape(-1, x.shape[-1]))  # (S, N, E) -> (S*N, E)
    return out.reshape(*x.shape[:-1], out.shape[-1])  # (S*N, F) -> (S, N, F)


class _LayerBase(Module):
    """Construction and the feed-forward block both layers share."""

    def _build_ff(self, d_model, dim_feedforward, dropout, bias, dtype, rng):
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype, rng=rng)
        self.dropout = Dropout(dropout, rng=rng)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype, rng=rng)

    def _set_activation(self, activation: Any) -> None:
        self.activation = resolve_activation(activation, type(self).__name__)
        # not registered: a Module activation is already the submodule ``activation``
        # (deepcopy's memo keeps the two names on one object in a copied layer)
        object.__setattr__(self, "_act", _runner(self.activation))

    def _ff(self, x: np.ndarray, last: Dropout) -> np.ndarray:
        h = self.dropout(self._act.forward(_rows(self.linear1, x)))
        return last(_rows(self.linear2, h))

    def _ff_backward(self, g: np.ndarray, last: Dropout) -> np.ndarray:
        g = _rows(self.linear2.backward, last.backward(g))
        return _rows(self.linear1.backward, self._act.backward(self.dropout.backward(g)))

    @staticmethod
    def _block(x, norm, block, norm_first):
        """``x + block(norm(x))`` (pre-norm) or ``norm(x + block(x))`` (post-norm)."""
        return x + block(norm(x)) if norm_first else norm(x + block(x))

    @staticmethod
    def _block_backward(g, norm, block_backward, norm_first):
        """The gradient through one residual block; ``block_backward`` returns its input's."""
        if norm_first:
            return g + norm.backward(block_backward(g))
        g = norm.backward(g)
        return g + block_backward(g)

    def _sa(self, x, attn_mask, kpm, is_causal, attn, drop):
        return drop(attn(x, x, x, key_padding_mask=kpm, need_weights=False,
                         attn_mask=attn_mask, is_causal=is_causal)[0])  # fmt: skip

    def _sa_backward(self, g, attn, drop):
        return sum(attn.backward(drop.backward(g)))  # q, k and v are the same array


def _init_layer(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                batch_first, norm_first, bias, dtype, rng, norms):  # fmt: skip
    rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
    mha = dict(dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype, rng=rng)
    self.self_attn = MultiheadAttention(d_model, nhead, **mha)
    if norms == 3:
        self.multihead_attn = MultiheadAttention(d_model, nhead, **mha)
    self._build_ff(d_model, dim_feedforward, dropout, bias, dtype, rng)
    self.norm_first = norm_first
    for i in range(1, norms + 1):
        setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype))
    for i in range(1, norms + 1):
        setattr(self, f"dropout{i}", Dropout(dropout, rng=rng))
    self._set_activation(activation)
    self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first
    self._cache = None


class TransformerEncoderLayer(_LayerBase):
    r"""``torch.nn.TransformerEncoderLayer``: self-attention then a feed-forward block.

    Sub-modules, attributes and ``state_dict`` keys are torch's (``self_attn``,
    ``linear1``, ``dropout``, ``linear2``, ``norm1``, ``norm2``, ``dropout1``,
    ``dropout2``; ``activation_relu_or_gelu``). ``forward(src, ...)`` is the slow path
    of torch's layer; torch's fused inference kernel (eval, no grad, batch_first...)
    computes the same math. ``backward(grad_output)`` returns ``grad_src``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Any = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device: Any = None, dtype: Any = None, *,
                 rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        _init_layer(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                    batch_first, norm_first, bias, dtype, rng, norms=2)  # fmt: skip
        self.activation_relu_or_gelu = _relu_or_gelu(self.activation)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        """The layer's output, the shape of ``src``."""
        name = type(self).__name__
        src = as_float_array(src, name, "src")
        check_sequence(name, "src", src, self.d_model)
        check_masks(name, ("src_mask", "src_key_padding_mask"), src_mask,
                    src_key_padding_mask, src, src, self.nhead, self.batch_first)  # fmt: skip

        def sa(x):
            return self._sa(x, src_mask, src_key_padding_mask, is_causal, self.self_attn,
                            self.dropout1)  # fmt: skip

        x = self._block(src, self.norm1, sa, self.norm_first)
        out = self._block(x, self.norm2, lambda h: self._ff(h, self.dropout2), self.norm_first)
        self._cache = src.shape
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape = self._require_cache(self._cache)
        g = as_float_array(grad_output, type(self).__name__, "grad_output")
        if g.shape != shape:
            raise ValueError(
                f"{type(self).__name__}.backward: grad_output must have the output's shape "
                f"{shape}, got {g.shape}"
            )
        g = self._block_backward(g, self.norm2, lambda g: self._ff_backward(g, self.dropout2),
                                 self.norm_first)  # fmt: skip
        return self._block_backward(
            g, self.norm1, lambda g: self._sa_backward(g, self.self_attn, self.dropout1),
            self.norm_first,
        )  # fmt: skip


class TransformerDecoderLayer(_LayerBase):
    r"""``torch.nn.TransformerDecoderLayer``: self-attention, cross-attention on ``memory``,
    then a feed-forward block (``self_attn``, ``multihead_attn``, ``linear1``, ``dropout``,
    ``linear2``, ``norm1..3``, ``dropout1..3``, as torch). ``backward(grad_output)``
    returns ``(grad_tgt, grad_memory)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation: Any = F.relu, layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True,
                 device: Any = None, dtype: Any = None, *,
                 rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        _init_layer(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                    batch_first, norm_first, bias, dtype, rng, norms=3)  # fmt: skip

    def _check(self, tgt, memory, masks):
        name = type(self).__name__
        check_sequence(name, "tgt", tgt, self.d_model)
        check_sequence(name, "memory", memory, self.d_model)
        batch = 0 if self.batch_first else 1
        if memory.ndim != tgt.ndim or (tgt.ndim == 3 and memory.shape[batch] != tgt.shape[batch]):
            raise RuntimeError(
                f"{name}: memory {memory.shape} must have tgt's rank and batch size "
                f"(tgt {tgt.shape}, batch dim {batch if tgt.ndim == 3 else None})"
            )
        tm, mm, tk, mk = masks
        check_masks(name, ("tgt_mask", "tgt_key_padding_mask"), tm, tk, tgt, tgt, self.nhead,
                    self.batch_first)  # fmt: skip
        check_masks(name, ("memory_mask", "memory_key_padding_mask"), mm, mk, tgt, memory,
                    self.nhead, self.batch_first)  # fmt: skip

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None,
                tgt_is_causal=False, memory_is_causal=False):  # fmt: skip
        """The layer's output, the shape of ``tgt``."""
        name = type(self).__name__
        tgt, memory = as_float_array(tgt, name, "tgt"), as_float_array(memory, name, "memory")
        self._check(tgt, memory, (tgt_mask, memory_mask, tgt_key_padding_mask,
                                  memory_key_padding_mask))  # fmt: skip

        def sa(x):
            return self._sa(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal, self.self_attn,
                            self.dropout1)  # fmt: skip

        def ca(x):
            return self.dropout2(self.multihead_attn(
                x, memory, memory, key_padding_mask=memory_key_padding_mask, need_weights=False,
                attn_mask=memory_mask, is_causal=memory_is_causal)[0])  # fmt: skip

        x = self._block(tgt, self.norm1, sa, self.norm_first)
        x = self._block(x, self.norm2, ca, self.norm_first)
        out = self._block(x, self.norm3, lambda h: self._ff(h, self.dropout3), self.norm_first)
        self._cache = (tgt.shape, memory.shape)
        return out

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shape, memory_shape = self._require_cache(self._cache)
        g = as_float_array(grad_output, type(self).__name__, "grad_output")
        if g.shape != shape:
            raise ValueError(
                f"{type(self).__name__}.backward: grad_output must have the output's shape "
                f"{shape}, got {g.shape}"
            )
        g = self._block_backward(g, self.norm3, lambda g: self._ff_backward(g, self.dropout3),
                                 self.norm_first)  # fmt: skip
        g_memory = []

        def ca_backward(g):
            gq, gk, gv = self.multihead_attn.backward(self.dropout2.backward(g))
            g_memory.append(gk + gv)  # memory is both key and value
            return gq

        g = self._block_backward(g, self.norm2, ca_backward, self.norm_first)
        g = self._block_backward(
            g, self.norm1, lambda g: self._sa_backward(g, self.self_attn, self.dropout1),
            self.norm_first,
        )  # fmt: skip
        return g, g_memory[0]
