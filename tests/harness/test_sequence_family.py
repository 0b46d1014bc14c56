"""The sequence family in the harness: recurrent and Transformer layers drawn, their final
states traced beside their outputs, and planted errors caught at the right layer."""

from __future__ import annotations

import pathlib

import pytest
import torch

from harness.checking import check
from harness.generate import random_spec
from harness.spec import LayerSpec, NetworkSpec, infer_shapes
from tests.harness.test_teeth import only

CASES = pathlib.Path(__file__).parent / "cases"
SCALE = 1 + 1e-3


def lstm_spec(**overrides) -> NetworkSpec:
    """(N, L, H) -> LSTM (layer 0, its h_n and c_n traced) -> Linear -> MSELoss."""
    fields = dict(
        input_shape=(3, 4, 5),
        layers=[
            LayerSpec(
                "LSTM",
                {
                    "input_size": 5,
                    "hidden_size": 6,
                    "batch_first": True,
                    "num_layers": 2,
                    "bidirectional": True,
                },
            ),  # fmt: skip
            LayerSpec("Linear", {"in_features": 12, "out_features": 2}),
        ],
        loss=LayerSpec("MSELoss", {}),
        seed=5,
    )
    fields.update(overrides)
    return NetworkSpec(**fields)


def test_the_generator_draws_the_sequence_layers_and_a_per_step_head():
    drawn: set[str] = set()
    per_step = 0
    for seed in range(120):
        spec = random_spec(seed, families=("sequence",))
        infer_shapes(spec)  # every drawn spec is valid
        drawn |= {layer.type for layer in spec.layers}
        per_step += any(layer.type == "Unflatten" for layer in spec.layers)
    assert {"RNN", "LSTM", "GRU", "TransformerEncoderLayer", "Embedding"} <= drawn
    assert per_step > 0  # CrossEntropyLoss / NLLLoss on (N, C, L)


def test_a_clean_sequence_case_passes_and_traces_the_final_states():
    report = check(lstm_spec())
    assert report.ok, report.summary()
    trace = next(t for name, t in report.traces.items() if name.startswith("torch"))
    assert set(trace.extras) == {"0.h_n", "0.c_n"}
    assert trace.extras["0.h_n"].shape == (4, 3, 6)  # (num_layers * D, N, H)


def test_an_error_in_torch_s_h_n_alone_is_localized_to_it(monkeypatch):
    original = torch.nn.LSTM.forward

    def wrong_state(self, *args, **kwargs):
        out, (h, c) = original(self, *args, **kwargs)
        return out, (h * SCALE, c)

    monkeypatch.setattr(torch.nn.LSTM, "forward", wrong_state)
    found = only(check(lstm_spec()), kind="forward", layer=0, layer_type="LSTM")
    assert {m.tensor for m in found} == {"h_n"}
    # both sides' outputs pass gradcheck, so a 1e-3 gap in the state is "a disagreement on
    # the math" (harness.attribute): never put down to rounding, never the reference's
    assert all(m.blame == "undecided" for m in found), [str(m) for m in found]


def test_an_error_in_a_torch_transformer_layer_is_caught_there(monkeypatch):
    spec = NetworkSpec(
        input_shape=(2, 5, 4),
        layers=[
            LayerSpec(
                "TransformerEncoderLayer",
                {
                    "d_model": 4,
                    "nhead": 2,
                    "dim_feedforward": 6,
                    "dropout": 0.0,
                    "batch_first": True,
                },
            ),
            LayerSpec("GRU", {"input_size": 4, "hidden_size": 3, "batch_first": True}),
        ],  # fmt: skip
        loss=LayerSpec("MSELoss", {}),
        seed=3,
    )
    assert check(spec).ok
    original = torch.nn.Linear.forward

    def planted(self, x):  # the feed-forward's second Linear, inside the layer
        y = original(self, x)
        return y * SCALE if self.out_features == 4 and self.in_features == 6 else y

    monkeypatch.setattr(torch.nn.Linear, "forward", planted)
    only(check(spec), kind="forward", layer=0, layer_type="TransformerEncoderLayer")


@pytest.mark.parametrize(
    "name",
    [
        # a sequence of length 1: softmax over one key is exactly 1, so the scores'
        # gradient is 0 in the math; torch's kernel rounds dP - D at the size of its
        # terms, which the reference samples (rounding.difference) ...
        "fp-attention-one-key-float32",
        # ... and takes D as rowsum(dO * O), as torch's fused kernels do, so its rounding
        # comes from the same two dot products
        "fp-attention-one-key-row-sums-float32",
    ],
)
def test_attention_over_one_key_passes(name):
    spec = NetworkSpec.from_json((CASES / f"{name}.json").read_text())
    report = check(spec, devices=["cpu"], dtypes=["float32"])
    assert report.ok, report.summary()


def test_a_dropout_after_a_batch_first_lstm_gets_torch_s_mask():
    # the LSTM's batch-first output is a transposed view, and torch fills a dropout mask
    # in its input's memory order: the harness reads the mask with the same strides
    spec = NetworkSpec.from_json((CASES / "dropout-after-batch-first-lstm.json").read_text())
    report = check(spec, devices=["cpu"], dtypes=["float64"])
    assert report.ok, report.summary()


def state_spec() -> NetworkSpec:
    """(N, L, F) -> LSTM (node 8) started from (h0, c0) computed from the data, each by
    Flatten -> Linear -> Tanh -> tile (one copy per layer and direction) -> MSELoss."""
    n, steps, features, hidden, copies = 3, 4, 5, 6, 2

    def initial(first: int) -> list[LayerSpec]:  # nodes first .. first + 3
        linear = {"in_features": steps * features, "out_features": hidden}
        return [
            LayerSpec("Flatten", {}, [-1]),
            LayerSpec("Linear", linear, [first]),
            LayerSpec("Tanh", {}, [first + 1]),
            LayerSpec("tile", {"copies": copies}, [first + 2]),
        ]

    lstm = {"input_size": features, "hidden_size": hidden, "num_layers": 2, "batch_first": True}
    layers = [*initial(0), *initial(4), LayerSpec("LSTM", lstm, [-1, 3, 7])]
    return NetworkSpec(input_shape=(n, steps, features), layers=layers,
                       loss=LayerSpec("MSELoss", {}), seed=8)  # fmt: skip


def test_an_initial_state_from_the_data_passes_and_traces_its_gradient():
    spec = state_spec()
    assert infer_shapes(spec)[-1] == (3, 4, 6)
    report = check(spec)
    assert report.ok, report.summary()
    trace = next(t for name, t in report.traces.items() if name.startswith("torch"))
    assert {"8.1", "8.2"} <= set(trace.grad_edges)  # dL/dh0 and dL/dc0 of the LSTM node
    assert trace.grad_edges["8.1"].shape == (2, 3, 6)
    assert NetworkSpec.from_json(spec.to_json()).to_json() == spec.to_json()


def test_an_error_in_torch_s_gradient_wrt_h0_is_caught_at_that_edge(monkeypatch):
    original = torch.nn.LSTM.forward

    def wrong_state_grad(self, input, hx=None):
        if hx is not None:  # the value unchanged, its gradient x(1 + 1e-3)
            hx = tuple(h + 1e-3 * (h - h.detach()) for h in hx)
        return original(self, input, hx)

    monkeypatch.setattr(torch.nn.LSTM, "forward", wrong_state_grad)
    found = only(check(state_spec()), kind="grad_input", layer=8, layer_type="LSTM")
    assert {m.tensor for m in found} <= {"grad wrt input 1", "grad wrt input 2"}, [
        str(m) for m in found
    ]
