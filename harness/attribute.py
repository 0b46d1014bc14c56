"""Who is wrong? Attribution of the mismatches ``check`` localized.

- CPU and CUDA both present: which torch device(s) disagree with the reference;
- float32 only: both sides rerun in float64, and the float32 side clearly farther from
  the float64 result is blamed; when neither is clearly farther it is a precision
  warning (an ill-conditioned spot), not a failure;
- float64 too: each side's layer alone is gradchecked; the side whose backward
  disagrees with its own forward is blamed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .check import PRECISION, Mismatch, Report, _scale_of, tensor_of
from .compare import compare_arrays_at_scale, tolerance, tolerance_ratio
from .spec import DROPOUT_TYPES

__all__ = ["attribute", "BLAME_FACTOR"]

BLAME_FACTOR = 4.0


def _attribute_float32(runner: Any, m: Mismatch) -> None:
    """Blame the float32 side farther from the float64 result (when float64 agrees)."""
    try:
        ref64, torch64 = runner.reference("float64", m.device), runner.torch("float64", m.device)
        truth_ref, truth_torch = tensor_of(ref64, m), tensor_of(torch64, m)
        r32 = tensor_of(runner.reference("float32", m.device), m)
        t32 = tensor_of(runner.torch("float32", m.device), m)
        if truth_ref is None:
            raise ValueError(f"the float64 reference has no {m.tensor!r}")
    except Exception as exc:  # noqa: BLE001 - attribution is best effort
        m.note = f"float64 rerun failed: {exc}"
        return
    tol64 = tolerance("float64", m.device)
    types = [layer.type for layer in runner.spec.layers]
    agree64 = compare_arrays_at_scale(
        "float64",
        truth_torch,
        truth_ref,
        tol64,
        _scale_of(ref64, m, tol64, types, torch64, runner.data.weights),
    ).ok
    err_ref = float(np.max(np.abs(np.asarray(r32, np.float64) - truth_ref), initial=0.0))
    err_torch = float(np.max(np.abs(np.asarray(t32, np.float64) - truth_ref), initial=0.0))
    if not agree64:
        _attribute_by_gradcheck(runner, m)
        m.note = "float64 disagrees too, not a precision effect" + (f"; {m.note}" if m.note else "")
        return
    tol32 = tolerance("float32", m.device)
    scale = _scale_of(ref64, m, tol32, types, torch64, runner.data.weights)
    r_ref = tolerance_ratio(r32, truth_ref, tol32, scale)
    r_torch = tolerance_ratio(t32, truth_ref, tol32, scale)
    m.note = (
        f"vs float64: reference float32 off by {err_ref:.3g} ({r_ref:.2g} tolerances), "
        f"torch float32 off by {err_torch:.3g} ({r_torch:.2g} tolerances)"
    )
    # A side is blamed when it misses the float64 result and is clearly (BLAME_FACTOR x)
    # farther from it than the other side: a planted 1e-3 error is >= 10 tolerances away
    # while the healthy side sits well inside one. Otherwise both float32 results are
    # about as good (an ill-conditioned spot: an adaptive optimizer normalizing a gradient
    # that is rounding noise, a value made by cancellation): the float32 comparison cannot
    # tell a bug there, so it is a warning, not a failure.
    if r_ref > 1 and r_ref >= BLAME_FACTOR * r_torch:
        m.blame = "reference"
    elif r_torch > 1 and r_torch >= BLAME_FACTOR * r_ref:
        m.blame = "torch"
    else:
        m.blame = PRECISION


def attribute(runner: Any, report: Report) -> None:
    """Blame each mismatch ``localize`` left undecided; one it already put down to
    precision (a near-tie in a max, ``harness.precision``) is left as it is."""
    open_ = [m for m in report.mismatches if m.blame != PRECISION]
    by_place: dict[tuple, list[Mismatch]] = {}
    for m in open_:
        by_place.setdefault((m.kind, m.layer, m.tensor, m.step, m.dtype), []).append(m)
    for group in by_place.values():
        devices = {m.device.split(":")[0] for m in group}
        if len(report.devices) > 1:
            which = "both" if devices >= {"cpu", "cuda"} else next(iter(devices))
            for m in group:
                m.note = (
                    f"torch-{which} disagrees with the reference"
                    if which != "both"
                    else "torch on cpu and cuda both disagree with the reference"
                )
                m.blame = "torch" if which != "both" else ""
    for m in open_:
        if m.blame:
            continue
        if m.dtype == "float32":
            _attribute_float32(runner, m)
        else:
            _attribute_by_gradcheck(runner, m)


def _layer_input(runner: Any, m: Mismatch) -> Any:
    if m.layer is None:
        return runner.reference("float64", m.device).outputs[-1]
    if m.layer == 0:
        return runner.data.input
    return runner.reference("float64", m.device).outputs[m.layer - 1]


def _attribute_by_gradcheck(runner: Any, m: Mismatch) -> None:
    """Blame the side whose layer is not self-consistent: its backward disagrees with
    central differences of its own forward (float64, on the input both sides agree on).

    Decides forward and backward mismatches at one layer (or the loss) when exactly
    one side fails; a self-consistent but wrong forward cannot be caught this way.
    """
    if m.kind not in ("forward", "loss", "grad_output", "grad_input", "grad_param"):
        return
    spec = runner.spec
    if m.layer is not None and spec.layers[m.layer].type in DROPOUT_TYPES:
        return
    try:
        from .gradcheck_sides import reference_consistent, torch_consistent

        x = _layer_input(runner, m)
        ref_ok = reference_consistent(spec, runner.data, m.layer, x)
        torch_ok = torch_consistent(spec, runner.data, m.layer, x, m.device)
    except Exception as exc:  # noqa: BLE001 - attribution is best effort
        m.note = f"gradcheck attribution failed: {type(exc).__name__}: {exc}"
        return
    if ref_ok and not torch_ok:
        m.blame, m.note = "torch", "torch's backward disagrees with its own forward (gradcheck)"
    elif torch_ok and not ref_ok:
        m.blame = "reference"
        m.note = "the reference's backward disagrees with its own forward (gradcheck)"
    elif ref_ok and torch_ok:
        m.note = "both sides pass gradcheck: one forward is consistently wrong; read the math"
    else:
        m.note = "both sides fail gradcheck here (a kink or tie at this input?)"
