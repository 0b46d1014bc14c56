"""What a fuzz campaign found: counted, printed, and written for machines.

:class:`Summary` adds up :class:`harness.campaign.CaseResult` s. It prints the coverage
table (cases per layer class, loss and optimizer) and the findings table on every run,
writes ``summary.json`` into the run's folder and, on request, a JUnit XML file (one
test case per generated case). :func:`merge` adds the summaries of a sharded campaign's
slices into the one an unsharded run would have written.
"""

from __future__ import annotations

import collections
import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from .campaign import CaseResult

__all__ = ["Summary", "merge"]

TABLE_ROWS = 12


@dataclass
class Summary:
    """The counts of a run (or of a slice of one)."""

    seed: int
    devices: list[str]
    dtypes: list[str]
    strict_known: bool = False
    shard: str | None = None
    cases: list[dict[str, Any]] = field(default_factory=list)  # one per case, by index
    elapsed_s: float = 0.0
    interrupted: bool = False
    backends: list[str] = field(default_factory=lambda: ["torch"])

    def add(self, result: CaseResult) -> None:
        self.cases.append(
            {
                "index": result.index,
                "spec_seed": result.spec_seed,
                "ok": result.ok,
                "layers": result.layers,
                "loss": result.loss,
                "optimizer": result.optimizer,
                "warnings": [list(w) for w in result.warnings],
                "known": [list(k) for k in result.known],
                "findings": [list(f) for f in result.findings],
                "message": result.message,
                "saved": result.saved,
                "minimal": result.minimal,
                "minimal_layers": result.minimal_layers,
                "shrink_s": round(result.shrink_s, 3),
                "skipped": result.skipped,
            }
        )

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if not c["ok"]]

    def counter(self, key: str) -> collections.Counter:
        """Per (layer class, kind, where): how many of the cases' ``key`` entries."""
        return collections.Counter(tuple(entry) for c in self.cases for entry in c[key])

    def coverage(self) -> dict[str, collections.Counter]:
        """Cases per layer class (a case counts once per class), loss and optimizer."""
        return {
            "layer": collections.Counter(t for c in self.cases for t in sorted(set(c["layers"]))),
            "loss": collections.Counter(c["loss"] for c in self.cases),
            "optimizer": collections.Counter(c["optimizer"] for c in self.cases),
        }

    def to_dict(self) -> dict[str, Any]:
        cases = sorted(self.cases, key=lambda c: c["index"])
        counts = {k: _rows(self.counter(k)) for k in ("warnings", "known", "findings")}
        return {
            "seed": self.seed,
            "shard": self.shard,
            "backends": self.backends,
            "devices": self.devices,
            "dtypes": self.dtypes,
            "strict_known": self.strict_known,
            "versions": _versions(),
            "elapsed_s": round(self.elapsed_s, 3),
            "interrupted": self.interrupted,
            "counts": {
                "cases": len(cases),
                "passed": len(cases) - len(self.failed),
                "failed": len(self.failed),
                "warning_cases": sum(1 for c in cases if c["warnings"]),
                "known_cases": sum(1 for c in cases if c["known"]),
                "skipped_cases": sum(1 for c in cases if c.get("skipped")),
            },
            "by_layer_class_and_kind": counts,
            "coverage": {k: dict(v.most_common()) for k, v in self.coverage().items()},
            "cases": cases,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        summary = cls(data["seed"], data["devices"], data["dtypes"], data["strict_known"])
        summary.shard, summary.cases = data.get("shard"), list(data["cases"])
        summary.elapsed_s = data.get("elapsed_s", 0.0)
        summary.interrupted = data.get("interrupted", False)
        summary.backends = list(data.get("backends", ["torch"]))
        return summary

    def write(self, folder: str | Path) -> Path:
        path = Path(folder) / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return path

    def write_junit(self, path: str | Path) -> None:
        """One ``testcase`` per generated case; a failing one carries its first finding."""
        cases = sorted(self.cases, key=lambda c: c["index"])
        suite = ET.Element("testsuite", name="backprop-oracle fuzz", tests=str(len(cases)))
        suite.set("failures", str(len(self.failed)))
        suite.set("time", f"{self.elapsed_s:.3f}")
        for c in cases:
            name = f"case {c['index']} (spec seed {c['spec_seed']}): {' -> '.join(c['layers'])}"
            element = ET.SubElement(suite, "testcase", classname="harness.fuzz", name=name)
            if not c["ok"]:
                failure = ET.SubElement(element, "failure", message=c["message"][:500])
                failure.text = f"saved: {c['minimal'] or c['saved']}"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        ET.ElementTree(suite).write(path, encoding="unicode", xml_declaration=True)

    def _backends(self) -> str:
        return "" if self.backends == ["torch"] else f"backends: {', '.join(self.backends)}; "

    def print(self) -> None:
        data = self.to_dict()
        n = data["counts"]
        where = f"seed {self.seed}" + (f", shard {self.shard}" if self.shard else "")
        devices = ", ".join(self.devices)
        print(
            f"\n{n['cases']} cases, {n['passed']} passed, {n['failed']} failed ({where}; "
            f"{self._backends()}devices: {devices}; dtypes: {', '.join(self.dtypes)}; "
            f"{self.elapsed_s:.0f} s)" + (" - interrupted" if self.interrupted else "")
        )
        if n["skipped_cases"]:
            print(f"{n['skipped_cases']} cases skipped: no backend could run them")
        self._print_coverage()
        known_title = (
            "known torch deviations, counted as failures (--strict-known)"
            if self.strict_known
            else "known torch deviations, not counted (harness/known.py)"
        )
        for title, key in (
            ("precision warnings, not counted (both sides within the allowance)", "warnings"),
            (known_title, "known"),
            ("findings by layer class, kind and blame", "findings"),
        ):
            _table(title, self.counter(key))
        self._print_failed()

    def _print_coverage(self) -> None:
        coverage = self.coverage()
        print("\ncoverage (cases per layer class, loss and optimizer):")
        for what, counts in coverage.items():
            shown = ", ".join(f"{k} {v}" for k, v in counts.most_common(TABLE_ROWS))
            more = len(counts) - TABLE_ROWS
            print(f"  {what:10s}{shown}" + (f", and {more} more" if more > 0 else ""))

    def _print_failed(self) -> None:
        failed = sorted(self.failed, key=lambda c: c["index"])
        if not failed:
            return
        print("\nfailing cases (the minimal case first; replay with `python -m harness replay`):")
        for c in failed[:10]:
            if c["minimal"]:
                print(f"  {c['minimal']}  ({c['minimal_layers']} layers, shrunk from {c['saved']})")
            else:
                print(f"  {c['saved']}")
        if len(failed) > 10:
            print(f"  and {len(failed) - 10} more (summary.json lists them all)")


def _rows(counts: collections.Counter) -> list[dict[str, Any]]:
    return [
        {"layer_class": t, "kind": k, "where": w, "count": n}
        for (t, k, w), n in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def _table(title: str, counts: collections.Counter) -> None:
    print(f"\n{title}:")
    if not counts:
        print("  none")
        return
    rows = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    width = max(len("layer class"), *(len(t) for (t, _, _), _ in rows)) + 2
    print(f"  {'layer class'.ljust(width)}{'kind'.ljust(12)}{'where'.ljust(26)}count")
    for (layer_type, kind, where), count in rows[:TABLE_ROWS]:
        print(f"  {layer_type.ljust(width)}{kind.ljust(12)}{where.ljust(26)}{count}")
    if len(rows) > TABLE_ROWS:
        print(f"  and {len(rows) - TABLE_ROWS} more (summary.json lists them all)")


def _versions() -> dict[str, str]:
    import torch

    return {
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def merge(folders: list[str | Path]) -> Summary:
    """The summary of a campaign from its slices' ``summary.json`` (``--shard k/N``)."""
    parts = []
    for folder in folders:
        path = Path(folder)
        path = path / "summary.json" if path.is_dir() else path
        parts.append(Summary.from_dict(json.loads(path.read_text())))
    if not parts:
        raise ValueError("merge: no summaries given")
    first = parts[0]
    for part in parts[1:]:
        if (part.seed, part.devices, part.dtypes, part.backends) != (
            first.seed,
            first.devices,
            first.dtypes,
            first.backends,
        ):
            raise ValueError(
                "merge: the slices come from different campaigns (seed, backends, devices or "
                "dtypes "
                f"differ: {first.seed} vs {part.seed})"
            )
    merged = Summary(first.seed, first.devices, first.dtypes, first.strict_known)
    merged.backends = first.backends
    merged.cases = sorted((c for p in parts for c in p.cases), key=lambda c: c["index"])
    merged.elapsed_s = max(p.elapsed_s for p in parts)
    merged.interrupted = any(p.interrupted for p in parts)
    return merged
