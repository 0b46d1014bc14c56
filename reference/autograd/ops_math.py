r"""Elementwise arithmetic and functions (``torch.add`` ... ``torch.sigmoid``), and the
operators ``+ - * / ** -x abs(x)``.

Binary ops broadcast (each gradient is summed back to its input's shape,
:func:`.broadcast.sum_to_shape`) and follow torch's type promotion; they compute in the
result dtype, and the engine casts each gradient back to its input's dtype. The
primitive functions return IEEE values where torch does (``log(0) = -inf``,
``sqrt'(0) = inf``, ``0 ** -1 = inf``), so they run under ``np.errstate(all="ignore")``.
Kinks (measured in torch): ``abs'(0) = 0``, ``relu'(0) = 0``, ``d(x**0)/dx = 0``
everywhere, and ``d(a**b)/db = 0`` where ``a == 0, b >= 0``.

The comparisons and the piecewise-linear ops (``neg``, ``abs``, ``relu``, ``clamp``, ...)
live in :mod:`.ops_compare` and are re-exported here.
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

from typing import Any

import numpy as np

from ..functional import activation_smooth as smooth
from . import ops_compare
from .broadcast import sum_to_shape
from .graph import Function, FunctionCtx
from .ops_compare import *  # noqa: F403  (re-exported: comparisons, clamp, abs, relu, ...)
from .ops_compare import as_operands, cast, floating, is_number
from .tensor import Tensor, result_type

__all__ = ["add", "sub", "rsub", "mul", "div", "true_divide", "pow", "exp",
           "log", "log1p", "sqrt", "rsqrt", "sin", "cos", "tanh", "sigmoid",
           *ops_compare.__all__]  # fmt: skip


def _ieee() -> np.errstate:
    return np.errstate(all="ignore")


# -- + - * / -----------------------------------------------------------------------------------
class Add(Function):
    r""":math:`z = a + \alpha b`; :math:`\bar a = \bar z`, :math:`\bar b = \alpha \bar z`."""

    sign = 1

    @classmethod
    def forward(cls, ctx: FunctionCtx, a: Tensor, b: Tensor, *, alpha: Any, dtype: Any) -> Any:
        ctx.shapes, ctx.alpha = (a.shape, b.shape), alpha * cls.sign
        return cast(a, dtype) + cast(b, dtype) * np.asarray(ctx.alpha, dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        g_b = grad if ctx.alpha == 1 else -grad if ctx.alpha == -1 else grad * ctx.alpha
        return sum_to_shape(grad, ctx.shapes[0]), sum_to_shape(g_b, ctx.shapes[1])


class Sub(Add):
    r""":math:`z = a - \alpha b`; :math:`\bar a = \bar z`, :math:`\bar b = -\alpha \bar z`."""

    sign = -1

    @classmethod
    def forward(cls, ctx: FunctionCtx, a: Tensor, b: Tensor, *, alpha: Any, dtype: Any) -> Any:
        if np.bool_ in (a.dtype, b.dtype):
            raise RuntimeError(
                "Subtraction, the `-` operator, with two bool tensors is not supported. Use "
                "the `^` or `logical_xor()` operator instead."
                if a.dtype == b.dtype
                else "Subtraction, the `-` operator, with a bool tensor is not supported. If "
                "you are trying to invert a mask, use the `~` or `logical_not()` operator "
                "instead."
            )
        return super().forward(ctx, a, b, alpha=alpha, dtype=dtype)


class Rsub(Function):
    r"""``torch.rsub(a, b, alpha)``: :math:`z = b - \alpha a`; :math:`\bar a = -\alpha \bar z`,
    :math:`\bar b = \bar z`."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, alpha: Any, dtype: np.dtype) -> Any:
        return Sub.forward(ctx, b, a, alpha=alpha, dtype=dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        return Sub.backward(ctx, grad)[::-1]


class RsubScalar(Function):
    r""":math:`z = c - \alpha a`, a number :math:`c`; :math:`\bar a = -\alpha \bar z`."""

    torch_name = "RsubBackward1"

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, *, other: Tensor, alpha: Any, dtype: np.dtype) -> Any:
        return Sub.forward(ctx, other, a, alpha=alpha, dtype=dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        return Sub.backward(ctx, grad)[1]


def add(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    dtype, (a, b) = as_operands(input, other)
    return Add.apply(a, b, alpha=alpha, dtype=dtype)


def sub(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    dtype, (a, b) = as_operands(input, other)
    return Sub.apply(a, b, alpha=alpha, dtype=dtype)


def rsub(input: Any, other: Any, alpha: Any = 1) -> Tensor:
    """``other - alpha * input`` (``torch.rsub``)."""
    dtype, (a, b) = as_operands(input, other)
    if isinstance(other, Tensor):
        return Rsub.apply(a, b, alpha=alpha, dtype=dtype)
    return RsubScalar.apply(a, other=b, alpha=alpha, dtype=dtype)


class Mul(Function):
    r""":math:`z = a b`; :math:`\bar a = \bar z\, b`, :math:`\bar b = \bar z\, a`."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(a, b)
        ctx.dtype = dtype
        with _ieee():
            return cast(a, dtype) * cast(b, dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        with _ieee():
            g_a, g_b = grad * cast(b, ctx.dtype), grad * cast(a, ctx.dtype)
        return sum_to_shape(g_a, a.shape), sum_to_shape(g_b, b.shape)


def mul(input: Any, other: Any) -> Tensor:
    dtype, (a, b) = as_operands(input, other)
    return Mul.apply(a, b, dtype=dtype)


class Div(Function):
    r""":math:`z = a / b`; :math:`\bar a = \bar z / b`, :math:`\bar b = -\bar z\, a / b^2`."""

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(a, b)
        ctx.dtype = dtype
        with _ieee():
            return cast(a, dtype) / cast(b, dtype)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        bb = cast(b, ctx.dtype)
        with _ieee():
            g_a, g_b = grad / bb, -grad * cast(a, ctx.dtype) / (bb * bb)
        return sum_to_shape(g_a, a.shape), sum_to_shape(g_b, b.shape)


class RDiv(Div):
    """``number / tensor`` (torch records it as a reciprocal times the number)."""

    torch_name = "MulBackward0"


class DivRounded(Function):
    r"""``div(a, b, rounding_mode='trunc' | 'floor')``: piecewise constant, so torch's
    gradient is 0 for both inputs."""

    torch_name = "DivBackward2"

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, mode: str, dtype: np.dtype) -> Any:
        ctx.shapes = a.shape, b.shape
        x, y = cast(a, dtype), cast(b, dtype)
        if dtype.kind in "iub" and not np.all(y):
            raise ZeroDivisionError("ZeroDivisionError")
        with _ieee():
            if mode == "floor":
                return np.floor_divide(x, y)  # Python's floor division, as torch's
            if dtype.kind == "f":
                return np.trunc(x / y)
            q = np.floor_divide(x, y)  # integers: round the floor towards zero
            return q + ((np.remainder(x, y) != 0) & ((x < 0) != (y < 0)))

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        shape_a, shape_b = ctx.shapes
        zero = np.zeros_like(grad)
        return sum_to_shape(zero, shape_a), sum_to_shape(zero, shape_b)


def div(input: Any, other: Any, rounding_mode: str | None = None) -> Tensor:
    """``torch.div``: true division (integers give the default float), or rounded."""
    dtype, (a, b) = as_operands(input, other)
    if rounding_mode is None:
        return Div.apply(a, b, dtype=floating(dtype))
    if rounding_mode not in ("trunc", "floor"):
        raise RuntimeError(
            "div expected rounding_mode to be one of None, 'trunc', or 'floor' but found "
            f"'{rounding_mode}'"
        )
    return DivRounded.apply(a, b, mode=rounding_mode, dtype=dtype)


true_divide = div


def _rdiv(self: Tensor, other: Any) -> Tensor:
    dtype, (b, a) = as_operands(self, other)
    return RDiv.apply(a, b, dtype=floating(dtype))


# -- pow -------------------------------------------------------------------------------------
def _check_int_power(base: np.ndarray, exponent: Any, dtype: np.dtype) -> None:
    if dtype.kind in "iu" and np.any(np.asarray(exponent) < 0):
        raise RuntimeError("Integers to negative integer powers are not allowed.")


class Pow(Function):
    r""":math:`y = x^e`, a number :math:`e`; :math:`\bar x = \bar y\, e\, x^{e-1}`
    (0 everywhere when :math:`e = 0`, as torch)."""

    torch_name = "PowBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, e: Any, dtype: np.dtype) -> np.ndarray:
        ctx.save_for_backward(x)
        ctx.e, ctx.dtype = e, dtype
        _check_int_power(x.data, e, dtype)
        with _ieee():
            return np.power(cast(x, dtype), np.asarray(e, dtype))

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        if ctx.e == 0:
            return np.zeros_like(grad)
        e = np.asarray(ctx.e, ctx.dtype)
        with _ieee():
            return grad * (e * np.power(cast(x, ctx.dtype), e - 1))


class PowTensor(Function):
    r""":math:`z = a^b`; :math:`\bar a = \bar z\, b\, a^{b-1}` (0 where :math:`b = 0`),
    :math:`\bar b = \bar z\, z \log a` (0 where :math:`a = 0, b \ge 0`)."""

    torch_name = "PowBackward1"

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor, *, dtype: np.dtype) -> np.ndarray:
        _check_int_power(a.data, b.data, dtype)
        with _ieee():
            z = np.power(cast(a, dtype), cast(b, dtype))
        ctx.save_for_backward(a, b)
        ctx.z, ctx.dtype = z, dtype
        return z

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        x, e = cast(a, ctx.dtype), cast(b, ctx.dtype)
        with _ieee():
            g_a = np.where(e == 0, 0, grad * (e * np.power(x, e - 1)))
            g_b = np.where((x == 0) & (e >= 0), 0, grad * (ctx.z * np.log(x)))
        return sum_to_shape(g_a, a.shape), sum_to_shape(g_b, b.shape)


class RPow(Function):
    r""":math:`y = c^x`, a number :math:`c`; :math:`\bar x = \bar y\, y \log c`
    (0 where :math:`c = 0, x \ge 0`)."""

    torch_name = "PowBackward2"

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, c: Any, dtype: np.dtype) -> np.ndarray:
        _check_int_power(np.asarray(c), x.data, dtype)
        with _ieee():
            y = np.power(np.asarray(c, dtype), cast(x, dtype))
        ctx.save_for_backward(x)
        ctx.c, ctx.y = np.asarray(c, dtype), y
        return y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        with _ieee():
            g = np.where((ctx.c == 0) & (x.data >= 0), 0, grad * (ctx.y * np.log(ctx.c)))
        return g


def pow(input: Any, exponent: Any) -> Tensor:  # noqa: A001
    """``torch.pow``: tensor ** number, tensor ** tensor, or number ** tensor."""
    dtype = result_type(input, exponent)
    if not isinstance(input, Tensor):
        return RPow.apply(exponent, c=input, dtype=dtype)
    if is_number(exponent):
        return Pow.apply(input, e=exponent, dtype=dtype)
    dtype, (a, b) = as_operands(input, exponent)
    return PowTensor.apply(a, b, dtype=dtype)


# -- unary -------------------------------------------------------------------------------------
def _float_data(x: Tensor) -> np.ndarray:
    return cast(x, floating(x.dtype))


class _Unary(Function):
    """A floating function of one tensor whose gradient is ``grad * derivative(x)``, or
    ``grad * derivative(y)`` of the output where torch's backward reads its result
    (``from_output``: the output is saved, so an in-place change to it raises)."""

    function: Any = None
    derivative: Any = None
    from_output = False

    @classmethod
    def forward(cls, ctx: FunctionCtx, x: Tensor) -> np.ndarray:
        with _ieee():
            y = cls.function(_float_data(x))
        ctx.save_for_backward(y if cls.from_output else x)
        return y

    @classmethod
    def backward(cls, ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        at = _float_data(ctx.saved_tensors[0])
        with _ieee():
            return grad * cls.derivative(at)


class Exp(_Unary):
    r""":math:`\bar x = \bar y\, e^x = \bar y\, y`."""

    function = np.exp
    derivative = staticmethod(lambda y: y)
    from_output = True


class Log(_Unary):
    r""":math:`\bar x = \bar y / x`."""

    function = np.log
    derivative = staticmethod(lambda x: 1 / x)


class Log1P(_Unary):
    r""":math:`y = \log(1 + x)`; :math:`\bar x = \bar y / (1 + x)`."""

    function = np.log1p
    derivative = staticmethod(lambda x: 1 / (x + 1))


class Sqrt(_Unary):
    r""":math:`\bar x = \bar y / (2 y)` (``inf`` at 0, as torch)."""

    function = np.sqrt
    derivative = staticmethod(lambda y: 0.5 / y)
    from_output = True


class Rsqrt(_Unary):
    r""":math:`y = x^{-1/2}`; :math:`\bar x = -\bar y\, y^3 / 2`."""

    function = staticmethod(lambda x: 1 / np.sqrt(x))
    derivative = staticmethod(lambda y: -0.5 * y * y * y)
    from_output = True


class Sin(_Unary):
    r""":math:`\bar x = \bar y \cos x`."""

    function = np.sin
    derivative = np.cos


class Cos(_Unary):
    r""":math:`\bar x = -\bar y \sin x`."""

    function = np.cos
    derivative = staticmethod(lambda x: -np.sin(x))


class _Paired(Function):
    """A function whose forward/backward pair lives in :mod:`reference.functional`."""

    pair: Any = None

    @classmethod
    def forward(cls, ctx: FunctionCtx, x: Tensor) -> np.ndarray:
        ctx.y = cls.pair[0](_float_data(x))
        return ctx.y

    @classmethod
    def backward(cls, ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        # torch's backward reads only the result; given output=, the pair's backward
        # reads its input argument for the shape and dtype alone
        return cls.pair[1](grad, ctx.y, output=ctx.y)


class Tanh(_Paired):
    r"""Calls :func:`reference.functional.activation_smooth.tanh` and its backward."""

    pair = (smooth.tanh, smooth.tanh_backward)


class Sigmoid(_Paired):
    r"""Calls :func:`reference.functional.activation_smooth.sigmoid` and its backward."""

    pair = (smooth.sigmoid, smooth.sigmoid_backward)


def _unary(function: type[Function], name: str) -> Any:
    def op(input: Tensor) -> Tensor:
        return function.apply(input)

    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"``torch.{name}``: see :class:`{function.__name__}`."
    return op


_UNARY = {"exp": Exp, "log": Log, "log1p": Log1P, "sqrt": Sqrt, "rsqrt": Rsqrt, "sin": Sin,
          "cos": Cos, "tanh": Tanh, "sigmoid": Sigmoid}  # fmt: skip
exp, log, log1p, sqrt, rsqrt, sin, cos, tanh, sigmoid = (_unary(f, n) for n, f in _UNARY.items())


def _swap(function: Any) -> Any:
    return lambda self, other: function(other, self)


TENSOR_METHODS: dict[str, Any] = {
    **ops_compare.TENSOR_METHODS,
    "add": add, "sub": sub, "subtract": sub, "mul": mul, "multiply": mul, "div": div,
    "divide": div, "true_divide": div, "pow": pow,
    "exp": exp, "log": log, "log1p": log1p, "sqrt": sqrt, "rsqrt": rsqrt, "sin": sin,
    "cos": cos, "tanh": tanh, "sigmoid": sigmoid,
    "__add__": add, "__radd__": _swap(add), "__sub__": sub, "__rsub__": rsub,
    "__mul__": mul, "__rmul__": _swap(mul), "__truediv__": div, "__rtruediv__": _rdiv,
    "__pow__": pow, "__rpow__": _swap(pow),
}  # fmt: skip
