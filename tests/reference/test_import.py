"""The reference runs on NumPy alone: importing it must not need (or import) torch."""

from __future__ import annotations

import pathlib
import subprocess
import sys

BLOCK_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
sys.meta_path.insert(0, Block())
import reference, reference.nn, reference.functional, reference.optim
import numpy as np
m = reference.nn.Sequential(reference.nn.Linear(3, 2), reference.nn.ReLU())
m.backward(np.ones_like(m(np.ones((1, 3), np.float32))))
assert "torch" not in sys.modules
print("ok")
"""


def test_reference_imports_and_runs_without_torch():
    out = subprocess.run(
        [sys.executable, "-c", BLOCK_TORCH], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_no_reference_source_mentions_a_torch_import():
    root = pathlib.Path(__file__).resolve().parents[2] / "reference"
    offenders = [
        str(path)
        for path in root.rglob("*.py")
        for line in path.read_text().splitlines()
        if line.strip().startswith(("import torch", "from torch"))
    ]
    assert offenders == []
