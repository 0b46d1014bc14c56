r"""Joining, splitting and gathering along a dim (``cat``, ``stack``, ``split``, ``chunk``,
``unbind``, ``gather``, ``index_select``, ``take_along_dim``).

``cat`` lays its inputs end to end along a dim, so each input's gradient is its own slice
of the upstream gradient; ``split`` is the converse, one :class:`Function` with several
outputs, so a piece that is never used contributes a zero gradient to its slice.
``gather`` and ``index_select`` read chosen positions along a dim, possibly repeated, so
their gradient scatter-ADDS back (:func:`scatter_add`). (Re-exported by
:mod:`.ops_index`, which lists these names.)
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .graph import Function, FunctionCtx
from .ops_shape import expand, reshape, wrap_dim
from .tensor import Tensor, result_type, unwrap

__all__ = [
    "cat", "concat", "concatenate", "stack", "split", "split_with_sizes", "chunk", "unbind",
    "gather", "index_select", "take_along_dim",
]  # fmt: skip


class Cat(Function):
    r""":math:`y = [x_1; x_2; \dots]` along ``dim``; :math:`\bar x_k` is the slice of
    :math:`\bar y` where :math:`x_k` landed. A legacy empty 1-d input gets an empty grad."""

    @staticmethod
    def forward(ctx: FunctionCtx, dim: int, dtype: np.dtype, *tensors: Tensor) -> np.ndarray:
        ctx.dim = dim
        ctx.shapes = [t.shape for t in tensors]
        kept = [t.data.astype(dtype, copy=False) for t in tensors if not _legacy_empty(t)]
        return np.concatenate(kept, axis=dim) if kept else np.zeros((0,), dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        grads: list[np.ndarray | None] = [None, None]
        start = 0
        for shape in ctx.shapes:
            if shape == (0,) and grad.ndim != 1:
                grads.append(np.zeros(shape, grad.dtype))
                continue
            stop = start + shape[ctx.dim]
            grads.append(np.take(grad, np.arange(start, stop), axis=ctx.dim))
            start = stop
        return tuple(grads)


def _legacy_empty(t: Tensor) -> bool:
    """torch still skips a 1-d empty tensor in ``cat``, whatever the other shapes."""
    return t.shape == (0,)


def _tensor_list(tensors: Any, name: str) -> list[Tensor]:
    if isinstance(tensors, Tensor) or not isinstance(tensors, Sequence):
        raise TypeError(
            f"{name}(): argument 'tensors' must be tuple of Tensors, not {type(tensors).__name__}"
        )
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{name}(): argument 'tensors' (position 1) must be tuple of Tensors, not "
                f"{type(t).__name__} (at position {i})"
            )
    return list(tensors)


def cat(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """``torch.cat``: shapes must agree except along ``dim``; dtypes promote as torch's."""
    tensors = _tensor_list(tensors, "cat")
    if not tensors:
        raise ValueError("torch.cat(): expected a non-empty list of Tensors")
    for i, t in enumerate(tensors):
        if t.ndim == 0:
            raise RuntimeError(f"zero-dimensional tensor (at position {i}) cannot be concatenated")
    kept = [(i, t) for i, t in enumerate(tensors) if not _legacy_empty(t)]
    if not kept:  # only legacy empties: torch accepts any dim
        return Cat.apply(0, result_type(*tensors), *tensors)
    ref = kept[0][1]
    d = wrap_dim(dim, ref.ndim)
    for i, t in kept:
        if t.ndim != ref.ndim:
            raise RuntimeError(
                f"Tensors must have same number of dimensions: got {ref.ndim} and {t.ndim}"
            )
        for axis in range(ref.ndim):
            if axis != d and t.shape[axis] != ref.shape[axis]:
                raise RuntimeError(
                    f"Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{ref.shape[axis]} but got size {t.shape[axis]} for tensor number {i} "
                    "in the list."
                )
    return Cat.apply(d, result_type(*tensors), *tensors)


concat = concatenate = cat


class Stack(Function):
    r""":math:`y_{\dots k \dots} = x_k`, a new dim ``dim``; :math:`\bar x_k` is the
    ``k``-th slice of :math:`\bar y` along it."""

    @staticmethod
    def forward(ctx: FunctionCtx, dim: int, dtype: np.dtype, *tensors: Tensor) -> np.ndarray:
        ctx.dim = dim
        return np.stack([t.data.astype(dtype, copy=False) for t in tensors], axis=dim)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return (None, None, *np.moveaxis(grad, ctx.dim, 0))


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """``torch.stack``: equal shapes, joined along a new dim."""
    tensors = _tensor_list(tensors, "stack")
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    for i, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(tensors[0].shape)}"
                f" at entry 0 and {list(t.shape)} at entry {i}"
            )
    d = wrap_dim(dim, tensors[0].ndim + 1)
    return Stack.apply(d, result_type(*tensors), *tensors)


class Split(Function):
    r"""Pieces :math:`y_k = x[o_k : o_k + s_k]` along ``dim``; :math:`\bar x` is the
    :math:`\bar y_k` laid end to end (zeros for a piece that was not used)."""

    torch_name = "SplitBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, sizes: tuple[int, ...], dim: int) -> tuple:
        ctx.dim = dim
        edges = np.cumsum(sizes)[:-1]
        return tuple(np.split(input.data, edges, axis=dim)) if sizes else ()

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: np.ndarray) -> tuple:
        return np.concatenate(grads, axis=ctx.dim), None, None


class SplitWithSizes(Split):
    torch_name = "SplitWithSizesBackward0"


class Unbind(Split):
    r""":math:`y_k = x[k]` along ``dim``; :math:`\bar x = \operatorname{stack}(\bar y_k)`."""

    torch_name = "UnbindBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, sizes: tuple[int, ...], dim: int) -> tuple:
        ctx.dim = dim
        return tuple(np.moveaxis(input.data, dim, 0))

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: np.ndarray) -> tuple:
        return np.stack(grads, axis=ctx.dim), None, None


def _split_sizes(size: int, split_size: int) -> tuple[int, ...]:
    if split_size < 0:
        raise RuntimeError(
            f"split expects split_size be non-negative, but got split_size={split_size}"
        )
    if split_size == 0:
        if size != 0:
            raise RuntimeError(
                f"split_size can only be 0 if dimension size is 0, but got dimension size of {size}"
            )
        return (0,)
    full, rest = divmod(size, split_size)
    sizes = (split_size,) * full + ((rest,) if rest else ())
    return sizes or (0,)  # torch returns one empty piece of an empty dim


def split(tensor: Tensor, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """``torch.split``: pieces of ``split_size`` (the last may be smaller), or of the
    listed sizes, which must add up to the dim's size."""
    d = wrap_dim(dim, tensor.ndim)
    if tensor.ndim == 0:
        raise RuntimeError("split expects at least a 1-dimensional tensor")
    size = tensor.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = tuple(int(s) for s in split_size_or_sections)
        if any(s < 0 for s in sizes):
            raise RuntimeError(
                "split_with_sizes expects split_sizes have only non-negative entries, but got "
                f"split_sizes={list(sizes)}"
            )
        if sum(sizes) != size:
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {size} (input "
                f"tensor's size at dimension {d}), but got split_sizes={list(sizes)}"
            )
        return SplitWithSizes.apply(tensor, sizes, d)
    return Split.apply(tensor, _split_sizes(size, int(split_size_or_sections)), d)


def split_with_sizes(input: Tensor, split_sizes: Any, dim: int = 0) -> tuple[Tensor, ...]:
    """``torch.split_with_sizes``: ``split`` with a list of sizes."""
    return split(input, list(split_sizes), dim)


def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """``torch.chunk``: ``split`` with pieces of ``ceil(size / chunks)``, so possibly fewer
    than ``chunks`` pieces; an empty dim gives ``chunks`` empty pieces."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    if input.ndim == 0:
        raise RuntimeError("chunk expects at least a 1-dimensional tensor")
    d = wrap_dim(dim, input.ndim)
    size = input.shape[d]
    if size == 0:
        return Split.apply(input, (0,) * chunks, d)
    return Split.apply(input, _split_sizes(size, -(-size // chunks)), d)


def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """``torch.unbind``: the slices along ``dim``, that dim removed."""
    if input.ndim == 0:
        raise IndexError("Dimension specified as 0 but tensor has no dimensions")
    d = wrap_dim(dim, input.ndim)
    return Unbind.apply(input, (), d)


def _iter(self: Tensor) -> Any:
    """``for row in x``: torch iterates over ``unbind(0)``."""
    if self.ndim == 0:
        raise TypeError("iteration over a 0-d tensor")
    return iter(unbind(self, 0))


# -- gathering along a dim ----------------------------------------------------------------
def flat_positions(shape: tuple[int, ...]) -> np.ndarray:
    """Each element's flat (row-major) position, in ``shape``: indexed with a key, it says
    which input element each output element read."""
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


def scatter_add(positions: np.ndarray, shape: tuple[int, ...], grad: np.ndarray) -> np.ndarray:
    """The gradient of a read at flat ``positions`` (``grad``'s shape) of an input of
    ``shape``: ``grad`` added at each position, repeated positions accumulating."""
    flat = np.zeros(int(np.prod(shape)), grad.dtype)
    np.add.at(flat, positions.reshape(-1), grad.reshape(-1))
    return flat.reshape(shape)


def _index_array(index: Any, op: str) -> np.ndarray:
    data = np.asarray(unwrap(index))
    if data.dtype.kind not in "iu":
        raise RuntimeError(f"{op}(): Expected dtype int32 or int64 for index")
    return data.astype(np.int64, copy=False)


class Gather(Function):
    r""":math:`y_{i \dots j \dots} = x_{i \dots\, \text{index}_{i \dots j \dots} \dots}`
    along ``dim``; :math:`\bar x` scatter-adds :math:`\bar y` at those positions."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, dim: int, index: np.ndarray) -> np.ndarray:
        ctx.dim, ctx.index, ctx.shape = dim, index, input.shape
        if index.size == 0:  # torch lets an empty index have any number of dims
            return np.zeros(index.shape, input.dtype)
        return input.data[_gather_key(index, dim)]

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        if ctx.index.size == 0:
            return np.zeros(ctx.shape, grad.dtype), None, None
        positions = flat_positions(ctx.shape)[_gather_key(ctx.index, ctx.dim)]
        return scatter_add(positions, ctx.shape, grad), None, None


def _gather_key(index: np.ndarray, dim: int) -> tuple:
    """The open grid of ``index``'s positions, with ``index`` itself along ``dim``."""
    grid: list[np.ndarray] = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


def gather(input: Tensor, dim: int, index: Any, *, sparse_grad: bool = False) -> Tensor:
    """``torch.gather``: ``index`` has ``input``'s number of dims and is no larger apart
    from ``dim``; its entries must lie in ``[0, input.size(dim))``. (No sparse gradients.)"""
    if sparse_grad:
        raise NotImplementedError("gather(sparse_grad=True): the reference has no sparse tensors")
    idx = _index_array(index, "gather")
    d = wrap_dim(dim, input.ndim)
    if idx.ndim != input.ndim and idx.size and input.ndim:
        raise RuntimeError("Index tensor must have the same number of dimensions as input tensor")
    if idx.size == 0:
        return Gather.apply(input, d, idx)
    if input.ndim == 0 or idx.ndim == 0:  # torch treats a 0-d operand as 1-d of size 1
        flat = gather(reshape(input, -1), 0, idx.reshape(-1))
        return reshape(flat, idx.shape) if idx.ndim == 0 else flat
    for axis in range(input.ndim):
        if axis != d and idx.shape[axis] > input.shape[axis]:
            raise RuntimeError(
                f"Size does not match at dimension {axis} expected index {list(idx.shape)} to "
                f"be no larger than self {list(input.shape)} apart from dimension {d}"
            )
    bad = idx[(idx < 0) | (idx >= input.shape[d])]
    if bad.size:
        raise RuntimeError(
            f"index {bad.flat[0]} is out of bounds for dimension {d} with size {input.shape[d]}"
        )
    return Gather.apply(input, d, idx)


class IndexSelect(Function):
    r""":math:`y = x` at the listed positions along ``dim``; :math:`\bar x` scatter-adds."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, dim: int, index: np.ndarray) -> np.ndarray:
        ctx.key, ctx.shape = (slice(None),) * dim + (index,), input.shape
        return input.data[ctx.key]

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return scatter_add(flat_positions(ctx.shape)[ctx.key], ctx.shape, grad), None, None


def index_select(input: Tensor, dim: int, index: Any) -> Tensor:
    """``torch.index_select``: ``index`` 1-d (or 0-d), entries in ``[0, size)``."""
    idx = _index_array(index, "index_select")
    if idx.ndim > 1:
        raise IndexError("index_select(): Index is supposed to be a vector")
    if input.ndim == 0:
        return reshape(index_select(reshape(input, 1), 0, idx), ())
    d = wrap_dim(dim, input.ndim)
    idx = idx.reshape(-1)
    if np.any((idx < 0) | (idx >= input.shape[d])):
        raise IndexError("index out of range in self")
    return IndexSelect.apply(input, d, idx)


def take_along_dim(input: Tensor, indices: Any, dim: int | None = None) -> Tensor:
    """``torch.take_along_dim``: ``gather`` after broadcasting ``input`` and ``indices``
    against each other (apart from ``dim``); with no ``dim``, over the flattened input."""
    idx = _index_array(indices, "take_along_dim")
    if dim is None:
        return gather(reshape(input, -1), 0, idx.reshape(-1))
    if idx.ndim != input.ndim:
        raise RuntimeError(
            "torch.take_along_dim(): input and indices should have the same number of "
            f"dimensions, but got {input.ndim} dimensions for input, and {idx.ndim} "
            "dimensions for indices"
        )
    d = wrap_dim(dim, input.ndim)
    sizes = list(input.shape)
    sizes[d] = idx.shape[d]
    shape = np.broadcast_shapes(tuple(sizes), idx.shape)
    sizes = list(shape)
    sizes[d] = input.shape[d]
    # torch wraps negative indices here (not with dim=None); beyond [-size, size) it
    # silently wraps modulo the size, where the reference raises as gather does
    idx = np.where(idx < 0, idx + input.shape[d], idx)
    return gather(expand(input, tuple(sizes)), d, np.broadcast_to(idx, shape))


TENSOR_METHODS: dict[str, Any] = {
    "split": split,
    "split_with_sizes": split_with_sizes,
    "chunk": chunk,
    "unbind": unbind,
    "__iter__": _iter,
    "gather": gather,
    "index_select": index_select,
    "take_along_dim": take_along_dim,
}
