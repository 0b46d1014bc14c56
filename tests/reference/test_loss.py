"""Losses: gradcheck of every functional backward and every module against torch.

One table (``OPS``) drives the per-op tests: the functional pair, the torch
functional and module names, and a hypothesis strategy that draws an
``(input, target, kwargs)`` case (shapes, reduction, options, values). Kinks, clamps,
special values and bad input are in test_loss_special.py.
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
    out_t, grad_t = torch_pair(TF.cross_entropy, x, y, g, **kwargs)
    for name, ours, theirs in (
        ("output", out, out_t),
        ("grad", F.cross_entropy_backward(g, x, y, **kwargs), grad_t),
    ):
        comparison = compare_arrays(name, ours, theirs, tolerance(np.float64))
        assert comparison.ok, str(comparison)


def torch_pair(
    fn: Callable, x: np.ndarray, y: np.ndarray, g: np.ndarray, **kwargs: Any
) -> tuple[np.ndarray, np.ndarray]:
    x_t = torch.tensor(x, requires_grad=True)
    out = fn(x_t, torch.as_tensor(y), **_torch_kwargs(kwargs, x_t.dtype))
    out.backward(torch.as_tensor(g))
    return out.detach().numpy(), x_t.grad.numpy()
