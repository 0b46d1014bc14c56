"""``Embedding``: the module around :func:`reference.functional.embedding`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_positive_int
from ..functional.embedding import SparseRows, normalize_padding_idx
from .init import resolve_dtype, resolve_rng
from .module import Module, Parameter

__all__ = ["Embedding"]


def accumulate_grad(param: Parameter, grad: np.ndarray | SparseRows) -> None:
    """Add ``grad`` to ``param.grad``, sparse or dense, as torch's ``AccumulateGrad``.

    ``None`` + g is (a copy of) g; sparse + sparse is sparse, the entries of both
    (:meth:`SparseRows.__add__`); dense + sparse adds in place and stays dense;
    sparse + dense becomes a new dense array. Dense + dense is
    ``Parameter.accumulate_grad``.
    """
    if isinstance(grad, SparseRows):
        if grad.shape != param.shape:
            raise ValueError(
                f"sparse gradient of shape {grad.shape} does not match its parameter of "
                f"shape {param.shape}"
            )
        grad = grad.astype(param.dtype)  # a copy: the caller may keep its own
        if param.grad is None:
            param.grad = grad
        elif isinstance(param.grad, SparseRows):
            param.grad = param.grad + grad
        else:
            param.grad += grad.to_dense()
    elif isinstance(param.grad, SparseRows):
        param.grad = param.grad.to_dense() + np.asarray(grad, dtype=param.dtype)
    else:
        param.accumulate_grad(grad)


class Embedding(Module):
    r"""A lookup table of ``num_embeddings`` vectors of size ``embedding_dim``
    (``torch.nn.Embedding``).

    ``weight (num_embeddings, embedding_dim)`` starts from torch's default,
    :math:`\mathcal N(0, 1)` with the ``padding_idx`` row zeroed, drawn from ``rng``
    (a Generator or a seed; keyword-only). ``_weight`` supplies the table instead
    (used as given, padding row included, as in torch). A negative ``padding_idx``
    counts from the end and is stored normalized, as in torch.

    ``forward(indices)`` takes int32/int64 indices of any shape and returns
    ``(*, embedding_dim)``; with ``max_norm`` it renormalizes the looked-up rows of
    ``weight`` in place first, as torch does. ``backward(grad_output)`` accumulates the
    weight's gradient (scatter-add; nothing for the ``padding_idx`` row; nothing at
    all with ``_freeze=True``, torch's ``requires_grad=False``) and returns ``None``:
    integer indices have no gradient. With ``sparse=True`` the gradient is a
    :class:`reference.functional.embedding.SparseRows`, torch's sparse COO gradient
    (one entry per looked-up position, repeats not summed), accumulated as torch's
    ``AccumulateGrad`` does (see :func:`accumulate_grad`).
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: np.ndarray | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "Embedding", "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "Embedding", "embedding_dim")
        self.padding_idx = normalize_padding_idx(padding_idx, num_embeddings, "Embedding")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse, self._freeze = scale_grad_by_freq, sparse, _freeze
        shape = (num_embeddings, embedding_dim)
        if _weight is None:
            weight = resolve_rng(rng).standard_normal(shape).astype(resolve_dtype(dtype))
            if self.padding_idx is not None:
                weight[self.padding_idx] = 0
        else:
            weight = np.array(as_float_array(_weight, "Embedding", "_weight"))  # a copy
            if weight.shape != shape:
                raise ValueError(
                    f"Embedding: _weight must have shape (num_embeddings, embedding_dim) = "
                    f"{shape}, got {weight.shape}"
                )
        self.weight = Parameter(weight)
        self._indices: np.ndarray | None = None

    @classmethod
    def from_pretrained(
        cls,
        embeddings: np.ndarray,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding holding ``embeddings`` (2-D); ``freeze`` stops its gradient."""
        embeddings = as_float_array(embeddings, "Embedding.from_pretrained", "embeddings")
        if embeddings.ndim != 2:
            raise ValueError(
                "Embedding.from_pretrained: embeddings must be 2-D "
                f"(num_embeddings, embedding_dim), got shape {embeddings.shape}"
            )
        rows, dim = embeddings.shape
        return cls(
            rows,
            dim,
            padding_idx,
            max_norm,
            norm_type,
            scale_grad_by_freq,
            sparse,
            _weight=embeddings,
            _freeze=freeze,
        )

    def _options(self) -> dict[str, Any]:
        return {
            "padding_idx": self.padding_idx,
            "max_norm": self.max_norm,
            "norm_type": self.norm_type,
            "scale_grad_by_freq": self.scale_grad_by_freq,
            "sparse": self.sparse,
        }

    def forward(self, input: np.ndarray) -> np.ndarray:
        output = F.embedding(input, self.weight.data, **self._options())
        self._indices = np.asarray(input)
        return output

    def backward(self, grad_output: np.ndarray) -> None:
        indices = self._require_cache(self._indices)
        expected = indices.shape + (self.embedding_dim,)
        if np.shape(grad_output) != expected:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape "
                f"{expected}, got {np.shape(grad_output)}"
            )
        _, grad_weight = F.embedding_backward(
            grad_output, indices, self.weight.data, **self._options()
        )
        if not self._freeze:
            accumulate_grad(self.weight, grad_weight)
        return None  # the indices are integers: there is no gradient to return

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq is not False:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse is not False:
            s += ", sparse=True"
        return s
