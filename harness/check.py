"""``check(spec)``: run a spec through the reference and torch, compare, localize, attribute.

The one entry point of the harness. For each dtype the reference runs once
(once per device when training-mode dropout makes the masks device-specific),
torch runs on every device, and the two traces are compared under
``harness.compare``'s tolerances. A mismatch is *localized*: only the first
place where the two sides part is reported, since everything after it differs
as a consequence.

- forward: the first layer whose output diverges (its input agrees, being the
  previous layer's output, which agrees);
- loss: the loss value diverges though the network output agrees;
- backward (only when the forward and loss agree): walking from the loss toward
  the input, the loss's gradient, then the first layer whose input gradient
  diverges while its output gradient agrees; a parameter gradient that diverges
  while its layer's output gradient agrees is that layer's;
- buffers after the forward (running statistics);
- optimizer steps: the first step ``k`` after which parameters or buffers diverge.

Then *attribution*: with CPU and CUDA both present, which torch device(s)
disagree; and for a float32 mismatch, both sides rerun in float64 and the
float32 side farther from the float64 result is blamed.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends import CaseData, Trace, case_data
from .backends.reference import ReferenceBackend
from .compare import (
    Comparison,
    compare_arrays,
    compare_arrays_at_scale,
    tolerance,
)
from .known import explain
from .precision import (
    ELEMENTWISE_TYPES,
    KINK_NOTE,
    KINK_TYPES,
    MAX_TYPES,
    NEAR_TIE_NOTE,
    backward_scales,
    forward_scales,
    grad_input_floors,
    layer_gains,
    near_kink,
    near_tie_in_max,
    normalization_floor,
    only_noise_elements_differ,
    propagated_step_floor,
    step_floor,
)
from .spec import DROPOUT_TYPES, NetworkSpec

__all__ = [
    "Mismatch",
    "Report",
    "backward_scales",
    "check",
    "default_devices",
    "forward_scales",
    "localize",
    "tensor_of",
]

PRECISION = "precision"  # blame for a float32-only difference neither side can be faulted for
STEP_NOTE = "within what its gradient's tolerance moves the step; later steps are not compared"
KINDS = ("forward", "loss", "grad_output", "grad_input", "grad_param", "buffer", "step")


@dataclass
class Mismatch:
    """One localized disagreement between the reference and torch on one device and dtype."""

    kind: str  # one of KINDS
    layer: int | None  # index in spec.layers; None for the loss
    layer_type: str  # class name (the loss's for kind 'loss'/'grad_output')
    tensor: str  # e.g. 'output', 'grad wrt input', '3.bias'
    device: str
    dtype: str
    comparison: Comparison
    step: int | None = None  # 1-based optimizer step for kind 'step'
    downstream: int = 0  # further mismatching tensors explained by this one
    blame: str = ""  # 'torch', 'reference', or '' when undecided
    note: str = ""

    @property
    def where(self) -> str:
        at = (
            f"layer {self.layer} ({self.layer_type})"
            if self.layer is not None
            else f"loss ({self.layer_type})"
        )
        return at + (f" after step {self.step}" if self.step is not None else "")

    def __str__(self) -> str:
        text = (
            f"[{self.device} {self.dtype}] {self.kind} mismatch at {self.where}: {self.comparison}"
        )
        if self.downstream:
            text += f" (+{self.downstream} downstream)"
        if self.blame:
            text += f"\n    blame: {self.blame}" + (f" ({self.note})" if self.note else "")
        elif self.note:
            text += f"\n    note: {self.note}"
        return text


@dataclass
class Report:
    spec: NetworkSpec
    mismatches: list[Mismatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[Mismatch] = field(default_factory=list)  # float32 precision, not bugs
    known: list[Mismatch] = field(default_factory=list)  # explained by harness.known
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    data: CaseData | None = None
    traces: dict[str, Trace] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.errors

    def summary(self) -> str:
        runs = f"devices {', '.join(self.devices)}; dtypes {', '.join(self.dtypes)}"
        if self.ok:
            return "\n".join(
                [
                    f"OK: reference and torch agree ({runs}): {len(self.spec.layers)} layers",
                    *self._warning_lines(),
                ]
            )
        lines = [f"MISMATCH ({runs}): {self.spec}"]
        lines += [str(m) for m in self.mismatches]
        lines += [f"error: {e}" for e in self.errors]
        lines += self._warning_lines()
        return "\n".join(lines)

    def _warning_lines(self) -> list[str]:
        lines = [f"warning (precision, not counted): {w}" for w in self.warnings]
        lines += [f"known torch deviation (not counted): {k}" for k in self.known]
        return lines

    __str__ = summary


def default_devices() -> tuple[str, ...]:
    import torch

    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def _uses_dropout(spec: NetworkSpec) -> bool:
    return spec.train and any(layer.type in DROPOUT_TYPES for layer in spec.layers)


# -- comparing two traces ---------------------------------------------------------
def tensor_of(trace: Trace, m: Mismatch) -> np.ndarray | None:
    """The array a mismatch is about, taken from ``trace``."""
    if m.kind == "forward":
        return trace.outputs[_required(m.layer, m, "layer")]
    if m.kind == "loss":
        return trace.loss
    if m.kind == "grad_output":
        return trace.grad_outputs[-1]
    if m.kind == "grad_input":
        return trace.grad_wrt_input_of(_required(m.layer, m, "layer"))
    if m.kind == "grad_param":
        return trace.grad_params[m.tensor]
    if m.kind == "buffer":
        return trace.buffers[m.tensor]
    if m.kind == "step":
        return trace.steps[_required(m.step, m, "step") - 1][m.tensor]
    raise ValueError(m.kind)


def _required(value: int | None, m: Mismatch, what: str) -> int:
    """``m.layer`` or ``m.step`` where its kind always sets it (``localize`` does)."""
    if value is None:
        raise ValueError(f"a {m.kind!r} mismatch of {m.tensor!r} without a {what}")
    return value


def _max_abs(x: Any) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(np.where(np.isfinite(x), x, 0.0)))) if x.size else 0.0


def _scale_of(
    trace: Trace,
    m: Mismatch,
    tol: Any,
    types: Sequence[str] | None = None,
    other: Trace | None = None,
    weights: dict[str, np.ndarray] | None = None,
) -> float:
    """The scale floor ``localize`` compared mismatch ``m`` under (0: the tensor's own);
    ``types`` (the spec's layer types), ``other`` (the torch trace) and ``weights`` (the
    initial ones, for a stepped parameter) as there."""
    if m.kind == "grad_input" and m.layer is not None:
        return grad_input_floors(trace, tol, types, other)[m.layer]
    if m.kind == "grad_param":
        return backward_scales(trace, tol, types, other)[_layer_of(m.tensor)]
    if m.kind == "forward" and m.layer is not None:
        return forward_scales(trace, tol, types, other)[m.layer]
    if m.kind == "step" and m.step is not None and weights is not None:
        if m.tensor in trace.grad_params:
            grad_floor = backward_scales(trace, tol, types, other)[_layer_of(m.tensor)]
            stepped = trace.steps[m.step - 1][m.tensor]
            return step_floor(
                stepped, weights[m.tensor], trace.grad_params[m.tensor], grad_floor, tol
            )
    return 0.0


def _layer_of(name: str) -> int:
    return int(name.split(".", 1)[0])


def localize(
    spec: NetworkSpec,
    ref: Trace,
    got: Trace,
    device: str,
    dtype: str,
    data: CaseData | None = None,
) -> list[Mismatch]:
    """The first place where ``got`` (torch) parts from ``ref`` (the reference), per stage.

    ``data`` (the case's data, drawn from ``spec`` when not given) supplies the network
    input for the near-tie rule at a max-type first layer (``harness.precision``)."""
    tol = tolerance(dtype, device)
    types = [layer.type for layer in spec.layers]
    n = len(types)

    def mismatch(kind: str, layer: int | None, tensor: str, c: Comparison, **kw: Any) -> Mismatch:
        layer_type = types[layer] if layer is not None else spec.loss.type
        return Mismatch(kind, layer, layer_type, tensor, device, dtype, c, **kw)

    # forward: the first diverging output; the later ones follow from it
    bad = []
    floors: list[Any] = list(forward_scales(ref, tol, types, got))
    gains = layer_gains([ref, got], types)
    for i in range(n):
        if types[i].startswith(("BatchNorm", "InstanceNorm", "GroupNorm", "LayerNorm")):
            x = ref.outputs[i - 1] if i else (data or case_data(spec)).cast(dtype)[0]
            weight = (data or case_data(spec)).weights.get(f"{i}.weight")
            norm = normalization_floor(spec.layers[i], x, weight, spec.train)
            floors[i] = np.maximum(floors[i], norm)
        elif i and types[i] in ELEMENTWISE_TYPES and np.ndim(floors[i - 1]):
            # a per-channel floor passes through an elementwise layer times its gain
            floors[i] = np.maximum(floors[i], floors[i - 1] * gains[i])
        elif i and types[i] in ("Flatten", "Unflatten") and np.ndim(floors[i - 1]):
            # and through a reshape, which moves values without changing them
            moved = np.broadcast_to(floors[i - 1], ref.outputs[i - 1].shape)
            floors[i] = np.maximum(floors[i], moved.reshape(ref.outputs[i].shape))
        c = compare_arrays_at_scale(
            f"output of layer {i}", got.outputs[i], ref.outputs[i], tol, floors[i]
        )
        if not c.ok:
            bad.append((i, c))
    if bad:
        (i, c), rest = bad[0], len(bad) - 1
        return [mismatch("forward", i, "output", c, downstream=rest)]
    c = compare_arrays("loss", got.loss, ref.loss, tol)
    if not c.ok:
        return [mismatch("loss", None, "loss", c)]

    # backward, from the loss toward the input
    found: list[Mismatch] = []
    c = compare_arrays("grad wrt network output", got.grad_outputs[-1], ref.grad_outputs[-1], tol)
    out_ok = [True] * n
    scales = backward_scales(ref, tol, types, got)
    input_floors = grad_input_floors(ref, tol, types, got)
    if not c.ok:
        found.append(mismatch("grad_output", None, "grad wrt network output", c))
        out_ok = [False] * n
    else:
        for i in range(n - 1, -1, -1):
            g_ref, g_got = ref.grad_wrt_input_of(i), got.grad_wrt_input_of(i)
            if g_ref is None or g_got is None:
                continue
            c = compare_arrays_at_scale(
                f"grad wrt input of layer {i}", g_got, g_ref, tol, input_floors[i]
            )
            if not c.ok:
                found.append(mismatch("grad_input", i, "grad wrt input", c, downstream=i))
                if types[i] in MAX_TYPES or types[i] in KINK_TYPES:
                    x = ref.outputs[i - 1] if i else (data or case_data(spec)).cast(dtype)[0]
                    args = (ref.grad_outputs[i], g_ref, g_got, tol, input_floors[i])
                    if types[i] in MAX_TYPES and near_tie_in_max(spec.layers[i], x, *args):
                        found[-1].blame, found[-1].note = PRECISION, NEAR_TIE_NOTE
                    if types[i] in KINK_TYPES and near_kink(spec.layers[i], x, *args):
                        found[-1].blame, found[-1].note = PRECISION, KINK_NOTE
                for j in range(i):
                    out_ok[j] = False
                break
    explained = 0
    for name, g_ref in ref.grad_params.items():
        c = (
            compare_arrays_at_scale(
                f"grad {name}", got.grad_params[name], g_ref, tol, scales[_layer_of(name)]
            )
            if name in got.grad_params
            else Comparison(
                f"grad {name}", False, np.inf, np.inf, (), np.nan, np.nan, False, "missing in torch"
            )
        )
        if c.ok:
            continue
        if out_ok[_layer_of(name)]:
            found.append(mismatch("grad_param", _layer_of(name), name, c))
        else:
            explained += 1
    if found:
        found[0].downstream += explained
        return found

    # buffers after the forward: running statistics are averages of the layer's input,
    # so the input's size is the scale of the terms involved (a running mean of inputs
    # that average to exactly 0, e.g. after LayerNorm, is rounding noise on both sides)
    found = []
    buffer_floors = {
        name: _max_abs(ref.outputs[_layer_of(name) - 1]) if _layer_of(name) > 0 else 0.0
        for name in ref.buffers
    }
    for name, b_ref in ref.buffers.items():
        layer = _layer_of(name)
        c = compare_arrays_at_scale(
            f"buffer {name}", got.buffers.get(name), b_ref, tol, buffer_floors[name]
        )
        if not c.ok:
            found.append(mismatch("buffer", layer, name, c))
    if found:
        return found

    # optimizer steps: the first step whose result diverges
    for k, (s_ref, s_got) in enumerate(zip(ref.steps, got.steps), start=1):
        found = []
        for name, v_ref in s_ref.items():
            layer = _layer_of(name)
            is_buffer = name not in ref.grad_params
            floor = buffer_floors.get(name, 0.0)
            if not is_buffer and scales[layer] > _max_abs(ref.grad_params[name]):
                data = data or case_data(spec)
                g, p0 = ref.grad_params[name], data.weights[name]
                floor = step_floor(v_ref, p0, g, scales[layer], tol)
            c = compare_arrays_at_scale(f"{name} after step {k}", s_got[name], v_ref, tol, floor)
            if not c.ok and not is_buffer and k == 1 and spec.optimizer is not None:
                # only when needed: it steps the reference optimizer twice more
                data = data or case_data(spec)
                g, p0 = ref.grad_params[name], data.weights[name]
                propagated = propagated_step_floor(spec.optimizer, p0, g, scales[layer], tol)
                if compare_arrays_at_scale("", s_got[name], v_ref, tol, propagated).ok:
                    # within what its gradient's tolerance allows; later steps inherit that
                    # difference and have no such bound, so they are not compared
                    m = mismatch("step", layer, name, c, step=k)
                    m.blame, m.note = PRECISION, STEP_NOTE
                    found.append(m)
                    continue
            if c.ok:
                continue
            m = mismatch("step", layer, name, c, step=k)
            # a parameter whose gradient is zero at this precision (rounding noise on both
            # sides) gets a noise step from an adaptive optimizer (g / (sqrt(v) + eps)):
            # neither side can be held to it
            if not is_buffer and only_noise_elements_differ(
                s_got[name],
                v_ref,
                ref.grad_params[name],
                got.grad_params.get(name),
                tol,
                tol.atol * scales[layer],
            ):
                m.blame = PRECISION
                m.note = "its gradient is rounding noise (0 in the math); the step amplifies it"
            found.append(m)
        if found:
            found[0].note = found[0].note or f"optimizer {spec.optimizer}"
            return found
    return []


def _float64_verdict_holds_for_float32(mismatches: list[Mismatch]) -> None:
    """A float32 mismatch on the same tensor (and step) as a float64 one that a precision
    rule excused is excused too: what float64 cannot be held to, float32 cannot either
    (e.g. an adaptive step on a gradient that is 0 in the math, rounding noise in both)."""
    excused = {
        (m.device, m.kind, m.layer, m.tensor, m.step)
        for m in mismatches
        if m.dtype == "float64" and m.blame == PRECISION
    }
    for m in mismatches:
        key = (m.device, m.kind, m.layer, m.tensor, m.step)
        if m.dtype == "float32" and m.blame != PRECISION and key in excused:
            m.blame, m.note = PRECISION, "float64 shows the same and is excused: " + m.note


# -- the entry point ---------------------------------------------------------------
class _Runner:
    """Runs and caches traces: reference per (dtype[, device]), torch per (device, dtype)."""

    def __init__(self, spec: NetworkSpec, data: CaseData):
        self.spec, self.data = spec, data
        self.cache: dict[str, Trace] = {}
        self.dropout = _uses_dropout(spec)

    def torch_backend(self, device: str, dtype: str) -> Any:
        from .backends.torch import TorchBackend

        return TorchBackend(device, dtype)

    def reference(self, dtype: str, device: str) -> Trace:
        key = f"reference-{dtype}" + (f"-{device}" if self.dropout else "")
        if key not in self.cache:
            mask_fn = None
            if self.dropout:
                backend = self.torch_backend(device, dtype)
                mask_fn = lambda i, shape, call: backend.mask(self.spec, i, shape, call)  # noqa: E731
            self.cache[key] = ReferenceBackend().run(self.spec, dtype, self.data, mask_fn)
        return self.cache[key]

    def torch(self, dtype: str, device: str) -> Trace:
        key = f"torch-{device}-{dtype}"
        if key not in self.cache:
            self.cache[key] = self.torch_backend(device, dtype).run(self.spec, self.data)
        return self.cache[key]


def check(
    spec: NetworkSpec,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] = ("float32", "float64"),
    attribute: bool = True,
) -> Report:
    """Run ``spec`` through the reference and torch on every device and dtype; compare.

    Returns a :class:`Report`: ``ok``, and the localized mismatches, each naming
    the kind, layer index and class, tensor, device, dtype and the worst element.
    """
    devices = tuple(devices) if devices is not None else default_devices()
    dtypes = tuple(np.dtype(d).name for d in dtypes)
    data = case_data(spec)
    report = Report(spec, devices=devices, dtypes=dtypes, data=data)
    runner = _Runner(spec, data)
    report.traces = runner.cache
    for dtype in dtypes:
        for device in devices:
            try:
                with warnings.catch_warnings():
                    # torch's (and a faithful reference's) deprecation notice for
                    # KLDivLoss(reduction='mean') is advice, not a failure of the case
                    warnings.filterwarnings("ignore", message="reduction: 'mean' divides")
                    # torch's performance notes (padding='same' with an even kernel copies
                    # the input) say nothing about the result
                    warnings.filterwarnings("ignore", category=UserWarning, module=r"torch\.")
                    ref = runner.reference(dtype, device)
                    got = runner.torch(dtype, device)
            except Exception as exc:  # noqa: BLE001 - a crash is a finding, not a harness error
                report.errors.append(f"[{device} {dtype}] {type(exc).__name__}: {exc}")
                continue
            report.mismatches.extend(localize(spec, ref, got, device, dtype, data))
    if attribute and report.mismatches:
        from .attribute import attribute as attribute_report

        attribute_report(runner, report)
    _float64_verdict_holds_for_float32(report.mismatches)
    report.warnings = [m for m in report.mismatches if m.blame == PRECISION]
    report.mismatches = [m for m in report.mismatches if m.blame != PRECISION]
    for m in report.mismatches:
        why = explain(spec, m)
        if why:
            m.note = why
            report.known.append(m)
    report.mismatches = [m for m in report.mismatches if m not in report.known]
    return report
