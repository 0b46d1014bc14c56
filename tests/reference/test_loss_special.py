"""Losses at their special points, compared with torch exactly there: kinks, the BCE
clamp, zero and ignored targets, nan where torch gives nan; and bad input.

The table-driven gradcheck and torch comparisons are in test_loss.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch.nn.functional as TF

import reference.functional as F
import reference.nn as rnn
from harness.compare import compare_arrays, tolerance
from tests.reference.test_loss import REDUCTIONS, torch_pair

# -- kinks, clamps and special values, at exactly those points -------------------------


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
    out_t, grad_t = torch_pair(theirs, x, y, g, reduction="none", **kwargs)
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
    out_t, grad_t = torch_pair(TF.binary_cross_entropy, x, y, g, reduction=reduction, **kwargs)
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
    out_t, grad_t = torch_pair(TF.kl_div, x, y, g, reduction="none")
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
    out_t, grad_t = torch_pair(getattr(TF, loss), x, y, np.ones(()), **extra)
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
        out_t, grad_t = torch_pair(theirs, x, y, np.ones(()), weight=w, **extra)
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
