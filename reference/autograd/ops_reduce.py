r"""Reductions: ``sum``, ``mean``, ``prod``, ``var``, ``std``, ``max``/``min``,
``amax``/``amin`` (``torch.sum`` and friends).

A reduction over the axes :math:`D` maps the upstream gradient back by broadcasting it
along :math:`D` (after re-inserting them, unless ``keepdim``) and multiplying by the
local derivative: 1 for ``sum``, :math:`1/N` for ``mean``. Where the reduction picks
elements, torch's rules are (measured): ``max()``/``min()`` without ``dim`` and
``amax``/``amin`` split the gradient evenly over ties; ``max(dim)``/``min(dim)`` send it
to the returned index only; ``prod`` is exact with zeros (the product of the others).
``dim`` may be negative; out of range raises torch's ``IndexError``. ``logsumexp``,
``softmax`` and the norms are in :mod:`.ops_linalg`.
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

import builtins
import collections
import warnings
from typing import Any

import numpy as np

from .graph import Function, FunctionCtx
from .ops_compare import SCALAR_TYPE
from .tensor import Tensor

__all__ = ["sum", "mean", "prod", "var", "std", "max", "min", "amax", "amin"]  # fmt: skip

ReturnMax = collections.namedtuple("max", ["values", "indices"])  # type: ignore[name-match]
ReturnMin = collections.namedtuple("min", ["values", "indices"])  # type: ignore[name-match]


def _axes(dim: Any, ndim: int) -> tuple[int, ...]:
    """``dim`` (None, an int, or a sequence; None or () = all) as sorted NumPy axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:
        return tuple(range(ndim))
    low, high = -builtins.max(ndim, 1), builtins.max(ndim, 1) - 1
    axes = []
    for d in dims:
        if not low <= d <= high:
            raise IndexError(
                f"Dimension out of range (expected to be in range of [{low}, {high}], but got {d})"
            )
        axis = int(d) % builtins.max(ndim, 1)
        if axis in axes:
            raise RuntimeError(f"dim {axis} appears multiple times in the list of dims")
        axes.append(axis)
    return tuple(sorted(axes)) if ndim else ()  # a 0-d tensor's dim 0 is itself


def _restore(grad: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...],
             keepdim: bool) -> np.ndarray:  # fmt: skip
    """The upstream gradient broadcast back over the reduced axes."""
    if not keepdim:
        grad = np.expand_dims(grad, axes)
    return np.broadcast_to(grad, shape)


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    return int(np.prod([shape[a] for a in axes], dtype=np.int64))


# -- sum / mean / prod -------------------------------------------------------------------------
class Sum(Function):
    r""":math:`y = \sum_D x`; :math:`\bar x = \bar y` broadcast along :math:`D`."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, axes: tuple, keepdim: bool, dtype: Any) -> Any:
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        return x.data.sum(axis=axes, keepdims=keepdim, dtype=dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return _restore(grad, ctx.shape, ctx.axes, ctx.keepdim)


class SumDim(Sum):
    torch_name = "SumBackward1"


def _sum_dtype(x: Tensor, dtype: Any) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    return x.dtype if x.dtype.kind in "fc" else np.dtype(np.int64)  # ints sum in int64


def sum(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:  # noqa: A001
    axes = _axes(dim, input.ndim)
    kind = Sum if dim is None else SumDim
    return kind.apply(input, axes=axes, keepdim=keepdim, dtype=_sum_dtype(input, dtype))


class Mean(Function):
    r""":math:`y = \frac1N \sum_D x`; :math:`\bar x = \bar y / N` broadcast along :math:`D`."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, axes: tuple, keepdim: bool, dtype: Any) -> Any:
        ctx.shape, ctx.axes, ctx.keepdim = x.shape, axes, keepdim
        ctx.n = np.asarray(_count(x.shape, axes), dtype)
        with np.errstate(invalid="ignore"):  # the mean of nothing is nan, as torch's
            return x.data.sum(axis=axes, keepdims=keepdim, dtype=dtype) / ctx.n

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return _restore(grad / ctx.n, ctx.shape, ctx.axes, ctx.keepdim)


class MeanDim(Mean):
    torch_name = "MeanBackward1"


def _float_only(x: Tensor, dtype: Any, message: str) -> np.dtype:
    if dtype is not None:
        return np.dtype(dtype)
    if x.dtype.kind not in "fc":
        raise RuntimeError(message.format(SCALAR_TYPE.get(x.dtype.name, x.dtype.name)))
    return x.dtype


def mean(input: Tensor, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    dtype = _float_only(input, dtype, "mean(): could not infer output dtype. Input dtype must "
                        "be either a floating point or complex dtype. Got: {}")  # fmt: skip
    axes = _axes(dim, input.ndim)
    return (Mean if dim is None else MeanDim).apply(input, axes=axes, keepdim=keepdim, dtype=dtype)


class Prod(Function):
    r""":math:`y = \prod_D x`; :math:`\bar x_i = \bar y \prod_{j \ne i} x_j`: that is
    :math:`\bar y\, y / x_i` when no input is 0 (torch's formula then), else the product of
    the others, from exclusive cumulative products on both sides (exact with zeros)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, axis: Any, keepdim: bool, dtype: Any) -> Any:
        ctx.save_for_backward(x)
        ctx.axis, ctx.keepdim = axis, keepdim
        ctx.y = x.data.prod(axis=axis, keepdims=keepdim, dtype=dtype)
        return ctx.y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        axes = tuple(range(x.ndim)) if ctx.axis is None else (ctx.axis,)
        if x.ndim == 0:
            return grad
        g = _restore(grad, x.shape, axes, ctx.keepdim)
        if np.all(x.data != 0):
            return g * (_restore(ctx.y, x.shape, axes, ctx.keepdim) / x.data)
        flat = x.data.reshape(-1) if ctx.axis is None else np.moveaxis(x.data, ctx.axis, -1)
        with np.errstate(
            over="ignore", invalid="ignore"
        ):  # a partial product may overflow, as torch's
            others = _exclusive_cumprod(flat) * _exclusive_cumprod(flat[..., ::-1])[..., ::-1]
        others = others.reshape(x.shape) if ctx.axis is None else np.moveaxis(others, -1, ctx.axis)
        return g * others


class ProdDim(Prod):
    torch_name = "ProdBackward1"


def _exclusive_cumprod(x: np.ndarray) -> np.ndarray:
    """``out[..., k] = prod(x[..., :k])`` along the last axis (1 for k = 0)."""
    ones = np.ones(x.shape[:-1] + (1,), x.dtype)
    return np.cumprod(np.concatenate([ones, x[..., :-1]], axis=-1), axis=-1)


def prod(input: Tensor, dim: int | None = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    dtype = _sum_dtype(input, dtype)
    if dim is None:
        return Prod.apply(input, axis=None, keepdim=False, dtype=dtype)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"prod(): dim must be an int (got {type(dim).__name__}), as torch's")
    (axis,) = _axes(dim, input.ndim) or (None,)
    return ProdDim.apply(input, axis=axis, keepdim=keepdim, dtype=dtype)


# -- var / std ---------------------------------------------------------------------------------
class Var(Function):
    r""":math:`v = \frac{1}{N - c} \sum_D (x - \bar x)^2` (``c`` the correction);
    :math:`\bar x = \bar v \cdot 2 (x - \bar x) / (N - c)` (the mean's own gradient sums to
    zero against :math:`x - \bar x`)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, axes: tuple, correction: Any, keepdim: bool) -> Any:
        ctx.axes, ctx.keepdim = axes, keepdim
        n = _count(x.shape, axes)
        ctx.dof = np.asarray(builtins.max(0, n - correction), x.dtype)
        if ctx.dof <= 0:
            warnings.warn(
                f"{getattr(ctx, 'name', 'var')}(): degrees of freedom is <= 0. Correction "
                "should be strictly less than the reduction factor (input numel divided by "
                "output numel).",
                UserWarning,
                stacklevel=4,
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            ctx.centred = x.data - x.data.sum(axis=axes, keepdims=True) / np.asarray(n, x.dtype)
            return (ctx.centred * ctx.centred).sum(axis=axes, keepdims=keepdim) / ctx.dof

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        with np.errstate(invalid="ignore", divide="ignore"):
            g = _restore(grad * (2 / ctx.dof), ctx.centred.shape, ctx.axes, ctx.keepdim)
            return g * ctx.centred


class Std(Function):
    r""":math:`s = \sqrt v`; :math:`\bar v = \bar s / (2 s)`, 0 where :math:`s = 0` (torch)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, axes: tuple, correction: Any, keepdim: bool) -> Any:
        ctx.name = "std"
        ctx.s = np.sqrt(Var.forward(ctx, x, axes=axes, correction=correction, keepdim=keepdim))
        return ctx.s

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        with np.errstate(invalid="ignore", divide="ignore"):
            g_var = np.where(ctx.s == 0, 0, grad / (2 * ctx.s))
        return Var.backward(ctx, g_var)


def _correction(dim: Any, unbiased: Any, correction: Any) -> tuple[Any, Any]:
    if isinstance(dim, bool):  # var(x, True): the legacy positional unbiased
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise RuntimeError("var/std: pass either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    return dim, correction


def var(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:  # fmt: skip
    """``torch.var``: ``correction`` (default 1, Bessel's) or the legacy ``unbiased``."""
    _float_only(input, None, "std and var only support floating point and complex dtypes")
    dim, correction = _correction(dim, unbiased, correction)
    return Var.apply(input, axes=_axes(dim, input.ndim), correction=correction, keepdim=keepdim)


def std(input: Tensor, dim: Any = None, unbiased: Any = None, keepdim: bool = False, *,
        correction: Any = None) -> Tensor:  # fmt: skip
    """``torch.std``: the square root of :func:`var`."""
    _float_only(input, None, "std and var only support floating point and complex dtypes")
    dim, correction = _correction(dim, unbiased, correction)
    return Std.apply(input, axes=_axes(dim, input.ndim), correction=correction, keepdim=keepdim)


# -- max / min / amax / amin -------------------------------------------------------------------
def _nonempty(x: Tensor, axes: tuple[int, ...], name: str, all_dims: bool) -> None:
    if all_dims and x.data.size == 0:
        raise RuntimeError(
            f"{name}(): Expected reduction dim to be specified for input.numel() == 0. "
            "Specify the reduction dim with the 'dim' argument."
        )
    for a in axes:
        if x.shape[a] == 0:
            raise IndexError(f"{name}(): Expected reduction dim {a} to have non-zero size.")


class MaxAll(Function):
    r""":math:`y = \max x` (or min); :math:`\bar x = \bar y\,[x = y] / \#\{x = y\}`: torch
    splits the gradient evenly over ties (over the NaNs when the result is NaN)."""

    torch_name = "MaxBackward1"
    pick: Any = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx: FunctionCtx, x: Tensor) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.y = cls.pick(x.data)
        return ctx.y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        mask = np.isnan(x.data) if np.isnan(ctx.y) else x.data == ctx.y
        return np.where(mask, grad / np.count_nonzero(mask), 0).astype(grad.dtype)


class MinAll(MaxAll):
    torch_name = "MinBackward1"
    pick: Any = staticmethod(np.min)


class MaxDim(Function):
    r"""``max(x, dim)``: values and (first) indices; :math:`\bar x` is :math:`\bar y` at the
    returned index, 0 elsewhere (ties are not split)."""

    torch_name = "MaxBackward0"
    pick: Any = staticmethod(np.argmax)

    @classmethod
    def forward(cls, ctx: FunctionCtx, x: Tensor, *, axis: Any, keepdim: bool) -> tuple:
        ctx.shape, ctx.axis, ctx.keepdim = x.shape, axis, keepdim
        if axis is None:  # a 0-d tensor: itself, at index 0
            ctx.index = np.zeros((), np.int64)
            return x.data.copy(), ctx.index
        index = np.expand_dims(cls.pick(x.data, axis=axis), axis)
        ctx.index = index if keepdim else index.squeeze(axis)
        values = np.take_along_axis(x.data, index, axis)
        return (values if keepdim else values.squeeze(axis)), ctx.index.astype(np.int64)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray, _grad_indices: np.ndarray) -> np.ndarray:
        if ctx.axis is None:
            return grad
        out = np.zeros(ctx.shape, grad.dtype)
        index, g = ctx.index, grad
        if not ctx.keepdim:
            index, g = np.expand_dims(index, ctx.axis), np.expand_dims(g, ctx.axis)
        np.put_along_axis(out, index, g, ctx.axis)
        return out


class MinDim(MaxDim):
    torch_name = "MinBackward0"
    pick: Any = staticmethod(np.argmin)


def _max_or_min(input: Tensor, dim: Any, keepdim: bool, kind: str) -> Any:
    from .ops_compare import maximum, minimum

    if isinstance(dim, Tensor):  # torch.max(a, b) is maximum
        return (maximum if kind == "max" else minimum)(input, dim)
    if dim is None:
        _nonempty(input, (), kind, all_dims=True)
        return (MaxAll if kind == "max" else MinAll).apply(input)
    axes = _axes(dim, input.ndim)
    _nonempty(input, axes, kind, all_dims=False)
    values, indices = (MaxDim if kind == "max" else MinDim).apply(
        input, axis=axes[0] if axes else None, keepdim=keepdim
    )
    return (ReturnMax if kind == "max" else ReturnMin)(values, indices)


def max(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """``torch.max``: the maximum; with ``dim``, ``(values, indices)``; with a tensor,
    :func:`maximum`."""
    return _max_or_min(input, dim, keepdim, "max")


def min(input: Tensor, dim: Any = None, keepdim: bool = False) -> Any:  # noqa: A001
    """``torch.min``: as :func:`max`."""
    return _max_or_min(input, dim, keepdim, "min")


class Amax(Function):
    r""":math:`y = \max_D x`; :math:`\bar x = \bar y\,[x = y] / \#\{x = y\}` per slice."""

    pick: Any = staticmethod(np.max)

    @classmethod
    def forward(cls, ctx: FunctionCtx, x: Tensor, *, axes: tuple, keepdim: bool) -> Any:
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdim = axes, keepdim
        ctx.y = cls.pick(x.data, axis=axes, keepdims=keepdim)
        return ctx.y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        mask = x.data == _restore(ctx.y, x.shape, ctx.axes, ctx.keepdim)
        count = mask.sum(axis=ctx.axes, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):  # a NaN slice: nan, as torch
            share = np.expand_dims(grad, ctx.axes) if not ctx.keepdim else grad
            return (share / count) * mask


class Amin(Amax):
    pick: Any = staticmethod(np.min)


def amax(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    axes = _axes(dim, input.ndim)
    _nonempty(input, axes, "amax", all_dims=dim in ((), None))
    return Amax.apply(input, axes=axes, keepdim=keepdim)


def amin(input: Tensor, dim: Any = (), keepdim: bool = False) -> Tensor:
    axes = _axes(dim, input.ndim)
    _nonempty(input, axes, "amin", all_dims=dim in ((), None))
    return Amin.apply(input, axes=axes, keepdim=keepdim)


TENSOR_METHODS: dict[str, Any] = {
    "sum": sum, "mean": mean, "prod": prod, "var": var, "std": std, "max": max, "min": min,
    "amax": amax, "amin": amin,
}  # fmt: skip
