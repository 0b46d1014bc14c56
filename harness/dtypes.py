"""The floating-point formats the harness runs, by torch's names, and what rounding to each does.

``float`` and ``half`` mean what they mean in torch (float32, float16), not what NumPy
says (``np.dtype('float')`` is float64). The reference implements float32 and float64;
in half precision only torch runs, judged against the float64 truth (``harness.bounds``).
NumPy has no bfloat16, so :func:`round_to` rounds to it by hand (round to nearest even
on the top 16 bits of a float32, as torch's conversion does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "DTYPES",
    "HALF_DTYPES",
    "REFERENCE_DTYPES",
    "max_finite",
    "parse_dtype",
    "parse_dtypes",
    "round_to",
    "subnormal_step",
    "unit_roundoff",
]

# canonical name -> (unit roundoff u = 2^-p for p significand bits, smallest subnormal
# step, largest finite value)
_FORMATS: dict[str, tuple[float, float, float]] = {
    "float64": (2.0**-53, 2.0**-1074, float(np.finfo(np.float64).max)),
    "float32": (2.0**-24, 2.0**-149, float(np.finfo(np.float32).max)),
    "float16": (2.0**-11, 2.0**-24, 65504.0),
    "bfloat16": (2.0**-8, 2.0**-133, 3.3895313892515355e38),
}
DTYPES = tuple(_FORMATS)
REFERENCE_DTYPES = ("float32", "float64")  # the reference computes in these
HALF_DTYPES = ("float16", "bfloat16")  # torch only; the truth is float64

_ALIASES = {
    "float64": "float64",
    "double": "float64",
    "float32": "float32",
    "float": "float32",
    "float16": "float16",
    "half": "float16",
    "bfloat16": "bfloat16",
}


def parse_dtype(name: Any) -> str:
    """The canonical name of ``name`` ('float', 'torch.half', np.float32, ...).

    Raises ``ValueError`` naming the accepted spellings for anything else."""
    if isinstance(name, (type, np.dtype)):
        name = np.dtype(name).name
    text = str(name).strip().lower().removeprefix("torch.")
    if text not in _ALIASES:
        raise ValueError(
            f"unknown dtype {name!r}: use float32 (float), float64 (double), "
            "float16 (half) or bfloat16"
        )
    return _ALIASES[text]


def parse_dtypes(names: Any) -> tuple[str, ...]:
    """Canonical names of a comma-separated string or a sequence, duplicates dropped."""
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and not item.strip():
            continue
        canonical = parse_dtype(item)
        if canonical not in out:
            out.append(canonical)
    if not out:
        raise ValueError("no dtype given: use float32, float64, float16 or bfloat16")
    return tuple(out)


def unit_roundoff(dtype: str) -> float:
    """``u``: rounding a normal number to ``dtype`` changes it by at most ``u`` relative."""
    return _FORMATS[parse_dtype(dtype)][0]


def subnormal_step(dtype: str) -> float:
    """The spacing of ``dtype``'s subnormals: below the normal range rounding is absolute."""
    return _FORMATS[parse_dtype(dtype)][1]


def max_finite(dtype: str) -> float:
    return _FORMATS[parse_dtype(dtype)][2]


def round_to(x: np.ndarray, dtype: str) -> np.ndarray:
    """``x`` rounded to ``dtype`` and returned as float64 (integer arrays unchanged)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return x
    name = parse_dtype(dtype)
    if name == "bfloat16":
        with np.errstate(over="ignore"):
            bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
        rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000  # nearest, ties to even
        out = rounded.astype(np.uint32).view(np.float32).astype(np.float64)
        return np.where(np.isnan(x), x, out)
    with np.errstate(over="ignore"):
        return x.astype(name).astype(np.float64)
