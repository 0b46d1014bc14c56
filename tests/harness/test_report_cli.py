"""save_repro + replay, the standalone repro script, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import reference.nn as rnn
from harness.checking import check
from harness.cli import main
from harness.report import format_report, load_spec, replay, save_repro
from harness.spec import LayerSpec, NetworkSpec

SPEC = NetworkSpec(
    input_shape=(3, 4),
    layers=[
        LayerSpec("Linear", {"in_features": 4, "out_features": 5}),
        LayerSpec("Tanh"),
        LayerSpec("Linear", {"in_features": 5, "out_features": 2}),
    ],
    loss=LayerSpec("MSELoss", {"reduction": "none"}),
    target={"kind": "regression"},
    seed=3,
)


def _plant_tanh(monkeypatch):
    original = rnn.Tanh.forward
    monkeypatch.setattr(rnn.Tanh, "forward", lambda self, x: original(self, x) * (1 + 1e-3))


def test_save_repro_replay_and_standalone_script(monkeypatch, tmp_path):
    _plant_tanh(monkeypatch)
    report = check(SPEC, dtypes=("float64",))
    assert not report.ok
    folder = save_repro(report, tmp_path)
    assert {p.name for p in folder.iterdir()} >= {
        "spec.json",
        "arrays.npz",
        "repro.py",
        "report.txt",
    }
    assert load_spec(folder) == SPEC
    with np.load(folder / "arrays.npz") as arrays:
        meta = json.loads(str(arrays["meta"]))
        assert meta["expected"][0]["kind"] == "forward"
        assert arrays["truth:0"].shape == arrays["allowance:0"].shape == (3, 5)
        assert "weight:0.weight" in arrays.files and "upstream" in arrays.files
    again = replay(folder)  # the fault is still planted: the case still fails, same place
    assert [(m.kind, m.layer) for m in again.mismatches] == [("forward", 1)]
    assert "Tanh" in format_report(again)

    # the script imports neither harness nor reference: run it from the case folder alone
    script = (folder / "repro.py").read_text()
    assert "harness" not in script.split('"""', 2)[2] and "import reference" not in script
    done = subprocess.run(
        [sys.executable, "repro.py"], cwd=folder, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DISCREPANCY" in done.stdout and "layer 1 (Tanh)" in done.stdout
    # the repro states the harness's verdict and its numbers with report.txt's labels
    assert "blame reference" in done.stdout, done.stdout
    text = (folder / "report.txt").read_text()
    for label in ("torch", "float64 truth", "allowance"):
        assert label in text and label in done.stdout
    ratio = f"{report.mismatches[0].evidence.torch_ratio:.3g} allowances"
    assert ratio in text and ratio in done.stdout, (text, done.stdout)


def test_replay_of_a_clean_case_passes(tmp_path):
    report = check(SPEC)
    assert report.ok
    folder = save_repro(report, tmp_path)
    assert replay(folder / "spec.json").ok


def test_cli_fuzz_passes_and_prints_summary(tmp_path, capsys):
    code = main(
        [
            "fuzz",
            "--cases",
            "5",
            "--out",
            str(tmp_path / "f"),
            "--no-progress",
            "--families",
            "dense",
            "--seed",
            "1",
            # float64: this tests the CLI, not a torch release's float32 rounding (torch
            # 2.14.1's CPU float32 is 1.5 tolerances off float64 on seed 1; 2.13's is not)
            "--dtype",
            "float64",
        ]
    )
    out = capsys.readouterr().out
    assert "5 cases" in out and "passed" in out
    assert code == 0, out
    (run,) = (tmp_path / "f").iterdir()  # one folder per run, named by date and seed
    assert run.name.endswith("-seed1")
    assert [p.name for p in run.iterdir()] == ["summary.json"]  # no failing case in it


def test_cli_fuzz_with_planted_fault_exits_1_and_saves(monkeypatch, tmp_path, capsys):
    import reference.functional as F

    original = F.linear_backward

    def bad(*args, **kwargs):
        gi, gw, gb = original(*args, **kwargs)
        return gi, gw * (1 + 1e-3), gb

    monkeypatch.setattr(F, "linear_backward", bad)
    monkeypatch.setattr(rnn.linear.F, "linear_backward", bad, raising=False)
    code = main(
        [
            "fuzz",
            "--cases",
            "3",
            "--out",
            str(tmp_path / "f"),
            "--no-progress",
            "--dtype",
            "float64",
            "--families",
            "dense",
            "--shrink-time",
            "0",
            "--jobs",  # the fault is planted in this process (workers are spawned afresh)
            "1",
            "--seed",  # two of its three cases have a Linear (a fresh seed may draw none)
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert "findings by layer class, kind and blame" in out and "Linear" in out
    assert "blame reference" in out, out  # a fault planted in the reference is its own
    (run,) = (tmp_path / "f").iterdir()
    saved = [p for p in run.iterdir() if p.is_dir()]
    assert saved and all((p / "repro.py").exists() for p in saved)
    assert (run / "summary.json").exists()


def test_cli_show_and_replay(tmp_path, capsys):
    folder = save_repro(check(SPEC, dtypes=("float64",)), tmp_path)
    assert main(["show", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Tanh" in out and "(3, 5)" in out
    assert main(["replay", str(folder)]) == 0
    assert "OK" in capsys.readouterr().out


def test_python_dash_m_harness_runs(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "show",
            str(save_repro(check(SPEC, dtypes=("float64",)), tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0 and "Linear" in done.stdout, done.stderr
