"""Reports as text, saved repros, and replaying a saved case.

``save_repro(report, dir)`` writes ``<dir>/<name>/``:

- ``spec.json``: the case (a spec alone reproduces it: weights and data come from its seed);
- ``arrays.npz``: the float64 weights, input, target and upstream gradient and, for every
  mismatch ``n`` (described in ``meta``), the float64 truth (``truth:<n>``), the allowance
  (``allowance:<n>``) and the reference's value in the dtype (``reference:<n>``);
- ``repro.py``: a standalone script, NumPy and torch only, that rebuilds the network in
  torch from the spec, loads the arrays, reruns, and judges torch (and the saved
  reference) against the truth under the allowance, with ``check``'s labels and numbers;
  for a crash (a report with errors and no mismatch) it reruns torch on each device and
  dtype that crashed and lets the exception propagate (``meta['errors']``);
- ``report.txt``: the report as text.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .backends.protocol import backend_named
from .checking import check, default_devices
from .repro_template import REPRO_SCRIPT
from .spec import NetworkSpec, SpecFileError
from .spec_files import load_spec_file
from .verdict import Report

__all__ = ["format_report", "save_repro", "replay", "load_spec"]


def format_report(report: Report) -> str:
    """The report as readable text: verdict, the architecture, each localized mismatch."""
    from .spec import describe

    lines = [report.summary(), "", describe(report.spec)]
    return "\n".join(lines)


def _name(report: Report) -> str:
    if report.mismatches:
        m = report.mismatches[0]
        where = f"layer{m.layer}-{m.layer_type}" if m.layer is not None else m.layer_type
        label = f"{m.kind}-{where}"
    else:
        label = "error" if report.errors else "ok"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", f"seed{report.spec.seed}-{label}")


def save_repro(report: Report, directory: str | Path) -> Path:
    """Write the case's spec, arrays, repro script and text report; return the case folder."""
    root = Path(directory) / _name(report)
    root.mkdir(parents=True, exist_ok=True)
    spec = report.spec
    (root / "spec.json").write_text(spec.to_json())
    data = report.data
    arrays: dict[str, np.ndarray] = {}
    if data is not None:
        arrays.update({f"weight:{k}": v for k, v in data.weights.items()})
        arrays.update(input=data.input, target=data.target, upstream=data.upstream)
    expected = []
    for n, m in enumerate(report.mismatches):
        if "truth" not in m.arrays:
            continue
        arrays.update({f"{name}:{n}": value for name, value in m.arrays.items()})
        expected.append(
            {
                "n": n,
                "kind": str(m.kind),
                "layer": m.layer,
                "layer_type": m.layer_type,
                "tensor": m.tensor,
                "step": m.step,
                "device": m.device,
                "dtype": m.dtype,
                "blame": str(m.blame),
                "backend": m.backend,
                "note": m.note,
                "torch_ratio": m.evidence.torch_ratio,
                "reference_ratio": m.evidence.reference_ratio,
            }
        )
    meta = {
        "expected": expected,
        "errors": _crashes(report),
        "devices": list(report.devices),
        "dtypes": list(report.dtypes),
        "backends": list(report.backends),
    }
    arrays["meta"] = np.array(json.dumps(meta))
    # allow_pickle=True is savez's default, spelled out so no key of **arrays can claim it
    np.savez(root / "arrays.npz", allow_pickle=True, **arrays)
    (root / "repro.py").write_text(REPRO_SCRIPT)
    (root / "report.txt").write_text(format_report(report) + "\n")
    return root


# check() records a crash as "[<device> <dtype>] <Error>: <message>", the device as
# "<backend>-<device>" for a backend other than torch (whose crashes repro.py skips)
_CRASH = re.compile(r"\[(\S+) (\S+)\] (.*)", re.DOTALL)


def _crashes(report: Report) -> list[dict[str, str]]:
    """Each crash of ``report`` with the device and dtype it happened on; one that does
    not say where is listed for every device and dtype of the report."""
    out: list[dict[str, str]] = []
    for text in report.errors:
        match = _CRASH.fullmatch(text)
        where = (
            [match.groups()[:2]]
            if match
            else [(d, t) for d in report.devices for t in report.dtypes]
        )
        error = match.group(3) if match else text
        out += [{"device": d, "dtype": t, "error": error} for d, t in where]
    return out


def load_spec(path: str | Path) -> NetworkSpec:
    """The spec from a case folder, or from a spec.json file, checked: a file that cannot
    be read or built raises :class:`~harness.spec.SpecFileError` (one line: path, problem)."""
    return load_spec_file(path)


def _saved_meta(folder: Path) -> dict[str, Any]:
    """The case's meta from arrays.npz (devices, dtypes, expected values); ``{}`` without it."""
    file = folder / "arrays.npz"
    if not file.exists():
        return {}
    try:
        with np.load(file) as arrays:
            meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise SpecFileError(
            file, f"not a saved case's arrays: {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(meta, dict):
        raise SpecFileError(file, f"its meta is not a JSON object: {str(meta)[:60]}")
    return meta


def replay(path: str | Path, devices: Any = None, dtypes: Any = None) -> Report:
    """Re-run a saved case from its spec.json, on the devices and dtypes it was saved with
    (those present here). A bad case raises :class:`~harness.spec.SpecFileError`."""
    path = Path(path)
    spec = load_spec_file(path)
    meta = _saved_meta(path if path.is_dir() else path.parent)
    present = default_devices()
    devices = (
        devices
        or [d for d in meta.get("devices", present) if d.split(":")[0] in present]
        or list(present)
    )
    dtypes = dtypes or meta.get("dtypes") or ("float32", "float64")
    names = meta.get("backends") or ["torch"]
    try:
        backends = [backend_named(name) for name in names]
    except (ImportError, ValueError) as exc:
        raise SpecFileError(path, f"saved with backends {', '.join(names)}: {exc}") from exc
    return check(spec, devices=devices, dtypes=dtypes, backends=backends)
