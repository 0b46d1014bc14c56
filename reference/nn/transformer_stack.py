r"""The stacks of Transformer layers (``torch.nn.TransformerEncoder``, ``TransformerDecoder``,
``Transformer``).

A stack is ``num_layers`` deep copies of one layer (``layers.0``, ``layers.1``... as
torch's ``_get_clones``) and an optional final ``norm``:

.. math::
    \text{encoder: } h_0 = x,\ h_{i+1} = \mathrm{Enc}_i(h_i),\ y = \mathrm{norm}(h_n);\qquad
    \text{decoder: } h_{i+1} = \mathrm{Dec}_i(h_i, m)

Backward runs the layers in reverse. Every decoder layer reads the same memory ``m``, so
:math:`g_m = \sum_i g_m^{(i)}`. ``Transformer`` is ``decoder(tgt, encoder(src))``; its
backward sends the decoder's memory gradient into the encoder and returns
``(grad_src, grad_tgt)``.

torch's inference fast path (eval, no autograd, ``batch_first``...) and its nested-tensor
conversion under a ``src_key_padding_mask`` compute the same math on the positions that
are not padded; torch returns 0 (then the final norm of 0) at padded positions there,
the reference always computes the plain (slow-path) formula.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from .containers import ModuleList
from .init import resolve_dtype, resolve_rng
from .init_functions import xavier_uniform_
from .module import Module
from .normalization import LayerNorm
from .transformer import TransformerDecoderLayer, TransformerEncoderLayer

__all__ = ["TransformerEncoder", "TransformerDecoder", "Transformer"]


def as_reference_layer(layer: Any, cls: type) -> Module:
    """``layer`` itself if it is a reference ``cls``; a layer built from its configuration
    if it is another library's (duck-typed: torch's module tests pass torch layers). Its
    weights are not read: load them through ``state_dict``, as for any module."""
    if isinstance(layer, cls):
        return layer  # type: ignore[return-value]
    built: Any
    try:
        attn, dtype = layer.self_attn, str(layer.linear1.weight.dtype).removeprefix("torch.")
        built = cls(attn.embed_dim, attn.num_heads, layer.linear1.out_features,
                    layer.dropout.p, layer.activation, layer.norm1.eps,
                    attn.batch_first, layer.norm_first, layer.linear1.bias is not None,
                    dtype=resolve_dtype(dtype))  # fmt: skip
    except AttributeError as error:
        raise TypeError(
            f"expected a reference.nn.{cls.__name__} (or a layer with its attributes), got "
            f"{type(layer).__name__}: {error}"
        ) from None
    return built.train(bool(getattr(layer, "training", True)))


def _seq_len(x: np.ndarray, batch_first: bool) -> int:
    return x.shape[0] if x.ndim == 2 else x.shape[1 if batch_first else 0]


def _detect_is_causal_mask(mask: Any, is_causal: bool | None, size: int) -> bool:
    """torch's ``_detect_is_causal_mask``: the hint if given, else whether ``mask`` is the
    square subsequent mask (``-inf`` above the diagonal; ``True`` there for a bool mask)."""
    if is_causal is not None or mask is None:
        return is_causal is True
    mask = np.asarray(mask)
    causal = np.triu(np.ones((size, size), bool), k=1)
    if mask.shape != causal.shape:
        return False
    if mask.dtype == bool:
        return bool(np.array_equal(mask, causal))
    return bool(np.array_equal(mask, np.where(causal, -np.inf, 0.0)))


def _grad(module: Module, grad_output: Any, shape: tuple[int, ...]) -> np.ndarray:
    g = as_float_array(grad_output, type(module).__name__, "grad_output")
    if g.shape != shape:
        raise ValueError(
            f"{type(module).__name__}.backward: grad_output must have the output's shape "
            f"{shape}, got {g.shape}"
        )
    return g


class TransformerEncoder(Module):
    """``torch.nn.TransformerEncoder``: ``num_layers`` copies of ``encoder_layer``, then
    ``norm``. ``use_nested_tensor`` is set as torch sets it (torch's warning when it is
    switched off is not repeated: the reference has no nested-tensor path)."""

    def __init__(self, encoder_layer: Any, num_layers: int, norm: Module | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):  # fmt: skip
        super().__init__()
        layer = as_reference_layer(encoder_layer, TransformerEncoderLayer)
        self.layers = ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check
        attn = layer.self_attn
        self.use_nested_tensor = enable_nested_tensor and not (
            layer.norm_first or not attn.batch_first or not attn._qkv_same_embed_dim
            or attn.in_proj_bias is None or not layer.activation_relu_or_gelu
            or layer.norm1.eps != layer.norm2.eps or attn.num_heads % 2 == 1
        )  # fmt: skip
        self._cache: tuple[int, ...] | None = None

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        src = as_float_array(src, type(self).__name__, "src")
        if not len(self.layers):
            raise RuntimeError("TransformerEncoder: num_layers must be at least 1")
        first = self.layers[0]
        is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, first.batch_first))
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                        is_causal=is_causal)  # fmt: skip
        if self.norm is not None:
            out = self.norm(out)
        self._cache = out.shape
        return out

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        g = _grad(self, grad_output, self._require_cache(self._cache))
        if self.norm is not None:
            g = self.norm.backward(g)
        for layer in reversed(list(self.layers)):
            g = layer.backward(g)
        return g


class TransformerDecoder(Module):
    """``torch.nn.TransformerDecoder``: ``num_layers`` copies of ``decoder_layer`` reading
    the same ``memory``, then ``norm``; backward returns ``(grad_tgt, grad_memory)``."""

    def __init__(self, decoder_layer: Any, num_layers: int, norm: Module | None = None):
        super().__init__()
        layer = as_reference_layer(decoder_layer, TransformerDecoderLayer)
        self.layers = ModuleList([copy.deepcopy(layer) for _ in range(num_layers)])
        self.num_layers, self.norm = num_layers, norm
        self._cache: tuple[int, ...] | None = None

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None,
                tgt_is_causal=None, memory_is_causal=False):  # fmt: skip
        tgt = as_float_array(tgt, type(self).__name__, "tgt")
        if not len(self.layers):
            raise RuntimeError("TransformerDecoder: num_layers must be at least 1")
        size = _seq_len(tgt, self.layers[0].batch_first)
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, size)
        out = tgt
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask,
                        tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)  # fmt: skip
        if self.norm is not None:
            out = self.norm(out)
        self._cache = out.shape
        return out

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray, Any]:
        g = _grad(self, grad_output, self._require_cache(self._cache))
        if self.norm is not None:
            g = self.norm.backward(g)
        g_memory = None
        for layer in reversed(list(self.layers)):
            g, g_m = layer.backward(g)
            g_memory = g_m if g_memory is None else g_memory + g_m
        return g, g_memory


class Transformer(Module):
    """``torch.nn.Transformer``: an encoder (with a final ``LayerNorm``) and a decoder (with
    one); every parameter with more than one dimension re-drawn xavier-uniform, as torch's
    ``_reset_parameters``. ``forward(src, tgt, ...)`` returns the decoder's output;
    ``backward(grad_output)`` returns ``(grad_src, grad_tgt)``."""

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: Any = F.relu, custom_encoder: Any = None, custom_decoder: Any = None,
                 layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                batch_first, norm_first, bias)  # fmt: skip
        norm = dict(eps=layer_norm_eps, bias=bias, dtype=dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(*args, dtype=dtype, rng=rng)
            self.encoder = TransformerEncoder(layer, num_encoder_layers, LayerNorm(d_model, **norm))
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(*args, dtype=dtype, rng=rng)
            self.decoder = TransformerDecoder(
                decoder_layer, num_decoder_layers, LayerNorm(d_model, **norm)
            )
        for p in self.parameters():
            if p.data.ndim > 1:
                xavier_uniform_(p, generator=rng)
        self.d_model, self.nhead, self.batch_first = d_model, nhead, batch_first

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None):
        """``(sz, sz)``: ``-inf`` above the diagonal, 0 elsewhere (float32 by default)."""
        return np.triu(np.full((sz, sz), -np.inf, resolve_dtype(dtype)), k=1)

    def _check(self, src: np.ndarray, tgt: np.ndarray) -> None:
        batch = 0 if self.batch_first else 1
        if src.ndim == 3 and (tgt.ndim < 2 or tgt.shape[batch] != src.shape[batch]):
            raise RuntimeError(
                f"Transformer: the batch number of src and tgt must be equal, got src "
                f"{src.shape} and tgt {tgt.shape} (batch dim {batch})"
            )
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError(
                f"Transformer: the feature number of src and tgt must be equal to d_model = "
                f"{self.d_model}, got src {src.shape} and tgt {tgt.shape}"
            )

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):  # fmt: skip
        src = as_float_array(src, "Transformer", "src")
        tgt = as_float_array(tgt, "Transformer", "tgt")
        self._check(src, tgt)
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)  # fmt: skip
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal,
                            memory_is_causal=memory_is_causal)  # fmt: skip

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad_tgt, grad_memory = self.decoder.backward(grad_output)
        return self.encoder.backward(grad_memory), grad_tgt
