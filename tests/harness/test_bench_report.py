"""benchmarks.report on a recorded pytest-benchmark JSON (tests/harness/data/benchmark_sample.json).

The fixture is a real ``--benchmark-json`` output of ``pytest benchmarks --benchmark-only``
on a CPU-only machine (so no torch-cuda runs), trimmed: no raw timings, fewer machine keys.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.report import MATPLOTLIB_HINT, build_report, format_time, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = Path(__file__).parent / "data" / "benchmark_sample.json"
UNITS = {"s": 1.0, "ms": 1e-3, "µs": 1e-6, "ns": 1e-9}
COLUMNS = ["workload", "reference", "torch-cpu", "torch-cuda", "ref/cpu", "cuda/cpu"]


def _sample() -> dict:
    return json.loads(SAMPLE.read_text(encoding="utf-8"))


def _medians(data: dict) -> dict[str, dict[str, float]]:
    """group -> {"reference" | "cpu" | "cuda": median}, read straight from the JSON."""
    out: dict[str, dict[str, float]] = {}
    for b in data["benchmarks"]:
        name, median = b["name"], b["stats"]["median"]
        side = {"_reference": "reference", "_torch[cpu]": "cpu", "_torch[cuda]": "cuda"}
        for suffix, key in side.items():
            if name.endswith(suffix):
                out.setdefault(b["group"], {})[key] = median
    return out


def _rows(markdown: str) -> dict[str, dict[str, str]]:
    """The table's body rows, by workload, as {column: cell}."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert lines[0].startswith("| workload | reference median | torch-cpu median")
    rows = {}
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        assert len(cells) == len(COLUMNS), line
        rows[cells[0]] = dict(zip(COLUMNS, cells))
    return rows


def _seconds(cell: str) -> float:
    """``13.3 ms (13.0–13.5; n=66)`` -> 0.0133."""
    value, unit = cell.split(" ")[:2]
    return float(value) * UNITS[unit]


def _ratio(cell: str) -> float:
    assert cell.endswith("×"), cell
    return float(cell[:-1])


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_one_row_per_workload_with_the_medians_and_ratios(capsys):
    expected = {g: m for g, m in _medians(_sample()).items() if "reference" in m and "cpu" in m}
    assert len(expected) == 3  # conv2d, lenet-step, mlp-step
    rc, out, err = _run([str(SAMPLE)], capsys)
    assert rc == 0 and err == ""
    rows = _rows(out)
    assert set(rows) == set(expected)
    for group, m in expected.items():
        row = rows[group]
        assert _seconds(row["reference"]) == pytest.approx(m["reference"], rel=5e-3)
        assert _seconds(row["torch-cpu"]) == pytest.approx(m["cpu"], rel=5e-3)
        assert _ratio(row["ref/cpu"]) == pytest.approx(m["reference"] / m["cpu"], rel=5e-3)
        assert "n=" in row["reference"] and "–" in row["reference"]  # the spread and rounds


def test_a_missing_cuda_side_is_a_dash_with_a_footnote(capsys):
    _, out, _ = _run([str(SAMPLE)], capsys)
    for row in _rows(out).values():
        assert row["torch-cuda"] == "—[^no-cuda]"
        assert row["cuda/cpu"] == "—[^no-cuda]"
    assert out.count("[^no-cuda]:") == 1
    assert "no GPU" in out.split("[^no-cuda]:")[1]


def test_a_run_fitting_no_role_is_listed_not_dropped(capsys):
    _, out, _ = _run([str(SAMPLE)], capsys)
    listed = out.split("Runs that fit no role")[1]
    assert "`test_check_cases_per_second`" in listed
    assert "test_check_cases_per_second" not in out.split("Runs that fit no role")[0]


def test_cuda_ratio_and_a_duplicate_role(tmp_path, capsys):
    data = _sample()
    extra = []
    for b in data["benchmarks"]:
        if b["name"].endswith("_torch[cpu]"):
            cuda = copy.deepcopy(b)
            cuda["name"], cuda["params"] = b["name"].replace("[cpu]", "[cuda]"), {"device": "cuda"}
            for key in ("median", "q1", "q3", "min", "max"):
                cuda["stats"][key] = b["stats"][key] / 37.0
            extra.append(cuda)
    data["benchmarks"] += extra + [copy.deepcopy(extra[0])]  # the last: a second cuda run
    path = tmp_path / "cuda.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    _, out, _ = _run([str(path)], capsys)
    rows, medians = _rows(out), _medians(data)
    assert len(rows) == 3
    for group, row in rows.items():
        m = medians[group]
        assert _ratio(row["cuda/cpu"]) == pytest.approx(m["cuda"] / m["cpu"], rel=5e-3)
    assert "[^no-cuda]" not in out
    assert "a second torch-cuda run" in out.split("Runs that fit no role")[1]


def test_roles_without_group_or_params():
    entries = [
        {"name": n, "group": None, "params": None, "stats": {"median": t, "rounds": 3}}
        for n, t in [
            ("test_x_reference", 2.0),
            ("test_x_torch[cpu-float32]", 1.0),
            ("test_x_torch[cuda:1-float32]", 0.5),
            ("test_x_torch[mps]", 0.1),
        ]
    ]
    report = build_report({"benchmarks": entries})
    [workload] = report.workloads
    assert workload.name == "test_x"
    assert {r: run.name for r, run in workload.runs.items()} == {
        "reference": "test_x_reference",
        "torch-cpu": "test_x_torch[cpu-float32]",
        "torch-cuda": "test_x_torch[cuda:1-float32]",
    }
    assert [run.name for run, _ in report.unassigned] == ["test_x_torch[mps]"]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(2.5, "2.50 s"), (0.0132, "13.2 ms"), (1.5e-4, "150 µs"), (3e-8, "30.0 ns")],
)
def test_human_units(seconds, text):
    assert format_time(seconds) == text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("{not json", "not JSON"),
        ('{"tests": []}', "not a pytest-benchmark JSON"),
        ("[1, 2]", "not a pytest-benchmark JSON"),
        ('{"benchmarks": [{"name": "test_x_reference", "stats": {}}]}', "no positive median"),
        ('{"benchmarks": [{"stats": {"median": 1.0}}]}', "has no name"),
        ('{"benchmarks": []}', "no benchmark runs"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = tmp_path / "bench.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    rc, out, err = _run([str(path)], capsys)
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and message in err


def test_module_entry_point_error_has_no_traceback(tmp_path):
    missing = tmp_path / "missing.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", str(missing)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr


def test_png_without_matplotlib_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes ``import matplotlib`` fail
    md = tmp_path / "report.md"
    rc, out, err = _run(
        [str(SAMPLE), "--markdown", str(md), "--png", str(tmp_path / "r.png")], capsys
    )
    assert rc == 2 and out == ""
    assert err == f"benchmarks.report: {MATPLOTLIB_HINT}\n"
    assert not md.exists()


def test_markdown_and_png_are_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    md, png = tmp_path / "out" / "report.md", tmp_path / "out" / "report.png"
    rc, out, _ = _run([str(SAMPLE), "--markdown", str(md), "--png", str(png)], capsys)
    assert rc == 0 and out == ""
    _, table, _ = _run([str(SAMPLE)], capsys)
    assert md.read_text(encoding="utf-8") == table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
