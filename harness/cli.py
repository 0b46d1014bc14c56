"""The command line: ``python -m harness fuzz | replay PATH | show PATH``.

``fuzz`` draws random networks, checks each on every device and dtype, saves
every failure with :func:`harness.report.save_repro` and prints a summary table;
it exits 1 when anything mismatched. ``replay`` reruns a saved case; ``show``
prints a case's architecture with the shape after every layer.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main", "fuzz"]


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness", description="Hold torch to the NumPy reference."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fuzz = sub.add_parser("fuzz", help="check random networks; save every failure")
    fuzz.add_argument("--cases", type=int, default=None, help="number of cases (default 50)")
    fuzz.add_argument("--time", type=float, default=None, help="run for this many seconds")
    fuzz.add_argument("--seed", type=int, default=0, help="seed of the case generator")
    fuzz.add_argument("--device", default=None, help="cpu,cuda (default: all present)")
    fuzz.add_argument("--dtype", default="float32,float64")
    fuzz.add_argument("--out", default="failures", help="where failures are saved")
    fuzz.add_argument("--max-layers", type=int, default=6)
    fuzz.add_argument("--max-width", type=int, default=16)
    fuzz.add_argument("--max-batch", type=int, default=4)
    fuzz.add_argument("--max-spatial", type=int, default=8)
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
    replay.add_argument("--device", default=None)
    replay.add_argument("--dtype", default=None)
    show = sub.add_parser("show", help="print a saved case's architecture and shapes")
    show.add_argument("path")
    return parser


def fuzz(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .check import check
    from .generate import random_spec
    from .report import save_repro

    cases = args.cases if args.cases is not None else (None if args.time else 50)
    deadline = time.monotonic() + args.time if args.time else None
    devices, dtypes = _csv(args.device), _csv(args.dtype) or ["float32", "float64"]
    limits = {
        "max_layers": args.max_layers,
        "max_width": args.max_width,
        "max_batch": args.max_batch,
        "max_spatial": args.max_spatial,
    }
    if args.families:
        limits["families"] = tuple(_csv(args.families) or ())
    limits["exclude"] = tuple(_csv(args.exclude) or ())
    rng = np.random.default_rng(args.seed)
    by_place: collections.Counter[tuple[str, str]] = collections.Counter()
    saved: list[Path] = []
    done = passed = warned = known = 0
    bar = tqdm(total=cases, unit="case", disable=args.no_progress, file=sys.stderr)
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        while (cases is None or done < cases) and (deadline is None or time.monotonic() < deadline):
            spec = random_spec(rng, **limits)
            report = check(spec, devices=devices, dtypes=dtypes)
            done += 1
            warned += bool(report.warnings)
            known += bool(report.known)
            if args.strict_known and report.known:
                report.mismatches += report.known
            if report.ok:
                passed += 1
            else:
                saved.append(save_repro(report, args.out))
                for m in report.mismatches:
                    by_place[(m.layer_type, m.kind)] += 1
                if report.errors:
                    by_place[("(crash)", "error")] += len(report.errors)
            bar.update(1)
            bar.set_postfix(failed=done - passed)
    bar.close()
    print(
        f"\n{done} cases, {passed} passed, {done - passed} failed "
        f"(devices: {', '.join(devices or ['all present'])}; dtypes: {', '.join(dtypes)})"
    )
    if warned:
        print(
            f"{warned} case(s) had precision warnings (rounding neither side can be faulted "
            "for: near-ties in a max, inputs on a kink, steps on rounding-level gradients; "
            "harness/precision.py; not counted as failures)"
        )
    if known:
        print(
            f"{known} case(s) showed a known torch deviation (harness/known.py: torch departs "
            "from the math there; not counted as failures)"
        )
    if by_place:
        print("\nmismatches by layer class and kind:")
        width = max(len("layer class"), *(len(t) for t, _ in by_place)) + 2
        print(f"  {'layer class'.ljust(width)}{'kind'.ljust(12)}count")
        for (layer_type, kind), count in by_place.most_common():
            print(f"  {layer_type.ljust(width)}{kind.ljust(12)}{count}")
        print(
            f"\nsaved {len(saved)} failure(s) under {args.out}/ (replay with "
            f"`python -m harness replay PATH`; each has a standalone repro.py)"
        )
        for path in saved[:10]:
            print(f"  {path}")
    return 0 if passed == done else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "fuzz":
        return fuzz(args)
    from .report import format_report, load_spec, replay

    if args.command == "replay":
        report = replay(args.path, devices=_csv(args.device), dtypes=_csv(args.dtype))
        print(format_report(report))
        return 0 if report.ok else 1
    from .spec import describe

    print(describe(load_spec(args.path)))
    return 0
