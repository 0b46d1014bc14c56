"""The tolerance numbers, in one place, and the comparison of two arrays.

Every fixed tolerance a test or the harness uses lives here, with the reason it is
that number; nothing elsewhere loosens it. They are *not* the verdict on a fuzz case:
that is ``harness.bounds``' allowance, computed from the case. Here live the
pre-filter that decides whether the allowance is needed at all, the tolerance above
which two sides that are both within the allowance are worth a precision warning,
the per-module tolerances of ``harness.twin``, and gradcheck's settings.

An element passes when ``|actual - expected| <= atol * scale + rtol * |expected|``
where ``scale = max(|expected|)`` over the tensor: errors from a different
summation order are relative to the *magnitudes involved*, and an element
near zero that came out of cancelling large terms carries the error of those
terms, not of its own tiny value. A planted error of 1e-3 relative (a wrong
constant, a dropped term) is at least 10x over every float32 tolerance below,
and 1e6x over float64's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float  # relative to the largest |expected| in the tensor (see module doc)


# float64: unit roundoff u = 1.1e-16. Two correct implementations differ by the
# order in which they sum; for n terms the bound is ~n*u, and our cases reduce
# over at most ~1e4 terms (1e-12), compounded through a few layers of forward
# and backward (x10..x100). 1e-9 leaves that margin and still sees a 1e-6 error.
FLOAT64 = Tolerance(rtol=1e-9, atol=1e-9)

# float32: u = 6e-8. Reductions of up to ~1e3 terms in different orders (torch
# blocks its matmuls and convolutions; NumPy's BLAS blocks differently) give
# ~sqrt(n)*u typical, n*u = 6e-5 worst case; backward through several layers
# compounds it. 1e-4 relative (+1e-5 of the tensor's scale for cancellation)
# covers that and sits 10x under the 1e-3 errors the teeth tests plant.
FLOAT32 = Tolerance(rtol=1e-4, atol=1e-5)

# CUDA float32: the harness turns TF32 off (torch.backends.cuda.matmul.allow_tf32
# and torch.backends.cudnn.allow_tf32 = False) so a CUDA float32 product is a
# true float32 product; cuDNN/cuBLAS pick other reduction trees and atomics
# (pooling/embedding backward) add in nondeterministic order: allow 2x CPU's.
# With TF32 on (10-bit mantissa, u = 4.9e-4) no tolerance that still catches a
# 1e-3 error would hold, which is why it is switched off rather than absorbed.
CUDA_FLOAT32 = Tolerance(rtol=2e-4, atol=2e-5)
CUDA_FLOAT64 = FLOAT64


# Central differences in float64 (reference.gradcheck): the truncation error is
# eps^2 * |f'''| ~ 1e-12 and the rounding error u*|f|/eps ~ 1e-10 * |f| for
# eps = 1e-6; with |<g, f>| up to ~100 in our draws that is <= 1e-8. atol 1e-6,
# rtol 1e-5 leave two orders of margin and catch any wrong formula (errors O(1)).
class GradcheckSettings(TypedDict):
    """The step and tolerances of a central-difference gradcheck (keyword arguments)."""

    eps: float
    atol: float
    rtol: float


GRADCHECK: GradcheckSettings = {"eps": 1e-6, "atol": 1e-6, "rtol": 1e-5}


# The pre-filter of ``check``: torch against the reference in the same dtype, before any
# allowance is computed (harness.bounds). A case within it passes at once; a case beyond
# it is judged by the error model, which is the verdict. It must sit under the errors the
# verdict is to see (1e-5 relative in float32, 1e-10 in float64: at an element as large as
# the scale that is 5e-6 and 5e-11 of scale + |expected|) and above what two correct
# implementations usually differ by, so the model runs rarely: measured over 400 default
# random networks, the worst |torch - reference| / (scale + |reference|) of a case is
# above 5e-6 in 5% of float32 cases and above 1e-12 in 19% of float64 ones (most of
# those are torch's known float64 deviations).
PREFILTER_FLOAT64 = Tolerance(rtol=1e-12, atol=1e-12)
PREFILTER_FLOAT32 = Tolerance(rtol=4e-6, atol=4e-6)


def prefilter(dtype: Any, device: str = "cpu") -> Tolerance | None:
    """The pre-filter's tolerance in ``dtype`` (None for half precision, where the
    reference does not run and every case is judged by the error model); CUDA 2x."""
    from .dtypes import parse_dtype

    name = parse_dtype(dtype)
    base = {"float64": PREFILTER_FLOAT64, "float32": PREFILTER_FLOAT32}.get(name)
    if base is None:
        return None
    factor = 2.0 if str(device).startswith("cuda") else 1.0
    return Tolerance(base.rtol * factor, base.atol * factor)


def tolerance(dtype: Any, device: str = "cpu") -> Tolerance:
    """The tolerance for results computed in ``dtype`` on ``device`` ('cpu' or 'cuda')."""
    name = str(dtype).replace("torch.", "") if hasattr(dtype, "is_floating_point") else None
    name = name or np.dtype(dtype).name
    on_cuda = str(device).startswith("cuda")
    if name == "float64":
        return CUDA_FLOAT64 if on_cuda else FLOAT64
    if name == "float32":
        return CUDA_FLOAT32 if on_cuda else FLOAT32
    raise ValueError(
        f"no tolerance policy for dtype {dtype!r}; the harness runs float32 and float64"
    )


@dataclass
class Comparison:
    """The result of comparing one tensor: passes or not, and where it is worst."""

    name: str
    ok: bool
    max_abs_err: float
    max_rel_err: float
    worst_index: tuple[int, ...]
    actual_at_worst: float
    expected_at_worst: float
    shape_ok: bool = True
    message: str = ""
    scale: float = 0.0  # max |expected|: the magnitude the errors are measured against
    labels: tuple[str, str] = ("got", "expected")  # what actual and expected are

    @property
    def scaled_err(self) -> float:
        """``max_abs_err`` as a fraction of the tensor's scale (inf for a zero tensor)."""
        return self.max_abs_err / self.scale if self.scale > 0 else np.inf

    def __str__(self) -> str:
        if not self.shape_ok:
            return f"{self.name}: {self.message}"
        actual, expected = self.labels
        return (
            f"{self.name}: max |{actual} - {expected}| {self.max_abs_err:.3g}, max rel "
            f"{self.max_rel_err:.3g} at {list(self.worst_index)} ({actual} "
            f"{self.actual_at_worst:.9g}, {expected} {self.expected_at_worst:.9g})"
        )


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy array from an ndarray, a scalar or a torch tensor on any device."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def compare_arrays(name: str, actual: Any, expected: Any, tol: Tolerance) -> Comparison:
    """Compare ``actual`` with ``expected`` elementwise under ``tol`` (see the module doc).

    NaN matches NaN and inf matches an inf of the same sign; anything else
    non-finite is a mismatch.
    """
    a = to_numpy(actual).astype(np.float64)
    e = to_numpy(expected).astype(np.float64)
    if a.shape != e.shape:
        return Comparison(
            name,
            False,
            np.inf,
            np.inf,
            (),
            np.nan,
            np.nan,
            False,
            f"shape {a.shape} differs from expected {e.shape}",
        )
    if a.size == 0:
        return Comparison(name, True, 0.0, 0.0, (), 0.0, 0.0)
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(e) & (a == e))
    finite_e = np.where(np.isfinite(e), e, 0.0)
    scale = float(np.max(np.abs(finite_e)))
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same_special, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    allowed = tol.atol * scale + tol.rtol * np.abs(finite_e)
    # tiny floor so two exact zeros pass and 1e-300 noise is not an error
    allowed = np.maximum(allowed, np.finfo(np.float64).tiny)
    with np.errstate(over="ignore"):  # a huge difference over a tiny allowance is inf
        ratio = diff / allowed
    worst = int(np.argmax(ratio))
    index = tuple(int(i) for i in np.unravel_index(worst, a.shape))
    with np.errstate(over="ignore"):  # an error of >= 4 where 0 was expected: rel is inf
        rel = diff / np.maximum(np.abs(finite_e), np.finfo(np.float64).tiny)
    return Comparison(
        name=name,
        ok=bool(np.all(ratio <= 1.0)),
        max_abs_err=float(diff.max()),
        max_rel_err=float(rel.reshape(-1)[worst]),
        worst_index=index,
        actual_at_worst=float(a.reshape(-1)[worst]),
        expected_at_worst=float(e.reshape(-1)[worst]),
        scale=scale,
    )


def within(actual: Any, expected: Any, tol: Tolerance) -> bool:
    """:func:`compare_arrays`'s verdict alone, cheaply (the pre-filter runs it on every
    tensor of every case); NaN matches NaN and an inf the same inf."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        return False
    if a.size == 0:
        return True
    with np.errstate(invalid="ignore", over="ignore"):
        finite = np.isfinite(e)
        magnitude = np.abs(e)
        scale = float(np.max(magnitude, where=finite, initial=0.0))
        allowed = tol.atol * scale + tol.rtol * magnitude
        if bool(np.all(np.abs(a - e) <= allowed)):
            return True
    return compare_arrays("", a, e, tol).ok


def tolerance_ratio(actual: Any, expected: Any, tol: Tolerance, scale: Any = 0.0) -> float:
    """How many tolerances ``actual`` is from ``expected`` at its worst element (<= 1 passes).

    The same rule as :func:`compare_arrays` (NaN/inf handling included), as one number,
    so two candidates can be ranked against a common reference (the float64 result).
    ``scale`` is a floor for the tensor's scale (see :func:`compare_arrays_at_scale`).
    """
    a = to_numpy(actual).astype(np.float64)
    e = to_numpy(expected).astype(np.float64)
    if a.shape != e.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    same_special = (np.isnan(a) & np.isnan(e)) | (np.isinf(e) & (a == e))
    finite_e = np.where(np.isfinite(e), e, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.where(same_special, 0.0, np.abs(a - e))
    diff = np.where(np.isnan(diff), np.inf, diff)
    own = float(np.max(np.abs(finite_e)))
    allowed = tol.atol * np.maximum(own, scale) + tol.rtol * np.abs(finite_e)
    allowed = np.maximum(allowed, np.finfo(np.float64).tiny)
    with np.errstate(over="ignore"):
        return float(np.max(diff / allowed))


def compare_arrays_at_scale(
    name: str, actual: Any, expected: Any, tol: Tolerance, scale: Any
) -> Comparison:
    """:func:`compare_arrays` with ``scale`` as a floor for the tensor's scale.

    The module doc's argument one level up: a *whole tensor* can come out of
    cancellation, e.g. the gradient of a bias that feeds a softmax along the
    dimension it is constant over is exactly 0 in the math, and both sides return
    rounding noise of the size of the terms they summed (the gradient flowing into
    the layer). Its own max is then noise too, and measuring the error against it
    fails two correct implementations (seen: 1e-17 vs -4e-17 in float64, 1e-9 vs
    -8e-9 in float32). The harness passes the scale of the terms involved (the max
    of the incoming gradient); the tolerances themselves are unchanged.
    """
    comparison = compare_arrays(name, actual, expected, tol)
    if comparison.ok or not comparison.shape_ok:
        return comparison
    e = to_numpy(expected).astype(np.float64)
    own = float(np.max(np.abs(np.where(np.isfinite(e), e, 0.0)))) if e.size else 0.0
    if np.all(np.asarray(scale) <= own):  # a float, or per element (broadcastable)
        return comparison
    # same rule, with the floor: |a - e| <= atol * max(own, scale) + rtol * |e|
    ratio = tolerance_ratio(actual, expected, tol, scale=scale)
    comparison.ok = ratio <= 1.0
    return comparison
