r"""Indexing (``x[key]``, ``x[key] = v``, ``select``, ``narrow``), and, from
:mod:`.ops_join`, joining, splitting and gathering along a dim (``cat`` ... ``gather``).

Every read picks elements of the input, possibly the same one several times, so its
backward scatters the upstream gradient back and ADDS where an element was picked
twice: :math:`\bar x_j = \sum_{i:\, \text{src}(i) = j} \bar y_i`. One rule serves every
key: index an ``arange`` of the input's flat positions with the same key, then
``np.add.at`` the gradient into those positions (:func:`.ops_join.scatter_add`).

Keys follow torch where it differs from NumPy: an integer always selects first (NumPy
counts it as an advanced index beside an index array, so ``x[0, :, idx]`` would put the
broadcast dims first), a short list holding sequences is read as a tuple (with torch's
warning), and a slice step must be positive.
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from . import ops_join
from .broadcast import sum_to_shape
from .graph import Function, FunctionCtx
from .ops_join import *  # noqa: F403
from .ops_join import flat_positions, scatter_add
from .ops_shape import wrap_dim
from .tensor import Tensor, unwrap

__all__ = ["select", "narrow", *ops_join.__all__]


class Steps(tuple):
    """Keys applied one after another, ``x[k0][k1]``: every key but the last is basic, so
    each step is a NumPy view of the array (and assignments write through it)."""


def at(array: np.ndarray, key: Any) -> np.ndarray:
    """``array[key]``, or the successive ``Steps``."""
    if isinstance(key, Steps):
        for k in key:
            array = array[k]
        return array
    return array[key]


def assign(array: np.ndarray, key: Any, value: Any) -> None:
    """``array[key] = value`` in place (for ``Steps``, into the view of the first steps)."""
    if isinstance(key, Steps):
        at(array, Steps(key[:-1]))[key[-1]] = value
    else:
        array[key] = value


class Index(Function):
    r""":math:`y = x[\text{key}]` (NumPy/torch rules for ints, slices, ``None``, ``...``,
    integer arrays broadcast together, boolean masks); :math:`\bar x` scatter-adds
    :math:`\bar y` back to the positions read."""

    torch_name = "IndexBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, key: Any) -> np.ndarray:
        ctx.key, ctx.shape = key, input.shape
        return at(input.data, key)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return scatter_add(at(flat_positions(ctx.shape), ctx.key), ctx.shape, grad), None


class Select(Index):
    torch_name = "SelectBackward0"


class Slice(Index):
    torch_name = "SliceBackward0"


class Unsqueeze(Index):
    torch_name = "UnsqueezeBackward0"


_BASIC = {int: Select, slice: Slice, type(None): Unsqueeze}


def _key_part(part: Any) -> Any:
    """One element of a key, as NumPy takes it; torch's errors for what torch refuses."""
    if isinstance(part, Tensor):
        part = part.data
    elif isinstance(part, list):
        part = np.asarray([unwrap(p) for p in part])
    if isinstance(part, np.ndarray):
        if part.dtype.kind not in "biu":
            raise IndexError("tensors used as indices must be long, int, byte or bool tensors")
        if part.dtype == np.uint8:  # torch still reads a byte tensor as a mask
            warnings.warn(
                "indexing with dtype torch.uint8 is now deprecated, please use a dtype "
                "torch.bool instead.",
                UserWarning,
                stacklevel=4,
            )
            return part.astype(bool)
        return part
    if isinstance(part, slice) and part.step is not None and part.step <= 0:
        raise ValueError("step must be greater than zero")
    if isinstance(part, (bool, np.bool_, int, np.integer, slice)) or part is None:
        return part
    if part is Ellipsis:
        return part
    raise IndexError(
        "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
        "valid indices (got " + type(part).__name__ + ")"
    )


def _is_int(p: Any) -> bool:
    """A Python/NumPy integer or a 0-d integer tensor: torch selects with it (basic)."""
    if isinstance(p, np.ndarray):
        return p.ndim == 0 and p.dtype.kind in "iu"
    return isinstance(p, (int, np.integer)) and not isinstance(p, (bool, np.bool_))


def _width(p: Any) -> int:
    """How many input dims a key part consumes (Ellipsis apart)."""
    if p is None or isinstance(p, (bool, np.bool_)):
        return 0
    if isinstance(p, np.ndarray) and p.dtype == bool:
        return p.ndim
    return 1


_SEQUENCE_AS_TUPLE = (
    "Using a non-tuple sequence for multidimensional indexing is deprecated and will be "
    "changed in pytorch 2.9; use x[tuple(seq)] instead of x[seq]. In pytorch 2.9 this will "
    "be interpreted as tensor index, x[torch.tensor(seq)], which will result either in an "
    "error or a different result"
)


def _as_tuple(key: Any) -> bool:
    """torch still reads a short list holding a sequence, tensor, slice, ``None`` or
    ``...`` as a tuple of indices (``x[[[1], [0]]]`` is ``x[[1], [0]]``), and warns."""
    if isinstance(key, tuple):
        return True
    if not isinstance(key, list) or len(key) >= 32:
        return False
    legacy = any(isinstance(p, (list, tuple, slice, Tensor, np.ndarray)) or p is None
                 or p is Ellipsis for p in key)  # fmt: skip
    if legacy:
        warnings.warn(_SEQUENCE_AS_TUPLE, UserWarning, stacklevel=4)
    return legacy


def normalize_key(key: Any) -> tuple | Steps:
    """The key as NumPy must see it to give torch's result. NumPy counts an integer as an
    advanced index when arrays are present (so ``x[0, :, idx]`` puts the broadcast dims
    first); torch always selects with it first. With both, select first (``Steps``)."""
    parts = tuple(_key_part(p) for p in (key if _as_tuple(key) else (key,)))
    advanced = any(isinstance(p, (np.ndarray, bool, np.bool_)) and not _is_int(p) for p in parts)
    if not advanced or not any(_is_int(p) for p in parts):
        return parts
    first: list[Any] = []
    second: list[Any] = []
    for p in parts:
        if _is_int(p):
            first.append(int(p))
        elif p is Ellipsis:
            first.append(p)
            second.append(p)
        else:
            first.extend([slice(None)] * _width(p))
            second.append(p)
    return Steps((tuple(first), tuple(second)))


_NUMPY_ERRORS = (
    (r"index (-?\d+) is out of bounds for axis (\d+) with size (\d+)",
     r"index \1 is out of bounds for dimension \2 with size \3"),
    (r"too many indices for array: array is (\d+)-dimensional.*",
     r"too many indices for tensor of dimension \1"),
    (r"boolean index did not match indexed array along (axis|dimension) (\d+); size of "
     r"(axis|dimension) is (\d+) but size of corresponding boolean (axis|dimension) is (\d+)",
     r"The shape of the mask [\6] at index \2 does not match the shape of the indexed "
     r"tensor [\4] at index \2"),
)  # fmt: skip


def _check_masks(parts: tuple, shape: tuple[int, ...]) -> None:
    """A boolean mask must match the dims it covers: torch's IndexError, naming both."""
    used = sum(_width(p) for p in parts if p is not Ellipsis)
    dim = 0
    for p in parts:
        if p is Ellipsis:
            dim += max(len(shape) - used, 0)
            continue
        if isinstance(p, np.ndarray) and p.dtype == bool:
            for i, n in enumerate(p.shape):
                if dim + i < len(shape) and n != shape[dim + i]:
                    raise IndexError(
                        f"The shape of the mask {list(p.shape)} at index {i} does not match the "
                        f"shape of the indexed tensor {list(shape)} at index {dim + i}"
                    )
        dim += _width(p)


def _getitem(self: Tensor, key: Any) -> Tensor:
    """``x[key]``; an out-of-range index raises torch's IndexError."""
    parts = normalize_key(key)
    try:
        if isinstance(parts, Steps):
            _check_masks(parts[-1], at(self.data, Steps(parts[:-1])).shape)
        else:
            _check_masks(parts, self.shape)
        at(self.data, parts)  # validate before recording: NumPy's errors in torch's words
    except IndexError as error:
        message = str(error)
        for pattern, torch_words in _NUMPY_ERRORS:
            message = re.sub(pattern, torch_words, message)
        raise IndexError(message) from None
    advanced = isinstance(parts, Steps) or any(
        isinstance(p, (np.ndarray, bool, np.bool_)) and not _is_int(p) for p in parts
    )
    last = [p for p in parts if p is not Ellipsis]
    cls = Index if advanced or not last else _BASIC.get(type(last[-1]), Select)
    return cls.apply(self, parts)


class CopySlices(Function):
    r"""``x[key] = v`` (torch's ``CopySlices``): :math:`y = x` except :math:`y[\text{key}]
    = v`; :math:`\bar x = \bar y` with the written positions zeroed, :math:`\bar v =
    \bar y[\text{key}]` summed back to :math:`v`'s shape (``v`` was broadcast)."""

    torch_name = "torch::autograd::CopySlices"

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, value: Tensor, key: Any) -> np.ndarray:
        ctx.key, ctx.value_shape = key, value.shape
        result = input.data.copy()
        assign(result, key, value.data.astype(input.dtype, copy=False))
        return result

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        grad_input = grad.copy()
        assign(grad_input, ctx.key, 0)
        picked = at(grad, ctx.key)
        lead = len(ctx.value_shape) - picked.ndim  # v may carry extra leading 1s
        picked = picked.reshape((1,) * max(lead, 0) + picked.shape)
        return grad_input, sum_to_shape(picked, ctx.value_shape), None


class IndexPut(CopySlices):
    """``x[key] = v`` with an advanced key (torch's ``IndexPutBackward0``)."""

    torch_name = "IndexPutBackward0"


def _setitem(self: Tensor, key: Any, value: Any) -> None:
    """``x[key] = v``, in place: the version bumps (a backward that saved ``x`` refuses to
    run), and on a leaf that requires grad it raises unless under ``no_grad``, as torch."""
    parts = normalize_key(key)
    if not isinstance(value, Tensor):
        value = Tensor(np.asarray(value, self.dtype))
    try:
        assign(self.data.copy(), parts, value.data)
    except (IndexError, ValueError) as error:
        raise type(error)(f"x[key] = value: {error}") from None
    if any(p is False or (isinstance(p, np.ndarray) and p.ndim == 0 and p.dtype == bool
                          and not p) for p in parts):  # fmt: skip
        return  # torch writes nothing (and records nothing) for a False key
    advanced = isinstance(parts, Steps) or any(
        isinstance(p, np.ndarray) and p.ndim > 0 for p in parts
    )
    cls = IndexPut if advanced else CopySlices
    self._write(cls.apply(self._snapshot(), value, parts))


def select(input: Tensor, dim: int, index: int) -> Tensor:
    """``x.select(dim, i)``: the slice at ``i`` along ``dim``, that dim removed."""
    d = wrap_dim(dim, input.ndim)
    size = input.shape[d]
    if not -size <= index < size:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(input.shape)} at "
            f"dimension {d}"
        )
    return Select.apply(input, (slice(None),) * d + (int(index),))


def narrow(input: Tensor, dim: int, start: Any, length: int) -> Tensor:
    """``x.narrow(dim, start, length)``: ``length`` entries from ``start`` along ``dim``."""
    d = wrap_dim(dim, input.ndim)
    size, start = input.shape[d], int(unwrap(start))
    if not -size <= start <= size:
        raise IndexError(
            f"start out of range (expected to be in range of [{-size}, {size}], but got {start})"
        )
    if start < 0:
        start += size
    if length < 0:
        raise RuntimeError("narrow(): length must be non-negative.")
    if start + length > size:
        raise RuntimeError(f"start ({start}) + length ({length}) exceeds dimension size ({size}).")
    return Slice.apply(input, (slice(None),) * d + (slice(start, start + length),))


TENSOR_METHODS: dict[str, Any] = {
    "__getitem__": _getitem,
    "__setitem__": _setitem,
    "select": select,
    "narrow": narrow,
    **ops_join.TENSOR_METHODS,
}
