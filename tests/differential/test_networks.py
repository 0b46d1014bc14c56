"""Whole networks vs torch: hypothesis draws a network, ``check`` must find no mismatch.

Every device present (the ``device`` argument) and both float32 and float64, with
the tolerances of ``harness.compare`` and nothing else. The strategies shrink a
failure toward the smallest network that still shows it, and the failure message
is the localized report.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from harness.checking import check
from harness.generate import available
from harness.known import KNOWN_TORCH_DEVIATIONS, KNOWN_TORCH_OPTIMIZER_DEVIATIONS
from harness.spec import LayerSpec, NetworkSpec
from harness.strategies import network_specs

DTYPES = ("float32", "float64")


def _assert_ok(spec, device):
    report = check(spec, devices=[device], dtypes=DTYPES)
    assert report.ok, report.summary()


@given(network_specs())
def test_random_networks_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@given(network_specs(families=("dense",)))
def test_dense_mlps_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@pytest.mark.skipif(not available("Conv2d"), reason="reference.nn.Conv2d not implemented yet")
@given(network_specs(families=("conv",), max_layers=5))
def test_cnns_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@pytest.mark.skipif(not available("Embedding"), reason="reference.nn.Embedding not implemented yet")
@given(network_specs(families=("embedding",)))
def test_embedding_networks_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@pytest.mark.parametrize("name", sorted(KNOWN_TORCH_DEVIATIONS))
def test_known_torch_deviations_are_found_and_classified(device, name):
    """The harness sees torch's deviation in float64 (a mismatch, so it is real) and files
    it under ``known``; float32 agrees, and the same layer type is not excluded anywhere."""
    if not available(name):
        pytest.skip(f"reference.nn.{name} not implemented yet")
    known = KNOWN_TORCH_DEVIATIONS[name]
    spec = NetworkSpec(
        (8, 16),
        # by default log-probabilities: inputs from about -6 to 0, where most deviations show
        [known.before, known.example],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        seed=0,
    )
    report = check(spec, devices=[device], dtypes=("float32", "float64"))
    assert report.ok, report.summary()
    found = {(k.dtype, k.layer_type) for k in report.known}
    assert found, f"the deviation no longer shows: the case lost its point\n{report.summary()}"
    assert found <= {(dtype, name) for dtype in known.dtypes}, report.summary()


OPTIMIZER_DEVIATIONS = [
    (name, known) for name, found in KNOWN_TORCH_OPTIMIZER_DEVIATIONS.items() for known in found
]


def _embedding_spec(optimizer: LayerSpec) -> NetworkSpec:
    """Four of twelve embedding rows looked up: the other rows' gradients are exactly 0."""
    return NetworkSpec(
        (4, 1),
        [
            LayerSpec("Embedding", {"num_embeddings": 12, "embedding_dim": 4}),
            LayerSpec("Flatten", {}),
            LayerSpec("Linear", {"in_features": 4, "out_features": 2}),
        ],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        input_kind="index",
        index_high=4,
        optimizer=optimizer,
        steps=3,
        seed=1,
    )


@pytest.mark.parametrize(
    "name, known", OPTIMIZER_DEVIATIONS, ids=[f"{n}-{k.dtypes[0]}" for n, k in OPTIMIZER_DEVIATIONS]
)
def test_known_torch_optimizer_deviations_are_found_and_classified(device, name, known):
    import reference.optim as ropt

    if getattr(ropt, name, None) is None:
        pytest.skip(f"reference.optim.{name} not implemented yet")
    spec = NetworkSpec(
        (4, 6),
        [LayerSpec("Linear", {"in_features": 6, "out_features": 5})],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        optimizer=known.example,
        steps=3,
        seed=1,
    )
    if known.non_finite:  # a zero gradient: where the formula in the dtype takes 0/0
        spec = _embedding_spec(known.example)
    report = check(spec, devices=[device], dtypes=known.dtypes)
    assert report.ok, report.summary()
    assert {(k.dtype, k.kind) for k in report.known} == {(known.dtypes[0], "step")}


def test_a_nan_that_the_dtype_does_not_make_is_not_excused(monkeypatch):
    """The float16 eps deviation excuses NaN where the float16 samples are NaN too, not
    a NaN torch makes anywhere else (here: one weight of a looked-up row)."""
    import torch

    from harness.backends import case_data

    spec = _embedding_spec(LayerSpec("Adam", {"lr": 0.01}))
    row = int(case_data(spec).input.reshape(-1)[0])  # looked up: its gradient is not 0
    original = torch.optim.Adam.step

    def step(self, closure=None):
        out = original(self, closure)
        weight = self.param_groups[0]["params"][0]
        if weight.dtype == torch.float16:  # float16's bug only: float64 stays the referee
            weight.data[row, 0] = float("nan")
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    report = check(spec, ["cpu"], ["float16"])
    assert [(m.kind, m.layer, m.blame) for m in report.mismatches][:1] == [("step", 0, "torch")], (
        report.summary()
    )


def test_a_known_loss_overflow_is_found_and_classified(device):
    """SoftMarginLoss at y x = -100: torch's log1p(exp(-y x)) is inf in float32 (and its
    gradient NaN) where the math is 100; float64 holds it."""
    spec = NetworkSpec(
        (4, 6),
        [LayerSpec("Threshold", {"threshold": 10.0, "value": -100.0})],  # every output -100
        LayerSpec("SoftMarginLoss", {}),
        {"kind": "sign"},
        seed=0,
    )
    report = check(spec, devices=[device], dtypes=("float32", "float64"))
    assert report.ok, report.summary()
    found = {(k.dtype, k.kind) for k in report.known}
    assert found and {dtype for dtype, _ in found} == {"float32"}, report.summary()


def test_a_larger_error_is_not_excused_by_a_known_deviation(monkeypatch):
    """Known deviations excuse their own size of error, not a real bug in the same layer."""
    import reference.nn as rnn

    original = rnn.Hardsigmoid.backward
    monkeypatch.setattr(rnn.Hardsigmoid, "backward", lambda self, g: original(self, g) * 1.001)
    spec = NetworkSpec(
        (2, 3),
        [LayerSpec("Hardsigmoid")],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        seed=0,
    )
    report = check(spec, devices=["cpu"], dtypes=("float64",))
    assert not report.ok and report.mismatches[0].kind == "grad_input"
