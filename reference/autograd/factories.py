"""New leaf tensors (``torch.zeros``, ``torch.ones``, ``torch.randn``, ...).

Floating factories default to float32, torch's default dtype. Random ones take a NumPy
``generator`` (an ``np.random.Generator`` or a seed): the reference has no global RNG,
so its draws never pretend to be torch's.
"""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np

from .tensor import Tensor

__all__ = [
    "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "arange", "eye",
    "rand", "randn", "from_numpy", "float16", "float32", "float64", "int32", "int64", "bool",
]  # fmt: skip

float16, float32, float64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
int32, int64, bool = np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.bool_)  # noqa: A001


def _shape(size: tuple) -> tuple[int, ...]:
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size


def _dtype(dtype: Any, default: Any = float32) -> np.dtype:
    return np.dtype(default if dtype is None else dtype)


def zeros(*size: Any, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(size), _dtype(dtype)), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor(np.ones(_shape(size), _dtype(dtype)), requires_grad)


def full(size: Any, fill_value: Any, dtype: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:  # fmt: skip
    return Tensor(np.full(tuple(size), fill_value, _dtype(dtype)), requires_grad)


def zeros_like(input: Tensor, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor(np.zeros(input.shape, _dtype(dtype, input.dtype)), requires_grad)


def ones_like(input: Tensor, dtype: Any = None, requires_grad: builtins.bool = False) -> Tensor:
    return Tensor(np.ones(input.shape, _dtype(dtype, input.dtype)), requires_grad)


def full_like(input: Tensor, fill_value: Any, dtype: Any = None,
              requires_grad: builtins.bool = False) -> Tensor:  # fmt: skip
    return Tensor(np.full(input.shape, fill_value, _dtype(dtype, input.dtype)), requires_grad)


def arange(start: Any, end: Any = None, step: Any = 1, dtype: Any = None,
           requires_grad: builtins.bool = False) -> Tensor:  # fmt: skip
    """Integers give int64, as torch's; any float argument gives float32."""
    values = np.arange(start, end, step) if end is not None else np.arange(start)
    default = int64 if values.dtype.kind in "iu" else float32
    return Tensor(values.astype(_dtype(dtype, default)), requires_grad)


def eye(n: int, m: int | None = None, dtype: Any = None,
        requires_grad: builtins.bool = False) -> Tensor:  # fmt: skip
    return Tensor(np.eye(n, m, dtype=_dtype(dtype)), requires_grad)


def _rng(generator: Any) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    return np.random.default_rng(generator)


def rand(*size: Any, generator: Any = None, dtype: Any = None,
         requires_grad: builtins.bool = False) -> Tensor:  # fmt: skip
    """Uniform on [0, 1) from a NumPy generator."""
    values = _rng(generator).random(_shape(size))
    return Tensor(values.astype(_dtype(dtype)), requires_grad)


def randn(*size: Any, generator: Any = None, dtype: Any = None,
          requires_grad: builtins.bool = False) -> Tensor:  # fmt: skip
    """Standard normal from a NumPy generator."""
    values = _rng(generator).standard_normal(_shape(size))
    return Tensor(values.astype(_dtype(dtype)), requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """A leaf over ``array`` itself, keeping its dtype (``torch.from_numpy``)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(array).__name__})")
    return Tensor(array)
