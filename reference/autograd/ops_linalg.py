r"""Matrix products (``torch.matmul`` and ``@``, ``mm``, ``bmm``, ``dot``, ``mv``), vector
norms, and the reductions through an exponential (``logsumexp``, ``softmax``,
``log_softmax``).

For :math:`C = A B`: :math:`\bar A = \bar C B^\top`, :math:`\bar B = A^\top \bar C`.
``matmul`` lifts a 1-D left operand to a row :math:`(1, k)` and a 1-D right one to a
column :math:`(k, 1)`, broadcasts the batch dims, and drops the lifted dims from the
result; the backward lifts the upstream gradient the same way, applies the two
products, sums each gradient over the batch dims its operand was broadcast along
(:func:`.broadcast.sum_to_shape`) and drops the lifted dims again.
"""

# FunctionCtx holds each op's own attributes, and each backward names its gradients:
from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.softmax import log_softmax as _log_softmax
from ..functional.softmax import log_softmax_backward as _log_softmax_backward
from ..functional.softmax import softmax as _softmax
from ..functional.softmax import softmax_backward as _softmax_backward
from .broadcast import sum_to_shape
from .graph import Function, FunctionCtx
from .ops_compare import CXX_TYPE, SCALAR_TYPE, broadcast_shape, floating, sign
from .ops_reduce import _axes, _restore
from .tensor import Tensor

__all__ = ["matmul", "mm", "bmm", "dot", "mv", "norm", "logsumexp", "softmax", "log_softmax"]


# -- matmul -----------------------------------------------------------------------------------
class Matmul(Function):
    r""":math:`C = A B` with batch broadcasting; :math:`\bar A = \bar C B^\top`,
    :math:`\bar B = A^\top \bar C` (summed over broadcast batch dims)."""

    torch_name = "UnsafeViewBackward0"

    @staticmethod
    def forward(ctx: FunctionCtx, a: Tensor, b: Tensor) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.matmul(a.data, b.data)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        a, b = ctx.saved_tensors
        a2 = a.data[None, :] if a.ndim == 1 else a.data  # (k,) -> (1, k)
        b2 = b.data[:, None] if b.ndim == 1 else b.data  # (k,) -> (k, 1)
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
        g2 = grad.reshape(batch + (a2.shape[-2], b2.shape[-1]))  # (..., n, m), lifted dims back
        g_a = g_b = None
        if ctx.needs_input_grad[0]:
            g_a = sum_to_shape(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            g_b = sum_to_shape(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return g_a, g_b


class Dot(Matmul):
    torch_name = "DotBackward0"


class Mv(Matmul):
    torch_name = "MvBackward0"


class Mm(Matmul):
    torch_name = "MmBackward0"


class Bmm(Matmul):
    torch_name = "BmmBackward0"


class VecMat(Matmul):
    torch_name = "SqueezeBackward4"  # torch runs 1-D @ 2-D as unsqueeze, mm, squeeze


def _same_dtype(a: Tensor, b: Tensor) -> None:
    if a.dtype != b.dtype:
        names = (CXX_TYPE.get(t.dtype.name, t.dtype.name) for t in (a, b))
        raise RuntimeError("expected m1 and m2 to have the same dtype, but got: "
                           + " != ".join(names))  # fmt: skip


def _mm_error(rows: int, k: int, k2: int, cols: int | None) -> RuntimeError:
    if cols is None:
        return RuntimeError(f"size mismatch, got input ({rows}), mat ({rows}x{k}), vec ({k2})")
    return RuntimeError(f"mat1 and mat2 shapes cannot be multiplied ({rows}x{k} and {k2}x{cols})")


def _check_matmul(a: Tensor, b: Tensor) -> None:
    """torch's error for each way matmul folds its operands (measured, torch 2.x)."""
    if a.ndim == 0 or b.ndim == 0:
        raise RuntimeError(
            f"both arguments to matmul need to be at least 1D, but they are {a.ndim}D and {b.ndim}D"
        )
    k_a, k_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.ndim >= 3 and b.ndim >= 3:
        broadcast_shape(a.shape[:-2], b.shape[:-2])
    if k_a == k_b:
        return
    if a.ndim == 1 and b.ndim == 1:
        raise RuntimeError(
            f"inconsistent tensor size, expected tensor [{k_a}] and src [{k_b}] to have the "
            f"same number of elements, but got {k_a} and {k_b} elements respectively"
        )
    if b.ndim <= 2:  # a folded to (rows, k) against a matrix or a vector
        rows = int(np.prod(a.shape[:-1], dtype=np.int64))
        raise _mm_error(rows, k_a, k_b, b.shape[-1] if b.ndim == 2 else None)
    if a.ndim <= 2 and a.requires_grad:  # torch computes (b^T a^T)^T, b^T folded to rows
        rows = int(np.prod(b.shape[:-2], dtype=np.int64)) * b.shape[-1]
        raise _mm_error(rows, k_b, k_a, a.shape[0] if a.ndim == 2 else None)
    batch = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]), dtype=np.int64))
    raise RuntimeError(
        f"Expected size for first two dimensions of batch2 tensor to be: [{batch}, {k_a}] "
        f"but got: [{batch}, {k_b}]."
    )


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """``torch.matmul``: dot, matrix-vector, matrix-matrix, or batched with broadcasting."""
    input, other = (t if isinstance(t, Tensor) else Tensor(t) for t in (input, other))
    _check_matmul(input, other)
    _same_dtype(input, other)
    kind = {(1, 1): Dot, (2, 1): Mv, (2, 2): Mm, (1, 2): VecMat}.get(
        (input.ndim, other.ndim), Matmul
    )
    return kind.apply(input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    for name, t in (("self", input), ("mat2", mat2)):
        if t.ndim != 2:
            raise RuntimeError(f"{name} must be a matrix")
    return matmul(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """``torch.bmm``: (B, n, k) @ (B, k, m), no broadcasting."""
    for name, t in (("batch1", input), ("batch2", mat2)):
        if t.ndim != 3:
            raise RuntimeError(f"{name} must be a 3D tensor")
    if mat2.shape[:2] != (input.shape[0], input.shape[2]):
        raise RuntimeError(
            "Expected size for first two dimensions of batch2 tensor to be: "
            f"[{input.shape[0]}, {input.shape[2]}] but got: [{mat2.shape[0]}, {mat2.shape[1]}]."
        )
    _same_dtype(input, mat2)
    return Bmm.apply(input, mat2)


def dot(input: Tensor, tensor: Tensor) -> Tensor:
    if input.ndim != 1 or tensor.ndim != 1:
        raise RuntimeError(f"1D tensors expected, but got {input.ndim}D and {tensor.ndim}D tensors")
    if input.dtype != tensor.dtype:
        raise RuntimeError(
            "dot : expected both vectors to have same dtype, but found "
            f"{SCALAR_TYPE[input.dtype.name]} and {SCALAR_TYPE[tensor.dtype.name]}"
        )
    return matmul(input, tensor)


def mv(input: Tensor, vec: Tensor) -> Tensor:
    if input.ndim != 2 or vec.ndim != 1:
        raise RuntimeError(f"vector + matrix @ vector expected, got 1, {input.ndim}, {vec.ndim}")
    return matmul(input, vec)


# -- norm -------------------------------------------------------------------------------------
class LinalgVectorNorm(Function):
    r""":math:`y = (\sum_D |x|^p)^{1/p}`; :math:`\bar x = \bar y\, \mathrm{sign}(x)
    |x|^{p-1} / y^{p-1}` (:math:`\bar y\, x / y` for :math:`p = 2`), 0 where :math:`y = 0`.
    :math:`p = 1`: :math:`\bar y\,\mathrm{sign}(x)`; :math:`p = 0` (the count of nonzeros):
    0; :math:`p = \pm\infty` (the max/min of :math:`|x|`): :math:`\bar y\,\mathrm{sign}(x)`
    split evenly over the ties. These are torch's rules (``linalg_vector_norm_backward``)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, p: float, axes: tuple, keepdim: bool,
                dtype: np.dtype) -> Any:  # fmt: skip
        data = x.data.astype(dtype, copy=False)  # dtype=: computed in it, as torch
        ctx.save_for_backward(x)
        ctx.p, ctx.axes, ctx.keepdim = p, axes, keepdim
        a = np.abs(data)
        with np.errstate(over="ignore", divide="ignore"):  # inf where torch's is inf
            if p == 2:
                ctx.y = np.sqrt((data * data).sum(axis=axes, keepdims=keepdim))
            elif p == 0:
                ctx.y = (a != 0).sum(axis=axes, keepdims=keepdim).astype(dtype)
            elif np.isinf(p):
                ctx.y = (a.max if p > 0 else a.min)(axis=axes, keepdims=keepdim)
            else:
                ctx.y = (a**p).sum(axis=axes, keepdims=keepdim) ** (1 / p)
        return ctx.y

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        p, s, a = ctx.p, sign(x.data), np.abs(x.data)
        g = _restore(grad, x.shape, ctx.axes, ctx.keepdim)
        y = _restore(ctx.y, x.shape, ctx.axes, ctx.keepdim)
        if p == 0:
            return np.zeros(x.shape, grad.dtype)
        if p == 1:
            return g * s
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            if p == 2:
                return x.data * np.where(y == 0, 0, g / y)
            if np.isinf(p):
                mask = (a == y) | np.isnan(a)
                return s * (g / mask.sum(axis=ctx.axes, keepdims=True)) * mask
            if p < 1:
                scaled = s * np.where(x.data == 0, 0, a ** (p - 1))
                return scaled * g * y ** (1 - p)
            scaled = s * a ** (p - 1) if p < 2 else x.data * a ** (p - 2)
            return scaled * np.where(y == 0, 0, g / y ** (p - 1))


def norm(input: Tensor, p: Any = "fro", dim: Any = None, keepdim: bool = False,
         dtype: Any = None) -> Tensor:  # fmt: skip
    """``torch.norm`` as a vector norm over ``dim`` (all dims when None): any number ``p``
    (``inf`` too) and ``'fro'`` (= 2); the matrix norm ``'nuc'`` is not implemented."""
    if p == "fro" or p is None:
        p = 2
    if isinstance(p, str):
        raise NotImplementedError(f"norm: p={p!r} is not implemented (numbers and 'fro')")
    axes = _axes(dim, input.ndim)
    dtype = floating(input.dtype) if dtype is None else np.dtype(dtype)
    return LinalgVectorNorm.apply(input, p=float(p), axes=axes, keepdim=keepdim, dtype=dtype)


# -- logsumexp / softmax -----------------------------------------------------------------------
class Logsumexp(Function):
    r""":math:`y = m + \log \sum_D e^{x - m}`, :math:`m = \max_D x` (0 where infinite, as
    torch); :math:`\bar x = \bar y\, e^{x - y}` (the softmax)."""

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, *, axes: tuple, keepdim: bool) -> Any:
        data = x.data.astype(floating(x.dtype), copy=False)
        ctx.save_for_backward(x)
        ctx.axes, ctx.keepdim = axes, keepdim
        with np.errstate(invalid="ignore", divide="ignore"):
            m = data.max(axis=axes, keepdims=True, initial=-np.inf)
            m = np.where(np.isinf(m), 0, m).astype(data.dtype)
            y = np.log(np.exp(data - m).sum(axis=axes, keepdims=True)) + m
        ctx.y = y
        return y if keepdim else y.squeeze(axes)

    @staticmethod
    def backward(ctx: FunctionCtx, grad: np.ndarray) -> tuple:
        (x,) = ctx.saved_tensors
        g = grad if ctx.keepdim else np.expand_dims(grad, ctx.axes)
        with np.errstate(invalid="ignore"):
            return g * np.exp(x.data - ctx.y)


def logsumexp(input: Tensor, dim: Any, keepdim: bool = False) -> Tensor:
    return Logsumexp.apply(input, axes=_axes(dim, input.ndim), keepdim=keepdim)


class Softmax(Function):
    r"""Calls :func:`reference.functional.softmax.softmax` and its backward."""

    pair = (_softmax, _softmax_backward)

    @classmethod
    def forward(cls, ctx: FunctionCtx, x: Tensor, *, dim: int, dtype: Any) -> Any:
        ctx.dim, ctx.dtype = dim, dtype
        ctx.y = cls.pair[0](x.data, dim, dtype)
        return ctx.y

    @classmethod
    def backward(cls, ctx: FunctionCtx, grad: np.ndarray) -> np.ndarray:
        # torch's backward reads only the result; given output=, the pair's backward reads
        # its input argument for the shape alone (the engine casts to the input's dtype)
        return cls.pair[1](grad, ctx.y, ctx.dim, ctx.dtype, output=ctx.y)


class LogSoftmax(Softmax):
    r"""Calls :func:`reference.functional.softmax.log_softmax` and its backward."""

    pair = (_log_softmax, _log_softmax_backward)


def softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    _axes(dim, input.ndim)
    return Softmax.apply(input, dim=dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int, dtype: Any = None) -> Tensor:
    _axes(dim, input.ndim)
    return LogSoftmax.apply(input, dim=dim, dtype=dtype)


TENSOR_METHODS: dict[str, Any] = {
    "matmul": matmul, "mm": mm, "bmm": bmm, "dot": dot, "mv": mv, "norm": norm,
    "__matmul__": matmul, "__rmatmul__": lambda self, other: matmul(other, self),
    "logsumexp": logsumexp, "softmax": softmax, "log_softmax": log_softmax,
}  # fmt: skip
