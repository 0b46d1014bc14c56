r"""Embedding lookup, forward and backward (``torch.nn.functional.embedding``).

The forward gathers rows of a table, :math:`y_{\dots} = W_{i_{\dots}}`; the backward
scatters the upstream gradient back, adding the rows of every position that looked
up the same index:

.. math:: \frac{\partial L}{\partial W_k} = \sum_{\text{positions } p:\ i_p = k} g_p

The indices are integers, so they have no gradient (the backward returns ``None``
for them). ``padding_idx``'s row receives no gradient; ``scale_grad_by_freq``
divides each position's contribution by how often its index occurs in the batch;
``max_norm`` renormalizes the looked-up rows of the table **in place** before the
lookup, as torch does (outside autograd: the renormalization is not differentiated).

With ``sparse=True`` the weight's gradient is not a dense table but a
:class:`SparseRows`: torch's sparse COO gradient, one row of values per looked-up
position (repeats not summed), which ``SparseAdam`` and ``SGD`` consume.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array

__all__ = ["SparseRows", "embedding", "embedding_backward", "embedding_renorm_"]

# torch's embedding kernels take int32 and int64 indices and refuse every other dtype
INDEX_DTYPES = (np.dtype(np.int32), np.dtype(np.int64))


def _check_indices(input: Any, num_embeddings: int, name: str) -> np.ndarray:
    indices = np.asarray(input)
    if indices.dtype not in INDEX_DTYPES:
        raise TypeError(
            f"{name}: indices must be an int32 or int64 array, got dtype {indices.dtype} with "
            f"shape {indices.shape}; cast them with .astype(np.int64)"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= num_embeddings):
        raise ValueError(
            f"{name}: every index must be in [0, {num_embeddings - 1}] (num_embeddings = "
            f"{num_embeddings}), got indices from {indices.min()} to {indices.max()}; negative "
            "indices do not wrap around"
        )
    return indices


def _check_weight(weight: Any, name: str) -> np.ndarray:
    weight = as_float_array(weight, name, "weight")
    if weight.ndim != 2:
        raise ValueError(
            f"{name}: weight must be 2-D (num_embeddings, embedding_dim), got shape {weight.shape}"
        )
    return weight


def normalize_padding_idx(padding_idx: int | None, num_embeddings: int, name: str) -> int | None:
    """A negative ``padding_idx`` counts from the end, as in torch; out of range raises."""
    if padding_idx is None:
        return None
    if not -num_embeddings <= padding_idx < num_embeddings:
        raise ValueError(
            f"{name}: padding_idx must be within num_embeddings, i.e. in "
            f"[{-num_embeddings}, {num_embeddings - 1}], got {padding_idx}"
        )
    return int(padding_idx) % num_embeddings


class SparseRows:
    r"""A gradient that touches only some rows of a table: torch's sparse COO gradient of
    ``Embedding(sparse=True)``'s weight (``sparse_dim = 1``).

    ``indices (k,)`` (int64) are rows of a tensor of ``shape (num_embeddings, *row)``
    and ``values (k, *row)`` their entries; the dense tensor they stand for is

    .. math:: G_r = \sum_{j:\ \text{indices}_j = r} \text{values}_j

    A row may appear several times (*uncoalesced*), as torch's embedding backward
    leaves it: one entry per looked-up position, in the order of the flattened input,
    the ``padding_idx`` positions left out. :meth:`coalesce` sums the repeats into
    sorted unique rows (``Tensor.coalesce``), :meth:`to_dense` gives the table
    (``Tensor.to_dense``), ``a + b`` accumulates (see :meth:`__add__`).
    """

    __slots__ = ("indices", "values", "shape")

    def __init__(self, indices: Any, values: Any, shape: tuple[int, ...]):
        self.indices = np.asarray(indices, dtype=np.int64).reshape(-1)  # (k,)
        self.values = np.asarray(values)
        self.shape = tuple(int(n) for n in shape)
        if self.values.shape != (self.indices.size, *self.shape[1:]):
            raise ValueError(
                f"SparseRows: values must have shape (len(indices),) + shape[1:] = "
                f"{(self.indices.size, *self.shape[1:])}, got {self.values.shape}"
            )

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def nnz(self) -> int:
        """The number of stored rows, repeats counted (torch's ``_nnz()``)."""
        return int(self.indices.size)

    def is_coalesced(self) -> bool:
        """Rows strictly increasing: no repeats, sorted (what :meth:`coalesce` returns)."""
        return bool(np.all(np.diff(self.indices) > 0))

    def coalesce(self) -> SparseRows:
        """Each row once, in increasing order, its repeated entries summed."""
        rows, where = np.unique(self.indices, return_inverse=True)  # (u,), (k,)
        values = np.zeros((rows.size, *self.shape[1:]), dtype=self.dtype)
        np.add.at(values, where, self.values)  # unbuffered: every repeat adds
        return SparseRows(rows, values, self.shape)

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape, dtype=self.dtype)
        np.add.at(dense, self.indices, self.values)
        return dense

    def copy(self) -> SparseRows:
        return SparseRows(self.indices.copy(), self.values.copy(), self.shape)

    def astype(self, dtype: Any) -> SparseRows:
        return SparseRows(self.indices.copy(), self.values.astype(dtype), self.shape)

    def __neg__(self) -> SparseRows:
        return SparseRows(self.indices, -self.values, self.shape)

    def __add__(self, other: SparseRows) -> SparseRows:
        """The entries of both, ``self``'s first: the sum as an uncoalesced tensor.

        This is what a second backward leaves in ``grad``, up to the order of the
        entries: torch's CPU sparse ``add_`` walks the two entry lists like a sorted
        merge and adds pairs it meets with equal rows (``[1, 2] + [2, 1]`` gives rows
        ``[1, 2, 1]``), which is the same tensor stored another way; :meth:`coalesce`
        and :meth:`to_dense` agree with torch's.
        """
        if not isinstance(other, SparseRows) or other.shape != self.shape:
            raise ValueError(
                f"SparseRows: can only add a SparseRows of shape {self.shape}, got "
                f"{getattr(other, 'shape', type(other).__name__)}"
            )
        indices = np.concatenate([self.indices, other.indices])  # (k1 + k2,)
        dtype = np.result_type(self.values, other.values)
        values = np.concatenate([self.values, other.values]).astype(dtype, copy=False)
        return SparseRows(indices, values, self.shape)

    def __setitem__(self, key: Any, value: Any) -> None:
        """Only ``grad[...] = 0``: torch's sparse ``zero_()``, which leaves no entries.

        (``zero_grad(set_to_none=False)`` writes exactly this.)
        """
        if key is not Ellipsis or np.any(value != 0):
            raise TypeError(
                "SparseRows supports only grad[...] = 0 (zeroing drops every entry); "
                "use .to_dense() for a dense array"
            )
        self.indices = self.indices[:0]
        self.values = self.values[:0]

    def __repr__(self) -> str:
        return (
            f"SparseRows(indices={self.indices.tolist()}, shape={self.shape}, dtype={self.dtype})"
        )


def embedding_renorm_(
    weight: np.ndarray, input: np.ndarray, max_norm: float, norm_type: float = 2.0
) -> np.ndarray:
    r"""Scale, **in place**, each row of ``weight`` that ``input`` looks up and whose
    ``norm_type``-norm exceeds ``max_norm``, down to that norm; returns ``weight``.

    .. math:: W_k \leftarrow W_k \cdot \frac{\text{max\_norm}}{\lVert W_k\rVert_p + 10^{-7}}
              \quad\text{if } \lVert W_k\rVert_p > \text{max\_norm}

    Each distinct row is scaled once, however often it is looked up. The
    :math:`10^{-7}` is torch's (``embedding_renorm_``), which takes the norm's value
    as a double and computes the scale in double: so do we. Torch:
    ``torch.embedding_renorm_``.
    """
    rows = np.unique(np.asarray(input).reshape(-1))  # (*) -> (rows,) each index once
    norms = np.linalg.norm(weight[rows], ord=norm_type, axis=1).astype(np.float64)  # (rows,)
    over = norms > max_norm
    scale = max_norm / (norms[over] + 1e-7)
    weight[rows[over]] *= scale.astype(weight.dtype)[:, None]  # (rows,) -> (rows, 1)
    return weight


def embedding(
    input: np.ndarray,
    weight: np.ndarray,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> np.ndarray:
    r"""Look up rows: :math:`y_{\dots} = W_{i_{\dots}}`.

    Shapes: input (integer indices) any shape ``(*)``, weight ``(num_embeddings,
    embedding_dim)`` -> ``(*, embedding_dim)``. Indices must be int32/int64 (else
    ``TypeError``) and in ``[0, num_embeddings)`` (else ``ValueError``). With
    ``max_norm``, ``weight`` is first renormalized **in place** by
    :func:`embedding_renorm_`, as torch does. ``padding_idx``, ``scale_grad_by_freq``
    and ``sparse`` only affect the backward (``sparse``: the weight's gradient is a
    :class:`SparseRows`). Torch: ``torch.nn.functional.embedding``.
    """
    weight = _check_weight(weight, "embedding")
    indices = _check_indices(input, weight.shape[0], "embedding")
    normalize_padding_idx(padding_idx, weight.shape[0], "embedding")
    if max_norm is not None:
        embedding_renorm_(weight, indices, max_norm, norm_type)
    return weight[indices]  # (*) -> (*, embedding_dim)


def embedding_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> tuple[None, np.ndarray | SparseRows]:
    r"""Gradients of :func:`embedding`: ``(None, grad_weight)``.

    ``None`` for the indices: they are integers, not differentiable. The weight's
    gradient is a scatter-add of the rows of ``grad_output``:

    .. math:: \frac{\partial L}{\partial W_k} = \sum_{p:\ i_p = k,\ k \ne \text{padding\_idx}}
              \frac{g_p}{c_k^{\,s}}

    where :math:`c_k` counts the occurrences of :math:`k` in ``input`` and
    :math:`s = 1` with ``scale_grad_by_freq``, else 0. ``max_norm`` does not enter:
    torch renormalizes outside autograd.

    With ``sparse=True`` the scatter-add is left undone: ``grad_weight`` is a
    :class:`SparseRows` of the flattened indices and the rows of ``grad_output``
    ``(P, embedding_dim)``, the ``padding_idx`` positions dropped, exactly torch's
    ``embedding_sparse_backward`` (which refuses ``scale_grad_by_freq``:
    ``RuntimeError``, as here).
    """
    weight = _check_weight(weight, "embedding_backward")
    indices = _check_indices(input, weight.shape[0], "embedding_backward")
    padding_idx = normalize_padding_idx(padding_idx, weight.shape[0], "embedding_backward")
    grad_output = as_float_array(grad_output, "embedding_backward", "grad_output")
    expected = indices.shape + (weight.shape[1],)
    if grad_output.shape != expected:
        raise ValueError(
            f"embedding_backward: grad_output must have the output's shape {expected} "
            f"(indices' shape + (embedding_dim,)), got {grad_output.shape}"
        )
    if sparse and scale_grad_by_freq:
        raise RuntimeError(
            "embedding_backward: scale_grad_by_freq not supported with sparse gradients "
            "(torch refuses it too); use sparse=False or scale_grad_by_freq=False"
        )
    flat = indices.reshape(-1).astype(np.int64)  # (*) -> (P,)
    rows = grad_output.reshape(-1, weight.shape[1])  # (*, D) -> (P, D)
    if scale_grad_by_freq:
        counts = np.bincount(flat, minlength=weight.shape[0])  # (num_embeddings,)
        rows = rows / counts[flat].astype(rows.dtype)[:, None]  # (P,) -> (P, 1)
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, rows = flat[keep], rows[keep]
    if sparse:
        # in the parameter's dtype, as the dense gradient below
        return None, SparseRows(flat, rows.astype(weight.dtype), weight.shape)
    grad_weight = np.zeros_like(weight)  # the parameter's dtype
    np.add.at(grad_weight, flat, rows)  # unbuffered: repeated indices all add up
    return None, grad_weight
