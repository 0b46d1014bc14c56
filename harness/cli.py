"""The command line: ``python -m harness fuzz | replay PATH | show PATH``.

``fuzz`` draws random networks, checks each on every device and dtype, saves
every failure with :func:`harness.report.save_repro` and prints a summary table;
it exits 1 when anything mismatched. ``replay`` reruns a saved case; ``show``
prints a case's architecture with the shape after every layer.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

__all__ = ["main", "fuzz"]


def _csv(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


class _UsageError(Exception):
    """A mistake in the command line found after parsing: one line, exit status 2."""


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


def _fuzz_arguments(fuzz: argparse.ArgumentParser) -> None:
    count, at_least_1 = _number(int), _number(int, 1, strict=False)
    fuzz.add_argument("--cases", type=count, default=None, help="number of cases (default 50)")
    fuzz.add_argument("--time", type=_number(float), default=None, help="run for this many seconds")
    fuzz.add_argument(
        "--seed",
        type=_number(int, 0, strict=False),
        default=None,
        help="seed of the campaign (default: a fresh one, printed first)",
    )
    fuzz.add_argument(
        "--jobs",
        type=at_least_1,
        default=os.cpu_count() or 1,
        help="worker processes (default: the machine's cores, %(default)s); the cases and "
        "the summary do not depend on it",
    )
    fuzz.add_argument("--shard", type=_shard, default=None, help="k/N: run slice k of N")
    fuzz.add_argument(
        "--ray",
        default=None,
        metavar="ADDRESS",
        help="run the cases as Ray tasks on the cluster at ADDRESS (auto: this machine's "
        "cluster; local: a new one here); needs the [ray] extra",
    )
    fuzz.add_argument("--junitxml", default=None, help="also write a JUnit XML file here")
    fuzz.add_argument(
        "--shrink-time",
        type=_number(float, 0, strict=False),
        default=30.0,
        help="seconds each failing case may spend shrinking to its smallest form "
        "(0: no shrinking; default %(default)s)",
    )
    fuzz.add_argument(
        "--device", type=_devices, default=None, help="cpu,cuda,cuda:N (default: all present)"
    )
    fuzz.add_argument(
        "--backend",
        type=_backend_names,
        default=("torch",),
        help="the frameworks to hold to the reference, comma-separated: torch, jax (the "
        "[jax] extra); cases are drawn from what all of them can run (default: torch)",
    )
    fuzz.add_argument(
        "--dtype",
        type=_dtypes,
        default="float32,float64",
        help="float32 (float), float64 (double), float16 (half), bfloat16; comma-separated "
        "(default: %(default)s)",
    )
    fuzz.add_argument(
        "--out",
        default="failures",
        help="where each run makes its folder (<date>-<time>-seed<S>) with summary.json and "
        "the failing cases (default: %(default)s)",
    )
    fuzz.add_argument("--max-layers", type=at_least_1, default=6)
    fuzz.add_argument("--max-width", type=at_least_1, default=16)
    fuzz.add_argument("--max-batch", type=at_least_1, default=4)
    fuzz.add_argument("--max-spatial", type=at_least_1, default=8)
    fuzz.add_argument(
        "--families",
        type=_families,
        default=None,
        help="dense,conv,embedding,sequence,graph (default: all)",
    )
    fuzz.add_argument(
        "--exclude", type=_types, default=None, help="layer, loss or optimizer types to leave out"
    )
    fuzz.add_argument(
        "--strict-known",
        action="store_true",
        help="count mismatches explained by a known torch deviation (harness/known.py) as "
        "failures; by default they are listed apart so a run reports what is new",
    )
    fuzz.add_argument("--no-progress", action="store_true", help="no progress bar")


def _check_ray(parser: argparse.ArgumentParser) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        parser.error("--ray: ray is not installed; pip install 'backprop-oracle[ray]'")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m harness", description="Hold torch to the NumPy reference.")
    sub = parser.add_subparsers(dest="command", required=True)
    _fuzz_arguments(sub.add_parser("fuzz", help="check random networks; save every failure"))
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
    merge = sub.add_parser("merge", help="combine the summaries of a sharded campaign")
    merge.add_argument("folders", nargs="+", help="run folders (or summary.json files)")
    merge.add_argument("--out", default=None, help="write the merged summary.json here")
    return parser


def _families(text: str) -> tuple[str, ...]:
    """``--families``: names from the generator's family table."""
    from .generate import ALL_FAMILIES as FAMILIES

    names = tuple(_csv(text) or ())
    for name in names:
        if name not in FAMILIES:
            raise argparse.ArgumentTypeError(
                f"unknown family {name!r}: the generator has {', '.join(FAMILIES)}"
            )
    if not names:
        raise argparse.ArgumentTypeError(f"no family given: use {', '.join(FAMILIES)}")
    return names


def _types(text: str) -> tuple[str, ...]:
    """``--exclude``: layer, loss or optimizer classes the reference has (torch's names)."""
    import difflib

    import reference.nn as rnn
    import reference.optim as ropt

    known = [n for n in (*dir(rnn), *dir(ropt)) if n[:1].isupper()]
    names = tuple(_csv(text) or ())
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise argparse.ArgumentTypeError(
                f"unknown type {name!r}{hint}: name torch.nn or torch.optim classes the "
                "reference implements, comma-separated"
            )
    return names


def _backend_names(text: str) -> tuple[str, ...]:
    from .backends.protocol import BACKEND_NAMES

    names = tuple(dict.fromkeys(_csv(text) or []))
    unknown = [n for n in names if n not in BACKEND_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown backend {', '.join(unknown) or repr(text)}: use {', '.join(BACKEND_NAMES)}"
        )
    return names


def _load_backends(names: Sequence[str]) -> list[Any]:
    """The backends by name; one whose framework is absent is a usage error (exit 2)."""
    from .backends.protocol import backend_named

    try:
        return [backend_named(name) for name in names]
    except ImportError as exc:
        raise _UsageError(f"--backend {','.join(names)}: {exc}") from None


def _shard(text: str) -> tuple[int, int]:
    """``--shard k/N``: slice ``k`` (0 <= k < N) of a campaign's cases."""
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 0 <= int(match[1]) < int(match[2]):
        raise argparse.ArgumentTypeError(f"expected k/N with 0 <= k < N, got {text!r}")
    return int(match[1]), int(match[2])


class _Stop:
    """Ctrl-C: finish the cases under way, then print the partial summary."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:  # a second Ctrl-C: stop now
            signal.signal(signal.SIGINT, self._previous)
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after the cases under way (Ctrl-C again to quit now)", file=sys.stderr)

    def restore(self) -> None:
        signal.signal(signal.SIGINT, self._previous)


def _limits(args: argparse.Namespace, backends: Sequence[Any]) -> dict[str, Any]:
    """The generator's limits from the arguments, fitted to what the backends run."""
    from .fitted import fitted_limits

    limits: dict[str, Any] = {
        "max_layers": args.max_layers,
        "max_width": args.max_width,
        "max_batch": args.max_batch,
        "max_spatial": args.max_spatial,
        "exclude": args.exclude or (),
    }
    if args.families:
        limits["families"] = args.families
    limits = fitted_limits([b.capabilities for b in backends], **limits)
    if limits["families"] is not None and not limits["families"]:
        names = ",".join(args.backend)
        raise _UsageError(f"--backend {names}: no family it runs is left to draw from")
    return limits


def _run_folder(args: argparse.Namespace, seed: int) -> Path:
    """One folder per run: ``<out>/<date>-<time>-seed<S>[-shard<k>of<N>]``."""
    name = time.strftime("%Y%m%d-%H%M%S") + f"-seed{seed}"
    if args.shard:
        name += f"-shard{args.shard[0]}of{args.shard[1]}"
    folder = Path(args.out) / name
    for n in itertools.count(2):
        if not folder.exists():
            break
        folder = folder.with_name(f"{name}-{n}")
    folder.mkdir(parents=True)
    return folder


def _indices(cases: int | None, shard: tuple[int, int] | None) -> tuple[Any, int | None]:
    """The case numbers this run checks (every N-th from k for shard k/N), and how many."""
    every: Any = range(cases) if cases is not None else itertools.count()
    if shard is None:
        return iter(every), cases
    k, n = shard
    if cases is not None:
        return iter(every[k::n]), len(every[k::n])
    return (i for i in every if i % n == k), None


def fuzz(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .campaign import Campaign, connect_ray, run_cases, run_cases_ray
    from .summary import Summary

    seed = (
        args.seed if args.seed is not None else int(np.random.SeedSequence().generate_state(1)[0])
    )
    print(f"seed {seed} (rerun this campaign with --seed {seed})", file=sys.stderr)
    if args.ray:
        try:
            connect_ray(args.ray)
        except ConnectionError as exc:
            print(f"python -m harness fuzz: error: --ray {args.ray}: {exc}", file=sys.stderr)
            return 2
    cases = args.cases if args.cases is not None else (None if args.time else 50)
    backends = _load_backends(args.backend)
    limits = _limits(args, backends)
    folder = _run_folder(args, seed)
    devices = tuple(args.device) if args.device else _all_devices(backends)
    campaign = Campaign(
        seed,
        limits,
        devices,
        args.dtype,
        args.strict_known,
        str(folder),
        args.shrink_time,
        tuple(args.backend),
    )
    indices, total = _indices(cases, args.shard)
    summary = Summary(seed, list(devices), list(args.dtype), args.strict_known)
    summary.backends = list(args.backend)
    summary.shard = f"{args.shard[0]}/{args.shard[1]}" if args.shard else None
    deadline = time.monotonic() + args.time if args.time else None
    start, stop = time.monotonic(), _Stop()
    bar = tqdm(total=total, unit="case", disable=args.no_progress, file=sys.stderr)

    def keep_going() -> bool:
        return not stop.requested and (deadline is None or time.monotonic() < deadline)

    if args.ray:
        results = run_cases_ray(campaign, indices, args.ray, keep_going)
    else:
        results = run_cases(campaign, indices, args.jobs, keep_going)
    try:
        for result in results:
            summary.add(result)
            bar.update(1)
            bar.set_postfix(failed=len(summary.failed))
    finally:
        stop.restore()
        bar.close()
    summary.elapsed_s, summary.interrupted = time.monotonic() - start, stop.requested
    summary.print()
    print(f"\nsummary.json and failing cases under {folder}/")
    summary.write(folder)
    if args.junitxml:
        summary.write_junit(args.junitxml)
    if stop.requested:
        return 130
    return 0 if not summary.failed else 1


def _all_devices(backends: Sequence[Any]) -> tuple[str, ...]:
    """Every device one of the backends runs on here, in their order."""
    return tuple(dict.fromkeys(d for b in backends for d in b.capabilities.devices))


def merge_command(args: argparse.Namespace) -> int:
    from .summary import merge

    try:
        summary = merge(args.folders)
    except (OSError, ValueError, KeyError) as exc:
        print(f"python -m harness merge: error: {exc}", file=sys.stderr)
        return 2
    summary.print()
    if args.out:
        print(f"\nmerged summary.json under {summary.write(args.out).parent}/")
    return 0 if not summary.failed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in ("fuzz", "replay"):
        _check_cuda(parser, args.device)
    if args.command == "fuzz" and args.ray:
        _check_ray(parser)
    if args.command == "fuzz":
        try:
            return fuzz(args)
        except _UsageError as exc:
            print(f"python -m harness fuzz: error: {exc}", file=sys.stderr)
            return 2
    if args.command == "merge":
        return merge_command(args)
    from .report import format_report, load_spec, replay
    from .spec import SpecFileError, describe

    try:
        if args.command == "replay":
            report = replay(args.path, devices=args.device, dtypes=args.dtype)
            print(format_report(report))
            return 0 if report.ok else 1
        print(describe(load_spec(args.path)))
    except SpecFileError as exc:
        print(f"python -m harness {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0
