"""The allowance's data model: per traced tensor, the truth and the largest deviation a
correct side may show from it, and the per-element ratio every verdict reads.

:mod:`harness.bounds` draws the samples (its module docstring gives the error model);
this module holds what they come to: :class:`Allowance` (built by ``bounds.Sampler``),
:func:`ratio`, and :data:`SAFETY`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import Trace
from .dtypes import max_finite, subnormal_step, unit_roundoff
from .verdict import traced

__all__ = ["SAFETY", "Allowance", "ratio"]

Key = tuple[Any, ...]  # (Kind, layer, tensor, step), harness.verdict.traced

# the spread is an estimate of a typical error from few samples, while the verdict must
# hold for every element of every tensor of every case; and the model places rounding at
# layer boundaries only. 16x: a side is blamed when it is 16x farther from the truth than
# any sampled rounding history (or than one rounding of the value). It still sees a 1e-5
# relative error in float32 (spread ~ u = 6e-8; 16 * 2.5 * 6e-8 = 2.4e-6).
SAFETY = 16.0

# the formats the samples compute in themselves (half precision's run in float64, where a
# NaN sample comes from a known deviation's widening, which harness.known classifies)
_OWN_DTYPES = ("float32", "float64")


def ratio(side: Any, truth: Any, allowed: Any, non_finite: bool = False) -> np.ndarray:
    """Per element, ``|side - truth| / allowed`` (<= 1: within).

    NaN matches NaN and an inf matches the same inf; a NaN or inf against anything else
    is ``inf``; where the allowance itself is infinite (beyond the dtype's range, or a
    sample overflowed) any finite or infinite value passes, but NaN against a number
    does not, unless ``non_finite`` (a known deviation: the formula in the dtype takes
    0/0 there, harness.known)."""
    s = np.asarray(side, np.float64)
    t = np.asarray(truth, np.float64)
    a = np.broadcast_to(np.asarray(allowed, np.float64), t.shape)
    same = (np.isnan(s) & np.isnan(t)) | (np.isinf(t) & (s == t))
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(s - t)
        out = np.where(np.isinf(a), 0.0, diff / np.maximum(a, np.finfo(np.float64).tiny))
    out = np.where(np.isnan(out), np.inf, out)
    if not non_finite:
        out = np.where(np.isinf(a) & np.isnan(s) & ~np.isnan(t), np.inf, out)
    return np.where(same, 0.0, out)


@dataclass
class Allowance:
    """The truth and, per traced tensor, the largest sampled deviations: from the truth
    (torch is judged on it) and from the reference's own run in the dtype (the
    reference is judged on it)."""

    dtype: str
    truth: Trace
    spread: dict[Key, np.ndarray]
    samples: int
    around_reference: dict[Key, np.ndarray] | None = None
    tensors: dict[Key, np.ndarray] = field(default_factory=dict)  # the truth's, by key
    non_finite: bool = False  # NaN passes where the samples are non-finite (ratio)
    # per key, where some sample (a correct rounding history in the dtype) turned NaN
    nan_possible: dict[Key, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tensors = self.tensors or traced(self.truth)

    def of(self, key: Key, side: str = "torch", torch: Any = None) -> np.ndarray:
        """Per element, how far a correct ``side``'s value of ``key`` may be from the truth.

        For the reference, ``torch`` (torch's value of ``key`` in the same dtype) is
        evidence too: an error torch shares is one a float32 implementation makes (a
        rounding inside a layer that no perturbed input moves, the same in every sample)."""
        t = np.asarray(self.tensors[key], np.float64)
        finite = np.where(np.isfinite(t), np.abs(t), 0.0)
        # one rounding of the value: relative above the normal range, and never finer than
        # half the format's subnormal step (float16's 3e-8 matters; float32's does not)
        own = np.maximum(unit_roundoff(self.dtype) * finite, 0.5 * subnormal_step(self.dtype))
        spread = self.spread[key]
        if side == "reference" and self.around_reference is not None:
            spread = self.around_reference[key]
            if torch is not None and np.shape(torch) == t.shape:
                with np.errstate(invalid="ignore"):
                    shared = np.abs(np.asarray(torch, np.float64) - t)
                spread = np.maximum(spread, np.where(np.isfinite(shared), shared, 0.0))
        allowed = SAFETY * np.maximum(spread, own)
        # a value the dtype cannot hold (float16 above 65504) cannot be held to anything
        return np.where(finite > max_finite(self.dtype), np.inf, allowed)

    def ratio(self, key: Key, values: Any, side: str = "torch", torch: Any = None) -> np.ndarray:
        """Per element, how many allowances ``values`` is from the truth of ``key``."""
        allowed = self.of(key, side, torch)
        out = ratio(values, self.tensors[key], allowed, self.non_finite and side == "torch")
        # where the truth is beyond the dtype's range (or beyond float64's: inf), a correct
        # side holds inf, and what it computes from inf may be NaN (an update p - lr g with
        # both inf): NaN passes there, and only there
        t = np.asarray(self.tensors[key], np.float64)
        with np.errstate(invalid="ignore"):
            beyond = np.isinf(t) | (np.abs(t) > max_finite(self.dtype))
        # and where a correct history in the dtype turns NaN itself (it computed from a
        # value the dtype cannot hold: an overflowed gradient times a padding zero), or
        # the truth is NaN (float64 overflowed too), a non-finite value is as correct
        s = np.asarray(values, np.float64)
        possible = self.nan_possible.get(key)
        if possible is not None and possible.shape == t.shape and self.dtype in _OWN_DTYPES:
            beyond = beyond | possible
        beyond = beyond | (np.isnan(t) & np.isinf(s))
        return np.where(beyond & ~np.isfinite(s), 0.0, out)

    def united(self, other: Allowance) -> Allowance:
        """The allowance of both families of rounding histories: per element, the larger
        spread (a history exact up to a layer is as legitimate as one that rounds all
        along, and where the network's conditioning depends on how much rounded before,
        it is the one that lives near the truth)."""
        spread = {k: np.maximum(v, other.spread.get(k, 0.0)) for k, v in self.spread.items()}
        around = self.around_reference
        if around is not None and other.around_reference is not None:
            around = {
                k: np.maximum(v, other.around_reference.get(k, 0.0)) for k, v in around.items()
            }
        return dataclasses.replace(self, spread=spread, around_reference=around)

    def widened(self, other: Allowance, non_finite: bool = False) -> Allowance:
        """This allowance plus ``other``'s spread (a known deviation's propagated error);
        ``non_finite``: the deviation may make torch's value NaN where samples are."""
        spread = {k: v + other.spread.get(k, 0.0) for k, v in self.spread.items()}
        return dataclasses.replace(self, spread=spread, non_finite=non_finite)


def _spread(center: dict[Key, np.ndarray], samples: list[dict[Key, np.ndarray]]) -> dict:
    """Per key and element, the largest ``|sample - center|``."""
    spread: dict[Key, np.ndarray] = {}
    for key, t in center.items():
        t64 = np.asarray(t, np.float64)
        worst = np.zeros(t64.shape)
        for sample in samples:
            s = np.asarray(sample.get(key, t64), np.float64)
            if s.shape != t64.shape:
                continue
            with np.errstate(invalid="ignore", over="ignore"):
                d = np.abs(s - t64)
            # a sample that overflows or turns NaN where the center is finite: the case is
            # that ill-conditioned at that element, so nothing can be held to it there
            d = np.where(np.isnan(d) & ~np.isnan(t64), np.inf, d)
            worst = np.maximum(worst, np.where(np.isnan(d), 0.0, d))
        spread[key] = worst
    return spread


def _turned_nan(center: np.ndarray, runs: list[dict[Key, np.ndarray]], key: Key) -> np.ndarray:
    """Where some sample of ``key`` is NaN while the truth is not."""
    t = np.asarray(center, np.float64)
    out = np.zeros(t.shape, bool)
    for sample in runs:
        s = np.asarray(sample.get(key, t), np.float64)
        if s.shape == t.shape:
            out |= np.isnan(s) & ~np.isnan(t)
    return out
