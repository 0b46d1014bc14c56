"""The JAX backend against the reference: every traced tensor, float64 tightly, float32 near.

Hypothesis draws dense, conv and embedding networks; a fixed set of chains runs every
layer, loss and optimizer the backend declares (and a test holds that set to exactly
what ``Jax.capabilities`` claims); kinks and ties (where JAX's own conventions differ
from torch's) are pinned at exact points; the rest pins the protocol: what it cannot run
is named, its input is left alone, x64 stays scoped, the harness's ``check`` judges it,
and without jax the import says how to get it. JAX compiles a case on its first run
(a few tenths of a second on a CPU), so the example counts are small.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import numpy as np
import pytest

pytest.importorskip("jax")

import jax  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402

from harness import check  # noqa: E402
from harness.backends import CaseData, Trace, case_data  # noqa: E402
from harness.backends.jax import Jax  # noqa: E402
from harness.backends.jax_layers import ACTIVATIONS, BUILDERS  # noqa: E402
from harness.backends.protocol import Backend  # noqa: E402
from harness.backends.reference import ReferenceBackend  # noqa: E402
from harness.spec import LayerSpec, NetworkSpec  # noqa: E402
from harness.strategies import network_specs  # noqa: E402
from harness.verdict import traced  # noqa: E402

SMALL: dict[str, Any] = dict(
    max_layers=4, max_width=8, max_batch=3, max_spatial=6, max_channels=4, max_steps=2
)
FEW = settings(max_examples=7)


def _scale(a: np.ndarray) -> float:
    finite = np.abs(a[np.isfinite(a)])
    return float(finite.max()) if finite.size else 0.0


def assert_close(got: Trace, want: Trace, dtype: str, rtol: float, atol: float) -> None:
    """Every tensor of ``got`` (in ``dtype``) within ``rtol * |want| + atol * scale`` of
    ``want``, the scale the tensor's largest value: for the exact cases (kinks, ties)."""
    a, b = traced(got), traced(want)
    assert a.keys() == b.keys(), set(a) ^ set(b)
    for key, w in b.items():
        g, w = np.asarray(a[key]), np.asarray(w)
        assert g.shape == w.shape, (key, g.shape, w.shape)
        assert g.dtype == np.dtype(dtype), (key, g.dtype)
        with np.errstate(all="ignore"):
            err = np.abs(g.astype(np.float64) - w)
            ok = (err <= rtol * np.abs(w) + atol * _scale(w)) | (np.isnan(g) & np.isnan(w))
        if not ok.all():
            i = np.unravel_index(np.argmax(np.where(ok, 0, err)), err.shape) if err.ndim else ()
            raise AssertionError(
                f"{key}: jax {g[i]!r} vs reference {w[i]!r} at {i} (scale {_scale(w):.3g})"
            )


def run_both(spec: NetworkSpec, dtype: str = "float64") -> tuple[Trace, Trace]:
    data = case_data(spec)
    return Jax().run(spec, data, "cpu", dtype), ReferenceBackend().run(spec, np.float64, data)


def check_float64(spec: NetworkSpec) -> Trace:
    """JAX against the reference in float64, judged by the harness's own error model (the
    one allowance everything is held to), plus the integer buffers exactly."""
    report = check(spec, dtypes=("float64",), backends=[Jax()])
    assert report.ok and not report.skipped, report.summary()
    got, want = report.traces["jax-cpu-float64"], report.traces["reference-float64"]
    assert len(got.steps) == (spec.steps if spec.optimizer is not None else 0)
    assert_integers_equal(got, want)
    return got


@FEW
@given(network_specs(backends=[Jax()], families=("dense",), **SMALL))
def test_dense_networks_match_the_reference_in_float64(spec):
    assume(not Jax.capabilities.missing(spec))
    check_float64(spec)


@FEW
@given(network_specs(backends=[Jax()], families=("conv",), **SMALL))
def test_conv_networks_match_the_reference_in_float64(spec):
    assume(not Jax.capabilities.missing(spec))
    check_float64(spec)


@settings(FEW, max_examples=3)
@given(network_specs(backends=[Jax()], families=("embedding",), **SMALL))
def test_embedding_networks_match_the_reference_in_float64(spec):
    assume(not Jax.capabilities.missing(spec))
    assert check_float64(spec).grad_input is None


@settings(FEW, max_examples=4)
@given(network_specs(backends=[Jax()], families=("dense", "conv"), **SMALL))
def test_float32_computes_in_float32_near_the_float64_truth(spec):
    assume(not Jax.capabilities.missing(spec))
    report = check(spec, dtypes=("float32",), backends=[Jax()])
    assert report.ok and not report.skipped, report.summary()
    got = report.traces["jax-cpu-float32"]
    assert all(np.asarray(v).dtype == np.float32 for v in traced(got).values())


# -- every declared layer, loss and optimizer, in a few fixed chains ---------------------------
def L(type_: str, **kwargs) -> LayerSpec:  # noqa: N802
    return LayerSpec(type_, kwargs)


def _spec(shape, layers, loss, target=None, optimizer=None, steps=2, train=True, **kw):
    return NetworkSpec(
        input_shape=shape, layers=layers, loss=loss, target=target or {"kind": "regression"},
        optimizer=optimizer, steps=steps if optimizer is not None else 0, train=train,
        seed=kw.pop("seed", 11), **kw,
    )  # fmt: skip


CLASSES = {"kind": "class_index", "num_classes": 4, "ignore_fraction": 0.25}
CHAINS = {
    "dense-train": _spec(
        (4, 6),
        [
            L("Linear", in_features=6, out_features=8),
            L("LeakyReLU", negative_slope=0.2),
            L("LayerNorm", normalized_shape=8),
            L("ELU", alpha=0.7),
            L("Linear", in_features=8, out_features=5, bias=False),
            L("CELU", alpha=1.3),
            L("SELU"),
            L("Softplus", beta=2.0, threshold=1.5),
        ],
        L("MSELoss", reduction="sum"),
        optimizer=L("SGD", lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        steps=3,
    ),
    "sequence-train": _spec(
        (3, 2, 5),
        [
            L("Linear", in_features=5, out_features=6),
            L("BatchNorm1d", num_features=2, momentum=None),
            L("GELU", approximate="none"),
            L("GELU", approximate="tanh"),
            L("Mish"),
            L("SiLU"),
            L("LayerNorm", normalized_shape=(2, 6), bias=False),
            L("Flatten"),
            L("Linear", in_features=12, out_features=4),
            L("Hardswish"),
            L("Hardsigmoid"),
        ],
        L("CrossEntropyLoss", weight=[0.5, 1.5, 1.0, 2.0], ignore_index=1, label_smoothing=0.1),
        CLASSES,
        L("Adam", lr=0.01, amsgrad=True, weight_decay=0.01),
        steps=3,
    ),
    "dense-eval": _spec(
        (4, 5),
        [
            L("Linear", in_features=5, out_features=6),
            L("BatchNorm1d", num_features=6),
            L("BatchNorm1d", num_features=6, track_running_stats=False),
            L("Dropout", p=0.5),
            L("Tanh"),
            L("Sigmoid"),
            L("Softsign"),
            L("Hardtanh", min_val=-0.5, max_val=0.8),
            L("ReLU6"),
            L("Identity"),
            L("LogSigmoid"),
            L("Linear", in_features=6, out_features=4),
            L("Softmax", dim=-1),
            L("LogSoftmax", dim=1),
        ],
        L("NLLLoss", weight=[1.0, 0.3, 2.0, 0.7], reduction="sum"),
        CLASSES,
        L("AdamW", lr=0.01, betas=(0.8, 0.99)),
        train=False,
    ),
    "conv2d-train": _spec(
        (2, 3, 7, 6),
        [
            L(
                "Conv2d",
                in_channels=3,
                out_channels=4,
                kernel_size=(3, 2),
                stride=(2, 1),
                padding=1,
                padding_mode="reflect",
            ),
            L("BatchNorm2d", num_features=4, momentum=0.3),
            L("ReLU"),
            L("MaxPool2d", kernel_size=3, stride=2, padding=1, ceil_mode=True),
            L(
                "Conv2d",
                in_channels=4,
                out_channels=4,
                kernel_size=3,
                padding="same",
                groups=2,
                dilation=2,
                padding_mode="circular",
            ),
            L("GroupNorm", num_groups=2, num_channels=4),
            L(
                "AvgPool2d",
                kernel_size=2,
                stride=1,
                padding=1,
                ceil_mode=True,
                count_include_pad=False,
            ),
            L("Tanh"),
            L("InstanceNorm2d", num_features=4, affine=True, track_running_stats=True),
            L("AdaptiveMaxPool2d", output_size=(2, 3)),
            L("Flatten"),
        ],
        L(
            "BCEWithLogitsLoss",
            weight=[0.5 + 0.1 * i for i in range(24)],
            pos_weight=[1.0 + 0.05 * i for i in range(24)],
        ),
        {"kind": "binary"},
        L("RMSprop", lr=0.01, centered=True, momentum=0.9, weight_decay=0.01),
    ),
    "conv2d-eval": _spec(
        (2, 2, 5, 5),
        [
            L(
                "ConvTranspose2d",
                in_channels=2,
                out_channels=4,
                kernel_size=3,
                stride=2,
                padding=1,
                output_padding=1,
                groups=2,
            ),
            L("BatchNorm2d", num_features=4),
            L("InstanceNorm2d", num_features=4, track_running_stats=True),
            L("Dropout2d", p=0.3),
            L("Dropout3d", p=0.3),
            L("AdaptiveAvgPool2d", output_size=(4, None)),
            L(
                "Conv2d",
                in_channels=4,
                out_channels=2,
                kernel_size=2,
                padding=1,
                padding_mode="replicate",
            ),
            L("AvgPool2d", kernel_size=3, stride=2, padding=1, divisor_override=2),
            L("MaxPool2d", kernel_size=2, stride=1, dilation=2),
            L("Flatten"),
            L("LogSoftmax", dim=1),
        ],
        L("KLDivLoss", reduction="batchmean", log_target=True),
        {"kind": "log_probabilities", "dim": 1},
        L("Adagrad", lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1),
        train=False,
    ),
    "conv1d-train": _spec(
        (3, 2, 9),
        [
            L("Conv1d", in_channels=2, out_channels=3, kernel_size=3, stride=2, bias=False),
            L("InstanceNorm1d", num_features=3),
            L("MaxPool1d", kernel_size=2, stride=1, dilation=2),
            L(
                "ConvTranspose1d",
                in_channels=3,
                out_channels=2,
                kernel_size=3,
                stride=2,
                padding=1,
                output_padding=1,
                dilation=2,
            ),
            L("AvgPool1d", kernel_size=3, stride=2, padding=1),
            # ceil mode: a last window starting in the right padding is dropped
            L("MaxPool1d", kernel_size=2, stride=2, padding=1, ceil_mode=True),
            L("AdaptiveAvgPool1d", output_size=3),
            L("AdaptiveMaxPool1d", output_size=2),
            L("InstanceNorm1d", num_features=2, track_running_stats=True, momentum=None),
        ],
        L("L1Loss", reduction="mean"),
        optimizer=L("Adadelta", lr=0.5, rho=0.8, weight_decay=0.01, maximize=True),
    ),
    "conv1d-eval": _spec(
        (2, 3, 8),
        [
            L("Conv1d", in_channels=3, out_channels=3, kernel_size=2, padding="valid", groups=3),
            L("AvgPool1d", kernel_size=2, stride=2, padding=1, ceil_mode=True),  # 7 -> 4, not 5
            L("BatchNorm1d", num_features=3),
            L("InstanceNorm1d", num_features=3, affine=True, track_running_stats=True),
            L("Dropout1d", p=0.5),
            L("Flatten"),
            L("Linear", in_features=12, out_features=4),
            L("Sigmoid"),
        ],
        L("BCELoss", weight=[1.0, 0.5, 2.0, 1.5], reduction="none"),
        {"kind": "unit_interval"},
        L("Adamax", lr=0.01, weight_decay=0.01),
        train=False,
    ),
    "embedding": _spec(
        (2, 5),
        [
            L("Embedding", num_embeddings=7, embedding_dim=4, padding_idx=0),
            L("Linear", in_features=4, out_features=3),
        ],
        L("SmoothL1Loss", beta=0.5),
        optimizer=L("NAdam", lr=0.01, weight_decay=0.01),
        input_kind="index",
        index_high=7,
    ),
    "probabilities": _spec(
        (3, 4),
        [
            L("Linear", in_features=4, out_features=5),
            L("Hardtanh"),
        ],
        L("CrossEntropyLoss", label_smoothing=0.2, reduction="none"),
        {"kind": "probabilities", "dim": 1},
        L("SGD", lr=0.05, momentum=0.5, dampening=0.3, maximize=True),
    ),
    "kl-div": _spec(
        (3, 4),
        [
            L("Unflatten", dim=1, unflattened_size=(2, 2)),
            L("Flatten"),
            L("Linear", in_features=4, out_features=5),
            L("LogSoftmax", dim=1),
        ],
        L("KLDivLoss", reduction="mean"),
        {"kind": "probabilities", "dim": 1},
        L("RAdam", lr=0.01, decoupled_weight_decay=True, weight_decay=0.1),
        steps=3,
    ),
    "huber": _spec(
        (4, 3),
        [L("Linear", in_features=3, out_features=2)],
        L("HuberLoss", delta=0.7, reduction="none"),
        optimizer=L("RAdam", lr=0.01, betas=(0.5, 0.6)),
        steps=3,
    ),
}


def assert_integers_equal(got: Trace, want: Trace) -> None:
    """``num_batches_tracked``: int64, and counted as torch counts, after every step too."""
    for mine, theirs in [(got.buffers, want.buffers), *zip(got.steps, want.steps)]:
        assert mine.keys() == theirs.keys()
        for key, value in theirs.items():
            if np.asarray(value).dtype.kind == "i":
                assert mine[key].dtype == np.int64 and mine[key].shape == np.shape(value), key
                assert mine[key] == value, (key, mine[key], value)


def test_the_chains_run_exactly_what_the_backend_declares():
    caps = Jax.capabilities
    assert {la.type for s in CHAINS.values() for la in s.layers} == set(caps.layers)
    assert {s.loss.type for s in CHAINS.values()} == set(caps.losses)
    assert {s.optimizer.type for s in CHAINS.values() if s.optimizer} == set(caps.optimizers)
    assert not any(caps.missing(s) for s in CHAINS.values())


@pytest.mark.parametrize("name", CHAINS)
def test_chain_matches_the_reference_in_float64(name):
    spec = CHAINS[name]
    got = check_float64(spec)
    assert len(got.steps) == spec.steps


ACTIVATION_KWARGS = {
    "LeakyReLU": {"negative_slope": 0.2},
    "Hardtanh": {"min_val": -0.5, "max_val": 0.75},
    "ELU": {"alpha": 0.7},
    "CELU": {"alpha": 1.5},
    "Softplus": {"beta": 2.0, "threshold": 1.5},  # the switch at x = 0.75
    "GELU": {"approximate": "tanh"},
    "Softmax": {"dim": 1},
    "LogSoftmax": {"dim": 1},
}
KINKS = [-3.0, -1.0, -0.5, 0.0, 0.75, 1.0, 3.0, 6.0]


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_take_torch_s_gradient_at_their_kinks(name):
    """Each activation's JAX gradient at torch's kinks (0, 6, -3, 3, the Hardtanh bounds,
    Softplus's switch) is the side torch takes (``reference/functional/activation.py``'s
    table); JAX's own ``maximum`` would halve a tie, ``abs`` take 1 at 0,
    ``jax.nn.leaky_relu`` and ``hard_tanh`` the identity's slope."""
    import reference.nn as rnn

    kwargs = ACTIVATION_KWARGS.get(name, {})
    x = np.array([KINKS, np.linspace(-4.0, 7.0, len(KINKS))])
    g = np.random.default_rng(0).standard_normal(x.shape)
    module = getattr(rnn, name)(**kwargs)
    want_y, want_g = module(x), module.backward(g)
    forward = BUILDERS[name](kwargs, False)

    @jax.jit  # one compile, not one per primitive
    def value_and_pullback(x, g):
        y, pull = jax.vjp(lambda x: forward(x, {}, {})[0], x)
        return y, pull(g)[0]

    with jax.enable_x64(True):
        y, got_g = value_and_pullback(x, g)
    np.testing.assert_allclose(np.asarray(y), want_y, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(np.asarray(got_g), want_g, rtol=1e-13, atol=1e-15)


def test_ties_and_kinks_in_a_network_take_torch_s_side():
    """Exact zeros: ReLU of inputs at 0 and of a ReLU's zeros (slope 0), max pooling over
    tied zeros and tied values (the first in scan order gets the gradient, also where the
    windows overlap), an L1 loss where the output equals the target (sign(0) = 0)."""
    spec = _spec((2, 2, 7), [L("ReLU"), L("ReLU"), L("MaxPool1d", kernel_size=3, stride=1)],
                 L("L1Loss", reduction="sum"))  # fmt: skip
    data = case_data(spec)
    x = np.array([[[0, 0, -1, 0.5, 0.5, -2, 0], [1, 1, 1, 0, 0, 0, -1]]] * 2, dtype=np.float64)
    x[1] *= 2.0
    output = ReferenceBackend().run(spec, np.float64, CaseData(**{**vars(data), "input": x}))
    target = output.outputs[-1] + np.where(np.arange(5) % 2, 0.0, 1.0)  # equal at odd places
    data = CaseData(**{**vars(data), "input": x, "target": target})
    got = Jax().run(spec, data, "cpu", "float64")
    want = ReferenceBackend().run(spec, np.float64, data)
    assert_close(got, want, "float64", rtol=0.0, atol=0.0)


def test_bce_with_logits_at_a_zero_logit():
    """The gradient at x = 0 is sigmoid(0) - y = -1/2 for y = 1. Torch's forward formula
    ``log1p(exp(-|x|)) + max(-x, 0)`` differentiated by JAX gives -1 there (|x|' = 1 at 0,
    max's tie halved); the backend writes softplus(-x) as ``logaddexp``."""
    spec = _spec((3, 5), [L("ReLU")], L("BCEWithLogitsLoss", reduction="none"),
                 {"kind": "binary"})  # fmt: skip
    got, want = run_both(spec)
    assert (got.outputs[0] == 0).sum() >= 3
    assert_close(got, want, "float64", rtol=1e-12, atol=1e-15)


def test_float32_stays_float32_even_under_a_global_x64():
    spec = CHAINS["huber"]
    data = case_data(spec)
    before = jax.config.jax_enable_x64
    Jax().run(spec, data, "cpu", "float64")
    assert jax.config.jax_enable_x64 == before  # the float64 run's x64 was scoped
    with jax.enable_x64(True):
        trace = Jax().run(spec, data, "cpu", "float32")
    arrays = [
        *trace.outputs,
        trace.loss,
        *trace.grad_outputs,
        trace.grad_input,
        *trace.grad_params.values(),
        *(v for s in trace.steps for v in s.values()),
    ]
    assert all(a.dtype == np.float32 for a in arrays)


def test_it_is_a_backend_the_harness_checks():
    assert isinstance(Jax(), Backend)
    report = check(CHAINS["huber"], dtypes=("float32", "float64"), backends=[Jax()])
    assert report.ok, report.mismatches
    assert not report.skipped


def test_missing_names_what_it_cannot_run():
    caps = Jax.capabilities
    spec = _spec((2, 6), [L("Linear", in_features=6, out_features=4), L("RNN", input_size=4,
                 hidden_size=3)], L("PoissonNLLLoss"))  # fmt: skip
    assert caps.missing(spec) == ["no RNN layer", "no PoissonNLLLoss"]
    with pytest.raises(ValueError, match="no PoissonNLLLoss, RNN"):
        Jax().run(spec, None, "cpu", "float64")
    dropout = _spec((2, 3), [L("Dropout", p=0.5)], L("MSELoss"))
    assert caps.missing(dropout) == ["no dropout masks to share (training-mode dropout)"]
    with pytest.raises(ValueError, match="eval mode only"):
        Jax().run(dropout, case_data(dropout), "cpu", "float64")
    assert not caps.runs_in("float16") and not caps.runs_on("cuda")
    lbfgs = _spec((2, 3), [L("Identity")], L("MSELoss"), optimizer=L("LBFGS"))
    assert caps.steps(CHAINS["huber"]) and not caps.steps(lbfgs)  # forward/backward only


def test_it_leaves_the_case_data_alone():
    spec = CHAINS["embedding"]  # an int64 index input, handed on as it is
    data = case_data(spec)
    copies = {k: v.copy() for k, v in data.weights.items()}
    arrays = (data.input.copy(), data.target.copy(), data.upstream.copy())
    for dtype in ("float32", "float64"):
        Jax().run(spec, data, "cpu", dtype)
    assert data.weights.keys() == copies.keys()
    for key, value in copies.items():
        assert data.weights[key].dtype == value.dtype and np.array_equal(data.weights[key], value)
    for before, after in zip(arrays, (data.input, data.target, data.upstream)):
        assert before.dtype == after.dtype and np.array_equal(before, after)


def test_import_without_jax_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now raises ImportError
    monkeypatch.delitem(sys.modules, "harness.backends.jax")
    with pytest.raises(ImportError) as caught:
        importlib.import_module("harness.backends.jax")
    assert str(caught.value) == "the jax backend needs jax: pip install 'backprop-oracle[jax]'"
