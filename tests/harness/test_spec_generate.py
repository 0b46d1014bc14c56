"""NetworkSpec JSON round trip, shape inference errors, generator validity and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from harness.backends import case_data
from harness.backends.reference import ReferenceBackend
from harness.backends.torch import TorchBackend
from harness.checking import check
from harness.generate import random_spec
from harness.spec import LayerSpec, NetworkSpec, SpecError, describe, infer_shapes


def mlp_spec(**overrides) -> NetworkSpec:
    fields = dict(
        input_shape=(3, 4),
        layers=[
            LayerSpec("Linear", {"in_features": 4, "out_features": 5}),
            LayerSpec("ReLU"),
            LayerSpec("Linear", {"in_features": 5, "out_features": 2, "bias": False}),
        ],
        loss=LayerSpec("MSELoss", {"reduction": "sum"}),
        target={"kind": "regression"},
        seed=7,
    )
    fields.update(overrides)
    return NetworkSpec(**fields)


def test_json_round_trip_keeps_tuples_none_and_floats():
    spec = mlp_spec(
        optimizer=LayerSpec("Adam", {"lr": 0.01, "betas": (0.9, 0.99)}),
        layers=[
            LayerSpec("Flatten", {"start_dim": 1}),
            LayerSpec("Linear", {"in_features": 4, "out_features": 2}),
            LayerSpec("Hypothetical", {"kernel_size": (2, (3, 1)), "p": None}),
        ],
    )
    back = NetworkSpec.from_json(spec.to_json())
    assert back == spec
    assert back.optimizer.kwargs["betas"] == (0.9, 0.99)
    assert back.layers[2].kwargs["kernel_size"] == (2, (3, 1))
    assert isinstance(back.input_shape, tuple)


@pytest.mark.parametrize("seed", range(20))
def test_random_specs_round_trip(seed):
    spec = random_spec(seed)
    assert NetworkSpec.from_json(spec.to_json()) == spec


def test_infer_shapes_of_a_valid_chain():
    assert infer_shapes(mlp_spec()) == [(3, 5), (3, 5), (3, 2)]


def test_infer_shapes_names_the_layer_that_cannot_follow():
    spec = mlp_spec(
        layers=[
            LayerSpec("Linear", {"in_features": 4, "out_features": 5}),
            LayerSpec("ReLU"),
            LayerSpec("Linear", {"in_features": 6, "out_features": 2}),
        ]
    )
    with pytest.raises(
        SpecError,
        match=r"layer 2 \(Linear\(in_features=6, out_features=2\)\) "
        r"cannot follow shape \(3, 5\)",
    ):
        infer_shapes(spec)
    assert "INVALID" in describe(spec)


def test_unknown_layer_is_a_spec_error():
    spec = mlp_spec(layers=[LayerSpec("NoSuchLayer", {})])
    with pytest.raises(SpecError, match="reference.nn has no NoSuchLayer"):
        infer_shapes(spec)
    assert isinstance(SpecError("x"), ValueError)


def test_describe_lists_every_layer_with_its_shape():
    text = describe(mlp_spec())
    assert "Linear" in text and "(3, 5)" in text and "(3, 2)" in text and "MSELoss" in text


def test_generator_validity_1000_specs_infer_and_build_in_both_backends():
    import torch

    from harness.backends.torch import build_torch_layer

    rng = np.random.default_rng(2024)
    for _ in range(1000):
        spec = random_spec(rng)
        shapes = infer_shapes(spec)
        assert len(shapes) == len(spec.layers) >= 1
        assert all(int(np.prod(s[1:])) <= 1024 for s in shapes)
        for layer in spec.layers:
            build_torch_layer(layer.type, layer.kwargs, torch.float32, "cpu")
        build_torch_layer(spec.loss.type, spec.loss.kwargs, torch.float32, "cpu")


def test_100_random_specs_run_through_check_without_errors():
    rng = np.random.default_rng(99)
    for _ in range(100):
        spec = random_spec(rng)
        report = check(spec, dtypes=("float32",), attribute=False)
        assert not report.errors, report.summary()


def test_generator_limits_are_respected():
    rng = np.random.default_rng(5)
    for _ in range(200):
        spec = random_spec(rng, max_layers=2, max_batch=2, max_width=3, families=("dense",))
        assert spec.input_shape[0] <= 2
        assert spec.input_kind == "float" and len(spec.input_shape) == 2
        # the loss head may add Flatten/Linear/(Log)Softmax/Sigmoid after the body
        assert len(spec.layers) <= 2 + 2
        for layer in spec.layers:
            if layer.type == "Linear":
                assert layer.kwargs["out_features"] <= 3


def test_determinism_same_seed_same_spec_weights_inputs_and_verdict():
    a, b = random_spec(123), random_spec(123)
    assert a == b
    da, db = case_data(a), case_data(b)
    assert da.weights.keys() == db.weights.keys()
    for key in da.weights:
        np.testing.assert_array_equal(da.weights[key], db.weights[key])
    for name in ("input", "target", "upstream"):
        np.testing.assert_array_equal(getattr(da, name), getattr(db, name))
    assert check(a).ok == check(b).ok
    assert random_spec(124) != a


def test_upstream_gradient_is_random_not_one():
    data = case_data(mlp_spec())
    assert data.upstream.shape == () and data.upstream != 1.0
    data = case_data(mlp_spec(loss=LayerSpec("MSELoss", {"reduction": "none"})))
    assert data.upstream.shape == (3, 2) and np.unique(data.upstream).size == 6


def test_backends_refuse_to_mutate_their_inputs(monkeypatch):
    import reference.nn as rnn

    original = rnn.ReLU.forward

    def scribbling_relu(self, x):
        out = original(self, x)
        x[...] = 0  # writes into the layer's input
        return out

    spec = mlp_spec(
        layers=[LayerSpec("ReLU"), LayerSpec("Linear", {"in_features": 4, "out_features": 2})]
    )
    monkeypatch.setattr(rnn.ReLU, "forward", scribbling_relu)
    with pytest.raises(RuntimeError, match="modified its input"):
        ReferenceBackend().run(spec, np.float64)


def test_both_backends_produce_traces_of_the_same_structure():
    spec = mlp_spec(optimizer=LayerSpec("SGD", {"lr": 0.1}), steps=2)
    pytest.importorskip("reference.optim.sgd")
    ref = ReferenceBackend().run(spec, np.float32)
    got = TorchBackend("cpu", np.float32).run(spec)
    assert [o.shape for o in ref.outputs] == [o.shape for o in got.outputs]
    assert ref.grad_params.keys() == got.grad_params.keys() == {"0.weight", "0.bias", "2.weight"}
    assert len(ref.steps) == len(got.steps) == 2
    assert ref.outputs[0].dtype == got.outputs[0].dtype == np.float32


def test_network_specs_shrink_to_a_small_network():
    from hypothesis import find, settings

    from harness.strategies import network_specs

    minimal = find(
        network_specs(),
        lambda s: any(layer.type == "Tanh" for layer in s.layers),
        settings=settings(max_examples=300, database=None),
    )
    assert len(minimal.layers) <= 2, minimal
    assert minimal.input_shape[0] == 1 and minimal.seed == 0
    assert minimal.optimizer is None


def test_network_specs_draw_valid_specs():
    from hypothesis import given, settings

    from harness.strategies import network_specs

    @settings(max_examples=30, database=None)
    @given(network_specs(max_layers=3))
    def inner(spec):
        assert len(infer_shapes(spec)) == len(spec.layers)
        assert NetworkSpec.from_json(spec.to_json()) == spec

    inner()
