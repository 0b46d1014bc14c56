"""``harness.check(spec)``: run a case through torch and the reference, and judge each side.

The one entry point of the harness. For each dtype and device:

1. **Run.** Torch runs on the device; the reference runs in the dtype (float32 and
   float64; in half precision only torch runs).
2. **Pre-filter.** Torch against the reference, tensor by tensor, under
   ``harness.compare.prefilter``. Within it everywhere: the case passes. This is the
   common case, and it costs nothing more.
3. **Verdict.** Otherwise each side is judged against the float64 truth under the
   allowance (``harness.bounds``), and localized (``harness.localize``). A side beyond
   it is blamed (``harness.verdict.Blame``); the verdict is confirmed with more samples
   before anyone is blamed. When both sides are within it while they differ by more
   than ``harness.compare.tolerance``, the result is a precision warning. A tensor that
   torch has beyond the plain allowance but within the one widened by a known torch
   deviation (``harness.known``) is listed apart as known.
4. **Attribution** (``harness.attribute``): in float64 the reference *is* the truth, so
   a float64 disagreement gets a referee; a float32 mismatch where the float64 referee
   finds the reference wrong is the reference's.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import Trace, case_data
from .backends.protocol import Backend
from .bounds import CONFIRM_SAMPLES, FIRST_SAMPLES, SAMPLES, Allowance, ratio
from .compare import compare_arrays, prefilter, tolerance, within
from .dtypes import REFERENCE_DTYPES, parse_dtypes
from .known import deviations
from .localize import Finding, first_divergences, worst_ratio
from .runner import Runner
from .spec import NetworkSpec
from .verdict import Blame, Evidence, Kind, Mismatch, Report, ran_on, tensor_of, traced

__all__ = [
    "Mismatch",
    "Report",
    "check",
    "default_backends",
    "default_devices",
    "judge",
    "tensor_of",
]

Key = tuple[Any, ...]


def _beyond_prefilter(got: Trace, ref: Trace | None, dtype: str, device: str) -> list[Key]:
    """The tensors where torch and the reference differ beyond the pre-filter (every
    tensor where there is no pre-filter: half precision)."""
    tol = prefilter(dtype, device)
    mine = traced(got)
    if tol is None or ref is None:
        return list(mine)
    return [k for k, v in traced(ref).items() if k not in mine or not within(mine[k], v, tol)]


def _evidence(
    key: Key, got: Trace, ref: Trace | None, allowed: Allowance, side: str, label: str = "torch"
) -> Evidence:
    """The numbers at the worst element of ``side`` ('torch', the backend ``label`` names,
    or 'reference') for ``key``."""
    truth = np.asarray(allowed.tensors[key], np.float64)
    tor = dict(traced(got)).get(key)
    mine = dict(traced(ref)).get(key) if ref is not None else None
    name = key[2] if key[0] is not Kind.STEP else f"{key[2]} after step {key[3]}"
    if tor is None or np.shape(tor) != truth.shape:
        shape = None if tor is None else np.shape(tor)
        message = f"{label} has shape {shape}, the truth {truth.shape}"
        return Evidence(
            name, (), np.nan, None, np.nan, np.nan, np.inf, message=message, label=label
        )
    limit = allowed.of(key, "torch")
    r_torch = allowed.ratio(key, tor)
    limit_ref = allowed.of(key, "reference", tor)
    r_ref = ratio(mine, truth, limit_ref) if mine is not None else None
    if side == "reference":
        limit = limit_ref
    worst = r_ref if side == "reference" and r_ref is not None else r_torch
    flat = int(np.argmax(worst)) if worst.size else 0
    index = tuple(int(i) for i in np.unravel_index(flat, truth.shape)) if truth.size else ()

    def at(a: Any) -> float:
        return float(np.asarray(a, np.float64).reshape(-1)[flat]) if truth.size else 0.0

    return Evidence(
        name=name,
        index=index,
        torch=at(tor),
        reference=at(mine) if mine is not None else None,
        truth=at(truth),
        allowance=at(np.broadcast_to(limit, truth.shape)),
        torch_ratio=float(r_torch.max(initial=0.0)),
        reference_ratio=float(r_ref.max(initial=0.0)) if r_ref is not None else None,
        scale=float(np.max(np.abs(np.where(np.isfinite(truth), truth, 0.0)), initial=0.0)),
        label=label,
    )


def _mismatch(
    runner: Runner, key: Key, evidence: Evidence, device: str, dtype: str, **kw: Any
) -> Mismatch:
    kind, layer, tensor, step = key
    spec = runner.spec
    layer_type = spec.layers[layer].type if layer is not None else spec.loss.type
    return Mismatch(
        Kind(kind), layer, layer_type, tensor, device, dtype, evidence, step,
        backend=runner.backend.name, **kw,
    )  # fmt: skip


def _note(evidence: Evidence, dtype: str) -> str:
    text = f"vs float64 truth: {evidence.label} {dtype} {evidence.torch_ratio:.3g} allowances"
    if evidence.reference_ratio is not None:
        text += f", reference {dtype} {evidence.reference_ratio:.3g}"
    return text


def _blamed(
    runner: Runner, device: str, dtype: str, found: list[Finding], side: str, allowed: Allowance
) -> list[Mismatch]:
    """Mismatches for one side's findings; ``other``'s findings at the same key: undecided."""
    got = runner.tested(dtype, device)
    ref = runner.reference(dtype, device) if dtype in REFERENCE_DTYPES else None
    out = []
    for f in found:
        evidence = _evidence(f.key, got, ref, allowed, side, runner.backend.name)
        blame = Blame.BACKEND if side == "torch" else Blame.REFERENCE
        m = _mismatch(runner, f.key, evidence, device, dtype, downstream=f.downstream)
        m.blame, m.note = blame, _note(evidence, dtype)
        m.arrays = _arrays(f.key, got, ref, allowed, side)
        out.append(m)
    return out


def _arrays(key: Key, got: Trace, ref: Trace | None, allowed: Allowance, side: str) -> dict:
    arrays = {"truth": np.asarray(allowed.tensors[key], np.float64)}
    torch_value = traced(got).get(key)
    arrays["allowance"] = np.broadcast_to(
        allowed.of(key, side, torch_value), arrays["truth"].shape
    ).copy()
    if ref is not None and allowed.dtype != "float64" and key in traced(ref):
        arrays["reference"] = np.asarray(traced(ref)[key], np.float64)
    return arrays


def _warning(
    runner: Runner, device: str, dtype: str, got: Trace, ref: Trace, plain: Allowance
) -> list[Mismatch]:
    """Both sides within the allowance: the first tensor where they still differ by more
    than the dtype's tolerance is worth a precision warning (an ill-conditioned spot)."""
    mine, theirs = traced(got), traced(ref)
    tol = tolerance(dtype, device)
    for key in plain.tensors:
        if key in mine and not compare_arrays("", mine[key], theirs[key], tol).ok:
            evidence = _evidence(key, got, ref, plain, "torch", runner.backend.name)
            m = _mismatch(runner, key, evidence, device, dtype, blame=Blame.PRECISION)
            m.arrays = _arrays(key, got, ref, plain, "torch")
            m.note = "both sides within the allowance: rounding in an ill-conditioned spot"
            return [m]
    return []


def _verdict(
    runner: Runner,
    device: str,
    dtype: str,
    samples: int,
    steps: int,
    local: Sequence[tuple[Kind, int | None]] = (),
) -> tuple[list[Mismatch], list[Mismatch]]:
    """Each side against the truth under ``samples``' allowance (its first ``steps``
    optimizer steps), united with that of histories exact up to each ``local`` layer:
    (mismatches, known)."""
    got = runner.tested(dtype, device)
    ref = runner.reference(dtype, device) if dtype in REFERENCE_DTYPES else None
    plain = runner.allowance(dtype, device, samples, steps=steps)
    for where in local:
        plain = plain.united(runner.local_allowance(dtype, device, where, steps))
    side = traced(got)
    t_found = first_divergences(side, plain)
    explained: list[Mismatch] = []
    known = deviations(runner.spec, dtype) if t_found and runner.known_deviations else []
    if known:
        # torch beyond the plain allowance where a known deviation of torch's sits: judge
        # it under the allowance widened by that deviation; what that explains is known
        non_finite = any(d.non_finite for d, _ in known)
        widened = plain.widened(runner.allowance(dtype, device, samples, True, steps), non_finite)
        why = "; ".join(sorted({d.why for d, _ in known}))
        for f in t_found:
            if worst_ratio(side.get(f.key), widened, f.key) <= 1.0:
                explained += _blamed(runner, device, dtype, [f], "torch", plain)
        for m in explained:
            m.note = f"{why} ({m.note})"
        t_found = first_divergences(side, widened)
    judged_ref = ref is not None and dtype != "float64"  # float64: the reference is the truth
    r_found = (
        first_divergences(traced(ref), plain, "reference", side)
        if ref is not None and judged_ref
        else []
    )
    both = {f.key for f in t_found} & {f.key for f in r_found}
    out = _blamed(runner, device, dtype, t_found, "torch", widened if known else plain)
    out += _blamed(
        runner, device, dtype, [f for f in r_found if f.key not in both], "reference", plain
    )
    for m in out:
        if m.key in both:
            m.blame = Blame.UNDECIDED
            m.note += f"; {m.backend} and the reference are both beyond the allowance here"
    if not out and not explained and ref is not None:
        out = _warning(runner, device, dtype, got, ref, plain)
    return out, explained


def judge(runner: Runner, device: str, dtype: str) -> tuple[list[Mismatch], list[Mismatch]]:
    """The verdict for one device and dtype: (mismatches and warnings, known deviations)."""
    got = runner.tested(dtype, device)
    ref = runner.reference(dtype, device) if dtype in REFERENCE_DTYPES else None
    beyond = _beyond_prefilter(got, ref, dtype, device)
    if not beyond:
        return [], []
    # the optimizer steps are sampled (and judged) only when they differ: they cost a
    # forward and backward each, and before them the forward and backward decide
    steps = runner.spec.steps if any(k[0] is Kind.STEP for k in beyond) else 0
    for samples in (FIRST_SAMPLES, SAMPLES, CONFIRM_SAMPLES):
        # an allowance only grows with samples: a pass on few is final, a finding is
        # judged again on more before anyone is blamed
        found, known = _verdict(runner, device, dtype, samples, steps)
        if all(m.blame is Blame.PRECISION for m in found):
            return found, known
    # last, the histories that round only at each layer found: where how a layer is
    # conditioned depends on what rounded before it (a normalization of a constant row),
    # the histories that round all along may all live far from the truth
    local = {(m.kind, m.layer) for m in found if m.blame is not Blame.PRECISION}
    return _verdict(runner, device, dtype, CONFIRM_SAMPLES, steps, sorted(local, key=str))


class _Quiet(warnings.catch_warnings):
    """Torch's advice is not a failure of the case: KLDivLoss(reduction='mean')'s
    deprecation notice, and performance notes (padding='same' with an even kernel)."""

    def __enter__(self) -> Any:
        out = super().__enter__()
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.")
        return out


def default_devices() -> tuple[str, ...]:
    """The devices torch runs on here: the CPU, and CUDA where present."""
    import torch

    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def default_backends() -> list[Backend]:
    from .backends.torch import Torch

    return [Torch()]


def check(
    spec: NetworkSpec,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | str = ("float32", "float64"),
    attribute: bool = True,
    backends: Sequence[Backend] | None = None,
) -> Report:
    """Run ``spec`` through each backend (torch by default) on every device and dtype, and
    through the reference; judge each side against the float64 truth.

    ``devices``: None for every device a backend declares. What a backend lacks (a
    dtype, a device, a layer, optimizer steps; ``Capabilities``) is skipped and listed in
    ``Report.skipped``, never a crash. Returns a :class:`Report`: ``ok``, the localized
    mismatches (each with its backend, kind, layer index and class, tensor, device,
    dtype, blame and the numbers at the worst element), the precision warnings and the
    known deviations, listed apart.
    """
    backends = list(backends) if backends is not None else default_backends()
    dtypes = parse_dtypes(dtypes)
    data = case_data(spec)
    report = Report(spec, dtypes=dtypes, data=data, backends=tuple(b.name for b in backends))
    used: list[str] = []
    for backend in backends:
        runs = _runs(spec, backend, devices, dtypes, report.skipped)
        if runs is None:
            continue
        own_spec, pairs = runs
        runner = Runner(own_spec, data, backend)
        _judge_backend(report, runner, pairs, dtypes, attribute)
        used += [device for device, _ in pairs]
        for key, trace in runner.cache.items():
            report.traces.setdefault(key, trace)
        for key, allowance in runner.allowances.items():
            report.allowances.setdefault(key, allowance)
    report.devices = tuple(dict.fromkeys(used))
    return report


def _runs(
    spec: NetworkSpec,
    backend: Backend,
    devices: Sequence[str] | None,
    dtypes: Sequence[str],
    skipped: list[str],
) -> tuple[NetworkSpec, list[tuple[str, str]]] | None:
    """The spec as ``backend`` runs it and its (device, dtype) pairs; what it lacks is
    said in ``skipped``. None: it can run none of the case."""
    caps, name = backend.capabilities, backend.name
    lacking = caps.missing(spec)
    if lacking:
        skipped.append(f"{name}: case skipped: {'; '.join(lacking)}")
        return None
    wanted = tuple(devices) if devices is not None else tuple(caps.devices)
    on = [d for d in wanted if caps.runs_on(d)]
    skipped += [f"{name}: no device {d}" for d in wanted if not caps.runs_on(d)]
    dtypes_in = [t for t in dtypes if caps.runs_in(t)]
    skipped += [f"{name}: no {t}" for t in dtypes if not caps.runs_in(t)]
    if not caps.steps(spec):
        assert spec.optimizer is not None
        skipped.append(
            f"{name}: no {spec.optimizer.type} steps (forward and backward judged without them)"
        )
        spec = dataclasses.replace(spec, optimizer=None, steps=0)
    pairs = [(device, dtype) for dtype in dtypes_in for device in on]
    return (spec, pairs) if pairs else None


def _judge_backend(
    report: Report,
    runner: Runner,
    pairs: list[tuple[str, str]],
    dtypes: Sequence[str],
    attribute: bool,
) -> None:
    """Judge one backend on every (device, dtype) pair and attribute its findings."""
    found: list[Mismatch] = []
    for device, dtype in pairs:
        try:
            with _Quiet():
                mismatches, known = judge(runner, device, dtype)
        except Exception as exc:  # noqa: BLE001 - a crash is a finding, not a harness error
            where = ran_on(runner.backend.name, device)
            report.errors.append(f"[{where} {dtype}] {type(exc).__name__}: {exc}")
            continue
        found += mismatches
        report.known += known
    if attribute and any(m.blame is not Blame.PRECISION for m in found):
        from .attribute import attribute as attribute_blame

        with _Quiet():
            judge64 = None if "float64" in dtypes else lambda d: judge(runner, d, "float64")[0]
            attribute_blame(runner, found, judge64)
    report.warnings += [m for m in found if m.blame is Blame.PRECISION]
    report.mismatches += [m for m in found if m.blame is not Blame.PRECISION]
