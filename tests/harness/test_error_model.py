"""The error model of ``harness.bounds`` on the ill-conditioned spots that once needed a
precision rule each: it absorbs every one of them with no rule of its own, and it still
catches the planted error of each kind that such a rule could have hidden.

The spots, each a false positive of a plain tolerance (torch and the reference differ
by more than it, both correctly), now passing because the perturbed reference runs
resolve them the way either side may:

- a near-tie in a max: elements equal in exact math round differently, and each side
  picks another one;
- an error inherited through a mask: an error allowed at the scale of a gradient passes
  through a ReLU into a tensor of much smaller scale;
- a normalization of a (nearly) constant channel, a dead unit: an ulp of its mean times
  up to 1/sqrt(eps);
- an input on a ReLU's kink, on either side in either backend;
- an adaptive step (RMSprop, Adagrad) on a rounding-level gradient, in float64 as in
  float32.

A spot may come out as a precision warning (``report.warnings``), never a mismatch.
Next to each, the planted error (1e-3 relative, a misrouted gradient) is still a
mismatch of its kind, at its layer.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

import reference.functional as F
import reference.nn as rnn
from harness.backends.reference import Site
from harness.bounds import Allowance, Perturbation, local_sites
from harness.checking import check
from harness.compare import compare_arrays, tolerance
from harness.spec import LayerSpec, NetworkSpec
from harness.verdict import Kind, traced

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
        # a seed whose rows the two sides round apart (the reference's average pooling
        # sums a window's offsets in another order since it pools every rank in 3-d)
        seed=9,
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
    that pass errors on to smaller tensors, on gradients of ordinary size."""
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
    """Every error in this file is planted in the reference: it must be reported where
    expected and never blamed on torch (the reference, or undecided where neither side's
    gradcheck can tell and the difference is too large for rounding)."""
    assert not report.ok, "the planted error went unnoticed: " + report.summary()
    for m in report.mismatches:
        for key, value in expected.items():
            assert getattr(m, key) == value, f"{key}: {m}"
        assert m.blame != "torch", str(m)
    return report.mismatches


def _parted(report, dtype: str = "float32", device: str = "cpu") -> list:
    """The tensors where torch and the reference differ by more than the plain tolerance
    of ``dtype``: non-empty while the case is still the ill-conditioned one it pins."""
    tol = tolerance(dtype, device)
    torch_side = traced(report.traces[f"torch-{device}-{dtype}"])
    name = next(k for k in report.traces if k.startswith(f"reference-{dtype}"))
    return [
        key
        for key, value in traced(report.traces[name]).items()
        if key in torch_side and not compare_arrays("", torch_side[key], value, tol).ok
    ]


# -- near-ties in a max ----------------------------------------------------------------
def test_near_tie_in_a_max_is_absorbed():
    report = check(_near_tie_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    parted = _parted(report)
    assert parted, "the near-tie no longer shows: the case lost its point"
    assert parted[0][:2] == (Kind.GRAD_INPUT, 4)  # the max pool's backward picks apart


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
    """A scaled backward at a near-tie is still a mismatch, though not at the max pool.

    The samples route the gradient to either tied element, so each element there is
    allowed the whole gradient and the 1e-3 in the total hides; the first layer below
    that sums the tied group (the AdaptiveAvgPool2d) shows it. An allowance is per
    element, and a total is not (a limit of the model, said in its docstring). Both sides
    are self-consistent there, so the blame is left open, never put on torch."""
    original = rnn.AdaptiveMaxPool2d.backward
    monkeypatch.setattr(
        rnn.AdaptiveMaxPool2d, "backward", lambda self, g: original(self, g) * SCALE
    )
    found = _caught(
        check(_near_tie_spec(), devices=["cpu"]),
        kind="grad_input",
        layer=2,
        layer_type="AdaptiveAvgPool2d",
    )
    assert all(m.blame != "torch" for m in found), [str(m) for m in found]


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


# -- errors inherited through a mask -------------------------------------------------------
def test_error_inherited_through_a_relu_mask_is_absorbed():
    report = check(_masked_cancellation_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    below_relu = report.traces["reference-float64"].grad_outputs[2]
    assert np.count_nonzero(below_relu) == 1  # the mask the case is about


def test_masks_on_gradients_of_ordinary_size_pass():
    """The clean case of the two planted errors below: ReLU masks on ordinary gradients."""
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


def test_batchnorm_of_a_dead_unit_is_absorbed():
    report = check(_dead_unit_batchnorm_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    below_relu = report.traces["reference-float64"].outputs[2]
    assert not below_relu.any()  # the dead unit: the constant column the case is about


def _constant_channel_case(monkeypatch) -> NetworkSpec:
    """BatchNorm1d on (4, 2) data whose channel 0 is constant (what a dead unit feeds it)
    in the data both backends get; channel 1 is ordinary."""
    import harness.checking as harness_check

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
    """The allowance is per element: the constant channel's 1/sqrt(eps) does not loosen
    the ordinary channel next to it."""
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


@pytest.mark.parametrize("dim", [3, 8])  # 8: the BatchNorm's cancellation reaches the ReLU
def test_relu_input_on_its_kink_is_absorbed(dim):
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


def test_an_rmsprop_step_on_a_rounding_level_gradient_is_absorbed():
    report = check(_rmsprop_spec(), devices=["cpu"])
    assert report.ok, report.summary()


def test_a_step_off_by_one_part_in_a_thousand_is_still_caught(monkeypatch):
    """The steep spot is allowed its rounding, not a blanket: an update 1e-3 too large
    (a wrong lr, say) on one side still fails, at step 1."""
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
    """An ordinary batch is judged at its own scale, per group / per row."""
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


def test_adagrad_on_a_cancelled_bias_is_absorbed_in_both_dtypes():
    """What float64 is allowed, float32 is too: the noise is amplified in each."""
    report = check(_adagrad_on_a_cancelled_bias_spec(), devices=["cpu"])
    assert report.ok, report.summary()
    for dtype in ("float32", "float64"):
        assert _parted(report, dtype), f"{dtype}: the case lost its point"


# -- rounding inside a reduction --------------------------------------------------------
CASES = pathlib.Path(__file__).parent / "cases"


@pytest.mark.parametrize(
    "name",
    [
        # Dropout2d zeroes the only channel, so InstanceNorm2d sees a constant plane:
        # torch float64 sums it with some 34 u of error, and normalizes that to 3e-14
        "fp-instancenorm-constant-plane-float64",
        # the last LogSoftmax's backward cancels (1 - p at a likely class); RMSprop's
        # steps 2 and 3 turn that rounding into 40 ulps of a BatchNorm1d bias
        "fp-rmsprop-after-logsoftmax-float64",
    ],
)
def test_false_positives_from_rounding_inside_a_layer_pass(name):
    spec = NetworkSpec.from_json((CASES / f"{name}.json").read_text())
    report = check(spec, devices=["cpu"], dtypes=["float64"])
    assert report.ok, report.summary()


def test_an_elementwise_loss_gradient_rounds_at_its_upstream_size():
    """BCEWithLogitsLoss(pos_weight) backward is p * sigmoid(x) - p in torch: where sigmoid
    is near 1 it cancels, to some 300 u of the result in float32 (fuzz seed 12)."""
    spec = NetworkSpec.from_json((CASES / "fp-bcewithlogits-pos-weight-float32.json").read_text())
    assert check(spec, devices=["cpu"], dtypes=["float32"]).ok


def test_a_per_sample_loss_gradient_rounds_at_its_sample_s_upstream_size():
    """CrossEntropyLoss(reduction='none', label_smoothing) backward is p - eps / C at the
    other classes, which cancels where p is near eps / C; torch's p is exp(log_softmax),
    so its relative error there is some 100 u in float32 (fuzz seed 2026)."""
    spec = NetworkSpec.from_json((CASES / "fp-crossentropy-smoothing-float32.json").read_text())
    assert check(spec, devices=["cpu"], dtypes=["float32"]).ok


def test_a_known_absolute_error_may_leave_exactly_zero():
    """torch's float32 GELU returns -0.0 at x = -6.6 (value -1.6e-10, within its known
    absolute error of 0); a batch of 3 is then an exactly constant column for the next
    BatchNorm1d, whose zero output sits on the LeakyReLU kink after it. Only samples of
    the deviation that also take the 0 reach torch's side of the kink (fuzz seed 2026)."""
    path = CASES / "fp-gelu-underflow-batchnorm-kink-float32.json"
    assert check(NetworkSpec.from_json(path.read_text()), devices=["cpu"], dtypes=["float32"]).ok


def test_the_constant_plane_needs_the_sampled_statistic(monkeypatch):
    """Without the rounding of the mean's sum, the constant plane is a false positive
    again: the seam is what covers it."""
    monkeypatch.setattr(Perturbation, "statistic", lambda self, mean, *rest: mean)
    path = CASES / "fp-instancenorm-constant-plane-float64.json"
    spec = NetworkSpec.from_json(path.read_text())
    report = check(spec, devices=["cpu"], dtypes=["float64"], attribute=False)
    assert [(m.kind, m.layer) for m in report.mismatches] == [(Kind.FORWARD, 4)]


def test_sampled_rounding_leaves_overflow_alone_and_makes_no_nan():
    """An overflowed statistic (a float32 variance of huge values) or gradient stays inf:
    rounding it must not turn inf into inf - inf = NaN (a layer would then refuse it)."""
    perturb = Perturbation("float32", np.random.default_rng(0))
    squares = np.array([[np.inf, np.inf, 9e30, 1.0]], np.float32)
    var = np.array([[np.inf]], np.float32)
    grad = np.array([np.inf, 1.0, 0.0, 2.0], np.float32)
    with np.errstate(all="ignore"):  # as the samples run (harness.bounds.Sampler)
        assert np.isposinf(perturb.statistic(var, squares, (1,))).all()
        out = perturb(grad.copy(), Site.GRAD_INPUT, 0, np.array([np.inf, np.inf, 1.0, 1.0]))
    assert not np.isnan(out).any(), out
    assert out[0] == np.inf and out[2] == 0.0  # an exact zero (a product) stays exact
    assert abs(out[3] - 2.0) <= 2 * np.spacing(np.float32(2.0))  # a grid step each, at most


# -- histories exact up to a layer ------------------------------------------------------
def test_local_histories_round_only_where_the_tensor_is_made():
    forward = local_sites(Kind.FORWARD, 2, 4)
    assert forward == {
        (Site.OUTPUT, 1),  # the layer's input as it receives it
        (Site.WEIGHT, 2),
        (Site.OUTPUT, 2),
        (Site.BUFFER, 2),
        (Site.STATISTIC, 2, False),
    }
    backward = local_sites(Kind.GRAD_INPUT, 3, 4)  # the last layer: its gradient comes
    assert (Site.GRAD_OUTPUT, None) in backward  # from the loss
    assert (Site.STATISTIC, 3, True) in backward and (Site.OUTPUT, 3) not in backward
    assert (Site.STATE, 0) in local_sites(Kind.STEP, 0, 4)
    assert local_sites(Kind.LOSS, None, 4) == {
        (Site.OUTPUT, 3),
        (Site.LOSS, None),
        (Site.GRAD_OUTPUT, None),
        (Site.STATISTIC, None, False),  # the loss's own sums (rounding.summed)
        (Site.STATISTIC, None, True),
    }


def test_a_chain_of_normalizations_of_a_constant_row_passes_in_bfloat16(monkeypatch):
    """BatchNorm1d of an all-padding embedding row is a constant row; three LayerNorms of
    it multiply its gradient by 1/sqrt(eps) each, to 1e6. Every history that rounds all
    along makes the row non-constant and the gradient 1e3 times smaller; torch, exact up
    to the BatchNorm1d backward, rounds 1e6-sized terms there. Only the histories exact
    up to that layer cover it, and without them the case fails."""
    spec = NetworkSpec.from_json(
        (CASES / "fp-layernorm-chain-constant-row-bfloat16.json").read_text()
    )
    assert check(spec, devices=["cpu"], dtypes=["bfloat16"]).ok
    monkeypatch.setattr(Allowance, "united", lambda self, other: self)
    report = check(spec, devices=["cpu"], dtypes=["bfloat16"], attribute=False)
    assert [(m.kind, m.layer) for m in report.mismatches][:1] == [(Kind.GRAD_INPUT, 1)]


def test_adagrad_on_a_zero_gradient_bias_in_float64():
    """The LayerNorm bias's gradient is 0 in the math (a BatchNorm1d follows): Adagrad turns
    rounding noise above its eps = 1e-10 into a step of lr. Covered only when some sampled
    history's noise crosses eps as torch's does (fuzz seed 2026; it failed under the
    previous draw of the stochastic rounding, and passes under this one: a thin margin)."""
    path = CASES / "fp-adagrad-zero-gradient-bias-float64.json"
    assert check(NetworkSpec.from_json(path.read_text()), devices=["cpu"], dtypes=["float64"]).ok


# -- beyond the dtype's range -----------------------------------------------------------
def _diverging_spec() -> NetworkSpec:
    """PoissonNLLLoss's exp(input) under SGD: by the third step the float64 truth is 1e45
    and more, beyond float32's range; float32 holds inf there, and its update p - lr g of
    two infs is NaN (fuzz seed 42)."""
    return NetworkSpec(
        input_shape=(2, 6),
        layers=[
            LayerSpec("Embedding", {"num_embeddings": 3, "embedding_dim": 14}),
            LayerSpec("Linear", {"in_features": 14, "out_features": 8, "bias": True}),
        ],
        loss=LayerSpec("PoissonNLLLoss", {"log_input": True, "full": False, "reduction": "none"}),
        target={"kind": "counts"},
        optimizer=LayerSpec("SGD", {"lr": 0.04514}),
        steps=3,
        train=False,
        seed=495603524,
        input_kind="index",
        index_high=3,
    )


def test_nan_passes_only_where_the_truth_is_beyond_the_dtype():
    with np.errstate(over="ignore", invalid="ignore"):  # as a campaign runs its cases
        report = check(_diverging_spec(), devices=["cpu"], dtypes=["float32"])
    assert report.ok, report.summary()
    stepped = report.traces["torch-cpu-float32"].steps[-1]
    assert any(np.isnan(v).any() for v in stepped.values())  # the case still overflows
    truth = report.traces["torch-cpu-float32"]  # any trace: the tensors are given
    allowance = Allowance("float32", truth, {}, 1, tensors={"t": np.array([1e45, 1.0])})
    allowance.spread["t"] = np.zeros(2)
    ratios = allowance.ratio("t", np.array([np.nan, np.nan]))
    assert ratios[0] == 0.0 and np.isinf(ratios[1])  # NaN against a number float32 holds


@pytest.mark.parametrize(
    "name",
    [
        # CrossEntropyLoss(weight, label_smoothing): p sum(q) - q cancels where p is near
        # the smoothed target; the reference's float32 sits 10 allowances out unless the
        # subtraction's rounding is sampled at its terms' size (fuzz seed 44)
        "fp-crossentropy-weighted-smoothing-cancels-float32",
        # MultiLabelSoftMarginLoss: sigmoid(x) - y cancels where the fit is good, and
        # RMSprop's g / sqrt(v) makes a full step of it (fuzz seeds 41, 43, 44)
        "fp-multilabel-soft-margin-rmsprop-float32",
    ],
)
def test_a_loss_gradient_that_cancels_rounds_at_its_terms_size(name):
    spec = NetworkSpec.from_json((CASES / f"{name}.json").read_text())
    report = check(spec, devices=["cpu"], dtypes=["float32"])
    assert report.ok, report.summary()


def test_nan_passes_where_a_correct_history_in_the_dtype_turns_nan():
    # PoissonNLLLoss(log_input) after two residual doublings: exp(input) overflows float32,
    # and the reference's im2col multiplies that inf by a padding zero (NaN) where torch's
    # direct convolution never touches the padding; the reference's own samples turn NaN
    # there too, so NaN is one correct float32 outcome (graph fuzz seed 1201)
    path = CASES / "fp-overflowed-gradient-padding-float32.json"
    spec = NetworkSpec.from_json(path.read_text())
    with np.errstate(all="ignore"):
        report = check(spec, devices=["cpu"], dtypes=["float32"])
    assert report.ok, report.summary()
