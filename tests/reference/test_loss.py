"""Losses: gradcheck of every functional backward, every module against torch, kinks, errors.

One table (``OPS``) drives the per-op tests: the functional pair, the torch
functional and module names, and a hypothesis strategy that draws an
``(input, target, kwargs)`` case (shapes, reduction, options, values).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.gradcheck import gradcheck

REDUCTIONS = ["none", "mean", "sum"]
Case = tuple[np.ndarray, np.ndarray, dict[str, Any]]


def _rng(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _shape(draw: Any, min_dims: int = 0) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 3), min_size=min_dims, max_size=3)))


@st.composite
def regression_cases(draw: Any, options: dict[str, st.SearchStrategy] | None = None) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    kwargs = {"reduction": draw(st.sampled_from(REDUCTIONS))}
    kwargs.update({k: draw(s) for k, s in (options or {}).items()})
    return rng.standard_normal(shape), rng.standard_normal(shape), kwargs


@st.composite
def kl_div_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    log_target = draw(st.booleans())
    reduction = draw(st.sampled_from([*REDUCTIONS, "batchmean"]))
    if log_target:
        target = rng.standard_normal(shape)
    else:  # probabilities, about a third of them exactly 0 (0 log 0 = 0)
        target = np.where(rng.random(shape) < 0.3, 0.0, rng.random(shape))
    return rng.standard_normal(shape), target, {"reduction": reduction, "log_target": log_target}


def _weight(draw: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray | None:
    """None, one weight per element, per last-dim entry, or a single broadcast one."""
    choices = [None, shape, shape[-1:], (1,) * len(shape)]
    chosen = draw(st.sampled_from(choices))
    return None if chosen is None else rng.uniform(0.2, 2.0, chosen)


@st.composite
def bce_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    # away from the clamp (tested exactly on its own) so that central differences hold
    input = rng.uniform(0.05, 0.95, shape)
    target = np.where(rng.random(shape) < 0.3, rng.integers(0, 2, shape), rng.random(shape))
    kwargs = {"weight": _weight(draw, rng, shape), "reduction": draw(st.sampled_from(REDUCTIONS))}
    return input, target.astype(np.float64), kwargs


@st.composite
def bce_logits_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    input = 4 * rng.standard_normal(shape)
    target = np.where(rng.random(shape) < 0.5, rng.integers(0, 2, shape), rng.random(shape))
    pos_weight = rng.uniform(0.2, 3.0, shape[-1:]) if draw(st.booleans()) else None
    kwargs = {
        "weight": _weight(draw, rng, shape),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "pos_weight": pos_weight,
    }
    return input, target.astype(np.float64), kwargs


def _class_shape(draw: Any) -> tuple[tuple[int, ...], int]:
    """(C,), (N, C), (N, C, d1) or (N, C, d1, d2), and the class dim."""
    classes = draw(st.integers(1, 4))
    layout = draw(st.sampled_from(["unbatched", "batched", "spatial1", "spatial2"]))
    if layout == "unbatched":
        return (classes,), 0
    extra = {"batched": 0, "spatial1": 1, "spatial2": 2}[layout]
    spatial = draw(st.lists(st.integers(1, 3), min_size=extra, max_size=extra))
    return (draw(st.integers(1, 3)), classes, *spatial), 1


def _class_targets(
    draw: Any, rng: np.random.Generator, shape: tuple[int, ...], class_dim: int
) -> tuple[np.ndarray, int]:
    """int64 class indices with ignored samples, at least one counted (so 'mean' is finite)."""
    classes = shape[class_dim]
    target_shape = shape[:class_dim] + shape[class_dim + 1 :]
    target = rng.integers(0, classes, target_shape)
    ignore_index = draw(st.sampled_from([-100, 0] if classes > 1 else [-100]))
    if ignore_index == -100:
        target = np.where(rng.random(target_shape) < 0.3, -100, target)
    counted_class = 1 if ignore_index == 0 else 0
    target.reshape(-1)[:1] = counted_class  # reshape of a fresh array is a view
    return target.astype(np.int64), ignore_index


@st.composite
def nll_cases(draw: Any) -> Case:
    rng = _rng(draw)
    shape, class_dim = _class_shape(draw)
    target, ignore_index = _class_targets(draw, rng, shape, class_dim)
    weight = rng.uniform(0.2, 2.0, shape[class_dim]) if draw(st.booleans()) else None
    kwargs = {
        "weight": weight,
        "ignore_index": ignore_index,
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return rng.standard_normal(shape), target, kwargs


@st.composite
def cross_entropy_cases(draw: Any) -> Case:
    rng = _rng(draw)
    shape, class_dim = _class_shape(draw)
    kwargs = {
        "weight": rng.uniform(0.2, 2.0, shape[class_dim]) if draw(st.booleans()) else None,
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "label_smoothing": draw(st.sampled_from([0.0, 0.2, 1.0])),
    }
    if draw(st.booleans()):  # class probabilities, rows need not sum to 1 (torch does not ask)
        target = rng.random(shape)
    else:
        target, kwargs["ignore_index"] = _class_targets(draw, rng, shape, class_dim)
    return 3 * rng.standard_normal(shape), target, kwargs


@dataclass(frozen=True)
class Op:
    module: str  # the same name in reference.nn and torch.nn
    functional: str  # the same name in reference.functional and torch.nn.functional
    cases: st.SearchStrategy

    def forward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return getattr(F, self.functional)(*args, **kwargs)

    def backward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return getattr(F, f"{self.functional}_backward")(*args, **kwargs)

    def torch_forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        return getattr(TF, self.functional)(*args, **kwargs)

    def __str__(self) -> str:
        return self.module


# fmt: off
OPS = [
    Op("MSELoss", "mse_loss", regression_cases()),
    Op("L1Loss", "l1_loss", regression_cases()),
    Op("SmoothL1Loss", "smooth_l1_loss",
       regression_cases({"beta": st.sampled_from([0.0, 0.5, 1.0, 2.0])})),
    Op("HuberLoss", "huber_loss", regression_cases({"delta": st.sampled_from([0.5, 1.0, 2.0])})),
    Op("KLDivLoss", "kl_div", kl_div_cases()),
    Op("BCELoss", "binary_cross_entropy", bce_cases()),
    Op("BCEWithLogitsLoss", "binary_cross_entropy_with_logits", bce_logits_cases()),
    Op("NLLLoss", "nll_loss", nll_cases()),
    Op("CrossEntropyLoss", "cross_entropy", cross_entropy_cases()),
]
# fmt: on


def _torch_kwargs(
    kwargs: dict[str, Any], dtype: Any = torch.float64, device: str = "cpu"
) -> dict[str, Any]:
    return {
        k: torch.as_tensor(v, dtype=dtype, device=device) if isinstance(v, np.ndarray) else v
        for k, v in kwargs.items()
    }


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_gradcheck(op: Op, data: st.DataObject) -> None:
    input, target, kwargs = data.draw(op.cases)
    result = gradcheck(
        lambda x, t: op.forward(x, t, **kwargs),
        input,
        target,
        backward=lambda g, x, t: op.backward(g, x, t, **kwargs),
        wrt=(0,),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_module_matches_torch(op: Op, dtype: Any, device: str, data: st.DataObject) -> None:
    input, target, kwargs = data.draw(op.cases)
    ref = getattr(rnn, op.module)(**kwargs)
    twin = getattr(torch.nn, op.module)(**_torch_kwargs(kwargs))
    with warnings.catch_warnings():
        # torch warns that KLDivLoss 'mean' is not the KL divergence: known, not a bug
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        assert_twin(
            ref, twin, inputs=[input, target], dtype=dtype, device=device, differentiable=(0,)
        )


@pytest.mark.parametrize("op", OPS, ids=str)
def test_functional_matches_torch_and_keeps_dtype(op: Op) -> None:
    """The functional pair itself (not only through the module) in float32, vs torch."""
    input, target, kwargs = _fixed_case(op)
    x32 = input.astype(np.float32)
    t32 = target.astype(np.float32) if target.dtype.kind == "f" else target
    k32 = {k: v.astype(np.float32) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out = op.forward(x32, t32, **k32)
    x_t = torch.tensor(x32, requires_grad=True)
    out_t = op.torch_forward(x_t, torch.as_tensor(t32), **_torch_kwargs(k32, torch.float32))
    g = np.random.default_rng(0).standard_normal(np.shape(out)).astype(np.float32)
    out_t.backward(torch.as_tensor(g))
    grad = op.backward(g, x32, t32, **k32)
    assert out.dtype == np.float32 and grad.dtype == np.float32
    tol = tolerance(np.float32)
    for name, ours, theirs in (("output", out, out_t), ("grad", grad, x_t.grad)):
        comparison = compare_arrays(name, ours, theirs, tol)
        assert comparison.ok, str(comparison)


def _fixed_case(op: Op) -> Case:
    """One representative case per op with every option switched on."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((4, 3))
    y = rng.standard_normal((4, 3))
    w = rng.uniform(0.2, 2.0, 3)
    probs = rng.uniform(0.05, 0.95, (4, 3))
    cases: dict[str, Case] = {
        "MSELoss": (x, y, {"reduction": "mean"}),
        "L1Loss": (x, y, {"reduction": "sum"}),
        "SmoothL1Loss": (x, y, {"reduction": "none", "beta": 0.5}),
        "HuberLoss": (x, y, {"reduction": "mean", "delta": 0.5}),
        "KLDivLoss": (x, np.where(probs < 0.3, 0.0, probs), {"reduction": "batchmean"}),
        "BCELoss": (probs, rng.random((4, 3)), {"weight": w, "reduction": "mean"}),
        "BCEWithLogitsLoss": (
            3 * x,
            rng.random((4, 3)),
            {"weight": w, "reduction": "sum", "pos_weight": w[::-1].copy()},
        ),
        "NLLLoss": (
            x,
            np.array([0, 2, 1, 1]),
            {"weight": w, "ignore_index": 1, "reduction": "mean"},
        ),
        "CrossEntropyLoss": (
            x,
            np.array([0, 2, 1, -100]),
            {"weight": w, "reduction": "mean", "label_smoothing": 0.3},
        ),
    }
    return cases[op.module]


@pytest.mark.parametrize("targets", ["indices", "ignored", "ignore_in_range", "probabilities"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.3])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(4,), (5, 4), (3, 4, 2, 2)], ids=["C", "NC", "NCHW"])
def test_cross_entropy_every_combination(
    shape, reduction, label_smoothing, weighted, targets
) -> None:
    """Every combination of weight, ignore_index, label smoothing and target kind, on
    every layout: gradcheck, and forward and backward against torch in float64."""
    rng = np.random.default_rng(len(shape) * 100 + 10 * weighted + 3 * (label_smoothing > 0))
    class_dim = 0 if len(shape) == 1 else 1
    x = 2 * rng.standard_normal(shape)
    kwargs: dict[str, Any] = {"reduction": reduction, "label_smoothing": label_smoothing}
    if weighted:
        kwargs["weight"] = rng.uniform(0.2, 2.0, shape[class_dim])
    if targets == "probabilities":
        y = rng.random(shape)
    else:
        y = rng.integers(0, shape[class_dim], shape[:class_dim] + shape[class_dim + 1 :])
        if targets == "ignored":
            y = np.where(rng.random(y.shape) < 0.4, -100, y)
        if targets == "ignore_in_range":
            kwargs["ignore_index"] = 2
        y.reshape(-1)[:1] = 1  # one counted target: the 'mean' is finite
    result = gradcheck(
        lambda a, b: F.cross_entropy(a, b, **kwargs),
        x,
        y,
        backward=lambda g, a, b: F.cross_entropy_backward(g, a, b, **kwargs),
        wrt=(0,),
        **GRADCHECK,
    )
    assert result.ok, str(result)
    out = F.cross_entropy(x, y, **kwargs)
    g = rng.standard_normal(np.shape(out))
    out_t, grad_t = _torch_pair(TF.cross_entropy, x, y, g, **kwargs)
    for name, ours, theirs in (
        ("output", out, out_t),
        ("grad", F.cross_entropy_backward(g, x, y, **kwargs), grad_t),
    ):
        comparison = compare_arrays(name, ours, theirs, tolerance(np.float64))
        assert comparison.ok, str(comparison)


# -- kinks, clamps and special values, at exactly those points -------------------------


def _torch_pair(
    fn: Callable, x: np.ndarray, y: np.ndarray, g: np.ndarray, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    x_t = torch.tensor(x, requires_grad=True)
    out = fn(x_t, torch.as_tensor(y), **_torch_kwargs(kwargs, x_t.dtype))
    out.backward(torch.as_tensor(g))
    return out.detach().numpy(), x_t.grad.numpy()


@pytest.mark.parametrize(
    ("ours", "ours_backward", "theirs", "kwargs"),
    [
        (F.l1_loss, F.l1_loss_backward, TF.l1_loss, {}),
        (F.smooth_l1_loss, F.smooth_l1_loss_backward, TF.smooth_l1_loss, {"beta": 0.5}),
        (F.smooth_l1_loss, F.smooth_l1_loss_backward, TF.smooth_l1_loss, {"beta": 0.0}),
        (F.huber_loss, F.huber_loss_backward, TF.huber_loss, {"delta": 0.5}),
    ],
    ids=["l1", "smooth_l1", "smooth_l1_beta0", "huber"],
)
def test_regression_kinks_follow_torch(ours, ours_backward, theirs, kwargs) -> None:
    """At x = y (gradient 0, torch's sign(0)) and |x - y| = beta or delta exactly."""
    y = np.array([1.0, 1.0, 1.0, 1.0, 1.0, -2.0])
    x = y + np.array([0.0, 0.5, -0.5, 0.25, -3.0, 0.0])
    g = np.array([0.3, -1.2, 0.7, 2.0, -0.4, 1.1])
    out, grad = ours(x, y, "none", **kwargs), ours_backward(g, x, y, "none", **kwargs)
    out_t, grad_t = _torch_pair(theirs, x, y, g, reduction="none", **kwargs)
    np.testing.assert_array_equal(out, out_t)
    np.testing.assert_array_equal(grad, grad_t)
    assert grad[0] == 0 and grad[5] == 0


def test_smooth_l1_with_beta_zero_is_l1() -> None:
    rng = np.random.default_rng(1)
    x, y, g = rng.standard_normal((3, 3, 4))
    np.testing.assert_array_equal(F.smooth_l1_loss(x, y, "none", beta=0.0), F.l1_loss(x, y, "none"))
    np.testing.assert_array_equal(
        F.smooth_l1_loss_backward(g, x, y, "none", beta=0.0), F.l1_loss_backward(g, x, y, "none")
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce_clamp_region_is_torch_exactly(dtype: Any, reduction: str, weighted: bool) -> None:
    """Within 1e-50 of 0 and 1 each log clamps at -100 and the gradient is bounded by
    torch's float32 EPSILON; both match torch to the last bit (the forward 'none' one,
    the reduced forward within tolerance: the sum order differs)."""
    x = np.array([0.0, 1e-50, 1 - 1e-50, 1.0, 1e-44, 1 - 1e-17, 0.3, 0.5], dtype=dtype)
    y = np.array([0.3, 0.7, 0.2, 0.0, 1.0, 0.9, 1.0, 0.5], dtype=dtype)
    kwargs = {"weight": np.linspace(0.5, 2.0, 8).astype(dtype)} if weighted else {}
    out = F.binary_cross_entropy(x, y, reduction=reduction, **kwargs)
    g = np.linspace(-1.0, 1.5, out.size).reshape(out.shape).astype(dtype)
    grad = F.binary_cross_entropy_backward(g, x, y, reduction=reduction, **kwargs)
    out_t, grad_t = _torch_pair(TF.binary_cross_entropy, x, y, g, reduction=reduction, **kwargs)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(grad))
    if reduction == "none":
        np.testing.assert_array_equal(out, out_t)
        assert out[3] == 100 * (1 - y[3]) * kwargs.get("weight", np.ones(8))[3]  # clamped
    else:
        assert compare_arrays("output", out, out_t, tolerance(dtype)).ok
    np.testing.assert_array_equal(grad, grad_t)


def test_kl_div_zero_targets_contribute_nothing() -> None:
    x = np.array([[-1.0, -2.0, -0.5]])
    y = np.array([[0.0, 0.25, 0.75]])
    g = np.array([[0.5, -1.0, 2.0]])
    out, grad = F.kl_div(x, y, "none"), F.kl_div_backward(g, x, y, "none")
    out_t, grad_t = _torch_pair(TF.kl_div, x, y, g, reduction="none")
    assert out[0, 0] == 0 and grad[0, 0] == 0
    assert compare_arrays("output", out, out_t, tolerance(np.float64)).ok
    np.testing.assert_array_equal(grad, grad_t)


@pytest.mark.parametrize(
    ("loss", "extra"),
    [("cross_entropy", {}), ("cross_entropy", {"label_smoothing": 0.2}),
     ("cross_entropy", {"label_smoothing": 0.2, "weight": np.array([1.0, 2.0, 0.5, 1.5])}),
     ("nll_loss", {}), ("nll_loss", {"weight": np.array([1.0, 2.0, 0.5, 1.5])})],
)  # fmt: skip
def test_all_targets_ignored_mean_is_nan_like_torch(loss: str, extra: dict[str, Any]) -> None:
    """'mean' over no counted target is 0/0: torch gives nan and a zero gradient; the
    reference returns that nan without dividing (no floating-point error is raised)."""
    x = np.random.default_rng(2).standard_normal((3, 4))
    y = np.full(3, -100)
    out = getattr(F, loss)(x, y, **extra)
    grad = getattr(F, f"{loss}_backward")(np.ones(()), x, y, **extra)
    out_t, grad_t = _torch_pair(getattr(TF, loss), x, y, np.ones(()), **extra)
    assert np.isnan(out) and np.isnan(out_t)
    np.testing.assert_array_equal(grad, grad_t)
    np.testing.assert_array_equal(grad, 0)


def test_zero_weighted_targets_give_nan_gradients_like_torch() -> None:
    """Counted targets whose weights are all 0: the mean is 0/0 and torch's gradient is
    nan on the counted samples, 0 on the ignored one."""
    x = np.random.default_rng(3).standard_normal((4, 3))
    y = np.array([0, 1, 0, -100])
    w = np.array([0.0, 0.0, 1.0])
    for ours, theirs, extra in (
        (F.cross_entropy, TF.cross_entropy, {"label_smoothing": 0.1}),
        (F.nll_loss, TF.nll_loss, {}),
    ):
        out = ours(x, y, weight=w, **extra)
        grad = getattr(F, f"{ours.__name__}_backward")(np.ones(()), x, y, weight=w, **extra)
        out_t, grad_t = _torch_pair(theirs, x, y, np.ones(()), weight=w, **extra)
        assert np.isnan(out) and np.isnan(out_t)
        assert compare_arrays("grad", grad, grad_t, tolerance(np.float64)).ok


def test_nll_loss_accepts_minus_inf_log_probabilities_off_target() -> None:
    x = np.log(
        np.array([[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]]),
        where=[[1, 1, 0], [0, 1, 1]],
        out=np.full((2, 3), -np.inf),
    )
    y = np.array([1, 2])
    expected = -(np.log(0.5) + np.log(0.75)) / 2
    assert compare_arrays("output", F.nll_loss(x, y), expected, tolerance(np.float64)).ok
    np.testing.assert_array_equal(
        F.nll_loss_backward(np.ones(()), x, y), [[0, -0.5, 0], [0, 0, -0.5]]
    )


def test_module_backward_defaults_and_cache() -> None:
    loss = rnn.CrossEntropyLoss()
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()
    x, y = np.random.default_rng(4).standard_normal((2, 3)), np.array([0, 2])
    loss(x, y)
    np.testing.assert_allclose(loss.backward(), F.cross_entropy_backward(np.ones(()), x, y))
    none = rnn.L1Loss(reduction="none")
    none(x, x + 1)
    with pytest.raises(ValueError, match="needs a grad_output"):
        none.backward()
    assert "weight" in rnn.BCEWithLogitsLoss(weight=[1.0, 2.0]).state_dict()
    assert list(rnn.BCEWithLogitsLoss(pos_weight=np.ones(2)).state_dict()) == ["pos_weight"]
    assert rnn.NLLLoss().state_dict() == {}


# -- errors ------------------------------------------------------------------------


X23 = np.zeros((2, 3))
P23 = np.full((2, 3), 0.5)
I64 = np.int64
# fmt: off
ERRORS = [
    (lambda: F.mse_loss(X23, np.zeros(3)), ValueError,
     r"mse_loss: .*same shape.*\(2, 3\).*\(3,\)"),
    (lambda: rnn.L1Loss()(X23, np.zeros((3, 2))), ValueError, r"l1_loss: .*\(2, 3\).*\(3, 2\)"),
    (lambda: F.l1_loss(X23, X23, reduction="avg"), ValueError, "reduction must be one of"),
    (lambda: rnn.KLDivLoss(reduction="batch"), ValueError, "batchmean"),
    (lambda: F.smooth_l1_loss(X23, X23, beta=-1.0), ValueError, "beta must be >= 0"),
    (lambda: rnn.HuberLoss(delta=0.0), ValueError, "delta must be > 0"),
    (lambda: rnn.MSELoss()(np.zeros(3, dtype=int), np.zeros(3)), TypeError, "MSELoss: input"),
    (lambda: F.binary_cross_entropy(np.array([0.5, 1.5]), np.array([0.0, 1.0])), ValueError,
     r"binary_cross_entropy: .*input must be a probability in \[0, 1\], got 1.5"),
    (lambda: F.binary_cross_entropy(np.array([0.5, np.nan]), np.array([0.0, 1.0])), ValueError,
     "got nan"),
    (lambda: rnn.BCELoss()(P23, np.full((2, 3), -0.1)), ValueError,
     r"target must be a probability .*got -0.1"),
    (lambda: F.binary_cross_entropy(P23, P23[0]), ValueError, r"same shape.*\(2, 3\).*\(3,\)"),
    (lambda: F.binary_cross_entropy(P23, P23, weight=np.ones((3, 1))), ValueError,
     r"weight of shape \(3, 1\) must broadcast to the input's shape \(2, 3\)"),
    (lambda: F.binary_cross_entropy_with_logits(X23, P23, pos_weight=np.ones(2)), ValueError,
     r"pos_weight of shape \(2,\) must broadcast"),
    (lambda: rnn.CrossEntropyLoss()(X23, np.array([0, 3])), ValueError,
     r"cross_entropy: class indices must lie in \[0, 3\) or equal ignore_index=-100, got 3"),
    (lambda: F.nll_loss(X23, np.array([-1, 0])), ValueError, r"nll_loss: .*\[0, 3\).*got -1"),
    (lambda: F.cross_entropy(X23, np.array([0, 1, 2])), ValueError,
     r"target must have shape \(2,\).*got \(3,\)"),
    (lambda: F.cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 5), I64)), ValueError,
     r"input of shape \(2, 3, 4\).*shape \(2, 4\).*got \(2, 5\)"),
    (lambda: F.cross_entropy(X23, np.array([0.0, 1.0])), ValueError,
     r"floating target is read as class probabilities .*shape \(2, 3\), got \(2,\); class "
     r"indices must be int64 of shape \(2,\)"),
    (lambda: F.nll_loss(X23, np.array([0, 1], np.int32)), TypeError, "int64 .*int32"),
    (lambda: F.cross_entropy(X23, P23, ignore_index=1), ValueError,
     "ignore_index=1 applies to class indices only"),
    (lambda: F.cross_entropy(X23, np.array([0, 1]), weight=np.ones(4)), ValueError,
     r"weight must hold one value per class, shape \(3,\), got shape \(4,\)"),
    (lambda: rnn.CrossEntropyLoss(label_smoothing=1.5), ValueError,
     r"label_smoothing .*\[0, 1\]"),
    (lambda: F.cross_entropy(np.zeros(()), np.zeros((), I64)), ValueError,
     r"\(C,\), \(N, C\) or \(N, C, d1, ...\)"),
]
# fmt: on


@pytest.mark.parametrize(("call", "error", "match"), ERRORS)
def test_bad_input_is_refused_clearly(call: Callable, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()
