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
from harness.known import KNOWN_EXCLUDE, KNOWN_TORCH_DEVIATIONS, KNOWN_TORCH_OPTIMIZER_DEVIATIONS
from harness.spec import LayerSpec, NetworkSpec
from harness.strategies import network_specs

DTYPES = ("float32", "float64")

# where torch itself departs from the math: left out here, pinned below
EXCLUDE = KNOWN_EXCLUDE


def _assert_ok(spec, device):
    report = check(spec, devices=[device], dtypes=DTYPES)
    assert report.ok, report.summary()


@given(network_specs(exclude=EXCLUDE))
def test_random_networks_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@given(network_specs(families=("dense",), exclude=EXCLUDE))
def test_dense_mlps_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@pytest.mark.skipif(not available("Conv2d"), reason="reference.nn.Conv2d not implemented yet")
@given(network_specs(families=("conv",), max_layers=5, exclude=EXCLUDE))
def test_cnns_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@pytest.mark.skipif(not available("Embedding"), reason="reference.nn.Embedding not implemented yet")
@given(network_specs(families=("embedding",), exclude=EXCLUDE))
def test_embedding_networks_agree_with_torch(device, spec):
    _assert_ok(spec, device)


@pytest.mark.xfail(strict=False, reason="torch departs from the math in float64 (see the table)")
@pytest.mark.parametrize("name", sorted(KNOWN_TORCH_DEVIATIONS))
def test_known_torch_deviations(device, name):
    if not available(name):
        pytest.skip(f"reference.nn.{name} not implemented yet")
    spec = NetworkSpec(
        (2, 3),
        KNOWN_TORCH_DEVIATIONS[name],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        seed=0,
    )
    report = check(spec, devices=[device], dtypes=("float64",))
    assert report.ok, report.summary()


@pytest.mark.xfail(strict=False, reason="torch's NAdam state is float32 for float64 params")
@pytest.mark.parametrize("name", KNOWN_TORCH_OPTIMIZER_DEVIATIONS)
def test_known_torch_optimizer_deviations(device, name):
    import reference.optim as ropt

    if getattr(ropt, name, None) is None:
        pytest.skip(f"reference.optim.{name} not implemented yet")
    spec = NetworkSpec(
        (4, 6),
        [LayerSpec("Linear", {"in_features": 6, "out_features": 5})],
        LayerSpec("MSELoss", {}),
        {"kind": "regression"},
        optimizer=LayerSpec(name, {"lr": 0.03}),
        steps=3,
        seed=1,
    )
    report = check(spec, devices=[device], dtypes=("float64",))
    assert report.ok, report.summary()
