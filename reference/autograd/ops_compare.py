r"""Comparisons and the piecewise-linear ops, that pick between values: ``clamp``,
``maximum``, ``minimum``, ``where``, ``masked_fill``, ``neg``, ``abs``, ``relu``; and the
operand handling every elementwise op shares (type promotion, broadcasting with torch's
error).

The picking ops are piecewise linear: the gradient goes to whichever input was picked.
At the kinks torch's choices are (measured): ``clamp`` passes the gradient at the bound
itself (:math:`\min \le x \le \max`); ``maximum``/``minimum`` split it 1/2, 1/2 on a
tie; ``abs'(0) = relu'(0) = 0``; a NaN compares false, so a NaN slot of ``maximum``
sends the full gradient to both.
Comparisons give bool tensors that carry no gradient.
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..functional import activation as act
from .broadcast import sum_to_shape
from .graph import Function, FunctionCtx
from .tensor import Tensor, result_type, unwrap

__all__ = ["eq", "ne", "lt", "le", "gt", "ge", "clamp", "clip", "maximum", "minimum",
           "where", "masked_fill", "neg", "abs", "relu"]  # fmt: skip

_DEFAULT_FLOAT = np.dtype(np.float32)
# torch's names for a dtype in its messages: the ScalarType one and the C++ one
SCALAR_TYPE = {"float32": "Float", "float64": "Double", "float16": "Half", "int64": "Long",
               "int32": "Int", "int16": "Short", "int8": "Char", "uint8": "Byte",
               "bool": "Bool"}  # fmt: skip
CXX_TYPE = {"float32": "float", "float64": "double", "float16": "c10::Half", "int64": "long int",
            "int32": "int", "int16": "short int", "int8": "signed char",
            "uint8": "unsigned char", "bool": "bool"}  # fmt: skip


# -- operands -----------------------------------------------------------------------------
def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """The broadcast of ``shapes``, or torch's error naming the two sizes that clash."""
    out: tuple[int, ...] = ()
    for shape in shapes:
        ndim = max(len(out), len(shape))
        a, b = (1,) * (ndim - len(out)) + out, (1,) * (ndim - len(shape)) + tuple(shape)
        for i, (m, n) in enumerate(zip(a, b)):
            if m != n and m != 1 and n != 1:
                raise RuntimeError(
                    f"The size of tensor a ({m}) must match the size of tensor b ({n}) at "
                    f"non-singleton dimension {i}"
                )
        out = tuple(n if m == 1 else m for m, n in zip(a, b))
    return out


def is_number(value: Any) -> bool:
    return isinstance(value, (numbers.Number, np.number, np.bool_))


def as_operands(*values: Any) -> tuple[np.dtype, list[Tensor]]:
    """torch's result dtype of ``values`` and each value as a Tensor: Tensors as they are
    (their gradient flows; the op computes in the result dtype, and the engine casts each
    gradient back to its input's dtype), numbers and arrays as constant Tensors of the
    result dtype (so a Python float never widens a float32 op). Shapes are checked."""
    dtype = result_type(*values)
    tensors = [v if isinstance(v, Tensor) else Tensor(np.asarray(v, dtype)) for v in values]
    broadcast_shape(*(t.shape for t in tensors))
    return dtype, tensors


def floating(dtype: np.dtype) -> np.dtype:
    """The dtype a floating op gives: integers and bools become torch's default float."""
    return np.dtype(dtype) if np.dtype(dtype).kind in "fc" else _DEFAULT_FLOAT


def sign(x: np.ndarray) -> np.ndarray:
    """torch's ``sgn``: -1, 0 or 1, and 0 at NaN (NumPy's sign gives NaN there)."""
    return np.where(np.isnan(x), 0, np.sign(x)).astype(x.dtype, copy=False)


def cast(t: Tensor, dtype: np.dtype) -> np.ndarray:
    return t.data.astype(dtype, copy=False)


# -- comparisons ----------------------------------------------------------------------------
def _compare(ufunc: np.ufunc, input: Any, other: Any) -> Any:
    if not (isinstance(other, (Tensor, np.ndarray)) or is_number(other)):
        return NotImplemented
    dtype, (a, b) = as_operands(input, other)
    return Tensor(ufunc(cast(a, dtype), cast(b, dtype)))


def eq(input: Any, other: Any) -> Tensor:
    return _compare(np.equal, input, other)


def ne(input: Any, other: Any) -> Tensor:
    return _compare(np.not_equal, input, other)


def lt(input: Any, other: Any) -> Tensor:
    return _compare(np.less, input, other)


def le(input: Any, other: Any) -> Tensor:
    return _compare(np.less_equal, input, other)


def gt(input: Any, other: Any) -> Tensor:
    return _compare(np.greater, input, other)


def ge(input: Any, other: Any) -> Tensor:
    return _compare(np.greater_equal, input, other)


# -- clamp -----------------------------------------------------------------------------------
class ClampScalar(Function):
    r""":math:`y = \min(\max(x, a), b)`, numbers :math:`a, b`;
    :math:`\bar x = \bar y\,[a \le x \le b]` (the bound itself passes the gradient)."""

    torch_name = "ClampBackward1"

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, lo: Any, hi: Any, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.lo, ctx.hi = lo, hi
        y = cast(x, dtype)
        if lo is not None:
            y = np.where(y < lo, np.asarray(lo, dtype), y)  # NaN stays NaN, as torch's
        if hi is not None:
            y = np.where(y > hi, np.asarray(hi, dtype), y)
        return y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        passes = np.ones(x.shape, bool)
        if ctx.lo is not None:
            passes &= x.data >= ctx.lo
        if ctx.hi is not None:
            passes &= x.data <= ctx.hi
        return np.where(passes, grad, 0)


class Clamp(Function):
    r"""Tensor bounds: :math:`\bar x = \bar y\,[a \le x \le b]`,
    :math:`\bar a = \bar y\,[x < a][a < b]`, :math:`\bar b = \bar y\,([x > b] \lor [b < a])`
    (torch's rule: when :math:`a > b` the output is :math:`b` and the gradient goes there;
    a missing bound is ``None``)."""

    torch_name = "ClampBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, lo: Any, hi: Any, *, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(x, lo, hi)
        y = cast(x, dtype)
        if lo is not None:
            y = np.where(y < lo.data, lo.data, y).astype(dtype, copy=False)
        if hi is not None:
            y = np.where(y > hi.data, hi.data, y).astype(dtype, copy=False)
        return y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        x, lo, hi = ctx.saved_tensors
        passes, g_lo, g_hi = np.ones(grad.shape, bool), None, None
        if lo is not None:
            passes = passes & (x.data >= lo.data)
            to_lo = x.data < lo.data
            if hi is not None:
                to_lo = to_lo & (lo.data < hi.data)
            g_lo = sum_to_shape(np.where(to_lo, grad, 0), lo.shape)
        if hi is not None:
            passes = passes & (x.data <= hi.data)
            to_hi = x.data > hi.data
            if lo is not None:
                to_hi = to_hi | (hi.data < lo.data)
            g_hi = sum_to_shape(np.where(to_hi, grad, 0), hi.shape)
        return sum_to_shape(np.where(passes, grad, 0), x.shape), g_lo, g_hi


def clamp(input: Tensor, min: Any = None, max: Any = None) -> Tensor:
    """``torch.clamp``: bounds are numbers or tensors (broadcast against ``input``)."""
    if min is None and max is None:
        raise RuntimeError("torch.clamp: At least one of 'min' or 'max' must not be None")
    bounds = [b for b in (min, max) if b is not None]
    dtype = result_type(input, *bounds)
    if not any(isinstance(b, Tensor) for b in bounds):
        return ClampScalar.apply(input, lo=min, hi=max, dtype=dtype)
    if any(not isinstance(b, Tensor) for b in bounds):
        raise TypeError("clamp: min and max must both be Tensors or both numbers (as torch)")
    lo, hi = (None if b is None else as_operands(input, b)[1][1] for b in (min, max))
    return Clamp.apply(input, lo, hi, dtype=dtype)


clip = clamp


# -- maximum / minimum / where / masked_fill --------------------------------------------------
class Maximum(Function):
    r""":math:`z = \max(a, b)`; :math:`\bar a = \bar z\,([a > b] + \tfrac12 [a = b])`, and
    symmetrically for :math:`b`; a NaN compares false, so both get :math:`\bar z`."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.maximum(cast(a, dtype), cast(b, dtype))

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        return _split(grad, a, b, a.data < b.data, a.data > b.data)


class Minimum(Function):
    r""":math:`z = \min(a, b)`; as :class:`Maximum` with the inequalities reversed."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.minimum(cast(a, dtype), cast(b, dtype))

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        return _split(grad, a, b, a.data > b.data, a.data < b.data)


def _split(grad: np.ndarray, a: Tensor, b: Tensor, a_loses: Any, b_loses: Any) -> tuple:
    """torch's rule: ``where(a == b, g/2, g)``, zeroed where the input lost."""
    shared = np.where(a.data == b.data, grad / 2, grad)
    g_a, g_b = np.where(a_loses, 0, shared), np.where(b_loses, 0, shared)
    return sum_to_shape(g_a, a.shape), sum_to_shape(g_b, b.shape)


def maximum(input: Any, other: Any) -> Tensor:
    dtype, (a, b) = as_operands(input, other)
    return Maximum.apply(a, b, dtype=dtype)


def minimum(input: Any, other: Any) -> Tensor:
    dtype, (a, b) = as_operands(input, other)
    return Minimum.apply(a, b, dtype=dtype)


class Where(Function):
    r""":math:`z = c\,?\,a : b`; :math:`\bar a = \bar z\,[c]`,
    :math:`\bar b = \bar z\,[\lnot c]`."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, cond: np.ndarray,
                dtype: np.dtype) -> np.ndarray:  # fmt: skip
        ctx.cond = cond
        ctx.shapes = a.shape, b.shape
        return np.where(cond, cast(a, dtype), cast(b, dtype))

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        shape_a, shape_b = ctx.shapes
        g_a = sum_to_shape(np.where(ctx.cond, grad, 0), shape_a)
        return g_a, sum_to_shape(np.where(ctx.cond, 0, grad), shape_b)


def _mask(value: Any, message: str) -> np.ndarray:
    mask = np.asarray(unwrap(value))
    if mask.dtype != np.bool_:
        name = mask.dtype.name
        raise RuntimeError(message.format(SCALAR_TYPE.get(name, name), CXX_TYPE.get(name, name)))
    return mask


def where(condition: Any, input: Any, other: Any) -> Tensor:
    """``torch.where(condition, input, other)`` (the three-argument form)."""
    cond = _mask(
        condition,
        "where expected condition to be a boolean tensor, but got a tensor with dtype {0}",
    )
    dtype, (a, b) = as_operands(input, other)
    broadcast_shape(cond.shape, a.shape, b.shape)
    return Where.apply(a, b, cond=cond, dtype=dtype)


class MaskedFill(Function):
    r""":math:`y = m\,?\,v : x`, a number :math:`v`; :math:`\bar x = \bar y\,[\lnot m]`."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, mask: np.ndarray, value: Any) -> np.ndarray:
        ctx.mask, ctx.shape = mask, x.shape
        return np.where(mask, np.asarray(value).astype(x.dtype), x.data)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return sum_to_shape(np.where(ctx.mask, 0, grad), ctx.shape)


class MaskedFillT(Function):
    r"""A 0-d tensor :math:`v`: also :math:`\bar v = \sum \bar y\,[m]`."""

    torch_name = "MaskedFillBackward1"

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, value: Tensor, *, mask: np.ndarray) -> np.ndarray:
        return MaskedFill.forward(ctx, x, mask=mask, value=value.data)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return MaskedFill.backward(ctx, grad), np.where(ctx.mask, grad, 0).sum()


def masked_fill(input: Tensor, mask: Any, value: Any) -> Tensor:
    """``torch.Tensor.masked_fill``: ``value`` is a number or a 0-d tensor."""
    m = _mask(mask, "masked_fill_ only supports boolean masks, but got mask with dtype {1}")
    broadcast_shape(input.shape, m.shape)
    if isinstance(value, Tensor):
        if value.ndim:
            raise RuntimeError(
                "masked_fill_ only supports a 0-dimensional value tensor, but got tensor with "
                f"{value.ndim} dimension(s)."
            )
        return MaskedFillT.apply(input, value, mask=m)
    return MaskedFill.apply(input, mask=m, value=value)


# -- neg / abs / relu ----------------------------------------------------------------------
class Neg(Function):
    r""":math:`y = -x`; :math:`\bar x = -\bar y`."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> np.ndarray:
        if x.dtype == np.bool_:
            raise RuntimeError(
                "Negation, the `-` operator, on a bool tensor is not supported. If you are "
                "trying to invert a mask, use the `~` or `logical_not()` operator instead."
            )
        return -x.data

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return -grad


class Abs(Function):
    r""":math:`y = |x|`; :math:`\bar x = \bar y\,\mathrm{sign}(x)`, so 0 at :math:`x = 0`
    (and at NaN, as torch)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> np.ndarray:
        if x.dtype == np.bool_:
            raise NotImplementedError("\"abs_cpu\" not implemented for 'Bool'")
        ctx.save_for_backward(x)
        return np.abs(x.data)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        return grad * sign(x.data)


class Relu(Function):
    r"""Calls :func:`reference.functional.activation.relu` and its backward (relu'(0) = 0)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor) -> np.ndarray:
        if x.dtype == np.bool_:
            raise RuntimeError("Boolean inputs not supported for relu")
        ctx.y = act.relu(x.data) if x.dtype.kind == "f" else np.maximum(x.data, 0)
        return ctx.y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return act.relu_backward(grad, ctx.y)  # y > 0 exactly where x > 0 (torch reads y)


def neg(input: Tensor) -> Tensor:
    return Neg.apply(input)


def abs(input: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(input)


def relu(input: Tensor) -> Tensor:
    return Relu.apply(input)


TENSOR_METHODS: dict[str, Any] = {
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge,
    "__eq__": eq, "__ne__": ne, "__lt__": lt, "__le__": le, "__gt__": gt, "__ge__": ge,
    "clamp": clamp, "clip": clamp, "maximum": maximum, "minimum": minimum,
    "masked_fill": masked_fill, "neg": neg, "negative": neg, "abs": abs, "relu": relu,
    "__neg__": neg, "__abs__": abs,
    "where": lambda self, condition, other: where(condition, self, other),
}  # fmt: skip
