"""The standalone repro script that :func:`harness.report.save_repro` writes as repro.py.

It needs only numpy and torch: it rebuilds the network in torch from spec.json, loads
arrays.npz and reruns the case. For a mismatch it judges torch (and the saved reference)
against the float64 truth under the saved allowance; for a crash it reruns torch on each
device and dtype that crashed and lets torch's exception propagate.
"""

__all__ = ["REPRO_SCRIPT"]

REPRO_SCRIPT = r'''"""Standalone repro of a backprop-oracle case: needs only numpy and torch.

Rebuilds the network in torch from spec.json (torch.nn class names and keyword
arguments), loads the weights, input, target and upstream gradient from
arrays.npz, runs forward, backward and the optimizer steps, and prints how far
torch is from the reference's saved values (exit status 1: a discrepancy).
For a case where the check crashed, it reruns torch on each device and dtype
that crashed and re-raises torch's exception, with torch's own traceback
(exit status 1); it exits 0 where torch no longer crashes. Run: python repro.py
"""

import json
import pathlib

import numpy as np
import torch

HERE = pathlib.Path(__file__).resolve().parent
DROPOUT = (
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
)
ALWAYS_RANDOM = ("FractionalMaxPool2d", "FractionalMaxPool3d")  # windows from torch.rand


def untag(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(untag(v) for v in value["__tuple__"])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value


OPS = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "cat": torch.cat, "tile": torch.stack}


class Op(torch.nn.Module):
    """A graph node that joins tensors: torch.add, sub, mul, or cat along kwargs' dim."""

    def __init__(self, op, kwargs):
        super().__init__()
        self.op, self.kwargs = op, dict(kwargs)

    def forward(self, *inputs):
        if self.op == "cat":
            return torch.cat(list(inputs), dim=self.kwargs.get("dim", 0))
        if self.op == "tile":  # (*) -> (copies, *): a recurrent layer's initial state
            return torch.stack([inputs[0]] * self.kwargs.get("copies", 1))
        return OPS[self.op](*inputs)


def make(type_, kwargs, dtype, device):
    if type_ in OPS:
        return Op(type_, kwargs)
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
    # a graph: a layer names its inputs, the earlier nodes it takes (-1: the input)
    graph = any("inputs" in l for l in spec["layers"])
    model = torch.nn.ModuleList(layers) if graph else torch.nn.Sequential(*layers)
    model = model.to(device=device, dtype=dtype)
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

    edges = {}

    def forward_backward(call):
        h, outputs = x, []
        for i, module in enumerate(model):
            kind = spec["layers"][i]["type"]
            sources = spec["layers"][i].get("inputs") or [i - 1]
            inputs = [x if j < 0 else outputs[j] for j in sources]
            if graph:  # an alias per edge, so its gradient is this node's contribution
                inputs = [t.view_as(t) for t in inputs]
                for k, t in enumerate(inputs):
                    if t.requires_grad:
                        t.retain_grad()
                        edges[(i, k)] = t
            if kind in ALWAYS_RANDOM or (spec["train"] and kind in DROPOUT):
                torch.manual_seed(dropout_seed(spec["seed"], i, call))
            if isinstance(module, torch.nn.LSTM) and len(inputs) == 3:
                h = module(inputs[0], (inputs[1], inputs[2]))  # its initial (h0, c0)
            else:
                h = module(*inputs)
            if isinstance(h, tuple):  # a recurrent layer: (output, final states)
                h = h[0]
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
        if i + 1 < len(outputs) and not graph:
            out[("grad_input", i + 1)] = np_(grad)
    for (i, k), t in edges.items():
        grad = t.grad if t.grad is not None else torch.zeros_like(t)
        out[("grad_input", i, f"grad wrt input {k}")] = np_(grad)
    out[("loss", None)] = np_(loss)
    out[("grad_output", None)] = np_(outputs[-1].grad)
    if x.grad is not None and not graph:
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
    crashes = meta.get("errors", [])
    if crashes and not meta["expected"]:
        rerun_crashes(spec, arrays, crashes)
        return
    for c in crashes:
        print(f"the check also crashed on [{c['device']} {c['dtype']}]: {c['error']}")
    print("each side is judged against the float64 truth: |side - truth| / allowance, "
          "where <= 1 is within what rounding in the dtype allows")
    found = False
    for e in meta["expected"]:
        device, n = e["device"], e["n"]
        if e.get("backend", "torch") != "torch":
            print(f"skip {e['kind']} of the {e['backend']} backend: this script reruns torch "
                  "alone; the replay command reruns the case through its backends")
            continue
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"skip {e['kind']} on {device}: no CUDA device here")
            continue
        got = run(spec, arrays, device, e["dtype"])
        key = {"forward": ("forward", e["layer"]), "loss": ("loss", None),
               "grad_output": ("grad_output", None),
               "grad_input": ("grad_input", e["layer"]) if e["tensor"] == "grad wrt input"
               else ("grad_input", e["layer"], e["tensor"]),
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


def rerun_crashes(spec, arrays, crashes):
    """Rerun torch where the check crashed; re-raise the first exception torch raises."""
    raised = None
    for c in crashes:
        device, dtype = c["device"], c["dtype"]
        print(f"the check crashed on [{device} {dtype}]: {c['error']}")
        if "-" in device:  # another backend's crash ("jax-cpu"): not torch's to rerun
            continue
        if device.startswith("cuda") and not torch.cuda.is_available():
            print(f"  skip {device}: no CUDA device here")
            continue
        try:
            run(spec, arrays, device, dtype)
        except Exception as exc:  # kept, and raised below with its traceback
            print(f"  torch on {device} {dtype} raises {type(exc).__name__}: {exc}")
            raised = raised or exc
            continue
        print(f"  torch on {device} {dtype} runs without an error here: not reproduced "
              "(the crash may have been the reference's, or this torch has fixed it)")
    if raised is not None:
        print("re-raising the first of torch's exceptions:", flush=True)
        raise raised


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
