"""Reports as text, saved repros, and replaying a saved case.

``save_repro(report, dir)`` writes ``<dir>/<name>/``:

- ``spec.json``: the case (a spec alone reproduces it: weights and data come from its seed);
- ``arrays.npz``: the float64 weights, input, target and upstream gradient and, for every
  mismatch ``n`` (described in ``meta``), the float64 truth (``truth:<n>``), the allowance
  (``allowance:<n>``) and the reference's value in the dtype (``reference:<n>``);
- ``repro.py``: a standalone script, NumPy and torch only, that rebuilds the network in
  torch from the spec, loads the arrays, reruns, and judges torch (and the saved
  reference) against the truth under the allowance, with ``check``'s labels and numbers;
- ``report.txt``: the report as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .check import check, default_devices
from .spec import NetworkSpec
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
                "note": m.note,
                "torch_ratio": m.evidence.torch_ratio,
                "reference_ratio": m.evidence.reference_ratio,
            }
        )
    arrays["meta"] = np.array(
        json.dumps(
            {"expected": expected, "devices": list(report.devices), "dtypes": list(report.dtypes)}
        )
    )
    # allow_pickle=True is savez's default, spelled out so no key of **arrays can claim it
    np.savez(root / "arrays.npz", allow_pickle=True, **arrays)
    (root / "repro.py").write_text(REPRO_SCRIPT)
    (root / "report.txt").write_text(format_report(report) + "\n")
    return root


def load_spec(path: str | Path) -> NetworkSpec:
    """The spec from a case folder, or from a spec.json file."""
    path = Path(path)
    if path.is_dir():
        path = path / "spec.json"
    return NetworkSpec.from_json(path.read_text())


def replay(path: str | Path, devices: Any = None, dtypes: Any = None) -> Report:
    """Re-run a saved case from its spec.json, on the devices and dtypes it was saved with
    (those present here)."""
    path = Path(path)
    spec = load_spec(path)
    folder = path if path.is_dir() else path.parent
    meta: dict[str, Any] = {}
    if (folder / "arrays.npz").exists():
        with np.load(folder / "arrays.npz") as arrays:
            meta = json.loads(str(arrays["meta"]))
    present = default_devices()
    devices = (
        devices
        or [d for d in meta.get("devices", present) if d.split(":")[0] in present]
        or list(present)
    )
    dtypes = dtypes or meta.get("dtypes") or ("float32", "float64")
    return check(spec, devices=devices, dtypes=dtypes)


REPRO_SCRIPT = r'''"""Standalone repro of a backprop-oracle mismatch: needs only numpy and torch.

Rebuilds the network in torch from spec.json (torch.nn class names and keyword
arguments), loads the weights, input, target and upstream gradient from
arrays.npz, runs forward, backward and the optimizer steps, and prints how far
torch is from the reference's saved values. Run: python repro.py
"""

import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
DROPOUT = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")


def untag(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(untag(v) for v in value["__tuple__"])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


def make(type_, kwargs, dtype, device):
    kwargs = dict(kwargs)
    for key in ("weight", "pos_weight"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = torch.tensor(kwargs[key], dtype=dtype, device=device)
    return getattr(torch.nn, type_)(**kwargs)


def cast(array, dtype_name, device):
    """A float64 array in ``dtype_name`` as the check handed it to torch (integers stay):
    rounded once by NumPy; bfloat16 through float32, which holds every bfloat16 value."""
    if array.dtype.kind != "f":
        return torch.from_numpy(array).to(device)
    if dtype_name == "bfloat16":
        return torch.from_numpy(array.astype(np.float32)).to(device=device, dtype=torch.bfloat16)
    return torch.from_numpy(array.astype(dtype_name)).to(device)


def dropout_seed(seed, layer, call):
    return int((seed * 1_000_003 + layer * 7919 + call * 104_729) % (2**31 - 1))


def run(spec, arrays, device, dtype_name):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = getattr(torch, dtype_name)
    layers = [make(l["type"], l["kwargs"], dtype, device) for l in spec["layers"]]
    model = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
    weights = {k[len("weight:"):]: cast(arrays[k], dtype_name, device)
               for k in arrays.files if k.startswith("weight:")}
    with torch.no_grad():
        model.load_state_dict(weights)
    model.train(spec["train"])
    loss_fn = make(spec["loss"]["type"], spec["loss"]["kwargs"], dtype, device)
    x = cast(arrays["input"], dtype_name, device)
    if spec["input_kind"] != "index":
        x.requires_grad_(True)
    target = cast(arrays["target"], dtype_name, device)
    upstream = cast(arrays["upstream"], dtype_name, device)
    out = {}

    def forward_backward(call):
        h, outputs = x, []
        for i, module in enumerate(model):
            if spec["train"] and spec["layers"][i]["type"] in DROPOUT:
                torch.manual_seed(dropout_seed(spec["seed"], i, call))
            h = module(h)
            if h.requires_grad:
                h.retain_grad()
            outputs.append(h)
        loss = loss_fn(h, target)
        loss.backward(upstream)
        return outputs, loss

    outputs, loss = forward_backward(0)
    np_ = lambda v: v.detach().cpu().double().numpy()  # noqa: E731
    for i, o in enumerate(outputs):
        out[("forward", i)] = np_(o)
        grad = o.grad if o.grad is not None else torch.zeros_like(o)
        if i + 1 < len(outputs):
            out[("grad_input", i + 1)] = np_(grad)
    out[("loss", None)] = np_(loss)
    out[("grad_output", None)] = np_(outputs[-1].grad)
    if x.grad is not None:
        out[("grad_input", 0)] = np_(x.grad)
    for name, p in model.named_parameters():
        out[("grad_param", name)] = np_(p.grad) if p.grad is not None else np.zeros(p.shape)
    for name, b in model.named_buffers():
        out[("buffer", name)] = np_(b)
    opt = spec["optimizer"]
    if opt is not None and spec["steps"] > 0:
        optimizer = getattr(torch.optim, opt["type"])(model.parameters(), **opt["kwargs"])
        for k in range(spec["steps"]):
            if k > 0:
                optimizer.zero_grad()
                forward_backward(k)
            optimizer.step()
            for name, v in model.state_dict().items():
                out[("step", k + 1, name)] = np_(v)
    return out


def main():
    spec = untag(json.loads((HERE / "spec.json").read_text()))
    arrays = np.load(HERE / "arrays.npz")
    meta = json.loads(str(arrays["meta"]))
    print(f"torch {torch.__version__}; case seed {spec['seed']}")
    print("each side is judged against the float64 truth: |side - truth| / allowance, "
          "where <= 1 is within what rounding in the dtype allows")
    found = False
    for e in meta["expected"]:
        device, n = e["device"], e["n"]
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skip {e['kind']} on {device}: no CUDA device here")
            continue
        got = run(spec, arrays, device, e["dtype"])
        key = {"forward": ("forward", e["layer"]), "loss": ("loss", None),
               "grad_output": ("grad_output", None), "grad_input": ("grad_input", e["layer"]),
               "grad_param": ("grad_param", e["tensor"]), "buffer": ("buffer", e["tensor"]),
               "step": ("step", e["step"], e["tensor"])}[e["kind"]]
        truth, allowed = arrays[f"truth:{n}"], arrays[f"allowance:{n}"]
        where = (f"layer {e['layer']} ({e['layer_type']})" if e["layer"] is not None
                 else f"loss ({e['layer_type']})")
        where += f" after step {e['step']}" if e["step"] else ""
        label = f"{e['kind']} {e['tensor']} at {where} [{device} {e['dtype']}]"
        sides = [("torch", got[key])]
        if f"reference:{n}" in arrays.files:
            sides.append(("reference", arrays[f"reference:{n}"]))
        for side, values in sides:
            r = ratio(values, truth, allowed)
            at = np.unravel_index(int(np.argmax(r)), r.shape) if r.size else ()
            worst = float(r.max()) if r.size else 0.0
            verdict = "DISCREPANCY" if worst > 1 else "within"
            print(f"{verdict}: {side} {label}: {worst:.3g} allowances at {list(map(int, at))}: "
                  f"{side} {float(values[at]):.9g}, float64 truth {float(truth[at]):.9g}, "
                  f"allowance {float(allowed[at]):.3g}")
            found |= worst > 1
        print(f"  verdict of the check: blame {e['blame']} ({e['note']})")
    raise SystemExit(1 if found else 0)


def ratio(side, truth, allowed):
    """|side - truth| / allowed per element (NaN against a number, or inf: infinite)."""
    side, truth = np.asarray(side, np.float64), np.asarray(truth, np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        r = np.where(np.isinf(allowed), 0.0, np.abs(side - truth) / np.maximum(allowed, 1e-300))
    r = np.where(np.isnan(r), np.inf, r)
    same = (np.isnan(side) & np.isnan(truth)) | (np.isinf(truth) & (side == truth))
    return np.where(same, 0.0, r)


if __name__ == "__main__":
    main()
'''
