"""Who is wrong where the truth itself is in question: the float64 referee.

In float32 and half precision each side is judged against the float64 truth, and the
side beyond the allowance is blamed (``harness.check``). In float64 the reference *is*
the truth, so torch beyond it says only that the two disagree. The referee decides:

1. **Self-consistency.** Each side's layer alone is gradchecked (central differences of
   its own forward, float64). A side whose backward disagrees with its forward is wrong,
   whatever the other says.
2. **Higher precision** (``harness.referee``), for a difference small enough to be
   rounding (a float32 constant in a float64 kernel): the first diverging layer is
   recomputed in long double and the side farther from it is blamed. The recomputation
   runs the reference's formulas, so for a larger difference it would only side with
   the reference: such a case, both sides self-consistent, is ``undecided`` (read the
   math), never blamed on torch by default.

A float32 (or half) mismatch at a tensor where the float64 referee finds the
reference wrong is the reference's too: its truth was wrong. When float64 was not
asked for, it is judged here for that purpose.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .graph import input_nodes, is_graph
from .spec import RANDOM_TYPES
from .verdict import Blame, Kind, Mismatch, tensor_of

__all__ = ["attribute"]

_LAYER_KINDS = (Kind.FORWARD, Kind.LOSS, Kind.GRAD_OUTPUT, Kind.GRAD_INPUT, Kind.GRAD_PARAM)


def attribute(
    runner: Any, found: list[Mismatch], judge64: Callable[[str], list[Mismatch]] | None
) -> None:
    """Referee each float64 mismatch; others follow float64's verdict on their truth.

    ``judge64(device)`` judges float64 on ``device``; None when float64 was judged."""
    for m in found:
        if m.dtype == "float64" and m.blame in (Blame.TORCH, Blame.UNDECIDED):
            _referee(runner, m)
    float64: dict[str, list[Mismatch]] = {}
    for m in found:
        if m.dtype == "float64":
            float64.setdefault(m.device, []).append(m)
    for m in found:
        if m.dtype == "float64" or m.blame not in (Blame.TORCH, Blame.UNDECIDED):
            continue
        if m.device not in float64 and judge64 is not None:
            float64[m.device] = judge64(m.device)
            for m64 in float64[m.device]:
                if m64.blame in (Blame.TORCH, Blame.UNDECIDED):
                    _referee(runner, m64)
        for m64 in float64.get(m.device, []):
            if m64.key == m.key and m64.blame is not Blame.PRECISION:
                # torch in float64 parts from the truth here too: the truth itself is in
                # question, and the float64 referee's verdict is this one's
                m.blame = m64.blame
                m.note = f"float64 shows it too; float64 referee: {m64.note}"


def _referee(runner: Any, m: Mismatch) -> None:
    """Blame by self-consistency; then, for a difference small enough to be rounding
    (:data:`harness.referee.MATH_LEVEL`), by higher precision; else undecided."""
    if m.kind not in _LAYER_KINDS:
        m.blame, m.note = Blame.UNDECIDED, f"no referee for a {m.kind} mismatch; {m.note}"
        return
    if m.layer is not None and runner.spec.layers[m.layer].type in RANDOM_TYPES:
        m.blame, m.note = Blame.UNDECIDED, f"no referee at a layer torch drew for; {m.note}"
        return
    consistent = _self_consistency(runner, m)
    if consistent is not None:
        m.blame, m.note = consistent
        return
    from .referee import MATH_LEVEL, referee

    ref64, torch64 = runner.reference("float64", m.device), runner.tested("float64", m.device)
    theirs, ours = tensor_of(torch64, m), tensor_of(ref64, m)
    if theirs is not None and ours is not None and np.shape(theirs) != np.shape(ours):
        m.blame = Blame.UNDECIDED
        m.note = (
            f"{m.backend} gives shape {np.shape(theirs)}, the reference {np.shape(ours)}: "
            f"torch's semantics for this spec decide; {m.note}"
        )
        return
    gap = _relative_gap(theirs, ours)
    if gap > MATH_LEVEL:
        m.blame = Blame.UNDECIDED
        m.note = (
            f"both sides pass gradcheck and differ by {gap:.2g} of the tensor's scale: more "
            f"than rounding explains, a disagreement on the math; read both; {m.note}"
        )
        return
    try:
        verdict = referee(runner.spec, runner.data, m, ref64, torch64)
    except Exception as exc:  # noqa: BLE001 - the referee is best effort
        verdict = (Blame.UNDECIDED, f"higher-precision referee failed: {exc}")
    if verdict is None:
        verdict = (Blame.UNDECIDED, "no higher-precision referee for this layer")
    m.blame, m.note = verdict[0], f"{verdict[1]}; {m.note}"


def _relative_gap(a: Any, b: Any) -> float:
    """``max |a - b| / max |b|`` (inf when either is missing or their shapes differ)."""
    if a is None or b is None or np.shape(a) != np.shape(b):
        return float("inf")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = float(np.max(np.abs(b), initial=0.0))
    with np.errstate(invalid="ignore"):
        gap = float(np.nanmax(np.abs(a - b), initial=0.0))
    return gap / scale if scale > 0 else (0.0 if gap == 0 else float("inf"))


def _layer_input(runner: Any, m: Mismatch) -> Any:
    """The layer's float64 input, nudged by a random 1e-4 relative (and 1e-4 where it is
    0): central differences say nothing at a kink or a tie, where the case's input often
    sits (a ReLU after a ReLU, an upsampled max pool), so both sides are checked at a
    generic point next to it."""
    if m.layer is not None and is_graph(runner.spec):
        # a graph node's inputs: its input nodes' outputs (a tuple for several)
        outputs = runner.reference("float64", m.device).outputs
        xs = [runner.data.input if j < 0 else outputs[j] for j in input_nodes(runner.spec, m.layer)]
        rng = np.random.default_rng(runner.spec.seed)
        nudged = tuple(_nudged(np.asarray(x), rng) for x in xs)
        return nudged[0] if len(nudged) == 1 else nudged
    if m.layer is None:
        x = runner.reference("float64", m.device).outputs[-1]
    elif m.layer == 0:
        x = runner.data.input
    else:
        x = runner.reference("float64", m.device).outputs[m.layer - 1]
    return _nudged(np.asarray(x), np.random.default_rng(runner.spec.seed))


def _nudged(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if x.dtype.kind != "f":
        return x
    return x * (1 + 1e-4 * rng.uniform(-1, 1, x.shape)) + 1e-4 * (x == 0) * rng.uniform(
        -1, 1, x.shape
    )


def _self_consistency(runner: Any, m: Mismatch) -> tuple[Blame, str] | None:
    """(blame, note) when exactly one side's layer fails gradcheck, else None."""
    try:
        from .gradcheck_sides import reference_consistent

        x = _layer_input(runner, m)
        ref_ok = reference_consistent(runner.spec, runner.data, m.layer, x)
        torch_ok = _backend_consistent(runner, m, x)
    except Exception:  # noqa: BLE001 - attribution is best effort
        return None
    if torch_ok is None:  # the backend could not be asked: only the reference decides
        torch_ok = True
    if ref_ok and not torch_ok:
        return Blame.BACKEND, f"{m.backend}'s backward disagrees with its own forward (gradcheck)"
    if torch_ok and not ref_ok:
        return (
            Blame.REFERENCE,
            "the reference's backward disagrees with its own forward (gradcheck)",
        )
    return None


def _backend_consistent(runner: Any, m: Mismatch, x: Any) -> bool | None:
    """The backend's own gradcheck (``Backend.consistent``, torch's autograd gradcheck),
    or else directional central differences of its own runs."""
    from .gradcheck_sides import backend_consistent

    own = getattr(runner.backend, "consistent", None)
    if own is not None:
        return bool(own(runner.spec, runner.data, m.layer, x, m.device))
    if m.layer is None:
        return None
    out_shape = np.shape(runner.reference("float64", m.device).outputs[m.layer])
    return backend_consistent(runner.backend, runner.spec, runner.data, m.layer, x, out_shape)
