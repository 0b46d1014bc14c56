"""Bilinear, CosineSimilarity, PairwiseDistance: gradcheck of every backward, functionals and
modules against torch (float64 tight, float32, unbatched, broadcasting), torch's eps clamp
in cosine_similarity and its gradient there, pairwise_distance's kinks and ties, torch's
init for Bilinear, and bad input raising where torch raises.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import reference.nn as rnn
from harness.compare import GRADCHECK, Tolerance, compare_arrays_at_scale, tolerance
from harness.twin import assert_twin, upstream_gradient
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

RB = importlib.import_module("reference.functional.bilinear")
RD = importlib.import_module("reference.functional.distance")
TIGHT = Tolerance(rtol=1e-10, atol=1e-10)
P_VALUES = [0.0, 1.0, 2.0, 3.0, 0.5, 1.5, -1.0, np.inf, -np.inf]
ERRORS = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)


def _tol(dtype: Any) -> Tolerance:
    return TIGHT if np.dtype(dtype) == np.float64 else tolerance(dtype)


def _torch_run(fn: Callable, inputs: list[np.ndarray], g: np.ndarray, **kwargs: Any):
    """torch's output and the gradient of each input (zeros where torch gives none)."""
    ts = [torch.tensor(x, requires_grad=True) for x in inputs]
    y = fn(*ts, **kwargs)
    y.backward(torch.tensor(g))
    grads = [t.grad.numpy() if t.grad is not None else np.zeros(t.shape, x.dtype)
             for t, x in zip(ts, inputs)]  # fmt: skip
    return y.detach().numpy(), grads


def _assert_close(name: str, ours: Any, theirs: Any, dtype: Any, scale: float = 0.0) -> None:
    comparison = compare_arrays_at_scale(name, theirs, ours, _tol(dtype), scale)
    assert comparison.ok, str(comparison)


# -- Bilinear -------------------------------------------------------------------------


@st.composite
def bilinear_cases(draw: Any) -> tuple[list[np.ndarray], dict]:
    """x1 (*, in1), x2 (*, in2) with 0 to 2 leading dims (none: unbatched), weight, bias."""
    rng = draw_rng(draw)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="lead"))
    in1, in2, out = (draw(st.integers(1, 3), label=n) for n in ("in1", "in2", "out"))
    inputs = [rng.standard_normal((*lead, in1)), rng.standard_normal((*lead, in2)),
              rng.standard_normal((out, in1, in2))]  # fmt: skip
    bias = rng.standard_normal(out) if draw(st.booleans(), label="bias") else None
    return inputs, {"bias": bias}


@given(case=bilinear_cases())
def test_bilinear_backward_passes_gradcheck(case: tuple) -> None:
    (x1, x2, w), kwargs = case
    args = [x1, x2, w] + ([kwargs["bias"]] if kwargs["bias"] is not None else [])
    result = gradcheck(RB.bilinear, *args, backward=RB.bilinear_backward, **GRADCHECK)
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=bilinear_cases())
def test_bilinear_matches_torch(dtype: Any, device: str, case: tuple) -> None:
    (x1, x2, w), kwargs = case
    bias = kwargs["bias"]
    args = [a.astype(dtype) for a in [x1, x2, w] + ([bias] if bias is not None else [])]
    out = RB.bilinear(*args)
    g = upstream_gradient(out.shape, dtype)
    theirs, grads = _torch_run(TF.bilinear, args, g)
    _assert_close("output", out, theirs, dtype)
    for name, ours, t in zip(["x1", "x2", "weight", "bias"], RB.bilinear_backward(g, *args), grads):
        _assert_close(f"grad {name}", ours, t, dtype)
    ours_m = rnn.Bilinear(x1.shape[-1], x2.shape[-1], w.shape[0], bias is not None, rng=0)
    torch_m = torch.nn.Bilinear(x1.shape[-1], x2.shape[-1], w.shape[0], bias is not None)
    assert_twin(ours_m, torch_m, [x1, x2], dtype=dtype, device=device, differentiable=[0, 1])


def test_bilinear_module_gradcheck_init_repr_and_state_dict() -> None:
    layer = rnn.Bilinear(4, 3, 5, rng=0, dtype=np.float64)
    rng = np.random.default_rng(1)
    result = gradcheck(layer, rng.standard_normal((2, 4)), rng.standard_normal((2, 3)),
                       wrt=[0, 1], **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)
    big = rnn.Bilinear(16, 2, 200, rng=0)
    bound = 1 / math.sqrt(16)  # torch's: 1 / sqrt(weight.size(1)), for weight and bias
    for p in (big.weight.data, big.bias.data):
        assert p.dtype == np.float32 and np.abs(p).max() <= bound
        assert abs(p.std() - bound / math.sqrt(3)) < 0.1 * bound  # U(-b, b): std b / sqrt 3
    theirs = torch.nn.Bilinear(4, 3, 5, bias=False)
    ours = rnn.Bilinear(4, 3, 5, bias=False)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    assert repr(ours) == repr(theirs) and repr(layer) == repr(torch.nn.Bilinear(4, 3, 5))


w32, b32 = np.ones((4, 2, 3), np.float32), np.ones(4, np.float32)
tw, tb = torch.ones(4, 2, 3), torch.ones(4)

# fmt: off
BILINEAR_ERRORS = [
    ((np.ones(()), np.ones(3), w32, b32), "same number of dimensions"),
    ((np.ones((1, 5, 2)), np.ones((6, 5, 3)), w32, b32), "same leading dims"),
    ((np.ones((5, 2)), np.ones((6, 5, 3)), w32, b32), "same number of dimensions"),
    ((np.ones((5, 3)), np.ones((5, 3)), w32, b32), r"input1's last dim is 3 but weight"),
    ((np.ones((5, 2)), np.ones((5, 4)), w32, b32), r"input2's last dim is 4 but weight"),
    ((np.ones((5, 2)), np.ones((5, 3)), w32, np.ones(3, np.float32)), r"bias must have shape"),
    ((np.ones((5, 2)), np.ones((5, 3)), np.ones((4, 2), np.float32), b32), "weight must be 3-D"),
]
# fmt: on


@pytest.mark.parametrize(("args", "message"), BILINEAR_ERRORS, ids=[m for _, m in BILINEAR_ERRORS])
def test_bilinear_bad_input_raises_where_torch_raises(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RB.bilinear(*[a.astype(np.float32) for a in args])
    with pytest.raises(ERRORS):
        TF.bilinear(*[torch.tensor(a, dtype=torch.float32) for a in args])


def test_bilinear_dtype_mix_raises_torchs_error() -> None:
    x1, x2 = np.ones((5, 2)), np.ones((5, 3), np.float32)
    with pytest.raises(RuntimeError) as theirs:
        TF.bilinear(torch.tensor(x1), torch.tensor(x2), tw, tb)
    with pytest.raises(RuntimeError) as ours:
        RB.bilinear(x1, x2, w32, b32)
    assert str(ours.value).splitlines()[0] == str(theirs.value)
    with pytest.raises(RuntimeError) as theirs:
        torch.nn.Bilinear(2, 3, 4)(torch.ones(5, 2).double(), torch.ones(5, 3).double())
    with pytest.raises(RuntimeError) as ours:
        rnn.Bilinear(2, 3, 4)(np.ones((5, 2)), np.ones((5, 3)))
    assert str(ours.value).splitlines()[0] == str(theirs.value)
    with pytest.raises(ValueError, match="in1_features must be a positive integer"):
        rnn.Bilinear(0, 3, 4)
    with pytest.raises(ValueError):
        torch.nn.Bilinear(0, 3, 4)
    assert rnn.Bilinear(2, 0, 0).weight.shape == tuple(torch.nn.Bilinear(2, 0, 0).weight.shape)


# -- CosineSimilarity, PairwiseDistance: broadcasting pairs -----------------------------


@st.composite
def broadcast_pairs(draw: Any, min_dims: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays that broadcast: a common shape, each with leading dims dropped and some
    dims set to 1 (0-d and 1-d included)."""
    rng = draw_rng(draw)
    shape = draw(st.lists(st.integers(1, 4), min_size=min_dims, max_size=3), label="shape")
    arrays = []
    for name in ("x1", "x2"):
        own = shape[draw(st.integers(0, len(shape) - min_dims), label=f"{name} drops") :]
        own = [1 if draw(st.integers(0, 3), label=f"{name} ones") == 0 else n for n in own]
        arrays.append(rng.standard_normal(own) * rng.uniform(0.5, 2))
    return arrays[0], arrays[1]


def _cosine_term_scale(g: np.ndarray, x1: np.ndarray, x2: np.ndarray, dim: int) -> float:
    """The size of one term of the cosine's gradient before it cancels or is summed:
    ``|g| |x2| / (|x1| |x2|)`` (a gradient that is 0 in the math is rounding noise of it)."""
    a, b = np.broadcast_arrays(x1, x2)
    a, b = (x.reshape(x.shape or (1,)) for x in (a, b))
    axis = dim % a.ndim
    n1 = np.maximum(np.linalg.norm(a, axis=axis, keepdims=True), 1e-8)
    n2 = np.maximum(np.linalg.norm(b, axis=axis, keepdims=True), 1e-8)
    return float(np.max(np.abs(np.expand_dims(g, axis)) * np.abs(b) / (n1 * n2), initial=0))


@st.composite
def cosine_cases(draw: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    x1, x2 = draw(broadcast_pairs())
    ndim = max(x1.ndim, x2.ndim, 1)
    kwargs = {"dim": draw(st.integers(-ndim, ndim - 1), label="dim"),
              "eps": draw(st.sampled_from([1e-8, 1e-3]), label="eps")}  # fmt: skip
    return x1, x2, kwargs


@given(case=cosine_cases())
def test_cosine_similarity_backward_passes_gradcheck(case: tuple) -> None:
    """Away from the eps clamp (norms of order 1): there torch's gradient is the derivative."""
    x1, x2, kwargs = case
    result = gradcheck(
        lambda a, b: RD.cosine_similarity(a, b, **kwargs), x1, x2,
        backward=lambda g, a, b: RD.cosine_similarity_backward(g, a, b, **kwargs), **GRADCHECK,
    )  # fmt: skip
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=cosine_cases())
def test_cosine_similarity_matches_torch_with_broadcasting(dtype: Any, case: tuple) -> None:
    x1, x2, kwargs = (case[0].astype(dtype), case[1].astype(dtype), case[2])
    out = RD.cosine_similarity(x1, x2, **kwargs)
    assert out.dtype == dtype
    g = upstream_gradient(out.shape, dtype)
    theirs, grads = _torch_run(TF.cosine_similarity, [x1, x2], g, **kwargs)
    _assert_close("output", out, theirs, dtype)
    scale = _cosine_term_scale(g.astype(np.float64), x1, x2, kwargs["dim"])
    for name, ours, t in zip(
        ("x1", "x2"), RD.cosine_similarity_backward(g, x1, x2, **kwargs), grads
    ):
        _assert_close(f"grad {name}", ours, t, dtype, scale)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_cosine_similarity_at_the_eps_clamp_is_torchs(dtype: Any) -> None:
    """Norms below eps (0 < n < eps) and exactly 0: forward and gradient as torch's."""
    x1 = np.array([[1e-9, 2e-9, 0.0], [0, 0, 0], [3e-9, -4e-9, 1e-9], [1.0, 2.0, 2.0]], dtype)
    x2 = np.array([[1.0, 2.0, 3.0], [1, -1, 1], [5e-9, 1e-9, -2e-9], [0, 0, 0]], dtype)
    g = np.array([0.7, -1.3, 0.4, 2.0], dtype)
    theirs, grads = _torch_run(TF.cosine_similarity, [x1, x2], g)
    _assert_close("output", RD.cosine_similarity(x1, x2), theirs, dtype)
    for name, ours, t in zip(("x1", "x2"), RD.cosine_similarity_backward(g, x1, x2), grads):
        _assert_close(f"grad {name}", ours, t, dtype)


def test_cosine_similarity_gradient_below_eps_is_not_the_derivative() -> None:
    """Below the clamp the forward is x1 . x2 / (eps |x2|), linear in x1; torch's gradient
    (which we follow) adds -g y x1 / (eps |x1|), from the norm's backward under the clamp."""
    x1, x2, eps = np.array([[1e-9, 2e-9, 2e-9]]), np.array([[1.0, 2.0, 3.0]]), 1e-8
    g = np.array([0.7])
    ours, _ = RD.cosine_similarity_backward(g, x1, x2, eps=eps)
    derivative = g[:, None] * x2 / (eps * np.linalg.norm(x2))  # d/dx1 of x1.x2 / (eps |x2|)
    y = RD.cosine_similarity(x1, x2, eps=eps)
    extra = -g[:, None] * y[:, None] * x1 / (eps * np.linalg.norm(x1))
    np.testing.assert_allclose(ours, derivative + extra, rtol=1e-12)
    assert np.abs(extra).max() > 0.1 * np.abs(derivative).max()  # a visible difference


@st.composite
def distance_cases(draw: Any) -> tuple[np.ndarray, np.ndarray, dict]:
    x1, x2 = draw(broadcast_pairs())
    kwargs = {"p": draw(st.sampled_from(P_VALUES), label="p"),
              "eps": draw(st.sampled_from([1e-6, 0.0, 0.1]), label="eps"),
              "keepdim": draw(st.booleans(), label="keepdim")}  # fmt: skip
    return x1, x2, kwargs


@given(case=distance_cases())
def test_pairwise_distance_backward_passes_gradcheck(case: tuple) -> None:
    """Random differences: no zero entry and no tie, so every p is differentiable."""
    x1, x2, kwargs = case
    result = gradcheck(
        lambda a, b: RD.pairwise_distance(a, b, **kwargs), x1, x2,
        backward=lambda g, a, b: RD.pairwise_distance_backward(g, a, b, **kwargs), **GRADCHECK,
    )  # fmt: skip
    assert result.ok, str(result)


def _distance_vs_torch(x1: np.ndarray, x2: np.ndarray, kwargs: dict, dtype: Any) -> None:
    out = RD.pairwise_distance(x1, x2, **kwargs)
    assert out.dtype == dtype
    g = upstream_gradient(out.shape, dtype)
    theirs, grads = _torch_run(TF.pairwise_distance, [x1, x2], g, **kwargs)
    _assert_close("output", out, theirs, dtype)
    shape = np.broadcast_shapes(x1.shape, x2.shape)
    full, _ = RD.pairwise_distance_backward(
        g, np.broadcast_to(x1, shape), np.broadcast_to(x2, shape), **kwargs
    )  # the terms before the broadcast dims are summed: the scale of the sum's rounding
    scale = float(np.max(np.abs(full), initial=0))
    for name, ours, t in zip(
        ("x1", "x2"), RD.pairwise_distance_backward(g, x1, x2, **kwargs), grads
    ):
        _assert_close(f"grad {name}", ours, t, dtype, scale)  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=distance_cases())
def test_pairwise_distance_matches_torch_with_broadcasting(dtype: Any, case: tuple) -> None:
    x1, x2, kwargs = case
    _distance_vs_torch(x1.astype(dtype), x2.astype(dtype), kwargs, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("p", P_VALUES, ids=str)
def test_pairwise_distance_at_zero_differences_and_ties_is_torchs(p: float, dtype: Any) -> None:
    """x1 - x2 + eps exactly 0 in some entries or all (x2 = eps: 0 - eps + eps = 0), and,
    with eps = 0, entries tied in |d| (the max for inf, the min for -inf)."""
    eps = dtype(1e-6)
    x1 = np.array([[0.0, 0.0, 0.0], [0.0, 1.5, -2.0], [0.0, 0.0, 3.0]], dtype)
    x2 = np.array([[eps, eps, eps], [eps, 0.5, eps], [eps, eps, 1.0]], dtype)
    _distance_vs_torch(x1, x2, {"p": p, "eps": 1e-6}, dtype)
    tied = np.array([[1.0, -1.0, 0.5], [2.0, 2.0, -2.0], [0.5, -3.0, 0.5]], dtype)
    _distance_vs_torch(tied, np.zeros_like(tied), {"p": p, "eps": 0.0}, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_distance_modules_match_torch_unbatched_and_batched(dtype: Any, device: str) -> None:
    rng = np.random.default_rng(0)
    for shape in [(3,), (4, 3), (2, 4, 3)]:
        x1, x2 = rng.standard_normal((2, *shape))
        for p, keepdim in [(2.0, False), (1.5, True), (np.inf, False)]:
            ours = rnn.PairwiseDistance(p, 1e-5, keepdim)
            theirs = torch.nn.PairwiseDistance(p, 1e-5, keepdim)
            assert (ours.norm, ours.eps, ours.keepdim) == (theirs.norm, theirs.eps, theirs.keepdim)
            assert_twin(ours, theirs, [x1, x2], dtype=dtype, device=device, differentiable=[0, 1])
        dim = len(shape) - 1
        assert_twin(rnn.CosineSimilarity(dim), torch.nn.CosineSimilarity(dim), [x1, x2],
                    dtype=dtype, device=device, differentiable=[0, 1])  # fmt: skip
    assert repr(rnn.CosineSimilarity()) == repr(torch.nn.CosineSimilarity())
    assert repr(rnn.PairwiseDistance()) == repr(torch.nn.PairwiseDistance())
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.CosineSimilarity().backward(np.ones(2))


def test_mixed_dtypes_promote_like_torch() -> None:
    """float32 with float64 gives float64; an integer input takes the other's dtype; two
    integer inputs: pairwise_distance promotes to float32 (torch's default dtype)."""
    ints, f32 = np.arange(6).reshape(2, 3), np.ones((2, 3), np.float32)
    for fn, ref in [(TF.cosine_similarity, RD.cosine_similarity),
                    (TF.pairwise_distance, RD.pairwise_distance)]:  # fmt: skip
        for a, b in [(f32, f32.astype(np.float64)), (ints, f32)]:
            theirs = fn(torch.tensor(a), torch.tensor(b))
            ours = ref(a, b)
            assert ours.dtype == np.dtype(str(theirs.dtype).replace("torch.", ""))
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)
    ours, theirs = (
        RD.pairwise_distance(ints, ints + 1),
        TF.pairwise_distance(torch.tensor(ints), torch.tensor(ints + 1)),
    )
    assert ours.dtype == np.float32 and theirs.dtype == torch.float32
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)


t23 = torch.ones(2, 3)

# fmt: off
DISTANCE_ERRORS = [
    (lambda: RD.cosine_similarity(np.ones(3), np.ones(3)),
     lambda: TF.cosine_similarity(torch.ones(3), torch.ones(3)), ValueError, "dim 1 is out of"),
    (lambda: RD.cosine_similarity(np.ones((2, 3)), np.ones((2, 4))),
     lambda: TF.cosine_similarity(t23, torch.ones(2, 4)), ValueError, "do not broadcast"),
    (lambda: RD.cosine_similarity(np.ones((2, 3)), np.ones((2, 3)), eps=-1.0),
     lambda: TF.cosine_similarity(t23, t23, eps=-1.0), ValueError, "eps must be non-negative"),
    (lambda: RD.cosine_similarity(np.ones((2, 3), int), np.ones((2, 3), int)),
     lambda: TF.cosine_similarity(t23.long(), t23.long()), TypeError, "floating arrays"),
    (lambda: RD.pairwise_distance(np.ones((2, 3)), np.ones((2, 4))),
     lambda: TF.pairwise_distance(t23, torch.ones(2, 4)), ValueError, "do not broadcast"),
    (lambda: RD.pairwise_distance(np.ones((2, 0)), np.ones((2, 0)), p=np.inf),
     lambda: TF.pairwise_distance(torch.ones(2, 0), torch.ones(2, 0), p=np.inf), ValueError,
     "empty last dim is undefined"),
    (lambda: RD.pairwise_distance(np.ones((2, 0)), np.ones((2, 0)), p=-1.0),
     lambda: TF.pairwise_distance(torch.ones(2, 0), torch.ones(2, 0), p=-1.0), ValueError,
     "empty last dim"),
    (lambda: RD.pairwise_distance(np.ones(3, bool), np.ones(3)),
     lambda: TF.pairwise_distance(torch.ones(3, dtype=torch.bool), torch.ones(3)), TypeError,
     "bool"),
    (lambda: RD.pairwise_distance_backward(np.ones(3), np.ones((2, 3)), np.ones((2, 3))),
     lambda: TF.pairwise_distance(t23.requires_grad_(), t23).backward(torch.ones(3)),
     ValueError, r"grad_output must have the output's shape \(2,\)"),
]
# fmt: on


@pytest.mark.parametrize(("ours", "theirs", "error", "message"), DISTANCE_ERRORS,
                         ids=[m for *_, m in DISTANCE_ERRORS])  # fmt: skip
def test_distance_bad_input_raises_where_torch_raises(ours, theirs, error, message) -> None:
    with pytest.raises(error, match=message):
        ours()
    with pytest.raises(ERRORS):
        theirs()


def test_empty_last_dim_has_norm_zero_for_non_negative_finite_p() -> None:
    for p in (0.0, 1.0, 2.0, 0.5):
        ours = RD.pairwise_distance(np.ones((2, 0)), np.ones((2, 0)), p=p)
        theirs = TF.pairwise_distance(torch.ones(2, 0), torch.ones(2, 0), p=p)
        np.testing.assert_array_equal(ours, theirs.numpy())
