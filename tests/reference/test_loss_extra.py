"""Margin and likelihood losses: gradcheck of every backward, modules against torch in
float64 and float32, the kinks and clamps exactly where torch puts them, and bad input.

One table (``OPS``) drives the per-op tests: the module and functional names (the
same in the reference and in torch), a strategy drawing ``(inputs, kwargs)``, and the
inputs that get a gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import reference.functional as RF
from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.functional import likelihood_loss as LF
from reference.functional import margin_loss as MF
from reference.functional import triplet_loss as TRF
from reference.gradcheck import gradcheck
from reference.nn import loss_extra as rnn

REDUCTIONS = ["none", "mean", "sum"]
Case = tuple[list[np.ndarray], dict[str, Any]]


def _rng(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _reduction(draw: Any) -> dict[str, Any]:
    return {"reduction": draw(st.sampled_from(REDUCTIONS))}


def _shape(draw: Any, min_dims: int = 0) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 3), min_size=min_dims, max_size=3)))


def _class_shape(draw: Any) -> tuple[int, ...]:
    classes = draw(st.integers(1, 4))
    return (classes,) if draw(st.booleans()) else (draw(st.integers(1, 3)), classes)


def _labels(rng: np.random.Generator, shape: tuple[int, ...], other: bool = False) -> np.ndarray:
    """±1, and (``other``) a few labels that are neither."""
    labels = rng.choice([-1.0, 1.0], shape)
    return np.where(rng.random(shape) < 0.2, 0.5, labels) if other else labels


@st.composite
def soft_margin_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    return [2 * rng.standard_normal(shape), _labels(rng, shape, True)], _reduction(draw)


@st.composite
def multilabel_soft_margin_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _class_shape(draw)
    target = np.where(rng.random(shape) < 0.7, rng.integers(0, 2, shape), rng.random(shape))
    weight_shape = draw(st.sampled_from([None, shape[-1:], shape]))
    weight = None if weight_shape is None else rng.uniform(0.2, 2.0, weight_shape)
    kwargs = {"weight": weight, **_reduction(draw)}
    return [3 * rng.standard_normal(shape), target.astype(np.float64)], kwargs


@st.composite
def multi_margin_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _class_shape(draw)
    target = rng.integers(0, shape[-1], shape[:-1])
    kwargs = {
        "p": draw(st.sampled_from([1, 2])),
        "margin": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "weight": rng.uniform(0.2, 2.0, shape[-1]) if draw(st.booleans()) else None,
        **_reduction(draw),
    }
    return [rng.standard_normal(shape), target], kwargs


@st.composite
def multilabel_margin_cases(draw: Any) -> Case:
    """Each row: some distinct classes (maybe one repeated), then -1, then ignored junk."""
    rng, shape = _rng(draw), _class_shape(draw)
    classes = shape[-1]
    rows = rng.permuted(np.broadcast_to(np.arange(classes), shape), axis=-1)
    stop = rng.integers(0, classes + 1, shape[:-1])[..., None]  # first -1 (classes: none)
    position = np.arange(classes)
    target = np.where(position < stop, rows, rng.integers(-1, classes, shape))
    target = np.where(position == stop, -1, target)
    if draw(st.booleans()) and classes > 2:
        target[..., 1] = np.where(stop[..., 0] > 2, target[..., 0], target[..., 1])  # duplicate
    return [rng.standard_normal(shape), target.astype(np.int64)], _reduction(draw)


@st.composite
def hinge_embedding_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    kwargs = {"margin": draw(st.sampled_from([0.5, 1.0, 2.0])), **_reduction(draw)}
    return [2 * rng.standard_normal(shape), _labels(rng, shape, True)], kwargs


@st.composite
def poisson_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    log_input = draw(st.booleans())
    input = rng.standard_normal(shape) if log_input else rng.uniform(0.1, 3.0, shape)
    kwargs = {
        "log_input": log_input,
        "full": draw(st.booleans()),
        "eps": draw(st.sampled_from([1e-8, 0.1])),
        **_reduction(draw),
    }
    return [input, rng.poisson(2.0, shape).astype(np.float64)], kwargs


@st.composite
def gaussian_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw, min_dims=1)
    # var above eps (0.3 at most): torch's clamp is invisible to autograd, so inside it the
    # gradient is not the flat forward's (that region is tested against torch below)
    layout = draw(st.sampled_from(["same", "drop_last", "one"]))
    var_shape = {"same": shape, "drop_last": shape[:-1]}.get(layout)
    if var_shape is None:
        var_shape = list(shape)
        var_shape[draw(st.integers(0, len(shape) - 1))] = 1
        var_shape = tuple(var_shape)
    inputs = [
        rng.standard_normal(shape),
        rng.standard_normal(shape),
        rng.uniform(0.4, 2, var_shape),
    ]
    kwargs = {
        "full": draw(st.booleans()),
        "eps": draw(st.sampled_from([1e-6, 0.3])),
        **_reduction(draw),
    }
    return inputs, kwargs


@st.composite
def margin_ranking_cases(draw: Any) -> Case:
    rng, shape = _rng(draw), _shape(draw)
    x1, x2 = rng.standard_normal((2, *shape))
    kwargs = {"margin": draw(st.sampled_from([0.0, 0.5])), **_reduction(draw)}
    return [x1, x2, _labels(rng, shape)], kwargs


@st.composite
def cosine_cases(draw: Any) -> Case:
    rng = _rng(draw)
    batch = () if draw(st.booleans()) else (draw(st.integers(1, 3)),)
    # D >= 2: in one dim cos is always ±1 and its gradient mere cancellation noise
    x1, x2 = rng.standard_normal((2, *batch, draw(st.integers(2, 4))))
    target = np.where(rng.random(batch) < 0.2, 0.0, _labels(rng, batch))
    kwargs = {"margin": draw(st.sampled_from([-0.5, 0.0, 0.5])), **_reduction(draw)}
    return [x1, x2, target], kwargs


@st.composite
def triplet_cases(draw: Any) -> Case:
    rng, p = _rng(draw), draw(st.sampled_from([1.0, 1.5, 2.0, 3.0, np.inf]))
    # D = 1 for the exact p only: torch's |u|^(p-1) / n^(p-1) is 1 +- ulp there, and
    # gradients that cancel exactly in one dim leave that ulp to compare (seen at 1e-16)
    shape = (draw(st.integers(1 if p in (1.0, 2.0, np.inf) else 2, 4)),)
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 3)), *shape)
    kwargs = {
        "margin": draw(st.sampled_from([0.5, 1.0, 2.0])),
        "p": p,
        "eps": draw(st.sampled_from([1e-6, 0.0])),
        "swap": draw(st.booleans()),
        **_reduction(draw),
    }
    return list(rng.standard_normal((3, *shape))), kwargs


@dataclass(frozen=True)
class Op:
    module: str  # the same name in reference.nn.loss_extra and torch.nn
    functional: str  # the same name in the reference's functional module and torch's
    home: Any  # the reference module holding the functional pair
    cases: st.SearchStrategy
    wrt: tuple[int, ...] = (0,)  # the inputs whose gradient the backward returns

    def pair(self) -> tuple[Any, Any]:
        return getattr(self.home, self.functional), getattr(
            self.home, f"{self.functional}_backward"
        )

    def __str__(self) -> str:
        return self.module


# fmt: off
OPS = [
    Op("SoftMarginLoss", "soft_margin_loss", LF, soft_margin_cases()),
    Op("MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss", LF,
       multilabel_soft_margin_cases()),
    Op("MultiMarginLoss", "multi_margin_loss", MF, multi_margin_cases()),
    Op("MultiLabelMarginLoss", "multilabel_margin_loss", MF, multilabel_margin_cases()),
    Op("HingeEmbeddingLoss", "hinge_embedding_loss", MF, hinge_embedding_cases()),
    Op("PoissonNLLLoss", "poisson_nll_loss", LF, poisson_cases()),
    Op("GaussianNLLLoss", "gaussian_nll_loss", LF, gaussian_cases(), (0, 1, 2)),
    Op("MarginRankingLoss", "margin_ranking_loss", MF, margin_ranking_cases(), (0, 1)),
    Op("CosineEmbeddingLoss", "cosine_embedding_loss", MF, cosine_cases(), (0, 1)),
    Op("TripletMarginLoss", "triplet_margin_loss", TRF, triplet_cases(), (0, 1, 2)),
]
# fmt: on


def _tensors(kwargs: dict[str, Any], dtype: Any = torch.float64) -> dict[str, Any]:
    return {
        k: torch.as_tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v
        for k, v in kwargs.items()
    }


@settings(max_examples=30)
@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_gradcheck(op: Op, data: st.DataObject) -> None:
    inputs, kwargs = data.draw(op.cases)
    forward, backward = op.pair()
    result = gradcheck(
        lambda *xs: forward(*xs, **kwargs),
        *inputs,
        backward=lambda g, *xs: backward(g, *xs, **kwargs),
        wrt=op.wrt,
        **GRADCHECK,
    )
    assert result.ok, str(result)


@settings(max_examples=25)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_module_matches_torch(op: Op, dtype: Any, device: str, data: st.DataObject) -> None:
    inputs, kwargs = data.draw(op.cases)
    ref = getattr(rnn, op.module)(**kwargs)
    twin = getattr(torch.nn, op.module)(**_tensors(kwargs))
    assert_twin(ref, twin, inputs=inputs, dtype=dtype, device=device, differentiable=op.wrt)


@settings(max_examples=10)
@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_functional_keeps_float32_and_matches_torch(op: Op, data: st.DataObject) -> None:
    """The functional pair itself in float32: dtypes kept, values as torch's."""
    inputs, kwargs = data.draw(op.cases)
    x32 = [x.astype(np.float32) if x.dtype.kind == "f" else x for x in inputs]
    k32 = {k: v.astype(np.float32) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    forward, backward = op.pair()
    out = forward(*x32, **k32)
    g = np.random.default_rng(0).standard_normal(np.shape(out)).astype(np.float32)
    grads = backward(g, *x32, **k32)
    grads = grads if isinstance(grads, tuple) else (grads,)
    out_t, grads_t = torch_run(getattr(TF, op.functional), x32, g, op.wrt, **k32)
    assert out.dtype == np.float32 and all(gr.dtype == np.float32 for gr in grads)
    for name, ours, theirs in [("output", out, out_t), *zip(("grad",) * 3, grads, grads_t)]:
        comparison = compare_arrays(name, ours, theirs, tolerance(np.float32))
        assert comparison.ok, str(comparison)


def torch_run(fn, inputs, g, wrt, **kwargs) -> tuple[np.ndarray, list[np.ndarray]]:
    ts = [x if isinstance(x, float) else torch.tensor(x, requires_grad=i in wrt)
          for i, x in enumerate(inputs)]  # fmt: skip
    out = fn(*ts, **_tensors(kwargs, ts[0].dtype))
    out.backward(torch.as_tensor(g))
    return out.detach().numpy(), [ts[i].grad.numpy() for i in wrt]


# -- kinks, ties and clamps, at exactly those points ------------------------------------

_A, _P = np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]])
# fmt: off
KINKS = {  # name: (functional, inputs, kwargs, wrt)
    "hinge_at_margin": ("hinge_embedding_loss", [np.array([1.0, 1, 0.5, 2, 0.5, 3]),
                        np.array([-1.0, 1, 0.5, 0, -1, -1])], {}, (0,)),
    "ranking_at_zero": ("margin_ranking_loss", [np.array([1.0, 1, 2, 0]),
                        np.array([1.0, 0.5, 1.5, 0]), np.array([1.0, -1, 1, -1])],
                        {"margin": 0.5}, (0, 1)),
    "multi_margin_z0": ("multi_margin_loss", [np.array([[1.0, 0, 2], [0.5, 0.5, 0.5]]),
                        np.array([0, 1])], {"margin": 1.0}, (0,)),
    "multi_margin_ties": ("multi_margin_loss", [np.array([[0.5, 0.5, 0.5, 1]]), np.array([0])],
                          {"margin": 0.0, "p": 2}, (0,)),
    "multilabel_dup_z0": ("multilabel_margin_loss", [np.array([[1.0, 0, 2, 0.5], [1, 0.3, 2, 0]]),
                          np.array([[0, 0, -1, 2], [3, 1, 0, 2]])], {}, (0,)),
    "triplet_at_kink": ("triplet_margin_loss", [_A, np.array([[1.0, 0]]), np.array([[2.0, 0]])],
                        {"eps": 0.0}, (0, 1, 2)),
    "triplet_swap_tie": ("triplet_margin_loss", [_A, _P, np.array([[1.0, 0]])],
                         {"eps": 0.0, "swap": True, "margin": 2.0}, (0, 1, 2)),
    "triplet_inf_tie": ("triplet_margin_loss", [_A, _P, np.array([[3.0, 0]])],
                        {"eps": 0.0, "p": np.inf}, (0, 1, 2)),
    "triplet_zero_distance": ("triplet_margin_loss", [_A, _A, np.array([[0.0, 1]])],
                              {"eps": 0.0}, (0, 1, 2)),
    "triplet_p1_zero_entry": ("triplet_margin_loss", [_A, np.array([[0.0, 1]]), _P],
                              {"eps": 0.0, "p": 1.0, "margin": 2.0}, (0, 1, 2)),
    "triplet_p1.5_zero_entry": ("triplet_margin_loss", [_A, np.array([[0.0, 1]]), _P],
                                {"eps": 0.0, "p": 1.5, "margin": 2.0}, (0, 1, 2)),
    "gaussian_clamped_var": ("gaussian_nll_loss", [np.array([1.0, 2, 0.5]), np.zeros(3),
                             np.array([0.0, 1e-9, 0.5])], {}, (0, 1, 2)),
    "gaussian_float_var": ("gaussian_nll_loss", [np.array([[1.0, 2]]), np.zeros((1, 2)), 0.25],
                           {"full": True}, (0, 1)),
}
# fmt: on


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(KINKS))
def test_kinks_ties_and_clamps_follow_torch(case: str, reduction: str) -> None:
    """Hinges at exactly 0 (clamp_min passes the gradient; the class kernels' z > 0 does
    not), ties (swap's min halves, the inf-norm splits), zero distances, clamped var."""
    name, inputs, kwargs, wrt = KINKS[case]
    kwargs = {**kwargs, "reduction": reduction}
    out = getattr(RF, name)(*inputs, **kwargs)
    g = np.random.default_rng(3).standard_normal(np.shape(out))
    grads = getattr(RF, f"{name}_backward")(g, *inputs, **kwargs)
    grads = grads if isinstance(grads, tuple) else (grads,)
    out_t, grads_t = torch_run(getattr(TF, name), inputs, g, wrt, **kwargs)
    for label, ours, theirs in [("output", out, out_t), *zip(("grad",) * 3, grads, grads_t)]:
        comparison = compare_arrays(label, ours, theirs, tolerance(np.float64))
        assert comparison.ok, str(comparison)


def test_cosine_at_margin_passes_the_gradient() -> None:
    """cos - margin == 0 exactly (margin taken from torch's own cos): clamp_min passes."""
    x1, x2 = np.array([[1.0, 0.0], [0.3, 2.0]]), np.array([[1.0, 1.0], [1.0, -0.5]])
    a, b = torch.tensor(x1), torch.tensor(x2)
    denom = (((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12)).sqrt()
    margin = float(((a * b).sum(1) / denom)[0])
    y, g = np.array([-1.0, -1.0]), np.array([0.7, -1.3])
    ours = MF.cosine_embedding_loss_backward(g, x1, x2, y, margin, "none")
    _, theirs = torch_run(TF.cosine_embedding_loss, [x1, x2, y], g, (0, 1), margin=margin,
                          reduction="none")  # fmt: skip
    assert MF.cosine_embedding_loss(x1, x2, y, margin, "none")[0] == 0
    assert np.abs(ours[0][0]).max() > 0.1
    for mine, torch_grad in zip(ours, theirs):
        np.testing.assert_allclose(mine, torch_grad, rtol=1e-12, atol=1e-15)


# -- bad input: torch raises, and so does the reference, early and clearly ----------------

_X, _Y, _I = np.zeros((2, 3)), np.array([0, 1]), np.array
# fmt: off
BAD = {  # name: (functional, its home, args, kwargs, the reference's error, its message)
    "target_out_of_range": ("multi_margin_loss", MF, [_X, _I([0, 3])], {}, ValueError, "range"),
    "p_3": ("multi_margin_loss", MF, [_X, _Y], {"p": 3}, ValueError, "p == 1 and p == 2"),
    "int32_target": ("multi_margin_loss", MF, [_X, _Y.astype(np.int32)], {}, TypeError, "int64"),
    "weight_size": ("multi_margin_loss", MF, [_X, _Y], {"weight": np.ones(2)}, ValueError,
                    "one value per class"),
    "multilabel_below_minus_one": ("multilabel_margin_loss", MF, [_X, _I([[-2, -1, 0]] * 2)], {},
                                   ValueError, "out of range"),
    "multilabel_target_shape": ("multilabel_margin_loss", MF, [_X, _I([[0, -1]] * 2)], {},
                                ValueError, "shape"),
    "cosine_2d_target": ("cosine_embedding_loss", MF, [_X, _X, np.ones((2, 1))], {}, ValueError,
                         "multi-target"),
    "triplet_margin_0": ("triplet_margin_loss", TRF, [_X, _X, _X], {"margin": 0.0}, ValueError,
                         "greater than 0"),
    "gaussian_negative_var": ("gaussian_nll_loss", LF, [_X, _X, -np.ones((2, 3))], {},
                              ValueError, "negative"),
    "gaussian_var_shape": ("gaussian_nll_loss", LF, [_X, _X, np.ones(3)], {}, ValueError,
                           "does not fit"),
    "ranking_ndim": ("margin_ranking_loss", MF, [_X, _X, np.ones(3)], {}, ValueError, "same shape"),
    "bad_reduction": ("soft_margin_loss", LF, [_X, _X], {"reduction": "avg"}, ValueError,
                      "reduction"),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_like_torch(case: str) -> None:
    name, home, args, kwargs, error, message = BAD[case]
    with pytest.raises((RuntimeError, ValueError)):
        getattr(TF, name)(*[torch.as_tensor(a) for a in args], **_tensors(kwargs))
    with pytest.raises(error, match=message):
        getattr(home, name)(*args, **kwargs)


def test_module_plumbing() -> None:
    """Weights are buffers under torch's keys; backward first, or 'none' without a
    gradient, is a clear error; several inputs give a tuple of gradients."""
    w = np.array([0.5, 1.0, 2.0])
    for name in ("MultiMarginLoss", "MultiLabelSoftMarginLoss"):
        keys = list(getattr(rnn, name)(weight=w).state_dict())
        assert keys == list(getattr(torch.nn, name)(weight=torch.tensor(w)).state_dict())
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.TripletMarginLoss().backward()
    loss = rnn.HingeEmbeddingLoss(reduction="none")
    loss(_X, np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        loss.backward()
    ranking = rnn.MarginRankingLoss(margin=1.0)
    ranking(_X[0], _X[1] + 1, np.ones(3))
    grads = ranking.backward()
    assert isinstance(grads, tuple) and len(grads) == 2
    with pytest.raises(ValueError, match="greater than 0"):
        rnn.TripletMarginLoss(margin=-1.0)
