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
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array

__all__ = ["embedding", "embedding_backward", "embedding_renorm_"]

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
    and ``sparse`` only affect the backward (``sparse`` not even that: the reference
    gradient is always dense). Torch: ``torch.nn.functional.embedding``.
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
) -> tuple[None, np.ndarray]:
    r"""Gradients of :func:`embedding`: ``(None, grad_weight)``.

    ``None`` for the indices: they are integers, not differentiable. The weight's
    gradient is a scatter-add of the rows of ``grad_output``:

    .. math:: \frac{\partial L}{\partial W_k} = \sum_{p:\ i_p = k,\ k \ne \text{padding\_idx}}
              \frac{g_p}{c_k^{\,s}}

    where :math:`c_k` counts the occurrences of :math:`k` in ``input`` and
    :math:`s = 1` with ``scale_grad_by_freq``, else 0. ``max_norm`` does not enter:
    torch renormalizes outside autograd.
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
    flat = indices.reshape(-1)  # (*) -> (P,)
    rows = grad_output.reshape(-1, weight.shape[1])  # (*, D) -> (P, D)
    if scale_grad_by_freq:
        counts = np.bincount(flat, minlength=weight.shape[0])  # (num_embeddings,)
        rows = rows / counts[flat].astype(rows.dtype)[:, None]  # (P,) -> (P, 1)
    if padding_idx is not None:
        keep = flat != padding_idx
        flat, rows = flat[keep], rows[keep]
    grad_weight = np.zeros_like(weight)  # the parameter's dtype
    np.add.at(grad_weight, flat, rows)  # unbuffered: repeated indices all add up
    return None, grad_weight
