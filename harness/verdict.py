"""The verdict's data model: what was judged, where it parted from the truth, and who is blamed.

Plain data that ``check`` fills in and that the attribution, ``known``, the report, the
repro writer and the CLI read. It imports nothing of theirs, so none of them import
each other through it.

- :class:`Kind`: which traced tensor (a layer output, the loss, a gradient, a buffer, a
  parameter after an optimizer step);
- :class:`Blame`: who is wrong: ``torch``, the ``reference``, ``precision`` (both sides
  are within what rounding in the dtype allows: a warning, not a failure) or
  ``undecided``;
- :class:`Evidence`: the numbers at the worst element, with the same labels everywhere:
  torch, reference, float64 truth, allowance;
- :class:`Mismatch` and :class:`Report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from .backends import CaseData, Trace
from .spec import NetworkSpec

__all__ = ["Blame", "Evidence", "Kind", "Mismatch", "Report", "ran_on", "tensor_of"]


class Kind(str, Enum):
    FORWARD = "forward"  # a layer's output
    LOSS = "loss"
    GRAD_OUTPUT = "grad_output"  # the loss's gradient wrt the network output
    GRAD_INPUT = "grad_input"  # the gradient wrt a layer's input
    GRAD_PARAM = "grad_param"
    BUFFER = "buffer"  # running statistics after the forward
    STEP = "step"  # a parameter or buffer after optimizer step k

    def __str__(self) -> str:
        return self.value


class Blame(str, Enum):
    TORCH = "torch"  # the backend under test: torch, or the one Mismatch.backend names
    BACKEND = "torch"  # the same member (an alias), for backends other than torch
    REFERENCE = "reference"
    PRECISION = "precision"  # both sides within the allowance: rounding, not a bug
    UNDECIDED = "undecided"

    def __str__(self) -> str:
        return self.value


@dataclass
class Evidence:
    """One tensor judged against the float64 truth, at its worst element.

    ``torch_ratio`` is ``max |torch - truth| / allowance`` over the tensor (<= 1: within),
    ``reference_ratio`` the same for the reference in this dtype (``None`` where the
    reference does not run: half precision, and float64, where it is the truth).
    """

    name: str
    index: tuple[int, ...]
    torch: float
    reference: float | None
    truth: float
    allowance: float
    torch_ratio: float
    reference_ratio: float | None = None
    scale: float = 0.0  # max |truth| over the tensor
    message: str = ""  # set when the shapes differ
    label: str = "torch"  # the backend whose numbers ``torch`` and ``torch_ratio`` are

    @property
    def worst_ratio(self) -> float:
        return max(self.torch_ratio, self.reference_ratio or 0.0)

    def __str__(self) -> str:
        if self.message:
            return f"{self.name}: {self.message}"
        at = list(self.index)
        text = (
            f"{self.name} at {at}: {self.label} {self.torch:.9g} "
            f"({self.torch_ratio:.3g} allowances)"
        )
        if self.reference is not None:
            ratio = self.reference_ratio if self.reference_ratio is not None else 0.0
            text += f", reference {self.reference:.9g} ({ratio:.3g} allowances)"
        return text + f", float64 truth {self.truth:.9g}, allowance {self.allowance:.3g}"


@dataclass
class Mismatch:
    """One localized disagreement with the truth, on one device and dtype."""

    kind: Kind
    layer: int | None  # index in spec.layers; None for the loss
    layer_type: str  # class name (the loss's for kinds loss/grad_output)
    tensor: str  # 'output', 'grad wrt input', '3.bias', ...
    device: str
    dtype: str
    evidence: Evidence
    step: int | None = None  # 1-based optimizer step for Kind.STEP
    downstream: int = 0  # further tensors beyond the allowance, explained by this one
    blame: Blame = Blame.UNDECIDED
    note: str = ""
    backend: str = "torch"  # the backend under test (``Blame.BACKEND`` blames it)
    # what the verdict was made on, for repros: 'truth', 'allowance' (the blamed side's),
    # and 'reference' (its value in the dtype, where it was judged)
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def where(self) -> str:
        at = (
            f"layer {self.layer} ({self.layer_type})"
            if self.layer is not None
            else f"loss ({self.layer_type})"
        )
        return at + (f" after step {self.step}" if self.step is not None else "")

    @property
    def key(self) -> tuple[Any, ...]:
        """The traced tensor, independent of device and dtype."""
        return (self.kind, self.layer, self.tensor, self.step)

    @property
    def blamed(self) -> str:
        """Who is blamed, by name: the backend's for ``Blame.BACKEND``."""
        return self.backend if self.blame is Blame.BACKEND else str(self.blame)

    def __str__(self) -> str:
        where = ran_on(self.backend, self.device)
        text = f"[{where} {self.dtype}] {self.kind} mismatch at {self.where}: {self.evidence}"
        if self.downstream:
            text += f" (+{self.downstream} downstream)"
        text += f"\n    blame: {self.blamed}" + (f" ({self.note})" if self.note else "")
        return text


@dataclass
class Report:
    spec: NetworkSpec
    mismatches: list[Mismatch] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[Mismatch] = field(default_factory=list)  # Blame.PRECISION: not counted
    known: list[Mismatch] = field(default_factory=list)  # explained by harness.known
    devices: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ()
    data: CaseData | None = None
    backends: tuple[str, ...] = ("torch",)
    skipped: list[str] = field(default_factory=list)  # what a backend lacks, said
    traces: dict[str, Trace] = field(default_factory=dict, repr=False)
    allowances: dict[str, Any] = field(default_factory=dict, repr=False)  # dtype[-device] ->

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.errors

    @property
    def skipped_whole(self) -> bool:
        """No backend could run any of the case (``skipped`` says why)."""
        return not self.devices and not self.errors

    def summary(self) -> str:
        runs = f"devices {', '.join(self.devices)}; dtypes {', '.join(self.dtypes)}"
        who = " and ".join(self.backends)
        if self.skipped_whole:
            head = [f"SKIPPED: no backend could run this case: {self.spec}"]
        elif self.ok:
            layers = len(self.spec.layers)
            head = [f"OK: {who} and the reference agree ({runs}): {layers} layers"]
        else:
            head = [f"MISMATCH ({runs}): {self.spec}"]
            head += [str(m) for m in self.mismatches]
            head += [f"error: {e}" for e in self.errors]
        head += [f"skipped: {s}" for s in self.skipped]
        head += [f"warning (precision, not counted): {w}" for w in self.warnings]
        head += [f"known torch deviation (not counted): {k}" for k in self.known]
        return "\n".join(head)

    __str__ = summary


# a graph node's input edge k is the tensor f"{EDGE_TENSOR}{k}" of a GRAD_INPUT mismatch
EDGE_TENSOR = "grad wrt input "


def ran_on(backend: str, device: str) -> str:
    """Where a result was computed, as reports print it: the device alone for torch (as
    saved cases have always said), ``<backend>-<device>`` for any other backend."""
    return device if backend == "torch" else f"{backend}-{device}"


def tensor_of(trace: Trace, m: Mismatch) -> np.ndarray | None:
    """The array mismatch ``m`` is about, taken from ``trace``."""
    kind = Kind(m.kind)
    if kind is Kind.FORWARD and m.tensor not in (None, "output"):
        return trace.extras.get(f"{_required(m.layer, m)}.{m.tensor}")
    if kind is Kind.FORWARD:
        return trace.outputs[_required(m.layer, m)]
    if kind is Kind.LOSS:
        return trace.loss
    if kind is Kind.GRAD_OUTPUT:
        return trace.grad_outputs[-1]
    if kind is Kind.GRAD_INPUT and m.tensor.startswith(EDGE_TENSOR):
        # a graph node's k-th input edge (harness.graph)
        edge = m.tensor[len(EDGE_TENSOR) :]
        return trace.grad_edges.get(f"{_required(m.layer, m)}.{edge}")
    if kind is Kind.GRAD_INPUT:
        return trace.grad_wrt_input_of(_required(m.layer, m))
    if kind is Kind.GRAD_PARAM:
        return trace.grad_params.get(m.tensor)
    if kind is Kind.BUFFER:
        return trace.buffers.get(m.tensor)
    return trace.steps[_required(m.step, m) - 1].get(m.tensor)


def _required(value: int | None, m: Mismatch) -> int:
    if value is None:
        raise ValueError(f"a {m.kind} mismatch of {m.tensor!r} without its layer or step")
    return value


def _layer_of(name: str) -> int:
    return int(name.split(".", 1)[0])


def traced(trace: Trace) -> dict[tuple[Any, ...], np.ndarray]:
    """Every tensor of ``trace`` by its key ``(kind, layer, tensor, step)``, in the order
    ``check`` localizes: outputs, loss, gradients from the loss down, buffers, steps."""
    out: dict[tuple[Any, ...], np.ndarray] = {}
    n = len(trace.outputs)
    for i, o in enumerate(trace.outputs):
        out[(Kind.FORWARD, i, "output", None)] = o
        for name, extra in trace.extras.items():  # a recurrent layer's final states
            if _layer_of(name) == i:
                out[(Kind.FORWARD, i, name.split(".", 1)[1], None)] = extra
    out[(Kind.LOSS, None, "loss", None)] = trace.loss
    if n:
        out[(Kind.GRAD_OUTPUT, None, "grad wrt network output", None)] = trace.grad_outputs[-1]
    if trace.grad_edges:  # a graph: the gradient along each node's input edges
        for i in range(n - 1, -1, -1):
            for k in sorted(int(e.split(".")[1]) for e in trace.grad_edges if _layer_of(e) == i):
                out[(Kind.GRAD_INPUT, i, f"{EDGE_TENSOR}{k}", None)] = trace.grad_edges[f"{i}.{k}"]
    for i in range(n - 1, -1, -1) if not trace.grad_edges else ():
        g = trace.grad_wrt_input_of(i)
        if g is not None:
            out[(Kind.GRAD_INPUT, i, "grad wrt input", None)] = g
    for name, g in trace.grad_params.items():
        out[(Kind.GRAD_PARAM, _layer_of(name), name, None)] = g
    for name, b in trace.buffers.items():
        if np.asarray(b).dtype.kind == "f":
            out[(Kind.BUFFER, _layer_of(name), name, None)] = b
    for k, state in enumerate(trace.steps, start=1):
        for name, v in state.items():
            if np.asarray(v).dtype.kind == "f":
                out[(Kind.STEP, _layer_of(name), name, k)] = v
    return out
