"""The precision rules of ``harness.precision``: each false positive it removes, pinned,
and for each rule the planted error of the kind it could hide, still caught.

- near-ties in a max: two elements equal in exact math round differently in each
  backend and each side's max picks a different one (a warning, not a mismatch);
- propagated scale floors: an error allowed at the scale of a gradient passes through
  an elementwise mask (a ReLU) into a tensor of much smaller scale;
- normalization floors: a batch norm of a (nearly) constant channel multiplies an ulp
  of its mean by up to 1/sqrt(eps), so each channel is judged at the scale of its terms.
"""

from __future__ import annotations

import numpy as np
import pytest

import reference.functional as F
import reference.nn as rnn
from harness.check import check
from harness.precision import NEAR_TIE_NOTE
from harness.spec import LayerSpec, NetworkSpec

SCALE = 1 + 1e-3


def _near_tie_spec() -> NetworkSpec:
    """Upsampled (AdaptiveAvgPool2d 1x2 -> 4x4), averaged, then max-pooled: the rows are
    equal in exact math, and the backends round them differently."""
    return NetworkSpec(
        input_shape=(2, 1, 1, 2),
        layers=[
            LayerSpec(
                "AvgPool2d",
                {
                    "kernel_size": 1,
                    "stride": None,
                    "padding": 0,
                    "ceil_mode": False,
                    "count_include_pad": True,
                },
            ),  # fmt: skip
            LayerSpec(
                "Conv2d",
                {
                    "in_channels": 1,
                    "out_channels": 1,
                    "kernel_size": 1,
                    "stride": 1,
                    "padding": 0,
                    "dilation": 1,
                    "groups": 1,
                    "bias": True,
                    "padding_mode": "zeros",
                },
            ),  # fmt: skip
            LayerSpec("AdaptiveAvgPool2d", {"output_size": 4}),
            LayerSpec(
                "AvgPool2d",
                {
                    "kernel_size": 3,
                    "stride": 1,
                    "padding": 1,
                    "ceil_mode": False,
                    "count_include_pad": False,
                },
            ),  # fmt: skip
            LayerSpec("AdaptiveMaxPool2d", {"output_size": 1}),
        ],
        loss=LayerSpec("MSELoss", {"reduction": "mean"}),
        target={"kind": "regression"},
        optimizer=LayerSpec(
            "SGD", {"lr": 0.0625, "momentum": 0.0, "weight_decay": 0.0, "maximize": False}
        ),
        steps=1,
        train=False,
        seed=0,
    )


def _masked_cancellation_spec() -> NetworkSpec:
    """BatchNorm1d (training) makes an input gradient [3.3e-5, 1.1, -1.1] whose first
    element is a cancellation; the ReLU below keeps only that one."""
    return NetworkSpec(
        (3, 6),
        [
            LayerSpec("Linear", {"in_features": 6, "out_features": 1, "bias": True}),
            LayerSpec("ReLU", {}),
            LayerSpec(
                "BatchNorm1d",
                {"num_features": 1, "momentum": 0.1, "affine": True, "track_running_stats": True},
            ),  # fmt: skip
            LayerSpec("ReLU", {}),
            LayerSpec(
                "BatchNorm1d",
                {"num_features": 1, "momentum": 0.1, "affine": True, "track_running_stats": False},
            ),  # fmt: skip
        ],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        optimizer=LayerSpec("SGD", {"lr": 0.0625}),
        steps=1,
        train=False,
        seed=0,
    )


def _linear(i: int, o: int) -> LayerSpec:
    return LayerSpec("Linear", {"in_features": i, "out_features": o, "bias": True})


def _relu_bn_eval_spec() -> NetworkSpec:
    """Linear -> ReLU -> BatchNorm1d (eval: an elementwise affine) -> ReLU -> Linear: masks
    that let the propagated floors act, on gradients of ordinary size."""
    return NetworkSpec(
        (6, 5),
        [
            _linear(5, 8),
            LayerSpec("ReLU", {}),
            LayerSpec("BatchNorm1d", {"num_features": 8}),
            LayerSpec("ReLU", {}),
            _linear(8, 3),
        ],
        LayerSpec("CrossEntropyLoss", {}),
        {"kind": "class_index", "num_classes": 3},
        train=False,
        seed=5,
    )


def _caught(report, **expected):
    assert not report.ok, "the planted error went unnoticed: " + report.summary()
    for m in report.mismatches:
        for key, value in expected.items():
            assert getattr(m, key) == value, f"{key}: {m}"
    return report.mismatches


# -- near-ties in a max ----------------------------------------------------------------
def test_near_tie_in_a_max_is_a_precision_warning():
    report = check(_near_tie_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    assert report.warnings, "the near-tie no longer shows: the case lost its point"
    for w in report.warnings:
        assert (w.kind, w.layer, w.layer_type) == ("grad_input", 4, "AdaptiveMaxPool2d")
        assert w.note == NEAR_TIE_NOTE


def test_gradient_routed_to_a_non_max_element_is_still_caught(monkeypatch):
    """The near-tie case itself, with the reference's max-pool backward shifting each
    gradient to the neighbouring (clearly smaller) element."""
    original = rnn.AdaptiveMaxPool2d.backward
    monkeypatch.setattr(
        rnn.AdaptiveMaxPool2d, "backward", lambda self, g: np.roll(original(self, g), 1, -1)
    )
    found = _caught(
        check(_near_tie_spec(), devices=["cpu"]),
        kind="grad_input",
        layer=4,
        layer_type="AdaptiveMaxPool2d",
    )
    assert {m.dtype for m in found} == {"float32", "float64"}


def test_wrong_constant_in_a_tied_max_backward_is_still_caught(monkeypatch):
    """Re-routing between near-tied elements moves gradient but never changes its total:
    a scaled backward at a near-tie is still a mismatch."""
    original = rnn.AdaptiveMaxPool2d.backward
    monkeypatch.setattr(
        rnn.AdaptiveMaxPool2d, "backward", lambda self, g: original(self, g) * SCALE
    )
    _caught(
        check(_near_tie_spec(), devices=["cpu"]),
        kind="grad_input",
        layer=4,
        layer_type="AdaptiveMaxPool2d",
    )


def test_max_pool_backward_to_a_non_max_element_is_caught(monkeypatch):
    """An ordinary MaxPool2d (no ties): the shifted gradient is a grad_input mismatch."""
    original = rnn.MaxPool2d.backward
    monkeypatch.setattr(
        rnn.MaxPool2d, "backward", lambda self, g: np.roll(original(self, g), 1, -1)
    )
    spec = NetworkSpec(
        (2, 1, 4, 4),
        [
            LayerSpec("Conv2d", {"in_channels": 1, "out_channels": 2, "kernel_size": 1}),
            LayerSpec("MaxPool2d", {"kernel_size": 2}),
            LayerSpec("Flatten", {}),
        ],
        LayerSpec("MSELoss", {"reduction": "sum"}),
        {"kind": "regression"},
        seed=3,
    )
    _caught(check(spec, devices=["cpu"]), kind="grad_input", layer=1, layer_type="MaxPool2d")


# -- propagated scale floors -----------------------------------------------------------
def test_error_inherited_through_a_relu_mask_is_not_a_mismatch():
    report = check(_masked_cancellation_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    below_relu = report.traces["reference-float64"].grad_outputs[2]
    assert np.count_nonzero(below_relu) == 1  # the mask the rule is about


def test_propagated_floors_leave_ordinary_gradients_at_their_scale():
    report = check(_relu_bn_eval_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    masked = report.traces["reference-float64"].grad_outputs[2]
    assert (masked == 0).any() and (masked != 0).any()


def test_small_error_in_a_relu_backward_is_still_caught(monkeypatch):
    original = F.relu_backward
    monkeypatch.setattr(F, "relu_backward", lambda *a, **k: original(*a, **k) * SCALE)
    found = _caught(
        check(_relu_bn_eval_spec(), devices=["cpu"]), kind="grad_input", layer=3, layer_type="ReLU"
    )
    assert {m.dtype for m in found} == {"float32", "float64"}


def test_small_error_in_a_batchnorm_eval_backward_is_still_caught(monkeypatch):
    original = rnn.BatchNorm1d.backward

    def lossy(self, grad_output):
        grad_input = original(self, grad_output)
        return grad_input if self.training else grad_input * SCALE

    monkeypatch.setattr(rnn.BatchNorm1d, "backward", lossy)
    found = _caught(
        check(_relu_bn_eval_spec(), devices=["cpu"]),
        kind="grad_input",
        layer=2,
        layer_type="BatchNorm1d",
    )
    assert {m.dtype for m in found} == {"float32", "float64"}


def _dead_unit_batchnorm_spec() -> NetworkSpec:
    """Two ReLUs of a 1-wide layer zero the whole batch, so the BatchNorm (batch statistics:
    track_running_stats=False) normalizes a constant column: 0 in the math, an ulp of the
    mean times 1/sqrt(eps) in float32 (found by the thorough profile)."""
    return NetworkSpec(
        (3, 1),
        [
            LayerSpec("Linear", {"in_features": 1, "out_features": 1, "bias": True}),
            LayerSpec("ReLU", {}),
            LayerSpec("ReLU", {}),
            LayerSpec("Linear", {"in_features": 1, "out_features": 1, "bias": True}),
            LayerSpec(
                "BatchNorm1d",
                {"num_features": 1, "momentum": 0.1, "affine": True, "track_running_stats": False},
            ),
        ],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        optimizer=LayerSpec("SGD", {"lr": 0.0625}),
        steps=1,
        train=False,
        seed=0,
    )


def test_batchnorm_of_a_constant_channel_is_judged_at_its_terms_scale():
    spec = _dead_unit_batchnorm_spec()
    report = check(spec, devices=["cpu"])
    assert report.ok, report.summary()


def _constant_channel_case(monkeypatch) -> NetworkSpec:
    """BatchNorm1d on (4, 2) data whose channel 0 is constant (what a dead unit feeds it)
    in the data both backends get; channel 1 is ordinary."""
    import harness.check as harness_check

    drawn = harness_check.case_data

    def with_constant_channel(spec):
        data = drawn(spec)
        data.input[:, 0] = 0.7
        return data

    monkeypatch.setattr(harness_check, "case_data", with_constant_channel)
    return NetworkSpec(
        (4, 2),
        [LayerSpec("BatchNorm1d", {"num_features": 2, "track_running_stats": False})],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        seed=3,
    )


def test_constant_channel_passes_and_an_error_in_its_neighbour_is_still_caught(monkeypatch):
    """The floor is per channel: the constant channel's 1/sqrt(eps) does not loosen the
    ordinary channel next to it."""
    spec = _constant_channel_case(monkeypatch)
    clean = check(spec, devices=["cpu"])
    assert clean.ok, clean.summary()

    original = rnn.BatchNorm1d.forward

    def error_in_channel_1(self, x):
        out = original(self, x)
        out[:, 1] *= SCALE
        return out

    monkeypatch.setattr(rnn.BatchNorm1d, "forward", error_in_channel_1)
    for dtype in ("float32", "float64"):
        report = check(spec, devices=["cpu"], dtypes=(dtype,))
        assert not report.ok, dtype
        first = report.mismatches[0]
        assert (first.kind, first.layer, first.layer_type) == ("forward", 0, "BatchNorm1d")


def test_small_error_in_a_batchnorm_forward_is_still_caught(monkeypatch):
    original = rnn.BatchNorm1d.forward
    monkeypatch.setattr(rnn.BatchNorm1d, "forward", lambda self, x: original(self, x) * SCALE)
    for dtype in ("float32", "float64"):
        ordinary = NetworkSpec(
            (4, 3),
            [
                LayerSpec("Linear", {"in_features": 3, "out_features": 2, "bias": True}),
                LayerSpec("BatchNorm1d", {"num_features": 2}),
            ],
            LayerSpec("MSELoss", {"reduction": "mean"}),
            {"kind": "regression"},
            train=True,
            seed=5,
        )
        report = check(ordinary, devices=["cpu"], dtypes=(dtype,))
        assert not report.ok
        first = report.mismatches[0]
        assert (first.kind, first.layer_type) == ("forward", "BatchNorm1d")


def _relu_on_its_kink_spec(dim: int = 3) -> NetworkSpec:
    """A padding row embeds as zeros, LogSoftmax makes it constant, BatchNorm makes it 0 in
    exact math: the ReLU's input sits on its kink, and the two backends' rounding puts
    it on either side (found by the thorough profile)."""
    return NetworkSpec(
        (1, 5),
        [
            LayerSpec("Embedding", {"num_embeddings": 2, "embedding_dim": dim, "padding_idx": 0}),
            LayerSpec("LogSoftmax", {"dim": -1}),
            LayerSpec("BatchNorm1d", {"num_features": 5}),
            LayerSpec("ReLU", {}),
        ],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        optimizer=LayerSpec("SGD", {"lr": 0.0625}),
        steps=1,
        train=True,
        seed=0,
        input_kind="index",
        index_high=2,
    )


@pytest.mark.parametrize("dim", [3, 8])  # 8: the BatchNorm's per-channel floor reaches the ReLU
def test_relu_input_on_its_kink_is_a_precision_warning(dim):
    report = check(_relu_on_its_kink_spec(dim), devices=["cpu"])
    assert report.ok, report.summary()


def test_wrong_constant_in_relu_backward_at_a_kink_is_still_caught(monkeypatch):
    """Both sides must have taken a one-sided derivative: 1.001 * g is neither 0 nor g."""
    original = F.relu_backward
    monkeypatch.setattr(F, "relu_backward", lambda g, x: original(g, x) * SCALE)
    report = check(_relu_on_its_kink_spec(), devices=["cpu"], dtypes=("float64",))
    assert not report.ok
    first = report.mismatches[0]
    assert (first.kind, first.layer_type) == ("grad_input", "ReLU")


def _rmsprop_spec(lr: float = 0.03125) -> NetworkSpec:
    """Gradients of 2.bias around 1e-6 next to 1e-2 ones: correct to their tolerance, but
    RMSprop's g / (sqrt(v) + eps) is steep there (found by the thorough profile)."""
    norm = {"num_features": 6, "affine": True, "track_running_stats": False}
    return NetworkSpec(
        (3, 6),
        [
            LayerSpec("Dropout", {"p": 0.5}),
            LayerSpec("ReLU", {}),
            LayerSpec("BatchNorm1d", norm),
            LayerSpec("ReLU", {}),
            LayerSpec("BatchNorm1d", norm),
        ],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        optimizer=LayerSpec("RMSprop", {"lr": lr, "alpha": 0.99}),
        steps=1,
        seed=2,
    )


def test_a_step_is_allowed_what_its_gradients_tolerance_moves_it():
    report = check(_rmsprop_spec(), devices=["cpu"])
    assert report.ok, report.summary()


def test_a_step_off_by_one_part_in_a_thousand_is_still_caught(monkeypatch):
    """The floor is the gradient's tolerance pushed through the optimizer, not a blanket:
    an update 1e-3 too large (a wrong lr, say) on one side still fails, at step 1."""
    import reference.optim as ropt

    original = ropt.RMSprop.step

    def too_far(self, *args, **kwargs):
        params = [p for group in self.param_groups for p in group["params"]]
        before = [p.data.copy() for p in params]
        result = original(self, *args, **kwargs)
        for p, old in zip(params, before):
            p.data = old + (p.data - old) * SCALE
        return result

    monkeypatch.setattr(ropt.RMSprop, "step", too_far)
    for dtype in ("float32", "float64"):
        report = check(_rmsprop_spec(lr=0.3), devices=["cpu"], dtypes=(dtype,))
        assert not report.ok, dtype
        first = report.mismatches[0]
        assert (first.kind, first.step) == ("step", 1)


@pytest.mark.parametrize(
    "layer",
    [
        LayerSpec("GroupNorm", {"num_groups": 2, "num_channels": 4}),
        LayerSpec("LayerNorm", {"normalized_shape": 4}),
    ],
    ids=lambda spec: spec.type,
)
def test_small_error_in_a_group_or_layer_norm_forward_is_still_caught(monkeypatch, layer):
    """Their floors are per group / per row: an ordinary batch is judged at its own scale."""
    cls = getattr(rnn, layer.type)
    original = cls.forward
    monkeypatch.setattr(cls, "forward", lambda self, x: original(self, x) * SCALE)
    spec = NetworkSpec(
        (3, 5),
        [LayerSpec("Linear", {"in_features": 5, "out_features": 4}), layer],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        seed=4,
    )
    for dtype in ("float32", "float64"):
        report = check(spec, devices=["cpu"], dtypes=(dtype,))
        assert not report.ok, dtype
        first = report.mismatches[0]
        assert (first.kind, first.layer_type) == ("forward", layer.type)


def _adagrad_on_a_cancelled_bias_spec() -> NetworkSpec:
    """BatchNorm(batch statistics) after a BatchNorm: the first one's bias shifts every
    sample alike and the second removes the shift, so its gradient is 0 in the math and
    Adagrad (g / sqrt(sum g^2)) turns the rounding noise into steps of +-lr, in float64
    as in float32 (found by the thorough profile)."""
    return NetworkSpec(
        (3, 2),
        [
            LayerSpec("Dropout", {"p": 0.5}),
            LayerSpec("ReLU", {}),
            LayerSpec("BatchNorm1d", {"num_features": 2}),
            LayerSpec("ReLU", {}),
            LayerSpec("BatchNorm1d", {"num_features": 2, "track_running_stats": False}),
        ],
        LayerSpec("MSELoss", {"reduction": "mean"}),
        {"kind": "regression"},
        optimizer=LayerSpec("Adagrad", {"lr": 0.007812}),
        steps=2,
        train=False,
        seed=4,
    )


def test_what_float64_is_excused_for_float32_is_too():
    report = check(_adagrad_on_a_cancelled_bias_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    assert {w.dtype for w in report.warnings} == {"float32", "float64"}


def test_near_kink_requires_each_side_to_take_a_one_sided_derivative():
    """At an input on ReLU's kink, 0 and g are the two honest answers; 1.001 g is not."""
    from harness.compare import FLOAT32
    from harness.precision import near_kink

    relu = LayerSpec("ReLU", {})
    x = np.array([1e-9, 0.5, -0.3])  # element 0 sits on the kink within rounding
    g_out = np.array([0.8, 0.2, -0.6])
    g_ref = np.array([0.0, 0.2, 0.0])  # the reference took relu'(0-) = 0 there
    passes = np.array([0.8, 0.2, 0.0])  # the other side took relu'(0+) = 1
    assert near_kink(relu, x, g_out, g_ref, passes, FLOAT32, 0.0)
    scaled = np.array([0.8 * SCALE, 0.2, 0.0])  # neither one-sided derivative
    assert not near_kink(relu, x, g_out, g_ref, scaled, FLOAT32, 0.0)
    away = np.array([0.0, 0.2 * SCALE, 0.0])  # differs at an element far from the kink
    assert not near_kink(relu, x, g_out, g_ref, away, FLOAT32, 0.0)
