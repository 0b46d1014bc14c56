r"""Packed sequences (``torch.nn.utils.rnn``): a batch of variable-length sequences
stored without padding, and the maps between it and a padded array, with the backward of
each map beside it.

The layout. Sort the ``B`` sequences by length, longest first (``sorted_indices`` is that
permutation, ``unsorted_indices`` its inverse), and write the padded batch time-major,
``(T, B, *)``. Step ``t`` holds ``batch_sizes[t]`` = :math:`\#\{b : \ell_b > t\}`
sequences, and because of the sort they are the first ``batch_sizes[t]`` columns. The
packed ``data`` is those entries read row by row:

.. math::
    \text{data}[k] = x[t_k, b_k],\qquad (t_k, b_k) \text{ the } k\text{-th pair, in
    row-major order, of } M_{t b} = [\,t < \ell_b\,],

so ``data`` is ``(sum(lengths), *)`` and one gather index, ``flatnonzero(M)`` into the
``(T B, *)`` view, packs; the same index scatters back (pads). Packing and padding are
adjoint linear maps: the backward of one is the other, with zeros at padded positions
(a padded entry never reaches ``data``, and ``padding_value`` is a constant).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence",
    "pack_padded_sequence_backward", "pad_packed_sequence", "pad_packed_sequence_backward",
    "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence",
]  # fmt: skip


class _PackedFields(NamedTuple):
    data: Any
    batch_sizes: Any
    sorted_indices: Any
    unsorted_indices: Any


class PackedSequence(_PackedFields):
    """``torch.nn.utils.rnn.PackedSequence``: ``(data, batch_sizes, sorted_indices,
    unsorted_indices)``. ``data (sum(lengths), *)``; ``batch_sizes (T,)`` int64 (in torch
    always a CPU tensor); ``sorted_indices`` (``None`` when the batch came sorted) and
    ``unsorted_indices`` its inverse, computed from it when not given."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:  # torch also accepts PackedSequence((data, batch_sizes))
            if not (isinstance(data, (list, tuple)) and len(data) == 2):
                raise AssertionError("Expected data to be a list or tuple of length 2")
            data, batch_sizes = data
        if sorted_indices is not None:
            sorted_indices = np.asarray(sorted_indices, dtype=np.int64)
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(
            cls, np.asarray(data), np.asarray(batch_sizes, dtype=np.int64), sorted_indices,
            unsorted_indices,
        )  # fmt: skip


def invert_permutation(permutation: Any) -> np.ndarray | None:
    """The inverse permutation: ``out[permutation[i]] = i`` (``None`` stays ``None``)."""
    if permutation is None:
        return None
    permutation = np.asarray(permutation, dtype=np.int64)
    out = np.empty_like(permutation)
    out[permutation] = np.arange(permutation.size)
    return out


def _pack_index(lengths: np.ndarray, total: int) -> np.ndarray:
    """Flat indices into the time-major ``(total, B)`` grid of the valid entries
    :math:`t < \\ell_b`, in row-major (= packed) order; ``lengths`` sorted, longest first."""
    valid = np.arange(total)[:, None] < lengths[None, :]  # (T, 1) < (1, B) -> (T, B)
    return np.flatnonzero(valid)


def _lengths_of(batch_sizes: np.ndarray) -> np.ndarray:
    """Sorted lengths from batch sizes: :math:`\\ell_b = \\#\\{t : \\text{bs}_t > b\\}`."""
    b = int(batch_sizes[0]) if batch_sizes.size else 0
    return (batch_sizes[:, None] > np.arange(b)[None, :]).sum(axis=0)  # (T, B) -> (B,)


def _check_lengths(input: np.ndarray, lengths: Any, batch_first: bool) -> np.ndarray:
    """torch's checks, in torch's order; then (torch reads out of bounds instead) that no
    length exceeds the padded time dimension."""
    if input.ndim < 2:
        raise IndexError(f"pack_padded_sequence: input must have at least 2 dimensions "
                         f"(T, B, *) or (B, T, *), got shape {input.shape}")  # fmt: skip
    lengths = np.asarray(lengths)
    if lengths.ndim != 1:
        raise RuntimeError(f"pack_padded_sequence: 'lengths' argument should be a 1D CPU "
                           f"int64 tensor, but got {lengths.ndim}D")  # fmt: skip
    lengths = lengths.astype(np.int64)  # torch: lengths.to(int64), truncating floats
    time_dim, batch = (1, 0) if batch_first else (0, 1)
    if input.size == 0:
        raise RuntimeError("pack_padded_sequence: Cannot pack empty tensors.")
    if lengths.size != input.shape[batch]:
        raise RuntimeError(f"pack_padded_sequence: Expected `len(lengths)` to be equal to "
                           f"batch_size, but got {lengths.size} (batch_size="
                           f"{input.shape[batch]})")  # fmt: skip
    if lengths.max() > input.shape[time_dim]:
        raise ValueError(f"pack_padded_sequence: a length of {lengths.max()} exceeds the "
                         f"input's time dimension {input.shape[time_dim]}")  # fmt: skip
    return lengths


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    r"""Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) of
    sequences of ``lengths (B,)``: ``data[k] = x_sorted[t_k, b_k]`` over the valid entries
    in row-major order (module docstring). With ``enforce_sorted=False`` the batch is first
    sorted by length, longest first (stable, as torch's CPU sort), and the permutation kept
    in ``sorted_indices``; with ``True`` unsorted lengths raise as in torch.

    Returns a :class:`PackedSequence` (``torch.nn.utils.rnn.pack_padded_sequence``).
    """
    input = np.asarray(input)
    lengths = _check_lengths(input, lengths, batch_first)
    sorted_indices = None
    if not enforce_sorted:
        sorted_indices = np.argsort(-lengths, kind="stable")
        lengths = lengths[sorted_indices]
    if lengths[-1] <= 0:
        raise RuntimeError("pack_padded_sequence: Length of all samples has to be greater "
                           "than 0, but found an element in 'lengths' that is <= 0")  # fmt: skip
    if np.any(np.diff(lengths) > 0):
        raise RuntimeError("pack_padded_sequence: `lengths` array must be sorted in decreasing "
                           "order when `enforce_sorted` is True. You can pass `enforce_sorted="
                           "False` to pack_padded_sequence and/or pack_sequence to sidestep "
                           "this requirement if you do not need ONNX exportability.")  # fmt: skip
    x = np.swapaxes(input, 0, 1) if batch_first else input  # (B, T, *) -> (T, B, *)
    if sorted_indices is not None:
        x = x[:, sorted_indices]
    t, b = int(lengths[0]), x.shape[1]
    flat = x[:t].reshape(t * b, *x.shape[2:])  # (T, B, *) -> (T B, *)
    batch_sizes = (np.arange(t)[:, None] < lengths[None, :]).sum(axis=1)  # (T, B) -> (T,)
    return PackedSequence(flat[_pack_index(lengths, t)], batch_sizes, sorted_indices, None)


def pack_padded_sequence_backward(grad_data, input, lengths, batch_first=False,
                                  enforce_sorted=True) -> np.ndarray:  # fmt: skip
    r"""Gradient wrt the padded ``input`` of :func:`pack_padded_sequence`: the packed
    gradient ``grad_data (sum(lengths), *)`` scattered back to its entries,
    :math:`\partial x[t_k, b_k] = \partial\text{data}[k]`, zero at padded positions, in
    the input's batch order and layout (``input`` gives only its shape)."""
    input = np.asarray(input)
    # the layout only: a zero-strided stand-in of the input's (T, B) or (B, T)
    packed = pack_padded_sequence(np.broadcast_to(0.0, input.shape[:2]), lengths, batch_first,
                                  enforce_sorted)  # fmt: skip
    grad = PackedSequence(np.asarray(grad_data), *packed[1:])
    time_dim = 1 if batch_first else 0
    return pad_packed_sequence(grad, batch_first, 0.0, input.shape[time_dim])[0]


def _padded_sorted(sequence: PackedSequence, padding_value, total: int) -> np.ndarray:
    """The packed data scattered to the sorted time-major ``(total, B, *)`` grid."""
    data, batch_sizes = np.asarray(sequence.data), np.asarray(sequence.batch_sizes)
    lengths = _lengths_of(batch_sizes)
    out = np.full((total * lengths.size, *data.shape[1:]), padding_value, dtype=data.dtype)
    out[_pack_index(lengths, total)] = data
    return out.reshape(total, lengths.size, *data.shape[1:])  # (T B, *) -> (T, B, *)


def _max_length(sequence: PackedSequence, total_length: int | None) -> int:
    longest = len(sequence.batch_sizes)
    if total_length is not None and total_length < longest:
        raise ValueError("pad_packed_sequence: Expected total_length to be at least the "
                         "length of the longest sequence in input, but got total_length="
                         f"{total_length} and max sequence length being {longest}")  # fmt: skip
    return longest if total_length is None else int(total_length)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    r"""Inverse of :func:`pack_padded_sequence`: ``padded[t_k, b_k] = data[k]``, every
    other entry ``padding_value``, ``T = total_length`` or the longest length (a smaller
    ``total_length`` raises ``ValueError`` as torch). Returns ``(padded (T, B, *)`` or
    ``(B, T, *), lengths (B,) int64)``, both in the original batch order
    (``torch.nn.utils.rnn.pad_packed_sequence``)."""
    total = _max_length(sequence, total_length)
    padded = _padded_sorted(sequence, padding_value, total)
    lengths = _lengths_of(np.asarray(sequence.batch_sizes))
    if sequence.unsorted_indices is not None:
        padded, lengths = padded[:, sequence.unsorted_indices], lengths[sequence.unsorted_indices]
    return (np.swapaxes(padded, 0, 1) if batch_first else padded), lengths  # (T, B, *) -> (B, T, *)


def pad_packed_sequence_backward(grad_padded, sequence, batch_first=False, padding_value=0.0,
                                 total_length=None) -> np.ndarray:  # fmt: skip
    r"""Gradient wrt ``sequence.data`` of :func:`pad_packed_sequence`: the padded gradient
    read back at the packed entries, :math:`\partial\text{data}[k] = \partial
    \text{padded}[t_k, b_k]`; the padded positions hold a constant and send nothing.
    ``grad_padded`` is shaped as the forward's ``padded``; returns ``(sum(lengths), *)``."""
    total = _max_length(sequence, total_length)
    g = np.asarray(grad_padded)
    g = np.swapaxes(g, 0, 1) if batch_first else g  # (B, T, *) -> (T, B, *)
    if sequence.sorted_indices is not None:
        g = g[:, sequence.sorted_indices]  # original -> sorted batch order
    lengths = _lengths_of(np.asarray(sequence.batch_sizes))
    flat = g.reshape(total * lengths.size, *g.shape[2:])  # (T, B, *) -> (T B, *)
    return flat[_pack_index(lengths, total)]


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    r"""Stack ``B`` sequences ``(L_b, *)`` into ``(T, B, *)`` (``(B, T, *)`` with
    ``batch_first``), ``T = max L_b``, padding with ``padding_value`` on the right
    (entry :math:`(b, t)` valid for :math:`t < L_b`) or on the left (valid for
    :math:`t \ge T - L_b`). One scatter of the concatenated sequences
    (``torch.nn.utils.rnn.pad_sequence``)."""
    if not isinstance(sequences, (Iterable, np.ndarray)):
        raise RuntimeError("pad_sequence: Expected iterable for input sequences, but got arg "
                           f"of type: {type(sequences)}")  # fmt: skip
    seqs = [np.asarray(s) for s in sequences]
    if not seqs:
        raise RuntimeError("pad_sequence: received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise RuntimeError("pad_sequence: Expected padding_side to be one of left or right, "
                           f"but got {padding_side}.")  # fmt: skip
    tail = seqs[0].shape[1:]
    if any(s.ndim == 0 for s in seqs) or any(s.shape[1:] != tail for s in seqs):
        raise RuntimeError(f"pad_sequence: every sequence must be (L, *) with the same "
                           f"trailing shape, got {[s.shape for s in seqs]}")  # fmt: skip
    lengths = np.array([s.shape[0] for s in seqs])
    total = int(lengths.max())
    t = np.arange(total)[None, :]  # (1, T)
    valid = t < lengths[:, None] if padding_side == "right" else t >= total - lengths[:, None]
    out = np.full((lengths.size * total, *tail), padding_value, dtype=seqs[0].dtype)
    out[np.flatnonzero(valid)] = np.concatenate(seqs)  # (B, T) row-major = the concatenation
    out = out.reshape(lengths.size, total, *tail)  # (B T, *) -> (B, T, *)
    return out if batch_first else np.swapaxes(out, 0, 1)  # (B, T, *) -> (T, B, *)


def unpad_sequence(padded_sequences, lengths, batch_first=False) -> list[np.ndarray]:
    """Split a right-padded batch back into its ``B`` sequences ``(L_b, *)``
    (``torch.nn.utils.rnn.unpad_sequence``; unlike torch's, the caller's array is left as
    it was)."""
    x = np.asarray(padded_sequences)
    x = x if batch_first else np.swapaxes(x, 0, 1)  # (T, B, *) -> (B, T, *)
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.shape != (x.shape[0],):
        raise RuntimeError(f"unpad_sequence: lengths of shape {lengths.shape} do not match "
                           f"the batch of {x.shape[0]} sequences")  # fmt: skip
    valid = np.arange(x.shape[1])[None, :] < lengths[:, None]  # (B, T)
    rows = x.reshape(-1, *x.shape[2:])[np.flatnonzero(valid)]  # (B T, *) -> (sum L, *)
    return np.split(rows, np.cumsum(lengths)[:-1])


def pack_sequence(sequences, enforce_sorted=True) -> PackedSequence:
    """:func:`pad_sequence` then :func:`pack_padded_sequence`
    (``torch.nn.utils.rnn.pack_sequence``)."""
    seqs = [np.asarray(s) for s in sequences]
    lengths = [s.shape[0] if s.ndim else 0 for s in seqs]
    return pack_padded_sequence(pad_sequence(seqs), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[np.ndarray]:
    """The list of sequences of a :class:`PackedSequence`, in the original order
    (``torch.nn.utils.rnn.unpack_sequence``)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
