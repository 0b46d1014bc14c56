"""The Backend protocol, through a toy third backend written here: a NumPy MLP framework.

It passes on its own; with a planted fault it is caught at the right layer, kind and
blame; what it lacks is skipped and said, never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from harness import check
from harness.backends import CaseData, Trace
from harness.backends.protocol import Backend, Capabilities
from harness.spec import LayerSpec, NetworkSpec
from harness.verdict import Blame, Kind


@dataclass
class Toy:
    """Linear, ReLU and Tanh under MSELoss with plain SGD, by hand; ``fault`` plants one
    error: ``"tanh"`` scales tanh's backward by (1 + 1e-3), ``"bias"`` drops Linear's bias
    gradient's last element (in every Linear)."""

    fault: str = ""
    name: str = "toy"
    capabilities: Capabilities = Capabilities(
        dtypes=("float32", "float64"),
        layers={"Linear", "ReLU", "Tanh"},
        losses={"MSELoss"},
        optimizers={"SGD"},
    )

    def run(self, spec: NetworkSpec, data: CaseData, device: str, dtype: str) -> Trace:
        w = {k: v.astype(dtype) for k, v in data.weights.items()}
        x, target, upstream = data.cast(dtype)
        outputs, grads, grad_params, steps = [], [], {}, []
        for k in range(max(spec.steps, 1)):
            outputs, h = [], x
            for i, layer in enumerate(spec.layers):
                h = self._forward(layer, i, h, w)
                outputs.append(h)
            diff = h - target
            loss = np.asarray(np.mean(diff**2), dtype=dtype)
            g = (upstream * 2 * diff / diff.size).astype(dtype)
            grads = [None] * len(outputs)
            grad_params = {}
            for i in range(len(outputs) - 1, -1, -1):
                grads[i] = g
                before = outputs[i - 1] if i else x
                g = self._backward(spec.layers[i], i, before, outputs[i], g, w, grad_params)
            if k == 0:
                first = (outputs, loss, grads, g, grad_params)
            if spec.optimizer is not None and spec.steps:
                lr = spec.optimizer.kwargs.get("lr", 1e-3)
                w = {n: (v - lr * grad_params[n]).astype(dtype) for n, v in w.items()}
                steps.append(dict(w))
        outputs, loss, grads, g, grad_params = first
        return Trace(outputs, loss, grads, g, grad_params, {}, steps)

    def _forward(self, layer: LayerSpec, i: int, h: np.ndarray, w: dict) -> np.ndarray:
        if layer.type == "Linear":
            out = h @ w[f"{i}.weight"].T
            return out + w[f"{i}.bias"] if f"{i}.bias" in w else out
        return np.maximum(h, 0) if layer.type == "ReLU" else np.tanh(h)

    def _backward(self, layer, i, x, y, g, w, grad_params) -> np.ndarray:
        if layer.type == "Linear":
            grad_params[f"{i}.weight"] = g.T @ x
            if f"{i}.bias" in w:
                gb = g.sum(axis=0)
                if self.fault == "bias":
                    gb[-1] = 0
                grad_params[f"{i}.bias"] = gb
            return g @ w[f"{i}.weight"]
        if layer.type == "ReLU":
            return g * (x > 0)
        scale = 1 + 1e-3 if self.fault == "tanh" else 1
        return (g * (1 - y * y) * scale).astype(y.dtype)


def _mlp(steps: int = 0, optimizer: str = "SGD", act: str = "Tanh") -> NetworkSpec:
    return NetworkSpec(
        input_shape=(4, 5),
        layers=[
            LayerSpec("Linear", {"in_features": 5, "out_features": 6}),
            LayerSpec(act),
            LayerSpec("Linear", {"in_features": 6, "out_features": 3}),
        ],
        loss=LayerSpec("MSELoss"),
        optimizer=LayerSpec(optimizer, {"lr": 0.1}) if steps else None,
        steps=steps,
        seed=3,
    )


def test_the_toy_is_a_backend():
    assert isinstance(Toy(), Backend)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_correct_backend_passes(dtype):
    report = check(_mlp(steps=2), dtypes=dtype, backends=[Toy()])
    assert report.ok, report.summary()
    assert report.devices == ("cpu",) and report.backends == ("toy",)
    assert "toy-cpu-" + dtype in report.traces
    assert report.summary().startswith("OK: toy and the reference agree")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_planted_backward_fault_is_caught_at_its_layer(dtype):
    report = check(_mlp(), dtypes=dtype, backends=[Toy(fault="tanh")])
    assert not report.ok
    first = report.mismatches[0]
    assert (first.kind, first.layer, first.layer_type) == (Kind.GRAD_INPUT, 1, "Tanh")
    assert first.blame is Blame.BACKEND and first.backend == "toy"
    assert first.blamed == "toy" and "blame: toy" in str(first)
    assert first.evidence.label == "toy" and "toy-cpu" in str(first)


def test_a_planted_parameter_gradient_fault_names_the_parameter():
    report = check(_mlp(act="ReLU"), dtypes="float32", backends=[Toy(fault="bias")])
    found = {(m.kind, m.layer, m.tensor) for m in report.mismatches}
    # the fault is in every Linear's bias; the weight gradients and the backward are right
    assert found == {(Kind.GRAD_PARAM, 0, "0.bias"), (Kind.GRAD_PARAM, 2, "2.bias")}
    assert all(m.blame is Blame.BACKEND for m in report.mismatches)


def test_torch_and_a_third_backend_in_one_check():
    report = check(_mlp(steps=1), dtypes="float64", backends=[Toy(fault="tanh"), _torch()])
    assert report.backends == ("toy", "torch")
    assert {m.backend for m in report.mismatches} == {"toy"}
    assert "torch-cpu-float64" in report.traces and "toy-cpu-float64" in report.traces


def _torch():
    from harness.backends.torch import Torch

    return Torch()


def test_what_a_backend_lacks_is_skipped_and_said():
    conv = NetworkSpec(
        (2, 1, 5),
        [LayerSpec("Conv1d", {"in_channels": 1, "out_channels": 1, "kernel_size": 2})],
        LayerSpec("MSELoss"),
    )
    report = check(conv, backends=[Toy()])
    assert report.ok and report.devices == ()
    assert report.skipped == ["toy: case skipped: no Conv1d layer"]
    assert report.summary().startswith("SKIPPED")

    report = check(_mlp(steps=2, optimizer="Adam"), dtypes=("float16", "float64"), backends=[Toy()])
    assert report.ok, report.summary()
    assert "toy: no float16" in report.skipped
    assert any("no Adam steps" in s for s in report.skipped)
    assert not report.traces["toy-cpu-float64"].steps  # forward and backward still judged

    report = check(_mlp(), devices=["cuda"], backends=[Toy()])
    assert report.skipped == ["toy: no device cuda"]


def test_a_crashing_backend_is_an_error_not_a_harness_crash():
    class Broken(Toy):
        def run(self, spec, data, device, dtype):
            raise ValueError("shapes (4,6) and (5,6) not aligned")

    report = check(_mlp(), dtypes="float32", backends=[Broken()])
    assert not report.ok
    assert report.errors == ["[toy-cpu float32] ValueError: shapes (4,6) and (5,6) not aligned"]
