"""Layers that draw random numbers get torch's draw imposed on the reference, in every
mode they draw in (``spec.draws_random``): dropout masks in training, fractional max
pooling's samples always. Without the imposition the same cases fail."""

from __future__ import annotations

import numpy as np
import pytest

import harness.backends.reference as reference_backend
from harness.checking import check
from harness.spec import LayerSpec, NetworkSpec, draws_random

CASES = [
    ("FractionalMaxPool2d", {"kernel_size": 2, "output_size": (3, 4)}, (2, 3, 7, 9)),
    ("FractionalMaxPool3d", {"kernel_size": 2, "output_ratio": 0.5}, (2, 3, 7, 9, 6)),
    ("AlphaDropout", {"p": 0.3}, (2, 3, 7, 9)),
    ("FeatureAlphaDropout", {"p": 0.4}, (2, 3, 7, 9)),
]


def _spec(layer: str, kwargs: dict, shape: tuple[int, ...], train: bool) -> NetworkSpec:
    return NetworkSpec(
        input_shape=shape,
        layers=[LayerSpec(layer, kwargs), LayerSpec("Flatten", {})],
        loss=LayerSpec("MSELoss"),
        optimizer=LayerSpec("SGD", {"lr": 0.1}),
        steps=0,
        train=train,
        seed=3,
    )


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(("layer", "kwargs", "shape"), CASES, ids=[c[0] for c in CASES])
def test_torch_draw_is_imposed(layer, kwargs, shape, train, monkeypatch):
    spec = _spec(layer, kwargs, shape, train)
    report = check(spec, devices=["cpu"], dtypes=["float64", "float32"])
    assert report.ok, report.summary()
    if not draws_random(layer, train):
        return  # eval-mode dropout is the identity: nothing drawn, nothing to impose
    bogus = dict.fromkeys(reference_backend.DRAW_ATTRIBUTE, "not_an_attribute")
    monkeypatch.setattr(reference_backend, "DRAW_ATTRIBUTE", bogus)
    unimposed = check(spec, devices=["cpu"], dtypes=["float64"])
    assert not unimposed.ok and unimposed.mismatches[0].layer == 0


def test_fractional_pooling_draws_in_eval_and_dropout_only_in_training():
    assert draws_random("FractionalMaxPool2d", False) and draws_random("FractionalMaxPool3d", True)
    assert draws_random("AlphaDropout", True) and not draws_random("AlphaDropout", False)
    assert not draws_random("RReLU", True)  # not imposed: the generator keeps it to eval
    assert np.all([not draws_random("Linear", t) for t in (True, False)])
