"""Teeth: plant one small error in one backend and the harness must report it, localized.

A harness that passes everything is worthless. Each test below breaks exactly one
thing by 1e-3 (or drops a term) with monkeypatch and asserts that ``check``
names the right kind, the right layer index and class, and nothing downstream.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference.functional as F
import reference.nn as rnn
from harness.checking import check
from harness.spec import LayerSpec, NetworkSpec

SCALE = 1 + 1e-3


def linear(i: int, o: int, bias: bool = True) -> LayerSpec:
    return LayerSpec("Linear", {"in_features": i, "out_features": o, "bias": bias})


def classifier(**overrides) -> NetworkSpec:
    """Linear -> Sigmoid -> Tanh (layer 2, the only Tanh) -> Linear -> CrossEntropyLoss."""
    fields = dict(
        input_shape=(4, 5),
        layers=[linear(5, 6), LayerSpec("Sigmoid"), LayerSpec("Tanh"), linear(6, 3)],
        loss=LayerSpec("CrossEntropyLoss", {}),
        target={"kind": "class_index", "num_classes": 3},
        seed=11,
    )
    fields.update(overrides)
    return NetworkSpec(**fields)


def only(report, **expected):
    assert not report.ok, "the planted error went unnoticed"
    for m in report.mismatches:
        for key, value in expected.items():
            assert getattr(m, key) == value, f"{key}: {m}"
    return report.mismatches


def test_clean_case_passes():
    report = check(classifier())
    assert report.ok, report.summary()


def test_forward_error_in_reference_is_localized_to_its_layer(monkeypatch):
    original = rnn.Tanh.forward
    monkeypatch.setattr(rnn.Tanh, "forward", lambda self, x: original(self, x) * SCALE)
    found = only(check(classifier()), kind="forward", layer=2, layer_type="Tanh")
    assert {m.dtype for m in found} == {"float32", "float64"}
    # its forward no longer matches its backward: the reference is blamed
    assert all(m.blame == "reference" for m in found), [str(m) for m in found]
    assert all(m.downstream == 1 for m in found)  # layer 3's output, explained by layer 2


def test_dropped_bias_gradient_is_a_grad_param_mismatch(monkeypatch):
    original = rnn.Linear.backward

    def no_bias_grad(self, grad_output):
        saved = None if self.bias is None or self.bias.grad is None else self.bias.grad.copy()
        grad_input = original(self, grad_output)
        if self.bias is not None:
            self.bias.grad = saved if saved is not None else np.zeros_like(self.bias.data)
        return grad_input

    monkeypatch.setattr(rnn.Linear, "backward", no_bias_grad)
    spec = classifier(
        layers=[linear(5, 6, bias=False), LayerSpec("Sigmoid"), LayerSpec("Tanh"), linear(6, 3)]
    )
    found = only(check(spec), kind="grad_param", layer=3, layer_type="Linear", tensor="3.bias")
    assert len(found) == 2  # float32 and float64


def test_wrong_constant_in_a_backward_only(monkeypatch):
    original = F.sigmoid_backward
    monkeypatch.setattr(F, "sigmoid_backward", lambda *a, **k: original(*a, **k) * SCALE)
    found = only(check(classifier()), kind="grad_input", layer=1, layer_type="Sigmoid")
    assert all(m.blame == "reference" for m in found), [str(m) for m in found]


def test_wrong_loss_backward_is_the_loss_gradient(monkeypatch):
    original = rnn.CrossEntropyLoss.backward
    monkeypatch.setattr(
        rnn.CrossEntropyLoss, "backward", lambda self, *a, **k: original(self, *a, **k) * SCALE
    )
    only(check(classifier()), kind="grad_output", layer=None, layer_type="CrossEntropyLoss")


class _RolledGrad(torch.autograd.Function):
    """Identity forward; the backward's gradient shifted by one element (an off-by-one)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return torch.roll(grad, 1, dims=-1)


def test_off_by_one_in_torch_backward_is_attributed_to_torch(monkeypatch):
    original = torch.nn.Tanh.forward
    monkeypatch.setattr(
        torch.nn.Tanh, "forward", lambda self, x: _RolledGrad.apply(original(self, x))
    )
    found = only(check(classifier()), kind="grad_input", layer=2, layer_type="Tanh")
    assert all(m.blame == "torch" for m in found), [str(m) for m in found]


def test_transposed_torch_forward_is_localized(monkeypatch):
    original = torch.nn.Sigmoid.forward
    monkeypatch.setattr(
        torch.nn.Sigmoid, "forward", lambda self, x: torch.roll(original(self, x), 1, dims=0)
    )
    only(check(classifier()), kind="forward", layer=1, layer_type="Sigmoid")


def test_float32_only_error_blames_the_float32_side(monkeypatch):
    original = F.sigmoid_backward

    def lossy(*args, **kwargs):
        out = original(*args, **kwargs)
        return out * np.float32(SCALE) if out.dtype == np.float32 else out

    monkeypatch.setattr(F, "sigmoid_backward", lossy)
    found = only(check(classifier()), kind="grad_input", layer=1, dtype="float32")
    assert all(m.blame == "reference" for m in found), [str(m) for m in found]
    assert "vs float64" in found[0].note


def test_biased_running_var_is_a_buffer_mismatch(monkeypatch):
    if getattr(rnn, "BatchNorm1d", None) is None:
        pytest.skip("reference.nn.BatchNorm1d not implemented yet")
    original = rnn.BatchNorm1d.forward

    def biased(self, x):
        old = np.array(self.running_var, copy=True)
        out = original(self, x)
        if self.training:
            m, n = self.momentum, x.size // x.shape[1]
            fresh = (self.running_var - (1 - m) * old) / m  # the unbiased batch variance
            self.running_var = (1 - m) * old + m * fresh * (n - 1) / n
        return out

    monkeypatch.setattr(rnn.BatchNorm1d, "forward", biased)
    spec = classifier(
        layers=[
            linear(5, 6),
            LayerSpec("BatchNorm1d", {"num_features": 6}),
            LayerSpec("Tanh"),
            linear(6, 3),
        ]
    )
    only(check(spec), kind="buffer", layer=1, layer_type="BatchNorm1d", tensor="1.running_var")


def test_adam_without_bias_correction_fails_at_step_1(monkeypatch):
    import reference.optim as ropt

    if getattr(ropt, "Adam", None) is None:
        pytest.skip("reference.optim.Adam not implemented yet")
    original = ropt.Adam.step

    def uncorrected(self, *args, **kwargs):
        # the first update without bias correction is (1 - b1) / sqrt(1 - b2) times the
        # corrected one (eps aside): plant exactly that on every step
        before = [p.data.copy() for p in self._harness_params]
        result = original(self, *args, **kwargs)
        b1, b2 = 0.9, 0.999
        for p, old in zip(self._harness_params, before):
            p.data = old + (p.data - old) * (1 - b1) / np.sqrt(1 - b2)
        return result

    init = ropt.Adam.__init__

    def remember(self, params, *args, **kwargs):
        params = list(params)
        init(self, params, *args, **kwargs)
        object.__setattr__(self, "_harness_params", params)

    monkeypatch.setattr(ropt.Adam, "__init__", remember)
    monkeypatch.setattr(ropt.Adam, "step", uncorrected)
    spec = classifier(optimizer=LayerSpec("Adam", {"lr": 0.01}), steps=3)
    found = only(check(spec), kind="step", step=1)
    assert {m.tensor for m in found} >= {"0.weight", "3.bias"}


def _dropout_spec() -> NetworkSpec:
    return classifier(
        layers=[linear(5, 8), LayerSpec("Dropout", {"p": 0.5}), LayerSpec("Tanh"), linear(8, 3)],
        optimizer=LayerSpec("SGD", {"lr": 0.1}),
        steps=3,
        train=True,
    )


def _need_dropout():
    pytest.importorskip("harness.dropout_masks")
    if getattr(rnn, "Dropout", None) is None:
        pytest.skip("reference.nn.Dropout not implemented yet")


def test_training_dropout_uses_torchs_mask_on_both_sides():
    _need_dropout()
    report = check(_dropout_spec())
    assert report.ok, report.summary()
    dropped = report.traces["reference-float64-cpu"].outputs[1]
    assert (dropped == 0).any() and (dropped != 0).any()


def test_a_different_dropout_mask_is_a_forward_mismatch_at_the_dropout(monkeypatch):
    _need_dropout()
    from harness.backends.torch import TorchBackend

    original = TorchBackend.mask
    monkeypatch.setattr(
        TorchBackend, "mask", lambda self, *a: np.roll(original(self, *a), 1, axis=-1)
    )
    only(check(_dropout_spec()), kind="forward", layer=1, layer_type="Dropout")


def test_a_gradient_that_is_exactly_zero_in_the_math_is_not_a_mismatch():
    """A bias added along the softmax's dim cannot change the output: its gradient is 0
    and both sides return rounding noise; comparing noise with noise is not a finding."""
    if getattr(rnn, "Conv2d", None) is None:
        pytest.skip("reference.nn.Conv2d not implemented yet")
    spec = NetworkSpec(
        (3, 2, 4, 2),
        [
            LayerSpec("Conv2d", {"in_channels": 2, "out_channels": 3, "kernel_size": 1}),
            LayerSpec("Softmax", {"dim": 2}),
        ],
        LayerSpec("MSELoss", {"reduction": "sum"}),
        {"kind": "regression"},
        seed=4,
    )
    report = check(spec)
    assert report.ok, report.summary()
    bias_grad = report.traces["reference-float64"].grad_params["0.bias"]
    assert np.max(np.abs(bias_grad)) < 1e-12


def test_a_small_error_in_a_small_gradient_is_still_caught(monkeypatch):
    original = F.sigmoid_backward
    # the scale floor of backward comparisons applies to noise-level tensors only:
    # an ordinary gradient keeps its own scale, and a 1e-3 error in it still counts
    monkeypatch.setattr(F, "sigmoid_backward", lambda *a, **k: original(*a, **k) * SCALE)
    spec = classifier(
        layers=[linear(5, 6), LayerSpec("Sigmoid"), LayerSpec("Tanh"), linear(6, 3)], seed=12
    )
    found = only(check(spec, dtypes=("float64",)), kind="grad_input", layer=1)
    assert found
