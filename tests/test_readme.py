"""The README is true: its file map names every file of reference/, every class it names
in the map is there, and it links only inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import reference.autograd as autograd
import reference.nn as rnn
import reference.optim as ropt
import reference.optim.lr_scheduler as schedulers

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_the_file_map_names_every_file():
    for folder in ("functional", "nn", "optim", "autograd"):
        for path in sorted((ROOT / "reference" / folder).glob("*.py")):
            if path.name != "__init__.py":
                assert f"`{path.name}`" in README, f"reference/{folder}/{path.name}"


def test_the_classes_in_the_map_exist():
    rows = [line for line in README.splitlines() if line.startswith("| `")]
    named = {n for row in rows for n in re.findall(r"`([A-Z][A-Za-z0-9]+)`", row)}
    homes = (rnn, ropt, schedulers, autograd)
    missing = {n for n in named if all(getattr(h, n, None) is None for h in homes)}
    assert named and not missing


def test_links_stay_inside_the_repository():
    for target in re.findall(r"\]\(([^)]+)\)", README):
        assert not target.startswith(("..", "/")) and "://" not in target, target
        assert (ROOT / target.split("#")[0]).exists(), target
    assert "../" not in README
