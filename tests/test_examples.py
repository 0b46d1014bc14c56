"""Every script in ``examples/`` runs and prints the numbers its worked example promises.

Each script is run as a learner runs it (``python examples/<name>.py`` from the repository
root, in a fresh interpreter), and the ``label: value`` lines it prints are checked:
the numbers of the seeds' worked examples, exact to the four decimals printed there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 60  # each takes well under 5 s; the margin is for a loaded machine

# script -> the printed values it must show (label -> text), and whether it draws with torch
EXPECTED: dict[str, tuple[dict[str, str], bool]] = {
    "one_sgd_step.py": (
        {
            "output before the step": "0.8506",
            "0.weight after the step": "1.5814",
            "0.bias after the step": "-0.1383",
            "2.weight after the step": "2.4529",
            "2.bias after the step": "-0.1062",
            "output after the step": "0.8515",
        },
        False,
    ),
    "single_neuron.py": ({"output sigmoid(z)": "0.1595"}, True),
    "two_layer_network.py": ({"hidden": "[0.6813, 0.4355]", "output": "0.3171"}, True),
    "five_step_loop.py": ({}, False),  # its losses are checked below
    "autograd_basics.py": (
        {
            "y.grad_fn": "AddBackward0",
            "out": "27.0000",
            "out.grad_fn": "MeanBackward0",
            "x.grad": "[[4.5, 4.5], [4.5, 4.5]]",
            "x.grad after a second backward": "[[9.0, 9.0], [9.0, 9.0]]",
        },
        False,
    ),
    "derivatives.py": (
        {
            "dy/dx at x = 3": "18.0000",
            "df/du": "43.0000",
            "df/dv": "20.0000",
            "autograd.grad": "(43.0000, 20.0000)",
        },
        False,
    ),  # fmt: skip
}


def run_example(name: str) -> dict[str, str]:
    """Run ``examples/<name>`` from the repository root; its ``label: value`` lines."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, f"{name} exited {result.returncode}:\n{result.stderr}"
    lines = [line.rpartition(": ") for line in result.stdout.splitlines() if ": " in line]
    return {label.strip(): value.strip() for label, _, value in lines}


def test_every_script_is_tested_and_listed_in_the_readme():
    scripts = {path.name for path in EXAMPLES.glob("*.py")}
    assert scripts == set(EXPECTED)
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in scripts), readme


@pytest.mark.parametrize("name", [n for n in EXPECTED if EXPECTED[n][0]])
def test_the_script_prints_the_worked_example_numbers(name):
    expected, draws_with_torch = EXPECTED[name]
    if draws_with_torch:
        pytest.importorskip("torch")
    printed = run_example(name)
    assert {label: printed.get(label) for label in expected} == expected


def test_the_five_step_loop_lowers_the_loss_and_learns_the_classes():
    printed = run_example("five_step_loop.py")
    losses = [float(v) for label, v in printed.items() if label.startswith("epoch")]
    assert len(losses) >= 5, printed
    assert all(b < a for a, b in zip(losses, losses[1:])), losses  # down at every print
    assert losses[-1] < 0.1 * losses[0], losses
    assert float(printed["training accuracy"]) >= 0.95, printed
