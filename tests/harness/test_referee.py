"""The long double referee blames the side farther from a higher-precision recomputation."""

from __future__ import annotations

import copy

import pytest
import torch

import harness.referee as referee_module
import reference.nn as rnn
from harness.backends import case_data
from harness.backends.reference import ReferenceBackend
from harness.backends.torch import TorchBackend
from harness.referee import referee
from harness.spec import LayerSpec, NetworkSpec
from harness.verdict import Blame, Evidence, Kind, Mismatch

pytestmark = pytest.mark.skipif(
    not referee_module.has_wider_longdouble(), reason="long double is float64 here"
)

NUDGE = 1 + 1e-9


def linear(i: int, o: int) -> LayerSpec:
    return LayerSpec("Linear", {"in_features": i, "out_features": o})


def net(middle: str, seed: int = 11) -> NetworkSpec:
    """Linear(5, 6) -> ``middle`` (layer 1) -> Linear(6, 3) -> CrossEntropyLoss."""
    return NetworkSpec(
        input_shape=(4, 5),
        layers=[linear(5, 6), LayerSpec(middle), linear(6, 3)],
        loss=LayerSpec("CrossEntropyLoss", {}),
        target={"kind": "class_index", "num_classes": 3},
        seed=seed,
    )


def traces(spec: NetworkSpec):
    data = case_data(spec)
    ref64 = ReferenceBackend().run(spec, "float64", data)
    torch64 = TorchBackend("cpu", "float64").run(spec, data)
    return data, ref64, torch64


def mismatch(kind: Kind, layer: int | None, tensor: str, layer_type: str = "") -> Mismatch:
    evidence = Evidence(
        name=tensor, index=(0,), torch=0.0, reference=0.0, truth=0.0, allowance=1.0,
        torch_ratio=2.0,
    )  # fmt: skip
    return Mismatch(kind, layer, layer_type, tensor, "cpu", "float64", evidence)


def test_torch_float32_sixth_in_hardsigmoid_backward_is_blamed_on_torch():
    spec = net("Hardsigmoid")
    data, ref64, torch64 = traces(spec)
    m = mismatch(Kind.GRAD_INPUT, 1, "grad wrt input", "Hardsigmoid")
    blame, note = referee(spec, data, m, ref64, torch64)
    assert blame is Blame.TORCH, note
    assert note.startswith("higher precision (long double) referee: torch off by")


def test_error_planted_in_torch_forward_is_blamed_on_torch(monkeypatch):
    original = torch.nn.Tanh.forward
    monkeypatch.setattr(torch.nn.Tanh, "forward", lambda self, x: original(self, x) * NUDGE)
    spec = net("Tanh")
    data, ref64, torch64 = traces(spec)
    blame, note = referee(spec, data, mismatch(Kind.FORWARD, 1, "output"), ref64, torch64)
    assert blame is Blame.TORCH, note


def test_error_planted_in_the_reference_trace_is_blamed_on_the_reference():
    spec = net("Tanh")
    data, ref64, torch64 = traces(spec)
    bad = copy.deepcopy(ref64)
    bad.outputs[1] = bad.outputs[1] * NUDGE
    blame, note = referee(spec, data, mismatch(Kind.FORWARD, 1, "output"), bad, torch64)
    assert blame is Blame.REFERENCE, note


@pytest.mark.parametrize(
    "kind, layer, tensor",
    [
        (Kind.GRAD_PARAM, 2, "2.weight"),
        (Kind.GRAD_INPUT, 2, "grad wrt input"),
        (Kind.GRAD_OUTPUT, None, "grad wrt network output"),
        (Kind.LOSS, None, "loss"),
    ],
)
def test_each_kind_finds_a_perturbed_reference_tensor(kind, layer, tensor):
    spec = net("Tanh")
    data, ref64, torch64 = traces(spec)
    bad = copy.deepcopy(ref64)
    if kind is Kind.GRAD_PARAM:
        bad.grad_params[tensor] = bad.grad_params[tensor] * NUDGE
    elif kind is Kind.LOSS:
        bad.loss = bad.loss * NUDGE
    else:  # the grad wrt layer 2's input is layer 1's output gradient
        at = -1 if kind is Kind.GRAD_OUTPUT else 1
        bad.grad_outputs[at] = bad.grad_outputs[at] * NUDGE
    blame, note = referee(spec, data, mismatch(kind, layer, tensor), bad, torch64)
    assert blame is Blame.REFERENCE, note


@pytest.mark.parametrize(
    "kind, layer, tensor",
    [
        (Kind.FORWARD, 1, "output"),
        (Kind.FORWARD, 0, "output"),
        (Kind.GRAD_INPUT, 1, "grad wrt input"),
        (Kind.GRAD_INPUT, 0, "grad wrt input"),
        (Kind.GRAD_PARAM, 0, "0.bias"),
        (Kind.LOSS, None, "loss"),
        (Kind.GRAD_OUTPUT, None, "grad wrt network output"),
    ],
)
def test_agreeing_sides_are_never_blamed(kind, layer, tensor):
    """Both within float64 rounding of the long double result: a precision verdict."""
    spec = net("Tanh")
    data, ref64, torch64 = traces(spec)
    verdict = referee(spec, data, mismatch(kind, layer, tensor), ref64, torch64)
    assert verdict is not None and verdict[0] is Blame.PRECISION, verdict


def test_declines_what_it_cannot_referee(monkeypatch):
    spec = net("Tanh")
    data, ref64, torch64 = traces(spec)
    buffer = mismatch(Kind.BUFFER, 1, "1.running_mean")
    assert referee(spec, data, buffer, ref64, torch64) is None
    forward = mismatch(Kind.FORWARD, 1, "output")

    def broken(self, x):
        raise TypeError("no long double here")

    with monkeypatch.context() as patch:
        patch.setattr(rnn.Tanh, "forward", broken)
        assert referee(spec, data, forward, ref64, torch64) is None
    with monkeypatch.context() as patch:
        patch.setattr(referee_module, "has_wider_longdouble", lambda: False)
        assert referee(spec, data, forward, ref64, torch64) is None


def test_dropout_layer_is_not_refereed():
    spec = net("Dropout")
    spec.train = False
    data, ref64, torch64 = traces(spec)
    assert referee(spec, data, mismatch(Kind.FORWARD, 1, "output"), ref64, torch64) is None
