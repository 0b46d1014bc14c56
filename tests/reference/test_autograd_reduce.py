"""reference.autograd reductions (ops_reduce) and matrix products, norms, logsumexp and
softmax (ops_linalg) against torch (float64 tight, float32) on hypothesis-drawn shapes and
dims with a random upstream gradient; gradcheck; ties, zeros and kinks at the exact
points; torch's errors; torch's OpInfo samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import reference.autograd as ag
from tests.reference.autograd_helpers import against_torch, run_op_db, tape_gradcheck
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

TOL = {np.float64: (1e-12, 1e-13), np.float32: (2e-5, 2e-6)}
Op = Callable[..., Any]


def _dims(draw: Any, ndim: int, kind: str) -> Any:
    """A dim of the form the op takes: ``int`` (negative half the time), ``tuple`` of
    distinct dims, ``any`` (None, an int or a tuple), or ``req`` (an int or a tuple)."""
    span = max(ndim, 1)
    one = st.integers(-span, span - 1)
    several = st.lists(st.integers(0, span - 1), unique=True, max_size=span).map(
        lambda ds: tuple(d - span if i % 2 else d for i, d in enumerate(ds))
    )
    options = {"int": one, "req": one | several.filter(bool), "any": st.none() | one | several}
    return draw(options[kind])


# name -> (call on a library L: (L, x, dim, keepdim) -> tensor, dim kind, values, min size)
# values: "normal" draws, or "ties" (small integers, so maxima tie).
REDUCTIONS: dict[str, tuple[Op, str, str, int]] = {
    "sum": (lambda L, x, d, k: L.sum(x, d, keepdim=k) if d is not None else x.sum(), "any",
            "normal", 0),
    "sum_ties": (lambda L, x, d, k: x.sum(d, keepdim=k) if d is not None else L.sum(x), "any",
                 "ties", 0),
    "mean": (lambda L, x, d, k: x.mean(d, keepdim=k) if d is not None else L.mean(x), "any",
             "normal", 1),
    "prod": (lambda L, x, d, k: x.prod(d, keepdim=k), "int", "normal", 0),
    "prod_all": (lambda L, x, d, k: L.prod(x), "int", "normal", 0),
    "prod_zeros": (lambda L, x, d, k: x.prod(d, keepdim=k), "int", "ties", 0),
    "var": (lambda L, x, d, k: L.var(x, d, keepdim=k), "any", "normal", 2),
    "var_c0": (lambda L, x, d, k: x.var(d, correction=0, keepdim=k), "any", "normal", 1),
    "var_unbiased_false": (lambda L, x, d, k: x.var(d, unbiased=False), "any", "normal", 1),
    "std": (lambda L, x, d, k: x.std(d, keepdim=k), "any", "normal", 2),
    "std_c2": (lambda L, x, d, k: L.std(x, d, correction=2, keepdim=k), "any", "normal", 3),
    "max": (lambda L, x, d, k: x.max(), "int", "ties", 1),
    "min": (lambda L, x, d, k: L.min(x), "int", "ties", 1),
    "max_dim": (lambda L, x, d, k: x.max(d, keepdim=k)[0], "int", "normal", 1),
    "min_dim": (lambda L, x, d, k: L.min(x, d, k).values, "int", "normal", 1),
    "amax": (lambda L, x, d, k: L.amax(x, d, keepdim=k) if d is not None else x.amax(), "any",
             "ties", 1),
    "amin": (lambda L, x, d, k: x.amin(d, keepdim=k) if d is not None else L.amin(x), "any",
             "ties", 1),
    "logsumexp": (lambda L, x, d, k: L.logsumexp(x, d, keepdim=k), "req", "normal", 0),
    "softmax": (lambda L, x, d, k: L.softmax(x, d), "int", "normal", 0),
    "log_softmax": (lambda L, x, d, k: x.log_softmax(d), "int", "normal", 0),
    "norm": (lambda L, x, d, k: L.norm(x, dim=d, keepdim=k), "any", "normal", 0),
    "norm_p1": (lambda L, x, d, k: x.norm(p=1, dim=d, keepdim=k), "any", "normal", 0),
    "norm_p3": (lambda L, x, d, k: x.norm(3, d, keepdim=k), "any", "normal", 0),
    "norm_p1.5": (lambda L, x, d, k: L.norm(x, 1.5, d, keepdim=k), "any", "normal", 0),
    "norm_p0.5": (lambda L, x, d, k: L.norm(x, 0.5, d, keepdim=k), "any", "normal", 1),
    "norm_p-1": (lambda L, x, d, k: L.norm(x, -1, d, keepdim=k), "any", "normal", 1),
    "norm_p0": (lambda L, x, d, k: x.norm(0, d, keepdim=k), "any", "ties", 0),
    "norm_inf": (lambda L, x, d, k: x.norm(float("inf"), d, keepdim=k), "any", "ties", 1),
    "norm_-inf": (lambda L, x, d, k: L.norm(x, -float("inf"), d, k), "any", "ties", 1),
}  # fmt: skip


@st.composite
def reduction_cases(draw: Any) -> tuple:
    name = draw(st.sampled_from(sorted(REDUCTIONS)))
    call, kind, values, low = REDUCTIONS[name]
    shape = tuple(draw(st.lists(st.integers(low if low else 0, 3), max_size=3)))
    if np.prod(shape) < low:
        shape = (low,)
    rng, dtype = draw_rng(draw), draw(st.sampled_from([np.float64, np.float32]))
    x = rng.integers(-2, 3, shape).astype(float) if values == "ties" else rng.standard_normal(shape)
    return name, x.astype(dtype), _dims(draw, len(shape), kind), draw(st.booleans()), dtype


@given(reduction_cases())
def test_reductions_vs_torch(case: Any) -> None:
    name, x, dim, keepdim, dtype = case
    call = REDUCTIONS[name][0]
    rtol, atol = TOL[dtype]
    if name.startswith(("var", "std")) and dtype == np.float32:
        rtol, atol = 1e-4, 1e-5  # the centred sum cancels
    # torch's var/std backward reads dim=() as "no dims" (test_var_std_empty_dim_tuple)
    theirs_dim = None if dim == () and name.startswith(("var", "std")) else dim
    ours, theirs = (
        (lambda t: call(ag, t, dim, keepdim)),
        (lambda t: call(torch, t, theirs_dim, keepdim)),
    )
    against_torch(ours, theirs, [x], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_empty_dim_tuple(name: str) -> None:
    """A torch bug, not followed: ``var(x, dim=())`` reduces over every dim (as ``sum`` does)
    but its backward divides by N - 1 with N = 1 (the size of no dims), so torch's gradient
    is +-inf. The tape gives the gradient of the value computed: torch's own ``var(x)``'s."""
    x = np.array([[0.5, -1.0, 2.0], [0.25, 3.0, -0.5]])
    ours = ag.Tensor(x, requires_grad=True)
    getattr(ours, name)(dim=()).backward()
    t = torch.tensor(x, requires_grad=True)
    getattr(t, name)(dim=()).backward()
    assert np.isinf(t.grad.numpy()).all()  # torch 2.13
    t.grad = None
    getattr(t, name)().backward()
    np.testing.assert_allclose(ours.grad.data, t.grad.numpy(), rtol=1e-13)
    assert tape_gradcheck(lambda v: getattr(v, name)(dim=()), x)


@given(st.data())
def test_max_min_dim_indices(data: Any) -> None:
    """The indices of max(dim)/min(dim) (ties included: the first, as torch's CPU kernel)."""
    shape = tuple(data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3)))
    x = draw_rng(data.draw).integers(-1, 2, shape).astype(np.float64)
    dim, keepdim = _dims(data.draw, len(shape), "int"), data.draw(st.booleans())
    for name in ("max", "min"):
        ours = getattr(ag.Tensor(x), name)(dim, keepdim)
        theirs = getattr(torch.tensor(x), name)(dim, keepdim)
        assert ours.indices.dtype == np.int64 and ours.indices.grad_fn is None
        np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
        np.testing.assert_array_equal(ours[0].data, theirs[0].numpy())


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_reduction_gradcheck(name: str) -> None:
    call, kind, _, _ = REDUCTIONS[name]
    x = np.random.default_rng(len(name)).permutation(24).reshape(2, 3, 4) / 7.0 - 1.5  # distinct
    dims = {"any": (0, -1), "req": (1, 2), "int": -2}[kind]
    for dim in (dims, None) if kind == "any" else (dims,):
        for keepdim in (True, False):
            assert tape_gradcheck(lambda t, d=dim, k=keepdim: call(ag, t, d, k), x)


def test_grad_fn_names() -> None:
    x, t = ag.ones(2, 3, requires_grad=True), torch.ones(2, 3, requires_grad=True)
    for call, kind, _, _ in REDUCTIONS.values():
        dim = {"any": 1, "req": 1, "int": 1}[kind]
        for d in (dim, None) if kind == "any" else (dim,):
            assert call(ag, x, d, False).grad_fn.name() == call(torch, t, d, False).grad_fn.name()


# -- matmul ------------------------------------------------------------------------------------
@st.composite
def matmul_cases(draw: Any) -> tuple:
    batch = draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=2, min_side=0, max_side=3))
    batch = batch.input_shapes
    n, k, m = (draw(st.integers(0 if i == 1 else 1, 3)) for i in range(3))
    rank_a, rank_b = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    a = (k,) if rank_a == 1 else (*batch[0][: rank_a - 2], n, k)
    b = (k,) if rank_b == 1 else (*batch[1][: rank_b - 2], k, m)
    rng, dtype = draw_rng(draw), draw(st.sampled_from([np.float64, np.float32]))
    return rng.standard_normal(a).astype(dtype), rng.standard_normal(b).astype(dtype), dtype


@given(matmul_cases())
def test_matmul_vs_torch(case: Any) -> None:
    a, b, dtype = case
    rtol, atol = TOL[dtype]
    against_torch(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], rtol=rtol, atol=atol * 10)
    against_torch(ag.matmul, torch.matmul, [a, b], rtol=rtol, atol=atol * 10)


PRODUCTS: dict[str, tuple[Op, tuple, tuple]] = {
    "mm": (lambda L, a, b: L.mm(a, b), (2, 3), (3, 4)),
    "bmm": (lambda L, a, b: L.bmm(a, b), (2, 2, 3), (2, 3, 4)),
    "dot": (lambda L, a, b: L.dot(a, b), (3,), (3,)),
    "mv": (lambda L, a, b: a.mv(b), (2, 3), (3,)),
    "vecmat": (lambda L, a, b: a @ b, (3,), (3, 2)),
    "batched": (lambda L, a, b: a.matmul(b), (2, 1, 2, 3), (3, 3, 2)),
    "rmatmul": (lambda L, a, b: b.__rmatmul__(a), (2, 3), (3, 2)),
}


@pytest.mark.parametrize("name", sorted(PRODUCTS))
def test_products(name: str) -> None:
    call, sa, sb = PRODUCTS[name]
    rng = np.random.default_rng(len(name))
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    against_torch(lambda x, y: call(ag, x, y), lambda x, y: call(torch, x, y), [a, b], 1e-12)
    assert tape_gradcheck(lambda x, y: call(ag, x, y), a, b)
    x, y = ag.Tensor(a, requires_grad=True), ag.Tensor(b, requires_grad=True)
    tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    if name != "rmatmul":
        assert call(ag, x, y).grad_fn.name() == call(torch, tx, ty).grad_fn.name()


# -- ties, zeros and kinks at the exact points -----------------------------------------------------
NAN, INF = np.nan, np.inf
KINKS: list[tuple[str, Op, list]] = [
    ("prod one zero", lambda L, x: x.prod(), [2.0, 0.0, 3.0]),
    ("prod two zeros", lambda L, x: x.prod(), [2.0, 0.0, 0.0]),
    ("prod dim zeros", lambda L, x: x.prod(1), [[2.0, 0.0, 3.0], [0.0, 0.0, 1.0], [1.0, 2.0, 3.0]]),
    ("prod 0-d", lambda L, x: x.prod(), 0.0),
    ("max ties", lambda L, x: x.max(), [1.0, 3.0, 3.0]),
    ("max nan", lambda L, x: x.max(), [NAN, 1.0, NAN]),
    ("min ties", lambda L, x: x.min(), [1.0, 1.0, 3.0, 1.0]),
    ("max dim ties", lambda L, x: x.max(0)[0], [1.0, 3.0, 3.0]),
    ("min dim ties", lambda L, x: x.min(1, keepdim=True)[0], [[1.0, 1.0], [2.0, 0.0]]),
    ("max 0-d", lambda L, x: x.max(0)[0], 2.0),
    ("amax ties", lambda L, x: x.amax(1), [[1.0, 3.0, 3.0], [3.0, 3.0, 3.0]]),
    ("amin ties", lambda L, x: x.amin((0, 1)), [[1.0, 3.0], [1.0, 1.0]]),
    ("amax nan", lambda L, x: x.amax(1), [[NAN, 1.0], [2.0, 1.0]]),
    ("norm at 0", lambda L, x: x.norm(), [0.0, 0.0]),
    ("norm dim at 0", lambda L, x: x.norm(dim=1), [[0.0, 0.0], [3.0, 4.0]]),
    ("norm p1 at 0", lambda L, x: x.norm(p=1, dim=0), [0.0, 1.0, -1.0, NAN]),
    ("norm p3 at 0", lambda L, x: x.norm(p=3, dim=1), [[0.0, 0.0], [0.0, -2.0]]),
    ("norm p0.5 at 0", lambda L, x: x.norm(p=0.5, dim=1), [[0.0, 0.0], [0.0, -2.0]]),
    ("norm p1.5 at 0", lambda L, x: x.norm(p=1.5, dim=1), [[0.0, 0.0], [0.0, -2.0]]),
    ("norm inf ties", lambda L, x: x.norm(p=INF, dim=1), [[3.0, -3.0, 1.0], [0.0, 0.0, 0.0]]),
    ("norm inf nan", lambda L, x: x.norm(p=INF), [NAN, 1.0]),
    ("max dim nan", lambda L, x: x.max(0)[0], [1.0, NAN, NAN]),
    ("min dim nan", lambda L, x: x.min(0)[0], [1.0, NAN, NAN]),
    ("std constant", lambda L, x: x.std(), [1.0, 1.0, 1.0]),
    ("std dim constant", lambda L, x: x.std(0), [[1.0, 2.0], [1.0, 3.0]]),
    ("logsumexp -inf", lambda L, x: x.logsumexp(1), [[-INF, -INF], [0.0, -INF]]),
    ("logsumexp inf", lambda L, x: x.logsumexp(0), [INF, 1.0]),
    ("logsumexp big", lambda L, x: x.logsumexp(0), [1000.0, 1000.0]),
    ("softmax big", lambda L, x: x.softmax(0), [1000.0, -1000.0, 0.0]),
    ("mean empty", lambda L, x: x.mean(), np.zeros(0)),
    ("sum empty", lambda L, x: x.sum(0), np.zeros((0, 2))),
    ("prod empty", lambda L, x: x.prod(0), np.zeros((0, 2))),
    ("logsumexp empty", lambda L, x: x.logsumexp(0), np.zeros(0)),
    ("max empty dim", lambda L, x: x.max(1)[0], np.zeros((0, 2))),
    ("sum of ()", lambda L, x: x.sum(()), np.ones((2, 3))),
    ("0-d sum", lambda L, x: x.sum(-1), 1.5),
    ("0-d softmax", lambda L, x: x.softmax(0), 1.5),
]


@pytest.mark.parametrize(("name", "call", "value"), KINKS, ids=[k[0] for k in KINKS])
def test_kinks(name: str, call: Op, value: Any) -> None:
    x = np.array(value, np.float64)
    with np.errstate(all="ignore"):  # torch's inf/nan here are the answer
        against_torch(lambda t: call(ag, t), lambda t: call(torch, t), [x], rtol=1e-15)


@pytest.mark.parametrize("name", ["var", "std"])
def test_no_degrees_of_freedom_warns_and_gives_nan(name: str) -> None:
    for lib in (torch, ag):
        x = lib.tensor([1.5], dtype=lib.float64, requires_grad=True)
        warns = pytest.warns(UserWarning, match=rf"{name}\(\): degrees of freedom is <= 0")
        with warns, np.errstate(all="ignore"):
            y = getattr(x, name)()
            y.backward()
        assert np.isnan(y.item()) and np.isnan(x.grad.numpy()).all()


def test_norm_dtype() -> None:
    a = np.array([[3.0, -4.0], [1.0, 2.0]], np.float32)

    def call(L: Any, t: Any) -> Any:
        return L.norm(t, dim=1, dtype=L.float64)

    against_torch(lambda t: call(ag, t), lambda t: call(torch, t), [a], rtol=1e-6)


def test_integer_reductions() -> None:
    for dtype in (np.int64, np.int32, np.bool_):
        x = np.array([[1, 0, 1], [1, 1, 1]]).astype(dtype)
        calls = (lambda t: t.sum(), lambda t: t.sum(0), lambda t: t.prod(), lambda t: t.amax(1),
                 lambda t: t.max(), lambda t: t.max(1)[0], lambda t: t.min(1).indices)  # fmt: skip
        for call in calls:
            ours, theirs = call(ag.Tensor(x)), call(torch.tensor(x))
            assert ours.dtype == theirs.numpy().dtype and ours.grad_fn is None
            np.testing.assert_array_equal(ours.data, theirs.numpy())
    x = ag.Tensor(np.array([1, 2]))
    assert x.logsumexp(0).dtype == np.float32 and x.norm().dtype == np.float32
    assert x.sum(dtype=np.float64).dtype == np.float64 and x.mean(dtype=np.float64).item() == 1.5


# -- errors ---------------------------------------------------------------------------------------
ERRORS: list[tuple[str, Op]] = [
    ("sum dim", lambda L: L.ones(2, 3).sum(3)),
    ("sum dim negative", lambda L: L.ones(2, 3).sum(-3)),
    ("sum dims", lambda L: L.ones(2, 3).sum((0, 5))),
    ("0-d dim", lambda L: L.ones(()).mean(1)),
    ("duplicate dims", lambda L: L.ones(2, 3).sum((0, -2))),
    ("amax dim", lambda L: L.ones(2).amax(2)),
    ("max dim", lambda L: L.ones(2, 3).max(2)),
    ("softmax dim", lambda L: L.ones(2, 3).softmax(2)),
    ("logsumexp dim", lambda L: L.ones(2, 3).logsumexp(-3)),
    ("mean int", lambda L: L.ones(2, dtype=L.int64).mean()),
    ("var int", lambda L: L.ones(2, dtype=L.int64).var()),
    ("max empty", lambda L: L.zeros(0).max()),
    ("amax empty", lambda L: L.zeros(0).amax()),
    ("max empty dim", lambda L: L.zeros(0, 3).max(0)),
    ("amax empty dim", lambda L: L.zeros(0, 3).amax(0)),
    ("matmul 0-d", lambda L: L.ones(()) @ L.ones(4)),
    ("dot sizes", lambda L: L.ones(3) @ L.ones(4)),
    ("mv sizes", lambda L: L.ones(2, 3) @ L.ones(4)),
    ("vecmat sizes", lambda L: L.ones(3) @ L.ones(4, 2)),
    ("mm sizes", lambda L: L.ones(2, 3) @ L.ones(4, 2)),
    ("batched sizes", lambda L: L.ones(2, 2, 3) @ L.ones(2, 4, 2)),
    ("batched broadcast", lambda L: L.ones(5, 2, 3) @ L.ones(4, 3, 2)),
    ("3d @ 1d", lambda L: L.ones(2, 3, 4) @ L.ones(5)),
    ("3d @ 2d", lambda L: L.ones(2, 3, 4) @ L.ones(5, 2)),
    ("1d @ 3d", lambda L: L.ones(5) @ L.ones(2, 4, 3)),
    ("2d @ 4d", lambda L: L.ones(2, 3) @ L.ones(5, 2, 2, 4)),
    ("1d grad @ 3d", lambda L: L.ones(5, requires_grad=True) @ L.ones(2, 4, 3)),
    ("2d grad @ 4d", lambda L: L.ones(2, 3, requires_grad=True) @ L.ones(5, 2, 2, 4)),
    ("matmul dtypes", lambda L: L.ones(2, 3, dtype=L.float64) @ L.ones(3, 2)),
    ("mm 1-d", lambda L: L.mm(L.ones(2, 3), L.ones(3))),
    ("bmm 2-d", lambda L: L.bmm(L.ones(2, 3), L.ones(2, 3, 4))),
    ("bmm batch", lambda L: L.bmm(L.ones(2, 3, 4), L.ones(3, 4, 5))),
    ("dot 2-d", lambda L: L.dot(L.ones(2, 3), L.ones(3))),
    ("dot dtypes", lambda L: L.dot(L.ones(3), L.ones(3, dtype=L.float64))),
    ("mv 1-d", lambda L: L.mv(L.ones(3), L.ones(3))),
]


@pytest.mark.parametrize(("name", "call"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_like_torch(name: str, call: Op) -> None:
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value)) as ours:
        call(ag)
    assert str(ours.value) == str(theirs.value).split("\n")[0]


# -- torch's OpInfo samples ------------------------------------------------------------------------
def _fn(name: str) -> Op:
    return lambda *args, **kwargs: getattr(ag, name)(*args, **kwargs)


REDUCE_OP_DB: dict[str, tuple[Op, str | None, float]] = {
    name: (_fn(name), "", 1.0)
    for name in ["sum", "mean", "prod", "var", "std", "amax", "amin", "logsumexp", "softmax",
                 "log_softmax", "matmul", "mm", "bmm", "dot", "mv"]
}  # fmt: skip
REDUCE_OP_DB.update({
    "var.unbiased": (_fn("var"), "unbiased", 1.0),
    "std.unbiased": (_fn("std"), "unbiased", 1.0),
    "max.reduction_with_dim": (_fn("max"), "reduction_with_dim", 1.0),
    "max.reduction_no_dim": (_fn("max"), "reduction_no_dim", 1.0),
    "max.binary": (_fn("max"), "binary", 1.0),
    "min.reduction_with_dim": (_fn("min"), "reduction_with_dim", 1.0),
    "min.reduction_no_dim": (_fn("min"), "reduction_no_dim", 1.0),
    "min.binary": (_fn("min"), "binary", 1.0),
    "softmax.with_dtype": (_fn("softmax"), "with_dtype", 1.0),
    "log_softmax.with_dtype": (_fn("log_softmax"), "with_dtype", 1.0),
    "norm": (_fn("norm"), "", 1.0),
    "norm.inf": (_fn("norm"), "inf", 1.0),
    "norm.fro": (_fn("norm"), "fro", 0.3),
    "__rmatmul__": (lambda x, other: other @ x, "", 1.0),
})  # fmt: skip


@pytest.mark.parametrize("key", sorted(REDUCE_OP_DB))
def test_op_db_samples(key: str) -> None:
    ours, variant, least = REDUCE_OP_DB[key]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # var of one element: both warn; inf/nan answers
        supported, total = run_op_db(key.split(".")[0], ours, variant)
    print(f"op_db {key}: {supported}/{total}")
    assert total > 0 and supported >= least * total, (supported, total)
