"""Early, readable errors at the API boundary.

Each check names the layer, what it received and what it expected, so a user
never has to decode a NumPy broadcast error from deep inside a backward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def as_float_array(x: Any, layer: str, name: str = "input") -> np.ndarray:
    """``x`` as a floating ndarray; integers and bools are refused, as torch refuses them."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise TypeError(
            f"{layer}: {name} must be a floating array (float32 or float64), got dtype "
            f"{array.dtype} with shape {array.shape}; cast it with .astype(np.float32)"
        )
    return array


def check_ndim(x: np.ndarray, allowed: Sequence[int], layer: str, layout: str = "") -> None:
    """Raise if ``x.ndim`` is not one of ``allowed`` (e.g. Conv2d takes 3-D or 4-D input)."""
    if x.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        hint = f" ({layout})" if layout else ""
        raise ValueError(f"{layer}: expected {dims} input{hint}, got shape {x.shape}")


def check_size(x: np.ndarray, dim: int, expected: int, layer: str, what: str) -> None:
    """Raise if ``x.shape[dim] != expected``, naming what that size means."""
    if x.ndim == 0 or x.shape[dim] != expected:
        got = x.shape[dim] if x.ndim else "a scalar"
        raise ValueError(
            f"{layer}: expected input with {what} = {expected} in dim {dim}, got {got} "
            f"(input shape {x.shape})"
        )


def check_same_shape(
    a: np.ndarray, b: np.ndarray, layer: str, names: str = "input, target"
) -> None:
    if a.shape != b.shape:
        first, second = (n.strip() for n in names.split(","))
        raise ValueError(
            f"{layer}: {first} and {second} must have the same shape, got {first} {a.shape} "
            f"and {second} {b.shape}"
        )


def normalize_dim(dim: int, ndim: int, layer: str) -> int:
    """A possibly negative ``dim`` as an index into ``range(ndim)``; scalars count as 1-D."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise ValueError(
            f"{layer}: dim {dim} is out of range for an input with {ndim} dimension(s) "
            f"(expected a value in [{-size}, {size - 1}])"
        )
    return dim % size


def check_positive_int(value: Any, layer: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_reduction(
    reduction: str, layer: str, allowed: tuple[str, ...] = ("none", "mean", "sum")
) -> str:
    if reduction not in allowed:
        raise ValueError(f"{layer}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction
