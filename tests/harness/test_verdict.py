"""The verdict's own holes, each pinned by a planted fault that must be reported.

- NaN and inf: a NaN on one side against a number on the other is a mismatch;
- known deviations excuse only their own size of error, and never hide later stages;
- the first diverging layer's own parameter gradient is reported with it;
- half precision runs torch against the float64 truth and still sees a planted error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference.nn as rnn
from harness.bounds import ratio
from harness.checking import check
from harness.compare import FLOAT32, compare_arrays
from harness.spec import LayerSpec, NetworkSpec


def linear(i: int, o: int) -> LayerSpec:
    return LayerSpec("Linear", {"in_features": i, "out_features": o})


def net(*layers: LayerSpec, **overrides) -> NetworkSpec:
    fields = dict(
        input_shape=(4, 5),
        layers=list(layers),
        loss=LayerSpec("MSELoss", {}),
        target={"kind": "regression"},
        seed=3,
    )
    fields.update(overrides)
    return NetworkSpec(**fields)


# -- NaN and inf ------------------------------------------------------------------------
def test_nan_against_a_number_is_never_within():
    truth = np.array([1.0, np.nan, np.inf, 2.0])
    allowed = np.full(4, 1e-3)
    assert list(ratio([1.0, np.nan, np.inf, np.nan], truth, allowed)[[0, 1, 2]]) == [0, 0, 0]
    assert np.isinf(ratio([1.0, np.nan, np.inf, np.nan], truth, allowed)[3])
    assert np.isinf(ratio([np.nan], [1.0], [1e300])[0])
    assert np.isinf(ratio([-np.inf], [np.inf], [1.0])[0])
    assert not compare_arrays("x", np.array([np.nan]), np.array([1.0]), FLOAT32).ok
    assert not compare_arrays("x", np.array([1.0]), np.array([np.nan]), FLOAT32).ok


def test_a_reference_that_returns_nan_fails_check(monkeypatch):
    original = rnn.Tanh.forward

    def nan_tanh(self, x):
        out = original(self, x).copy()
        out.flat[0] = np.nan
        return out

    monkeypatch.setattr(rnn.Tanh, "forward", nan_tanh)
    report = check(net(linear(5, 6), LayerSpec("Tanh"), linear(6, 2)), devices=["cpu"])
    assert not report.ok
    assert {(m.kind, m.layer) for m in report.mismatches} == {("forward", 1)}, report.summary()


# -- known deviations -------------------------------------------------------------------
def test_a_known_deviation_does_not_excuse_a_larger_error(monkeypatch):
    """torch's CELU rounds 1/alpha to float32 (~6e-8): an alpha off by 3e-5 on both passes
    (so gradcheck passes) is far beyond that and is a mismatch, not a known deviation."""
    original_forward, original_backward = rnn.CELU.forward, rnn.CELU.backward

    def forward(self, x):
        alpha = self.alpha
        self.alpha = alpha * (1 + 3e-5)
        try:
            return original_forward(self, x)
        finally:
            self.alpha = alpha

    def backward(self, g):
        alpha = self.alpha
        self.alpha = alpha * (1 + 3e-5)
        try:
            return original_backward(self, g)
        finally:
            self.alpha = alpha

    spec = net(linear(5, 6), LayerSpec("CELU", {"alpha": 1.137}), linear(6, 2))
    clean = check(spec, devices=["cpu"], dtypes=("float64",))
    assert clean.ok, clean.summary()
    monkeypatch.setattr(rnn.CELU, "forward", forward)
    monkeypatch.setattr(rnn.CELU, "backward", backward)
    report = check(spec, devices=["cpu"], dtypes=("float64",))
    assert not report.ok, report.summary()
    assert report.mismatches[0].layer == 1


def test_a_known_deviation_never_hides_the_steps_after_it(monkeypatch):
    """Linear-CELU-Linear with Adam in float64: CELU's backward is a known deviation, and
    an Adam step 1e-5 too long in torch is still found after it."""
    spec = net(
        linear(5, 6),
        LayerSpec("CELU", {"alpha": 1.137}),
        linear(6, 2),
        optimizer=LayerSpec("Adam", {"lr": 0.01}),
        steps=2,
    )
    clean = check(spec, devices=["cpu"], dtypes=("float64",))
    assert clean.ok, clean.summary()
    original = torch.optim.Adam.step

    def long_step(self, *args, **kwargs):
        before = [p.detach().clone() for g in self.param_groups for p in g["params"]]
        out = original(self, *args, **kwargs)
        with torch.no_grad():
            params = [p for g in self.param_groups for p in g["params"]]
            for p, old in zip(params, before):
                p.add_((p - old) * 1e-5)
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", long_step)
    report = check(spec, devices=["cpu"], dtypes=("float64",))
    steps = [m for m in report.mismatches if m.kind == "step"]
    assert steps and steps[0].step == 1, report.summary()


# -- the first divergence's own parameter gradient ---------------------------------------
def test_the_first_diverging_layers_parameter_gradient_is_reported(monkeypatch):
    original = rnn.Linear.backward

    def wrong(self, grad_output):
        grad_input = original(self, grad_output)
        if self.in_features == 6:  # the last layer only
            self.weight.grad = self.weight.grad * (1 + 1e-3)
            return grad_input * (1 + 1e-3)
        return grad_input

    monkeypatch.setattr(rnn.Linear, "backward", wrong)
    report = check(net(linear(5, 6), LayerSpec("Tanh"), linear(6, 2)), devices=["cpu"])
    for dtype in ("float32", "float64"):
        found = {(m.kind, m.tensor) for m in report.mismatches if m.dtype == dtype}
        assert ("grad_input", "grad wrt input") in found, report.summary()
        assert ("grad_param", "2.weight") in found, report.summary()


# -- half precision -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype, error", [("float16", 0.05), ("bfloat16", 0.3)])
def test_half_precision_is_judged_against_the_float64_truth(monkeypatch, dtype, error):
    """A half-precision-only fault in torch (the kind mixed-precision kernels have) is
    found at its layer and blamed on torch; the error is ~100 units of the format's
    roundoff (float16: u = 4.9e-4, bfloat16: u = 3.9e-3)."""
    spec = net(
        linear(5, 6), LayerSpec("Tanh"), linear(6, 2), optimizer=LayerSpec("SGD", {"lr": 0.1})
    )
    clean = check(spec, devices=["cpu"], dtypes=(dtype,))
    assert clean.ok, clean.summary()
    original = torch.nn.Tanh.forward

    def lossy(self, x):
        out = original(self, x)
        return out * (1 + error) if out.dtype in (torch.float16, torch.bfloat16) else out

    monkeypatch.setattr(torch.nn.Tanh, "forward", lossy)
    report = check(spec, devices=["cpu"], dtypes=(dtype,))
    assert not report.ok
    first = report.mismatches[0]
    assert (first.kind, first.layer, first.blame) == ("forward", 1, "torch"), report.summary()


def test_a_dtype_the_harness_cannot_run_is_refused_up_front():
    with pytest.raises(ValueError, match="unknown dtype"):
        check(net(linear(5, 2)), devices=["cpu"], dtypes=("int8",))
