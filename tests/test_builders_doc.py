"""docs/builders.md, run as a builder would: every block written into a fresh folder
outside the repository, the scripts run and the test files run by pytest there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "builders.md"
BLOCK = re.compile(r"<!-- file: (\S+) -->\n```python\n(.*?)```", re.DOTALL)


def _outside(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    files = BLOCK.findall(DOC.read_text())
    assert {name for name, _ in files} >= {"test_torch_build.py", "my_backend.py"}
    for name, code in files:
        (tmp_path / name).write_text(code)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYPOTHESIS_PROFILE")}
    return tmp_path, env


def test_the_builders_scripts_run(tmp_path):
    folder, env = _outside(tmp_path)
    done = subprocess.run(
        [sys.executable, "check_my_backend.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "mine agrees with the reference on 5 random networks" in done.stdout


def test_the_builders_tests_pass_under_the_plugin(tmp_path):
    folder, env = _outside(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--device", "cpu",
         "test_torch_build.py", "test_one_layer.py"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed" in done.stdout  # two dtypes of the torch build, two twins
