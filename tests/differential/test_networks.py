"""Whole networks vs torch: hypothesis draws a network, ``check`` must find no mismatch.

Every device present (the ``device`` argument) and both float32 and float64, with
the tolerances of ``harness.compare`` and nothing else. The strategies shrink a
failure toward the smallest network that still shows it, and the failure message
is the localized report.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from harness.check import check
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
        # log-probabilities: inputs from about -6 to 0, where each deviation shows
        [LayerSpec("LogSoftmax", {"dim": 1}), known.example],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        seed=0,
    )
    report = check(spec, devices=[device], dtypes=("float32", "float64"))
    assert report.ok, report.summary()
    found = {(k.dtype, k.layer_type) for k in report.known}
    assert found, f"the deviation no longer shows: the case lost its point\n{report.summary()}"
    assert found <= {(dtype, name) for dtype in known.dtypes}, report.summary()


@pytest.mark.parametrize("name", sorted(KNOWN_TORCH_OPTIMIZER_DEVIATIONS))
def test_known_torch_optimizer_deviations_are_found_and_classified(device, name):
    import reference.optim as ropt

    if getattr(ropt, name, None) is None:
        pytest.skip(f"reference.optim.{name} not implemented yet")
    spec = NetworkSpec(
        (4, 6),
        [LayerSpec("Linear", {"in_features": 6, "out_features": 5})],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        optimizer=KNOWN_TORCH_OPTIMIZER_DEVIATIONS[name].example,
        steps=3,
        seed=1,
    )
    report = check(spec, devices=[device], dtypes=("float32", "float64"))
    assert report.ok, report.summary()
    assert {(k.dtype, k.kind) for k in report.known} == {("float64", "step")}


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
