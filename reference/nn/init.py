"""Parameter initialisation with torch's formulas, drawn from a NumPy Generator.

Torch draws from its own RNG; we draw from ``numpy.random.Generator``, so values
differ but the *distributions*, bounds and standard deviations match. Where exact
values matter (the harness), weights are copied across with ``load_state_dict``.

``torch.nn.init``'s public functions (``uniform_``, ``kaiming_uniform_``,
``orthogonal_``...) live in :mod:`reference.nn.init_functions` and are re-exported
here under torch's names; below are the small helpers the modules' constructors use.
(torch's deprecated aliases without the underscore, ``uniform`` and the like, are not
provided: ``uniform`` here is the constructors' helper.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .init_functions import _calculate_correct_fan as _calculate_correct_fan
from .init_functions import _calculate_fan_in_and_fan_out as _calculate_fan_in_and_fan_out
from .init_functions import (
    calculate_gain,
    constant_,
    dirac_,
    eye_,
    kaiming_normal_,
    kaiming_uniform_,
    normal_,
    ones_,
    orthogonal_,
    sparse_,
    trunc_normal_,
    uniform_,
    xavier_normal_,
    xavier_uniform_,
    zeros_,
)
from .init_functions import resolve_rng as resolve_rng  # used by the modules

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
]


def resolve_dtype(dtype: Any) -> np.dtype:
    """``None`` means float32, torch's default dtype."""
    resolved = np.dtype(np.float32 if dtype is None else dtype)
    if resolved.kind != "f":
        raise TypeError(f"parameters must be floating point, got dtype {resolved}")
    return resolved


def uniform(
    rng: np.random.Generator, shape: tuple[int, ...], bound: float, dtype: np.dtype
) -> np.ndarray:
    """U(-bound, bound), drawn in float64 then cast so float32 and float64 agree."""
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def kaiming_uniform_bound(fan_in: int, a: float = math.sqrt(5)) -> float:
    r"""Bound of ``kaiming_uniform_(w, a)``: :math:`\sqrt 3\,\text{gain}(a)/\sqrt{\text{fan\_in}}`.

    Torch's formula and order of operations (the same float as
    :func:`kaiming_uniform_` uses). With torch's default ``a = sqrt(5)`` for Linear and
    Conv this is :math:`1/\sqrt{\text{fan\_in}}` (up to rounding). 0 for no inputs
    (torch leaves such a weight empty).
    """
    if fan_in == 0:
        return 0.0
    return math.sqrt(3.0) * (calculate_gain("leaky_relu", a) / math.sqrt(fan_in))


def bias_bound(fan_in: int) -> float:
    """Torch's default bias init for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
