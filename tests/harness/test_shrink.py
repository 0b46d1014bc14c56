"""The shrinker: a failing case comes back small, still failing, and the same finding."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from harness.checking import check
from harness.generate import random_spec
from harness.shrink import fitted, shrink, shrink_report, signature
from harness.spec import LayerSpec, NetworkSpec, infer_shapes
from harness.verdict import Report


def linear(i: int, o: int) -> LayerSpec:
    return LayerSpec("Linear", {"in_features": i, "out_features": o, "bias": True})


def classifier() -> NetworkSpec:
    """Six layers, a weighted cross-entropy and Adam: plenty to shrink."""
    return NetworkSpec(
        input_shape=(4, 5),
        layers=[
            linear(5, 8),
            LayerSpec("ReLU"),
            linear(8, 6),
            LayerSpec("Tanh"),
            LayerSpec("LayerNorm", {"normalized_shape": 6}),
            linear(6, 3),
        ],
        loss=LayerSpec("CrossEntropyLoss", {"weight": [0.5, 1.0, 2.0], "reduction": "sum"}),
        target={"kind": "class_index", "num_classes": 3},
        optimizer=LayerSpec("Adam", {"lr": 0.01}),
        steps=3,
        seed=3,
    )


def consistent(spec: NetworkSpec) -> bool:
    """Valid shapes, and every Linear's in_features is what it receives."""
    shapes = [spec.input_shape, *infer_shapes(spec)]
    return all(
        layer.kwargs["in_features"] == shapes[i][-1]
        for i, layer in enumerate(spec.layers)
        if layer.type == "Linear"
    )


def gelu_spec() -> NetworkSpec:
    """The first generated spec with a GELU and at least 4 layers."""
    for seed in range(1000):
        spec = random_spec(np.random.default_rng(seed))
        if len(spec.layers) >= 4 and any(layer.type == "GELU" for layer in spec.layers):
            return spec
    raise AssertionError("no generated spec with a GELU in 1000 seeds")


def test_planted_gelu_fault_shrinks_to_the_gelu(monkeypatch):
    original = torch.nn.GELU.forward
    monkeypatch.setattr(torch.nn.GELU, "forward", lambda self, x: original(self, x) + 1e-3)
    spec = gelu_spec()
    report = check(spec, devices=["cpu"], dtypes=["float32"])
    wanted = signature(report)
    assert wanted is not None and wanted[:2] == ("forward", "GELU"), report.summary()

    start = time.monotonic()
    small, small_report = shrink_report(report)
    elapsed = time.monotonic() - start
    print(f"\nshrink took {elapsed:.1f} s: {spec}\n  -> {small}")

    assert len(small.layers) <= 2, str(small)
    assert any(layer.type == "GELU" for layer in small.layers), str(small)
    assert signature(small_report) == wanted
    assert small_report.spec is small
    assert small.input_shape[0] == 1 and small.optimizer is None
    assert signature(check(small, ["cpu"], ["float32"])) == wanted  # not a cached fluke


def test_signature_of_a_crash():
    spec = classifier()
    made_up = Report(spec, errors=["[cpu float32] ValueError: weight has the wrong shape"])
    assert signature(made_up) == ("error", "ValueError")
    odd = Report(spec, errors=["torch.OutOfMemoryError: CUDA out of memory"])
    assert signature(odd) == ("error", "torch.OutOfMemoryError")


def test_signature_of_a_real_crash_and_of_an_ok_report(monkeypatch):
    spec = NetworkSpec((2, 3), [linear(3, 2), LayerSpec("Tanh")], LayerSpec("MSELoss"))
    ok = check(spec, devices=["cpu"], dtypes=["float32"])
    assert ok.ok and signature(ok) is None
    assert shrink_report(ok) == (spec, ok)  # nothing to shrink

    def crash(self, x):
        raise RuntimeError("planted")

    monkeypatch.setattr(torch.nn.Tanh, "forward", crash)
    crashed = check(spec, devices=["cpu"], dtypes=["float32"])
    assert not crashed.mismatches and crashed.errors, crashed.summary()
    assert signature(crashed) == ("error", "RuntimeError")


def test_shrink_returns_only_specs_that_fail():
    seen: list[NetworkSpec] = []

    def still_fails(candidate: NetworkSpec) -> bool:
        seen.append(candidate)
        return len(candidate.layers) >= 3

    small = shrink(classifier(), still_fails)
    assert len(small.layers) == 3
    assert still_fails(small)
    assert seen and all(consistent(c) for c in seen)  # still_fails only sees valid specs
    assert shrink(classifier(), still_fails) == small  # deterministic


def test_shrink_fixes_dependent_arguments():
    def two_linears(candidate: NetworkSpec) -> bool:
        linears = sum(layer.type == "Linear" for layer in candidate.layers)
        return linears >= 2 and candidate.optimizer is not None

    small = shrink(classifier(), two_linears, keep_loss=True)
    assert [layer.type for layer in small.layers] == ["Linear", "Linear"]
    assert consistent(small)
    assert small.input_shape == (1, 1) and small.layers[0].kwargs["out_features"] == 1
    classes = small.layers[-1].kwargs["out_features"]
    assert small.loss.type == "CrossEntropyLoss"  # kept
    assert len(small.loss.kwargs["weight"]) == classes  # resized with the head
    assert small.optimizer is not None and small.optimizer.type == "SGD" and small.steps == 1


def test_shrink_simplifies_the_loss_and_stops_at_the_budget():
    def has_tanh(candidate: NetworkSpec) -> bool:
        return any(layer.type == "Tanh" for layer in candidate.layers)

    small = shrink(classifier(), has_tanh)
    assert [layer.type for layer in small.layers] == ["Tanh"]
    assert small.loss == LayerSpec("MSELoss", {}) and small.target == {"kind": "regression"}
    assert small.input_shape == (1, 1) and small.optimizer is None

    spec = classifier()
    assert shrink(spec, has_tanh, budget_s=0.0) is spec  # out of time: the best so far


def test_invalid_candidates_are_rejected():
    # an index input without its Embedding, and a Linear that cannot follow its input
    spec = NetworkSpec((2, 3), [linear(3, 2)], LayerSpec("MSELoss"))
    index = NetworkSpec(
        (2, 3), [LayerSpec("Tanh")], LayerSpec("MSELoss"), input_kind="index", index_high=4
    )
    assert fitted(index) is None
    broken = NetworkSpec(
        (2, 3),
        [LayerSpec("Conv1d", {"in_channels": 3, "out_channels": 2, "kernel_size": 1})],
        LayerSpec("MSELoss"),
    )
    assert fitted(broken) is None  # a 2-d input is no conv input
    assert fitted(NetworkSpec((2, 7), [linear(3, 2)], LayerSpec("MSELoss"))) == NetworkSpec(
        (2, 7), [linear(7, 2)], LayerSpec("MSELoss")
    )
    assert fitted(spec) == spec


@pytest.mark.parametrize("keep_linear", [False, True])
def test_batchnorm_follows_its_input(keep_linear):
    norm = LayerSpec("BatchNorm1d", {"num_features": 6, "momentum": None})
    spec = NetworkSpec((4, 3), [linear(3, 6), norm], LayerSpec("MSELoss"))

    def still_fails(candidate: NetworkSpec) -> bool:
        types = [layer.type for layer in candidate.layers]
        return "BatchNorm1d" in types and ("Linear" in types or not keep_linear)

    small = shrink(spec, still_fails)
    # a batch of 3: normalizing fewer than 3 values is the degenerate case never proposed
    one = LayerSpec("BatchNorm1d", {"num_features": 1, "momentum": None})
    expected = [linear(1, 1), one] if keep_linear else [one]
    assert small == NetworkSpec((3, 1), expected, LayerSpec("MSELoss"))
