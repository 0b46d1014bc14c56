r"""Shape ops (``reshape``, ``transpose``, ``squeeze``, ``expand``, ``repeat``, ...).

Each one only moves elements, so its backward moves the gradient back: the inverse
reshape or permutation, or a sum over the copies a broadcast or a tiling made.

The reference keeps no strides: every result owns (or is a NumPy view of) its array, and
writing into a result never reaches the tensor it came from, unlike torch's views. So
``view`` is ``reshape`` here, and accepts shapes that torch's ``view`` refuses on a
non-contiguous input (torch then asks for ``reshape``).
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .broadcast import sum_to_shape
from .graph import Function, FunctionCtx
from .tensor import Tensor

__all__ = [
    "reshape", "flatten", "unflatten", "transpose", "swapaxes", "swapdims", "permute", "t",
    "squeeze", "unsqueeze", "clone", "movedim", "moveaxis",
]  # fmt: skip


def wrap_dim(dim: int, ndim: int) -> int:
    """``dim`` in ``[0, ndim)`` from torch's ``[-ndim, ndim)``; a 0-d tensor takes 0 and
    -1, as torch's does. Outside: torch's IndexError."""
    span = max(ndim, 1)
    if not -span <= dim < span:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-span}, {span - 1}], "
            f"but got {dim})"
        )
    return dim % span


def sizes_arg(sizes: tuple) -> tuple[int, ...]:
    """``f(2, 3)`` or ``f((2, 3))`` or ``f([2, 3])``, as torch's size arguments."""
    if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
        sizes = tuple(sizes[0])
    return tuple(int(s) for s in sizes)


def _infer_shape(shape: tuple[int, ...], numel: int) -> tuple[int, ...]:
    """Replace one ``-1`` by what makes the element count ``numel``; torch's errors."""
    unknown = [i for i, s in enumerate(shape) if s == -1]
    if len(unknown) > 1:
        raise RuntimeError("only one dimension can be inferred")
    for s in shape:
        if s < -1:
            raise RuntimeError(f"invalid shape dimension {s}")
    known = math.prod(s for s in shape if s != -1)
    if unknown:
        if known == 0:
            if numel == 0:
                raise RuntimeError(
                    f"cannot reshape tensor of 0 elements into shape {list(shape)} because "
                    "the unspecified dimension size -1 can be any value and is ambiguous"
                )
        elif numel % known == 0:
            return shape[: unknown[0]] + (numel // known,) + shape[unknown[0] + 1 :]
    elif known == numel:
        return shape
    raise RuntimeError(f"shape '{list(shape)}' is invalid for input of size {numel}")


class View(Function):
    r""":math:`y = \operatorname{reshape}(x)`, the same elements in row-major order;
    :math:`\bar x = \operatorname{reshape}(\bar y)` back to :math:`x`'s shape."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = input.shape
        return input.data.reshape(shape)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return grad.reshape(ctx.shape), None


def reshape(input: Tensor, *shape: Any) -> Tensor:
    """``torch.reshape``; also ``Tensor.view`` (no strides here: see the module doc)."""
    target = _infer_shape(sizes_arg(shape), input.numel())
    return View.apply(input, target)


def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims ``start_dim..end_dim`` into one; a 0-d tensor becomes 1-d."""
    if input.ndim == 0:
        return View.apply(input, (1,))
    start, end = wrap_dim(start_dim, input.ndim), wrap_dim(end_dim, input.ndim)
    if start > end:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    s = input.shape
    return View.apply(input, s[:start] + (math.prod(s[start : end + 1]),) + s[end + 1 :])


def unflatten(input: Tensor, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split dim ``dim`` into ``sizes`` (one of them may be -1)."""
    d = wrap_dim(dim, input.ndim)
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) == 0:
        raise RuntimeError("unflatten: sizes must be non-empty")
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten: only one dimension can be inferred")
    known = math.prod(s for s in sizes if s != -1)
    if (-1 not in sizes and known != input.shape[d]) or (known and input.shape[d] % known):
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim "
            f"{dim} ({input.shape[d]}) in the input tensor"
        )
    inner = _infer_shape(sizes, input.shape[d])
    return View.apply(input, input.shape[:d] + inner + input.shape[d + 1 :])


class Permute(Function):
    r""":math:`y_{i_{\pi(0)} \dots} = x_{i_0 \dots}`, dims reordered by :math:`\pi`;
    :math:`\bar x` is :math:`\bar y` under the inverse permutation."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, dims: tuple[int, ...]) -> np.ndarray:
        ctx.dims = dims
        return np.transpose(input.data, dims)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return np.transpose(grad, np.argsort(ctx.dims)), None


class Transpose(Permute):
    """Two dims swapped (its own class for torch's ``TransposeBackward0``)."""


class T(Permute):
    """``t()``: a matrix transposed, a vector or scalar unchanged (``TBackward0``)."""


def permute(input: Tensor, *dims: Any) -> Tensor:
    order = tuple(wrap_dim(d, input.ndim) for d in sizes_arg(dims))
    if len(order) != input.ndim:
        raise RuntimeError(
            "permute(sparse_coo): number of dimensions in the tensor input does not match "
            f"the length of the desired ordering of dimensions i.e. input.dim() = "
            f"{input.ndim} is not equal to len(dims) = {len(order)}"
        )
    if len(set(order)) != len(order):
        raise RuntimeError("permute(): duplicate dims are not allowed.")
    return Permute.apply(input, order)


def transpose(input: Tensor, dim0: int, dim1: int) -> Tensor:
    a, b = wrap_dim(dim0, input.ndim), wrap_dim(dim1, input.ndim)
    order = list(range(input.ndim))
    if order:  # a 0-d tensor transposes to itself
        order[a], order[b] = order[b], order[a]
    return Transpose.apply(input, tuple(order))


swapaxes = swapdims = transpose


def t(input: Tensor) -> Tensor:
    if input.ndim > 2:
        raise RuntimeError(f"t() expects a tensor with <= 2 dimensions, but self is {input.ndim}D")
    return T.apply(input, tuple(range(input.ndim))[::-1])


_T_WARNINGS = {
    0: "Tensor.T is deprecated on 0-D tensors. This function is the identity in these cases.",
    3: "The use of `x.T` on tensors of dimension other than 2 to reverse their shape is "
    "deprecated and it will throw an error in a future release. Consider `x.mT` to transpose "
    "batches of matrices or `x.permute(*torch.arange(x.ndim - 1, -1, -1))` to reverse the "
    "dimensions of a tensor.",
}


def _T(self: Tensor) -> Tensor:
    """``x.T``: all dims reversed; torch warns (deprecated) unless ``x`` is 1-d or 2-d."""
    if self.ndim == 0 or self.ndim > 2:
        warnings.warn(_T_WARNINGS[min(self.ndim, 3)], UserWarning, stacklevel=2)
    return Permute.apply(self, tuple(range(self.ndim))[::-1])


def _mT(self: Tensor) -> Tensor:
    """``x.mT``: the last two dims swapped (a batch of matrices transposed)."""
    if self.ndim < 2:
        raise RuntimeError(
            "tensor.mT is only supported on matrices or batches of matrices. Got "
            f"{self.ndim}-D tensor."
        )
    return transpose(self, -2, -1)


def movedim(input: Tensor, source: Any, destination: Any) -> Tensor:
    """Move dims ``source`` to positions ``destination``, the others keeping their order."""
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    src = tuple(wrap_dim(d, input.ndim) for d in src)
    dst = tuple(wrap_dim(d, input.ndim) for d in dst)
    for name, dims, given in (("source", src, source), ("destination", dst, destination)):
        if len(set(dims)) != len(dims):
            raise RuntimeError(f"movedim: repeated dim in `{name}` ({list(given)})")
    order = [d for d in range(input.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return Permute.apply(input, tuple(order))


moveaxis = movedim


class Squeeze(Function):
    r""":math:`y = x` without some size-1 dims; :math:`\bar x = \bar y` reshaped back."""

    torch_name = "SqueezeBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, dims: tuple[int, ...]) -> np.ndarray:
        ctx.shape = input.shape
        return np.squeeze(input.data, axis=dims)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return grad.reshape(ctx.shape), None


class SqueezeDim(Squeeze):
    torch_name = "SqueezeBackward1"


class SqueezeDims(Squeeze):
    torch_name = "SqueezeBackward2"


def squeeze(input: Tensor, dim: Any = None) -> Tensor:
    """Drop size-1 dims: all of them, or those of ``dim`` (int or tuple) that are size 1
    (squeezing a dim of another size is a no-op, as in torch)."""
    if dim is None:
        cls, given = Squeeze, tuple(range(input.ndim))
    elif isinstance(dim, (tuple, list)):
        cls, given = SqueezeDims, tuple(wrap_dim(d, input.ndim) for d in dim)
    else:
        cls, given = SqueezeDim, (wrap_dim(dim, input.ndim),)
    dims = tuple(sorted({d for d in given if d < input.ndim and input.shape[d] == 1}))
    return cls.apply(input, dims)


class Unsqueeze(Function):
    r""":math:`y = x` with a new size-1 dim; :math:`\bar x = \bar y` with it dropped."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, dim: int) -> np.ndarray:
        ctx.dim = dim
        return np.expand_dims(input.data, dim)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return np.squeeze(grad, axis=ctx.dim), None


def unsqueeze(input: Tensor, dim: int) -> Tensor:
    return Unsqueeze.apply(input, wrap_dim(dim, input.ndim + 1))


class Expand(Function):
    r""":math:`y = x` broadcast to a larger shape (new leading dims, size-1 dims
    stretched); each :math:`x` element feeds all its copies, so :math:`\bar x` sums
    :math:`\bar y` over them."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = input.shape
        return np.broadcast_to(input.data, shape)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return sum_to_shape(grad, ctx.shape), None


def _expanded_shape(input: Tensor, sizes: tuple[int, ...]) -> tuple[int, ...]:
    lead = len(sizes) - input.ndim
    if lead < 0:
        raise RuntimeError(
            f"expand({input.dtype} {list(input.shape)}, size={list(sizes)}): the number of "
            f"sizes provided ({len(sizes)}) must be greater or equal to the number of "
            f"dimensions in the tensor ({input.ndim})"
        )
    shape = []
    for i, size in enumerate(sizes):
        if i < lead:
            if size < 0:
                raise RuntimeError(
                    f"The expanded size of the tensor ({size}) isn't allowed in a leading, "
                    f"non-existing dimension {i}"
                )
            shape.append(size)
            continue
        have = input.shape[i - lead]
        if size == -1:
            size = have
        if have != size and have != 1:
            raise RuntimeError(
                f"The expanded size of the tensor ({size}) must match the existing size "
                f"({have}) at non-singleton dimension {i}.  Target sizes: {list(sizes)}.  "
                f"Tensor sizes: {list(input.shape)}"
            )
        shape.append(size)
    return tuple(shape)


def expand(input: Tensor, *sizes: Any) -> Tensor:
    """Broadcast to ``sizes`` (``-1`` keeps a dim), without copying in torch."""
    return Expand.apply(input, _expanded_shape(input, sizes_arg(sizes)))


def expand_as(input: Tensor, other: Tensor) -> Tensor:
    return expand(input, other.shape)


class Repeat(Function):
    r""":math:`y` tiles :math:`x` ``repeats[d]`` times along each dim ``d`` (leading
    repeats add dims); :math:`\bar x` sums :math:`\bar y` over the tiles."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor, repeats: tuple[int, ...]) -> np.ndarray:
        ctx.shape, ctx.repeats = input.shape, repeats
        return np.tile(input.data, repeats)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        padded = (1,) * (len(ctx.repeats) - len(ctx.shape)) + tuple(ctx.shape)
        # (r0*s0, r1*s1, ...) -> (r0, s0, r1, s1, ...): the tile index before each dim
        tiles = grad.reshape(tuple(x for pair in zip(ctx.repeats, padded) for x in pair))
        summed = tiles.sum(axis=tuple(range(0, tiles.ndim, 2)))
        return summed.reshape(ctx.shape), None


def repeat(input: Tensor, *sizes: Any) -> Tensor:
    repeats = sizes_arg(sizes)
    if len(repeats) < input.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of "
            "dimensions of tensor"
        )
    padded = (1,) * (len(repeats) - input.ndim) + input.shape
    result = [s * r for s, r in zip(padded, repeats)]
    if any(r < 0 for r in repeats):
        raise RuntimeError(
            f"Trying to create tensor with negative dimension {min(result)}: {result}"
        )
    return Repeat.apply(input, repeats)


class Clone(Function):
    r""":math:`y = x`, a copy; :math:`\bar x = \bar y`."""

    @staticmethod
    def forward(ctx: FunctionCtx, input: Tensor) -> np.ndarray:
        return input.data.copy()

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return grad


def clone(input: Tensor) -> Tensor:
    return Clone.apply(input)


def _contiguous(self: Tensor) -> Tensor:
    """Every array here is usable as is (no strides), so ``self``, as torch returns for a
    contiguous tensor."""
    return self


TENSOR_METHODS: dict[str, Any] = {
    "reshape": reshape,
    "view": reshape,
    "reshape_as": lambda self, other: reshape(self, other.shape),
    "view_as": lambda self, other: reshape(self, other.shape),
    "flatten": flatten,
    "unflatten": unflatten,
    "transpose": transpose,
    "swapaxes": transpose,
    "swapdims": transpose,
    "permute": permute,
    "t": t,
    "T": property(_T),
    "mT": property(_mT),
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "expand": expand,
    "expand_as": expand_as,
    "repeat": repeat,
    "contiguous": _contiguous,
    "clone": clone,
    "movedim": movedim,
    "moveaxis": movedim,
}
