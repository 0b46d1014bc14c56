"""The command line: ``python -m harness fuzz | replay PATH | show PATH``.

``fuzz`` draws random networks, checks each on every device and dtype, saves
every failure with :func:`harness.report.save_repro` and prints a summary table;
it exits 1 when anything mismatched. ``replay`` reruns a saved case; ``show``
prints a case's architecture with the shape after every layer.
"""

from __future__ import annotations

import argparse
import collections
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

__all__ = ["main", "fuzz"]


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _dtypes(text: str) -> tuple[str, ...]:
    """``--dtype``: canonical names (torch's spellings: float, double, half, bfloat16)."""
    from .dtypes import parse_dtypes

    try:
        return parse_dtypes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _devices(text: str) -> tuple[str, ...]:
    """``--device``: a comma-separated list of ``cpu``, ``cuda`` and ``cuda:N``."""
    devices: list[str] = []
    for device in _csv(text) or []:
        device = device.lower()
        if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise argparse.ArgumentTypeError(
                f"unknown device {device!r}: use cpu, cuda or cuda:N (comma-separated)"
            )
        if device not in devices:
            devices.append(device)
    if not devices:
        raise argparse.ArgumentTypeError("no device given: use cpu, cuda or cuda:N")
    return tuple(devices)


def _number(kind: type, least: float = 0, strict: bool = True) -> Callable[[str], Any]:
    """An argparse type: a ``kind`` number above ``least`` (at least it, if not strict)."""
    word = "an integer" if kind is int else "a number"
    bound = f"> {least:g}" if strict else f">= {least:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {word} {bound}, got {text!r}") from None
        if not math.isfinite(value) or (value <= least if strict else value < least):
            raise argparse.ArgumentTypeError(f"expected {word} {bound}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in some messages
    return parse


def _check_cuda(parser: argparse.ArgumentParser, devices: Sequence[str] | None) -> None:
    """A one-line error (exit 2) for a CUDA device this machine does not have."""
    cuda = [d for d in devices or () if d.startswith("cuda")]
    if not cuda:
        return
    import torch

    version = ".".join(torch.__version__.split("+")[0].split(".")[:2])
    if not torch.cuda.is_available():
        why = "built without CUDA" if torch.version.cuda is None else "found no GPU"
        parser.error(
            f"--device {cuda[0]}: no CUDA device here (torch {version} {why}); use --device cpu"
        )
    count = torch.cuda.device_count()
    for device in cuda:
        if ":" in device and int(device.split(":")[1]) >= count:
            parser.error(
                f"--device {device}: this machine has {count} CUDA device(s), "
                f"cuda:0 to cuda:{count - 1}"
            )


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description="Hold torch to the NumPy reference.")
    sub = parser.add_subparsers(dest="command", required=True)
    fuzz = sub.add_parser("fuzz", help="check random networks; save every failure")
    count, at_least_1 = _number(int), _number(int, 1, strict=False)
    fuzz.add_argument("--cases", type=count, default=None, help="number of cases (default 50)")
    fuzz.add_argument("--time", type=_number(float), default=None, help="run for this many seconds")
    fuzz.add_argument("--seed", type=int, default=0, help="seed of the case generator")
    fuzz.add_argument(
        "--device", type=_devices, default=None, help="cpu,cuda,cuda:N (default: all present)"
    )
    fuzz.add_argument(
        "--dtype",
        type=_dtypes,
        default="float32,float64",
        help="float32 (float), float64 (double), float16 (half), bfloat16; comma-separated "
        "(default: %(default)s)",
    )
    fuzz.add_argument("--out", default="failures", help="where failures are saved")
    fuzz.add_argument("--max-layers", type=at_least_1, default=6)
    fuzz.add_argument("--max-width", type=at_least_1, default=16)
    fuzz.add_argument("--max-batch", type=at_least_1, default=4)
    fuzz.add_argument("--max-spatial", type=at_least_1, default=8)
    fuzz.add_argument("--families", default=None, help="dense,conv,embedding (default: all)")
    fuzz.add_argument("--exclude", default=None, help="layer/optimizer types to leave out")
    fuzz.add_argument(
        "--strict-known",
        action="store_true",
        help="count mismatches explained by a known torch deviation (harness/known.py) as "
        "failures; by default they are listed apart so a run reports what is new",
    )
    fuzz.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay = sub.add_parser("replay", help="rerun a saved case (folder or spec.json)")
    replay.add_argument("path")
    replay.add_argument(
        "--device", type=_devices, default=None, help="cpu,cuda,cuda:N (default: as saved)"
    )
    replay.add_argument(
        "--dtype", type=_dtypes, default=None, help="float32,float64,... (default: as saved)"
    )
    show = sub.add_parser("show", help="print a saved case's architecture and shapes")
    show.add_argument("path")
    return parser


@dataclass
class _Tally:
    """What a fuzz run found, counted for the summary."""

    done: int = 0
    passed: int = 0
    warned: collections.Counter = field(default_factory=collections.Counter)
    known: collections.Counter = field(default_factory=collections.Counter)
    found: collections.Counter = field(default_factory=collections.Counter)
    saved: list[Path] = field(default_factory=list)

    def add(self, report: Any, strict_known: bool, out: str) -> None:
        from .report import save_repro

        self.done += 1
        for w in report.warnings:
            self.warned[(w.layer_type, str(w.kind), w.dtype)] += 1
        for k in report.known:
            self.known[(k.layer_type, str(k.kind), k.dtype)] += 1
        if strict_known and report.known:
            report.mismatches += report.known
        if report.ok:
            self.passed += 1
            return
        self.saved.append(save_repro(report, out))
        for m in report.mismatches:
            self.found[(m.layer_type, str(m.kind), f"{m.dtype}, blame {m.blame}")] += 1
        if report.errors:
            self.found[("(crash)", "error", "")] += len(report.errors)


def _table(title: str, counts: collections.Counter, limit: int = 12) -> None:
    print(f"\n{title}:")
    width = max(len("layer class"), *(len(t[0]) for t in counts)) + 2
    print(f"  {'layer class'.ljust(width)}{'kind'.ljust(12)}{'where'.ljust(26)}count")
    for (layer_type, kind, where), count in counts.most_common(limit):
        print(f"  {layer_type.ljust(width)}{kind.ljust(12)}{where.ljust(26)}{count}")


def _summary(tally: _Tally, args: argparse.Namespace) -> None:
    devices = ", ".join(args.device or ["all present"])
    print(
        f"\n{tally.done} cases, {tally.passed} passed, {tally.done - tally.passed} failed "
        f"(seed {args.seed}; devices: {devices}; dtypes: {', '.join(args.dtype)})"
    )
    if tally.warned:
        _table(
            "precision warnings, not counted (both sides within the allowance of the float64 "
            "truth, apart by more than the dtype's tolerance)",
            tally.warned,
        )
    if tally.known:
        _table("known torch deviations, not counted (harness/known.py)", tally.known)
    if tally.found:
        _table("mismatches by layer class, kind and blame", tally.found, limit=50)
        print(
            f"\nsaved {len(tally.saved)} failure(s) under {args.out}/ (replay with "
            f"`python -m harness replay PATH`; each has a standalone repro.py)"
        )
        for path in tally.saved[:10]:
            print(f"  {path}")


def fuzz(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .check import check
    from .generate import random_spec

    cases = args.cases if args.cases is not None else (None if args.time else 50)
    deadline = time.monotonic() + args.time if args.time else None
    limits: dict[str, Any] = {
        "max_layers": args.max_layers,
        "max_width": args.max_width,
        "max_batch": args.max_batch,
        "max_spatial": args.max_spatial,
        "exclude": tuple(_csv(args.exclude) or ()),
    }
    if args.families:
        limits["families"] = tuple(_csv(args.families) or ())
    rng = np.random.default_rng(args.seed)
    tally = _Tally()
    bar = tqdm(total=cases, unit="case", disable=args.no_progress, file=sys.stderr)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        while (cases is None or tally.done < cases) and (
            deadline is None or time.monotonic() < deadline
        ):
            report = check(random_spec(rng, **limits), devices=args.device, dtypes=args.dtype)
            tally.add(report, args.strict_known, args.out)
            bar.update(1)
            bar.set_postfix(failed=tally.done - tally.passed)
    bar.close()
    _summary(tally, args)
    return 0 if tally.passed == tally.done else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("fuzz", "replay"):
        _check_cuda(parser, args.device)
    if args.command == "fuzz":
        return fuzz(args)
    from .report import format_report, load_spec, replay

    if args.command == "replay":
        report = replay(args.path, devices=args.device, dtypes=args.dtype)
        print(format_report(report))
        return 0 if report.ok else 1
    from .spec import describe

    print(describe(load_spec(args.path)))
    return 0
