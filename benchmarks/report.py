"""Turn a pytest-benchmark ``--benchmark-json`` file into a Markdown table and a bar chart.

Run::

    pytest benchmarks --benchmark-only --benchmark-json=.benchmarks/latest.json
    python -m benchmarks.report .benchmarks/latest.json [--markdown OUT.md] [--png OUT.png]

Without ``--markdown`` the table goes to stdout. ``--png`` needs matplotlib (the
``bench`` extra). Bad input (a missing file, a file that is not pytest-benchmark's
JSON) is one line on stderr and exit status 2.

Convention: workloads and roles
-------------------------------
A *workload* is a pytest-benchmark ``group`` (``benchmark.group = ...``); a run without
a group falls into the workload named by its test function's name less the role suffix
(``test_x_reference`` and ``test_x_torch[cpu]`` both fall into ``test_x``). Within a
workload each run gets one *role*, from the test function's name (the part before
``[``) and its ``device`` parameter:

- ``reference``: the name ends in ``_reference`` (the NumPy reference; any parameter
  is ignored);
- ``torch-cpu``: the name ends in ``_torch`` and ``device`` is ``cpu``;
- ``torch-cuda``: the name ends in ``_torch`` and ``device`` is ``cuda`` or ``cuda:N``.

``device`` is read from the run's ``params``, else from its id (``test_x_torch[cpu]``,
``test_x_torch[cpu-float32]``). A run that fits no role, or a second run with a role
already taken in its workload, is listed under the table with the reason, never
dropped silently. A side with no run (the cuda variants skip without a GPU) is shown
as "—" with a footnote.

Each time is the median of the run's rounds, with the interquartile range (q1–q3)
and the number of rounds beside it; ratios are ratios of medians.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROLES = ("reference", "torch-cpu", "torch-cuda")
MATPLOTLIB_HINT = "the PNG needs matplotlib: pip install 'backprop-oracle[bench]'"
FOOTNOTES = {
    "reference": ("no-reference", "No reference run for this workload in the file."),
    "torch-cpu": ("no-torch-cpu", "No torch-cpu run for this workload in the file."),
    "torch-cuda": (
        "no-cuda",
        "No torch-cuda run in the file: the cuda variants skip where no GPU is present.",
    ),
}
UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))
SUFFIXES = {"_reference": "reference", "_torch": "torch"}


class ReportError(Exception):
    """A problem to report to the user in one line (bad input, unwritable output)."""


@dataclass(frozen=True)
class Run:
    """One benchmark entry: its name, group, parameters and timing summary (seconds)."""

    name: str
    group: str | None
    params: Mapping[str, Any]
    median: float
    q1: float
    q3: float
    rounds: int


@dataclass
class Workload:
    """A group's runs by role (a role may be absent)."""

    name: str
    runs: dict[str, Run] = field(default_factory=dict)


@dataclass
class Report:
    """The workloads in file order, the runs that fit no role, and a caption."""

    workloads: list[Workload]
    unassigned: list[tuple[Run, str]]
    caption: str


# -- reading ---------------------------------------------------------------------------
def load_json(path: Path) -> dict[str, Any]:
    """Read ``path`` as JSON holding a top-level object with a ``benchmarks`` list."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        raise ReportError(f"{path}: not a pytest-benchmark JSON (no 'benchmarks' list)")
    return data


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None when it is not a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def parse_run(entry: Any, index: int) -> Run:
    """One entry of ``benchmarks``; ReportError when it lacks a name or a median."""
    where = f"benchmarks[{index}]"
    entry = _mapping(entry)
    if not isinstance(entry.get("name"), str):
        raise ReportError(f"not a pytest-benchmark JSON: {where} has no name")
    stats = _mapping(entry.get("stats"))
    median = _number(stats.get("median"))
    if median is None or median <= 0:
        raise ReportError(f"not a pytest-benchmark JSON: {where} has no positive median")
    q1, q3 = _number(stats.get("q1")), _number(stats.get("q3"))
    if q1 is None or q3 is None:  # fall back to the range, then to the median itself
        q1, q3 = _number(stats.get("min")), _number(stats.get("max"))
    rounds = _number(stats.get("rounds"))
    group = entry.get("group")
    return Run(
        name=entry["name"],
        group=group if isinstance(group, str) and group else None,
        params=_mapping(entry.get("params")),
        median=median,
        q1=median if q1 is None else q1,
        q3=median if q3 is None else q3,
        rounds=int(rounds) if rounds is not None else 0,
    )


def caption(data: Mapping[str, Any]) -> str:
    """Where the numbers come from: pytest-benchmark version, date, CPU, Python, commit."""
    machine = _mapping(data.get("machine_info"))
    cpu, commit = _mapping(machine.get("cpu")), _mapping(data.get("commit_info"))
    parts = [f"pytest-benchmark {data.get('version', '?')}"]
    when = data.get("datetime")
    if isinstance(when, str):
        utc = " UTC" if when.endswith("+00:00") else ""
        parts.append(when[:16].replace("T", " ") + utc)
    if cpu.get("brand_raw"):
        parts.append(f"{cpu['brand_raw']} ({cpu.get('count', '?')} CPUs)")
    if machine.get("python_version"):
        parts.append(f"Python {machine['python_version']}")
    if isinstance(commit.get("id"), str):
        dirty = " (dirty)" if commit.get("dirty") else ""
        parts.append(f"commit {commit['id'][:10]}{dirty}")
    return "; ".join(parts)


# -- roles -----------------------------------------------------------------------------
def split_name(name: str) -> tuple[str, str]:
    """``test_x_torch[cpu]`` -> (``test_x_torch``, ``cpu``); no id -> (name, "")."""
    base, bracket, rest = name.partition("[")
    return base, rest[:-1] if bracket and rest.endswith("]") else rest


def device_of(run: Run) -> str | None:
    """The run's ``device`` parameter, else a cpu/cuda token of its pytest id."""
    device = run.params.get("device")
    if isinstance(device, str):
        return device
    tokens = split_name(run.name)[1].split("-")
    return next((t for t in tokens if t == "cpu" or t.startswith("cuda")), None)


def role_of(run: Run) -> tuple[str | None, str]:
    """(role, "") for a run that fits one; (None, reason) for one that fits none."""
    base = split_name(run.name)[0]
    if base.endswith("_reference"):
        return "reference", ""
    if not base.endswith("_torch"):
        return None, "its name ends in neither `_reference` nor `_torch`"
    device = device_of(run)
    if device == "cpu":
        return "torch-cpu", ""
    if device is not None and (device == "cuda" or device.startswith("cuda:")):
        return "torch-cuda", ""
    return None, f"a `_torch` run whose device is {device or 'not given'}, not cpu or cuda"


def workload_of(run: Run) -> str:
    """The run's group, else its test name less the role suffix and the id."""
    if run.group:
        return run.group
    base = split_name(run.name)[0]
    for suffix in SUFFIXES:
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


def assign(runs: Sequence[Run]) -> tuple[list[Workload], list[tuple[Run, str]]]:
    """Workloads in order of first appearance, and the runs left over with reasons."""
    workloads: dict[str, Workload] = {}
    unassigned: list[tuple[Run, str]] = []
    for run in runs:
        role, reason = role_of(run)
        if role is None:
            unassigned.append((run, reason))
            continue
        workload = workloads.setdefault(workload_of(run), Workload(workload_of(run)))
        if role in workload.runs:
            taken = workload.runs[role].name
            unassigned.append((run, f"a second {role} run in its workload (`{taken}` is shown)"))
        else:
            workload.runs[role] = run
    return list(workloads.values()), unassigned


def build_report(data: Mapping[str, Any]) -> Report:
    """Parse and group a pytest-benchmark JSON object; ReportError when it holds no run."""
    runs = [parse_run(entry, i) for i, entry in enumerate(data["benchmarks"])]
    if not runs:
        raise ReportError("the file holds no benchmark runs (were they all skipped?)")
    workloads, unassigned = assign(runs)
    return Report(workloads, unassigned, caption(data))


# -- formatting ------------------------------------------------------------------------
def significant(value: float, digits: int = 3) -> str:
    """``value`` to ``digits`` significant figures, without exponent notation."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    value = float(f"{value:.{digits}g}")  # rounded first: 9.996 -> 10.0, not 10.00
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def time_unit(seconds: float) -> tuple[float, str]:
    """The scale and name of the largest unit (s, ms, µs, ns) not above ``seconds``."""
    rounded = float(f"{seconds:.3g}")  # 0.9996 s is 1.00 s, not 1000 ms
    return next(((s, u) for s, u in UNITS if rounded >= s), UNITS[-1])


def format_time(seconds: float) -> str:
    """A time in human units: ``0.0132`` -> ``13.2 ms``."""
    scale, unit = time_unit(seconds)
    return f"{significant(seconds / scale)} {unit}"


def format_run(run: Run) -> str:
    """``median unit (q1–q3; n=rounds)``, the range in the median's unit and decimals."""
    scale, unit = time_unit(run.median)
    median = significant(run.median / scale)
    decimals = len(median.partition(".")[2])
    low, high = (f"{v / scale:.{decimals}f}" for v in (run.q1, run.q3))
    return f"{median} {unit} ({low}–{high}; n={run.rounds})"


def format_ratio(numerator: Run | None, denominator: Run | None) -> str | None:
    """The ratio of two medians as ``2.83×``; None when a side is missing."""
    if numerator is None or denominator is None:
        return None
    return f"{significant(numerator.median / denominator.median)}×"


def missing(role: str, used: set[str]) -> str:
    """A "—" cell with the footnote for a missing ``role``, noting the footnote as used."""
    used.add(role)
    return f"—[^{FOOTNOTES[role][0]}]"


def table_row(workload: Workload, used: set[str]) -> str:
    """One Markdown row: three times and two ratios, "—" with a footnote where missing."""
    runs = workload.runs
    cells = [workload.name.replace("|", "\\|")]
    for role in ROLES:
        cells.append(format_run(runs[role]) if role in runs else missing(role, used))
    cpu = runs.get("torch-cpu")
    for role in ("reference", "torch-cuda"):
        ratio = format_ratio(runs.get(role), cpu)
        gone = role if role not in runs else "torch-cpu"
        cells.append(ratio if ratio is not None else missing(gone, used))
    return "| " + " | ".join(cells) + " |"


def render_markdown(report: Report) -> str:
    """The caption, the table, its legend, the runs that fit no role, the footnotes."""
    used: set[str] = set()
    head = [f"{r} median" for r in ROLES] + ["reference / torch-cpu", "torch-cuda / torch-cpu"]
    lines = [f"Benchmarks: {report.caption}.", ""]
    lines += ["| workload | " + " | ".join(head) + " |", "|---" + "|--:" * len(head) + "|"]
    lines += [table_row(w, used) for w in report.workloads]
    lines += [
        "",
        "Times: median of the rounds (interquartile range q1–q3; n = rounds). Ratios of "
        "medians: reference / torch-cpu above 1 means the NumPy reference is slower; "
        "torch-cuda / torch-cpu below 1 means the GPU is faster.",
    ]
    if report.unassigned:
        lines += ["", "Runs that fit no role (not in the table):", ""]
        for run, reason in report.unassigned:
            group = f'group "{run.group}"' if run.group else "no group"
            lines.append(f"- `{run.name}` ({group}): {format_run(run)}; {reason}.")
    if used:
        lines.append("")
        lines += [f"[^{FOOTNOTES[r][0]}]: {FOOTNOTES[r][1]}" for r in ROLES if r in used]
    return "\n".join(lines) + "\n"


# -- the chart -------------------------------------------------------------------------
def require_matplotlib() -> None:
    """ReportError with the install hint when matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ReportError(MATPLOTLIB_HINT) from None


def _tick_label(seconds: float, _pos: object = None) -> str:
    """A compact axis label in human units: ``0.01`` -> ``10 ms``."""
    scale, unit = time_unit(seconds)
    return f"{seconds / scale:g} {unit}"


def _draw_bar(ax: Any, x: float, run: Run, role: str, width: float) -> None:
    """One bar: the median, an error bar from q1 to q3, the median written above."""
    low, high = min(run.q1, run.median), max(run.q3, run.median)
    ax.bar(
        x,
        run.median,
        width,
        color=f"C{ROLES.index(role)}",
        yerr=[[run.median - low], [high - run.median]],
        capsize=3,
        ecolor="0.2",
    )
    ax.text(x, high * 1.08, format_time(run.median), ha="center", va="bottom", fontsize=7)


def _draw_role(ax: Any, report: Report, role: str, offset: float, width: float) -> None:
    """One role's bars across the workloads, "no run" written where it has none."""
    for x, workload in enumerate(report.workloads):
        run = workload.runs.get(role)
        if run is not None:
            _draw_bar(ax, x + offset, run, role, width)
            continue
        trans = ax.get_xaxis_transform()  # x in data, y in axes fractions
        ax.text(x + offset, 0.02, f"no {role} run", transform=trans, rotation=90,
                ha="center", va="bottom", fontsize=7, color="0.4")  # fmt: skip


def _legend(ax: Any, report: Report) -> None:
    """One entry per role; a role with no run at all is marked so, as a hollow patch."""
    from matplotlib.patches import Patch

    handles = []
    for i, role in enumerate(ROLES):
        if any(role in w.runs for w in report.workloads):
            handles.append(Patch(color=f"C{i}", label=role))
        else:
            handles.append(Patch(fill=False, edgecolor="0.5", ls="--", label=f"{role}: no run"))
    ax.legend(handles=handles, loc="upper right", fontsize=8)


def _y_limits(report: Report) -> tuple[float, float]:
    """From a whole decade below every bar to headroom above for the labels and legend."""
    runs = [run for w in report.workloads for run in w.runs.values()]
    low = min(min(r.q1, r.median) for r in runs)
    high = max(max(r.q3, r.median) for r in runs)
    return 10.0 ** math.floor(math.log10(low) - 0.3), high * 4.0


def plot_png(report: Report, path: Path) -> None:
    """A grouped bar chart: per workload one bar per role, log-scale time, IQR bars."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    if not report.workloads:
        raise ReportError("no run fits a role: nothing to plot")
    n, width = len(report.workloads), 0.26
    fig = Figure(figsize=(max(6.0, 2.4 * n), 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_yscale("log")
    for i, role in enumerate(ROLES):
        _draw_role(ax, report, role, (i - 1) * width, width)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(*_y_limits(report))
    ax.yaxis.set_major_formatter(FuncFormatter(_tick_label))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(range(n), [textwrap.fill(w.name, 26) for w in report.workloads], fontsize=8)
    ax.set_xlabel(report.caption, fontsize=6, color="0.4", labelpad=8)
    ax.set_ylabel("time per step: median (log scale)")
    ax.set_title("reference vs torch-cpu vs torch-cuda (error bars: q1–q3; lower is faster)")
    ax.grid(axis="y", which="major", alpha=0.3)
    _legend(ax, report)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc}") from None


# -- the command line ------------------------------------------------------------------
def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, creating its folder; ReportError when that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ReportError(f"{path}: cannot write: {exc}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m benchmarks.report`` arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Markdown table (and PNG chart) from pytest-benchmark --benchmark-json.",
    )
    parser.add_argument("json", type=Path, help="the --benchmark-json output")
    parser.add_argument("--markdown", type=Path, metavar="OUT.md", help="write the table here")
    parser.add_argument("--png", type=Path, metavar="OUT.png", help="write a bar chart here")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; 0 on success, 2 (one line on stderr) on bad input."""
    args = build_parser().parse_args(argv)
    try:
        if args.png is not None:
            require_matplotlib()
        report = build_report(load_json(args.json))
        markdown = render_markdown(report)
        if args.markdown is None:
            sys.stdout.write(markdown)
            sys.stdout.flush()
        else:
            write_text(args.markdown, markdown)
            print(f"wrote {args.markdown}", file=sys.stderr)
        if args.png is not None:
            plot_png(report, args.png)
            print(f"wrote {args.png}", file=sys.stderr)
    except ReportError as exc:
        print(f"benchmarks.report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
