"""``EmbeddingBag``: the module around :func:`reference.functional.embedding_bag`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from ..functional.embedding import normalize_padding_idx
from ..functional.embedding_bag import parse_mode
from .init import resolve_dtype, resolve_rng
from .module import Module, Parameter

__all__ = ["EmbeddingBag"]


def _check_size(value: Any, name: str) -> int:
    """A non-negative int: torch builds ``EmbeddingBag(0, 3)`` and ``EmbeddingBag(4, 0)``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"EmbeddingBag: {name} must be a non-negative integer, got {value!r}")
    return int(value)


class EmbeddingBag(Module):
    r"""Sums, means or maxes of bags of embeddings (``torch.nn.EmbeddingBag``).

    ``weight (num_embeddings, embedding_dim)`` starts from torch's default,
    :math:`\mathcal N(0, 1)` with the ``padding_idx`` row zeroed, drawn from ``rng`` (a
    Generator or a seed; keyword-only); ``_weight`` supplies it instead (used as given).
    A negative ``padding_idx`` is stored normalized, as in torch. ``mode`` and its
    restrictions (max mode refuses ``scale_grad_by_freq`` and ``sparse``) are checked at
    construction, where torch checks them at the first forward.

    ``forward(input, offsets=None, per_sample_weights=None)``: a ``(B, L)`` input, or a
    1-D input with ``offsets``; returns ``(B, embedding_dim)``. With ``max_norm`` the
    looked-up rows of ``weight`` are renormalised in place first, as in torch.
    ``backward(grad_output)`` accumulates the (dense) weight gradient and returns
    ``(None, None, grad_per_sample_weights)``, one entry per forward argument: the indices
    and offsets are integers; the last is ``None`` without per-sample weights.
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        mode: str = "mean",
        sparse: bool = False,
        _weight: np.ndarray | None = None,
        include_last_offset: bool = False,
        padding_idx: int | None = None,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        self.num_embeddings = _check_size(num_embeddings, "num_embeddings")
        self.embedding_dim = _check_size(embedding_dim, "embedding_dim")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq = scale_grad_by_freq
        self.padding_idx = normalize_padding_idx(padding_idx, num_embeddings, "EmbeddingBag")
        parse_mode(mode, scale_grad_by_freq, sparse, "EmbeddingBag")
        shape = (self.num_embeddings, self.embedding_dim)
        if _weight is None:
            weight = resolve_rng(rng).standard_normal(shape).astype(resolve_dtype(dtype))
            if self.padding_idx is not None:
                weight[self.padding_idx] = 0
        else:
            weight = np.array(as_float_array(_weight, "EmbeddingBag", "_weight"))  # a copy
            if weight.shape != shape:
                raise ValueError(
                    "EmbeddingBag: shape of _weight does not match (num_embeddings, "
                    f"embedding_dim) = {shape}, got {weight.shape}"
                )
        self.weight = Parameter(weight)
        self.mode, self.sparse, self.include_last_offset = mode, sparse, include_last_offset
        self._cache: tuple[np.ndarray, Any, Any] | None = None

    def _options(self) -> dict[str, Any]:
        return {
            "scale_grad_by_freq": self.scale_grad_by_freq,
            "mode": self.mode,
            "sparse": self.sparse,
            "include_last_offset": self.include_last_offset,
            "padding_idx": self.padding_idx,
        }

    def forward(
        self, input: Any, offsets: Any = None, per_sample_weights: Any = None
    ) -> np.ndarray:
        output = F.embedding_bag(
            input,
            self.weight.data,
            offsets,
            self.max_norm,
            self.norm_type,
            per_sample_weights=per_sample_weights,
            **self._options(),
        )
        self._cache = (np.asarray(input), offsets, per_sample_weights)
        return output

    def backward(self, grad_output: Any) -> tuple[None, None, np.ndarray | None]:
        input, offsets, per_sample_weights = self._require_cache(self._cache)
        # max_norm is not passed: the forward renormalised already, outside autograd
        _, grad_weight, grad_psw = F.embedding_bag_backward(
            grad_output,
            input,
            self.weight.data,
            offsets,
            per_sample_weights=per_sample_weights,
            **self._options(),
        )
        self.weight.accumulate_grad(grad_weight)
        return None, None, grad_psw

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm!r}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type!r}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq!r}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx!r}"
        return s
