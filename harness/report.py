"""Reports as text, saved repros, and replaying a saved case.

``save_repro(report, dir)`` writes ``<dir>/<name>/``:

- ``spec.json``: the case (a spec alone reproduces it: weights and data come from its seed);
- ``arrays.npz``: the float64 weights, input, target and upstream gradient, and the
  reference's values of every mismatched tensor (keys ``expected:<n>``, described in ``meta``);
- ``repro.py``: a standalone script, NumPy and torch only, that rebuilds the network in
  torch from the spec, loads the arrays, reruns and prints the discrepancy;
- ``report.txt``: the report as text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from .check import Report, check, default_devices, tensor_of
from .compare import tolerance
from .spec import NetworkSpec

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
        key = (
            "reference-"
            + m.dtype
            + (f"-{m.device}" if f"reference-{m.dtype}-{m.device}" in report.traces else "")
        )
        trace = report.traces.get(key)
        if trace is None:
            continue
        arrays[f"expected:{n}"] = np.asarray(tensor_of(trace, m))
        tol = tolerance(m.dtype, m.device)
        expected.append(
            {
                "n": n,
                "kind": m.kind,
                "layer": m.layer,
                "layer_type": m.layer_type,
                "tensor": m.tensor,
                "step": m.step,
                "device": m.device,
                "dtype": m.dtype,
                "rtol": tol.rtol,
                "atol": tol.atol,
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


def dropout_seed(seed, layer, call):
    return int((seed * 1_000_003 + layer * 7919 + call * 104_729) % (2**31 - 1))


def run(spec, arrays, device, dtype_name):
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dtype = getattr(torch, dtype_name)
    layers = [make(l["type"], l["kwargs"], dtype, device) for l in spec["layers"]]
    model = torch.nn.Sequential(*layers).to(device=device, dtype=dtype)
    weights = {k[len("weight:"):]: torch.from_numpy(arrays[k]) for k in arrays.files
               if k.startswith("weight:")}
    with torch.no_grad():
        model.load_state_dict(weights)
    model.train(spec["train"])
    loss_fn = make(spec["loss"]["type"], spec["loss"]["kwargs"], dtype, device)
    x = torch.from_numpy(arrays["input"])
    x = (x.to(device) if spec["input_kind"] == "index"
         else x.to(device=device, dtype=dtype).requires_grad_(True))
    t = torch.from_numpy(arrays["target"]).to(device)
    target = t if t.dtype == torch.int64 else t.to(dtype)
    upstream = torch.from_numpy(arrays["upstream"]).to(device=device, dtype=dtype)
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
    worst = 0.0
    for e in meta["expected"]:
        device = e["device"]
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skip {e['kind']} on {device}: no CUDA device here")
            continue
        got = run(spec, arrays, device, e["dtype"])
        key = {"forward": ("forward", e["layer"]), "loss": ("loss", None),
               "grad_output": ("grad_output", None), "grad_input": ("grad_input", e["layer"]),
               "grad_param": ("grad_param", e["tensor"]), "buffer": ("buffer", e["tensor"]),
               "step": ("step", e["step"], e["tensor"])}[e["kind"]]
        actual, expected = got[key], arrays[f"expected:{e['n']}"].astype(np.float64)
        diff = np.abs(actual - expected)
        scale = np.max(np.abs(expected)) if expected.size else 0.0
        allowed = e["atol"] * scale + e["rtol"] * np.abs(expected)
        ratio = float(np.max(diff / np.maximum(allowed, 1e-300))) if diff.size else 0.0
        where = (f"layer {e['layer']} ({e['layer_type']})" if e["layer"] is not None
                 else f"loss ({e['layer_type']})")
        step = f" after step {e['step']}" if e["step"] else ""
        verdict = "DISCREPANCY" if ratio > 1 else "agrees"
        print(f"{verdict}: torch {device} {e['dtype']} {e['kind']} {e['tensor']} at {where}{step}: "
              f"max |err| {diff.max():.3g} = {ratio:.3g}x the tolerance "
              f"(rtol {e['rtol']}, atol {e['atol']} x max|expected|)")
        worst = max(worst, ratio)
    raise SystemExit(1 if worst > 1 else 0)


if __name__ == "__main__":
    main()
'''
