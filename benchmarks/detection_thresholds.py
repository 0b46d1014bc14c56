"""How small an error planted in *torch* does ``harness.check`` still report?

Method
------
For each layer (and loss) class the spec generator draws:

1. **Cases.** Specs are drawn with ``harness.generate.random_spec`` from
   ``np.random.default_rng(seed)``, seed 0, 1, 2, ... (the same stream for every type,
   so the cases are fixed), until ``--cases`` of them contain the type (as a layer, or
   as the loss). A spec whose clean check (float32 and float64, CPU) already fails is
   skipped and counted: the count should be 0.
2. **Plant.** ``torch.nn.<Type>.forward`` is wrapped (every instance of exactly that
   class in the spec, not a subclass inheriting it: ReLU6 is a Hardtanh; restored
   afterwards) so that, with ``y`` its original output,

   - *forward*: it returns ``y + eps * y.detach()``: the value scaled by ``1 + eps``,
     the gradient unchanged;
   - *backward*: it returns ``y + eps * (y - y.detach())``: the value unchanged, every
     gradient through the layer (into its input and its parameters) scaled by
     ``1 + eps``.

   A loss is planted the same way in its ``torch.nn`` loss module.
3. **Judge.** For each ``eps`` of a decreasing ladder (float32: 1e-2 ... 1e-6, float64:
   1e-6 ... 1e-12), ``check(spec, devices=["cpu"], dtypes=[dtype], attribute=False)``
   runs on every case; the case counts as *caught* when the report has a mismatch (any
   kind) at a planted layer: a layer index holding the type, or, for a loss, the loss
   (``layer is None`` with the loss's class).
4. **Report.** Per type, dtype and direction: ``all``, the smallest ``eps`` of the
   ladder caught in every case, and ``any``, the smallest caught in at least one. ``-``:
   not caught at the largest ``eps``; ``<=x``: caught at the smallest one tried. The
   per-eps counts follow the table, to show where detection falls off.

Run: ``python benchmarks/detection_thresholds.py [--cases 12] [--types Linear,Tanh]
[--out table.md]`` (CPU only; a few minutes per handful of types).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.checking import check
from harness.chooser import available
from harness.generate import LOSSES, random_spec
from harness.spec import DROPOUT_TYPES, LayerSpec, NetworkSpec

# What harness/generate.py (its family tables and _activation) and harness/heads.py
# (LOSSES) propose, in that order. Dropout layers are not measured (DROPOUT_TYPES).
LAYER_TYPES: tuple[str, ...] = (
    # dense
    "Linear",
    "LayerNorm",
    "BatchNorm1d",
    "Flatten",
    # activations
    "ReLU",
    "Tanh",
    "Sigmoid",
    "Identity",
    "LeakyReLU",
    "ReLU6",
    "SELU",
    "SiLU",
    "Mish",
    "ELU",
    "CELU",
    "GELU",
    "Softplus",
    "Softsign",
    "Hardsigmoid",
    "Hardswish",
    "LogSigmoid",
    "Hardtanh",
    "Softmax",
    "LogSoftmax",
    # conv
    "Conv1d",
    "Conv2d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "MaxPool1d",
    "MaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "BatchNorm2d",
    "GroupNorm",
    "InstanceNorm1d",
    "InstanceNorm2d",
    # embedding (the index input: its backward reaches only its weight)
    "Embedding",
)
LOSS_TYPES: tuple[str, ...] = tuple(LOSSES)

LADDERS: dict[str, tuple[float, ...]] = {
    "float32": (1e-2, 1e-3, 1e-4, 3e-5, 1e-5, 3e-6, 1e-6),
    "float64": (1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12),
}
DIRECTIONS = ("forward", "backward")
MAX_SEEDS = 20000  # draws per type before giving up on finding enough cases


def measurable_types() -> list[str]:
    """Every generated type that torch and the reference both have (dropout left out)."""
    return [
        t
        for t in LAYER_TYPES + LOSS_TYPES
        if t not in DROPOUT_TYPES and available(t) and hasattr(torch.nn, t)
    ]


@contextlib.contextmanager
def plant(type_name: str, eps: float, direction: str) -> Iterator[None]:
    """Scale ``torch.nn.<type_name>``'s output (``forward``) or the gradient through it
    (``backward``) by ``1 + eps``, in every instance of exactly that class (not of a
    subclass that inherits its forward), until the block exits."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction: {direction!r}, not one of {DIRECTIONS}")
    cls = getattr(torch.nn, type_name)
    own = "forward" in cls.__dict__  # else inherited (BatchNorm1d): delete it afterwards
    saved = cls.__dict__.get("forward")
    original = cls.forward

    def planted(self, *args, **kwargs):
        y = original(self, *args, **kwargs)
        if type(self) is not cls:
            return y  # a subclass that inherits this forward (ReLU6 is a Hardtanh)
        if not isinstance(y, torch.Tensor) or not y.is_floating_point():
            return y  # nothing to scale (an integer output)
        if direction == "forward":
            return y + eps * y.detach()
        return y + eps * (y - y.detach())

    cls.forward = planted
    try:
        yield
    finally:
        if own:
            cls.forward = saved
        else:
            del cls.forward


def contains(spec: NetworkSpec, type_name: str) -> bool:
    return spec.loss.type == type_name or any(layer.type == type_name for layer in spec.layers)


def cases_with(
    type_name: str, n: int, max_layers: int = 4, start: int = 0, max_seeds: int = MAX_SEEDS
) -> list[tuple[int, NetworkSpec]]:
    """The first ``n`` generated specs (seed, spec) holding ``type_name``, seeds from
    ``start`` up (fewer when ``max_seeds`` draws do not find ``n``)."""
    out = []
    for seed in range(start, start + max_seeds):
        spec = random_spec(np.random.default_rng(seed), max_layers=max_layers)
        if contains(spec, type_name):
            out.append((seed, spec))
            if len(out) == n:
                break
    return out


def clean_ok(spec: NetworkSpec, dtypes: Sequence[str] = ("float32", "float64")) -> bool:
    return check(spec, devices=["cpu"], dtypes=list(dtypes), attribute=False).ok


def caught(spec: NetworkSpec, type_name: str, dtype: str, eps: float, direction: str) -> bool:
    """Whether ``check`` reports a mismatch at a planted layer (or planted loss)."""
    with plant(type_name, eps, direction):
        report = check(spec, devices=["cpu"], dtypes=[dtype], attribute=False)
    if spec.loss.type == type_name:
        if any(m.layer is None and m.layer_type == type_name for m in report.mismatches):
            return True
    planted = {i for i, layer in enumerate(spec.layers) if _holds(layer, type_name)}
    return any(m.layer in planted for m in report.mismatches)


def _holds(layer: LayerSpec, type_name: str) -> bool:
    """Whether torch's module for ``layer`` is, or holds, an instance of exactly
    ``torch.nn.<type_name>`` (a TransformerEncoderLayer holds Linears): the plant is in
    every instance, so the first divergence may be at the layer around it."""
    from harness.backends.torch import build_torch_layer

    if layer.type == type_name:
        return True
    cls = getattr(torch.nn, type_name)
    module = build_torch_layer(layer.type, layer.kwargs, torch.float64, "cpu")
    return any(type(m) is cls for m in module.modules())


@dataclass
class Row:
    type_name: str
    dtype: str
    cases: int
    skipped: int
    counts: dict[str, list[int]] = field(default_factory=dict)  # direction -> per eps

    def threshold(self, direction: str, need_all: bool) -> str:
        ladder, counts = LADDERS[self.dtype], self.counts[direction]
        if self.cases == 0:
            return "n/a"
        hits = [e for e, c in zip(ladder, counts) if (c == self.cases if need_all else c > 0)]
        if not hits:
            return "-"
        smallest = min(hits)
        return f"<={smallest:.0e}" if smallest == ladder[-1] else f"{smallest:.0e}"


def measure(
    type_name: str, n: int, dtypes: Sequence[str], max_layers: int, log=print
) -> tuple[list[Row], int]:
    """The rows for one type (one per dtype) and how many clean cases already failed."""
    drawn = cases_with(type_name, n, max_layers=max_layers)
    specs = []
    for seed, spec in drawn:
        if clean_ok(spec, dtypes):
            specs.append(spec)
        else:
            log(f"  {type_name}: clean case (draw seed {seed}) already fails: skipped")
    skipped = len(drawn) - len(specs)
    rows = []
    for dtype in dtypes:
        row = Row(type_name, dtype, len(specs), skipped)
        for direction in DIRECTIONS:
            row.counts[direction] = [
                sum(caught(spec, type_name, dtype, eps, direction) for spec in specs)
                for eps in LADDERS[dtype]
            ]
        rows.append(row)
    return rows, skipped


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| layer type | dtype | forward all/any | backward all/any | cases |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        fwd = f"{r.threshold('forward', True)} / {r.threshold('forward', False)}"
        bwd = f"{r.threshold('backward', True)} / {r.threshold('backward', False)}"
        cases = f"{r.cases}" + (f" ({r.skipped} skipped)" if r.skipped else "")
        lines.append(f"| {r.type_name} | {r.dtype} | {fwd} | {bwd} | {cases} |")
    return "\n".join(lines)


def details(rows: Sequence[Row]) -> str:
    """Cases caught per eps (forward; backward), to show where detection falls off."""
    out = []
    for dtype, ladder in LADDERS.items():
        mine = [r for r in rows if r.dtype == dtype]
        if not mine:
            continue
        head = " | ".join(f"{e:.0e}" for e in ladder)
        out += [f"\n{dtype}: cases caught per eps (forward; backward)\n"]
        out += [f"| layer type | {head} |", "|---|" + "---|" * len(ladder)]
        for r in mine:
            cells = " | ".join(
                f"{f}; {b}" for f, b in zip(r.counts["forward"], r.counts["backward"])
            )
            out.append(f"| {r.type_name} ({r.cases}) | {cells} |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cases", type=int, default=12, help="cases per layer type")
    parser.add_argument("--types", default="", help="comma-separated types (default: all)")
    parser.add_argument("--dtypes", default="float32,float64", help="comma-separated")
    parser.add_argument("--max-layers", type=int, default=4, help="random_spec's max_layers")
    parser.add_argument("--out", default=None, help="also write the markdown here")
    args = parser.parse_args(argv)

    known = measurable_types()
    types = [t.strip() for t in args.types.split(",") if t.strip()] or known
    unknown = [t for t in types if t not in known]
    if unknown:
        parser.error(f"not measurable here: {', '.join(unknown)} (choose from {known})")
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if any(d not in LADDERS for d in dtypes):
        parser.error(f"--dtypes: choose from {list(LADDERS)}")

    rows: list[Row] = []
    skipped_total = 0
    begin = time.perf_counter()
    for type_name in types:
        t0 = time.perf_counter()
        new, skipped = measure(type_name, args.cases, dtypes, args.max_layers)
        rows += new
        skipped_total += skipped
        print(f"{type_name}: {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        print("\n".join(table(new).splitlines()[2:]), file=sys.stderr, flush=True)

    text = table(rows)
    text += f"\n\nclean cases that already failed (skipped): {skipped_total}\n"
    text += details(rows) + "\n"
    text += f"\n({time.perf_counter() - begin:.0f}s, --cases {args.cases})\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
