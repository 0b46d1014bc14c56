"""Parameter initialisation with torch's default bounds, drawn from a NumPy Generator.

Torch draws its defaults from its own RNG; we draw from ``numpy.random.Generator``,
so values differ but the *distributions* match. Where exact values matter (the
harness), weights are copied across with ``load_state_dict``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def resolve_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, a seed, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def resolve_dtype(dtype: Any) -> np.dtype:
    """``None`` means float32, torch's default dtype."""
    resolved = np.dtype(np.float32 if dtype is None else dtype)
    if resolved.kind != "f":
        raise TypeError(f"parameters must be floating point, got dtype {resolved}")
    return resolved


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """``torch.nn.init.calculate_gain`` for the cases the default inits use."""
    if nonlinearity in (
        "linear",
        "sigmoid",
        "conv1d",
        "conv2d",
        "conv_transpose1d",
        "conv_transpose2d",
    ):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def uniform(
    rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: np.dtype
) -> np.ndarray:
    """U(-bound, bound), drawn in float64 then cast so float32 and float64 agree."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform_bound(fan_in: int, a: float = math.sqrt(5)) -> float:
    r"""Bound of ``kaiming_uniform_(w, a)``: :math:`\text{gain}(a)\sqrt{3/\text{fan\_in}}`.

    With torch's default ``a = sqrt(5)`` for Linear and Conv this is
    :math:`1/\sqrt{\text{fan\_in}}`.
    """
    if fan_in == 0:
        return 0.0
    return calculate_gain("leaky_relu", a) * math.sqrt(3.0 / fan_in)


def bias_bound(fan_in: int) -> float:
    """Torch's default bias init for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
