"""reference.autograd elementwise ops (ops_math, ops_compare): arithmetic and operators,
pow in its three forms, the unary functions, clamp/maximum/minimum/where/masked_fill,
comparisons, type promotion, against torch (float64 tight, float32) on hypothesis-drawn
broadcasting shapes with a random upstream gradient; gradcheck; the kinks at the exact
points; torch's errors; torch's OpInfo samples. Also home of :func:`run_op_db`, shared
with test_autograd_reduce.py.
"""

from __future__ import annotations

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

TOL = {np.float64: (1e-12, 1e-14), np.float32: (1e-5, 1e-6)}
Op = Callable[..., Any]


# -- inputs ------------------------------------------------------------------------------------
def _any(x: np.ndarray) -> np.ndarray:
    return x


def _pos(x: np.ndarray) -> np.ndarray:
    """Bounded away from 0 and positive (log, sqrt, pow's base)."""
    return np.abs(x) + 0.5


def _away(x: np.ndarray) -> np.ndarray:
    """Either sign, |x| >= 0.5 (a divisor)."""
    return np.where(x < 0, -1, 1) * (np.abs(x) + 0.5)


# name -> (call on a library L and its tensors, input transforms); the same call reads
# the same on reference.autograd and on torch.
BINARY: dict[str, tuple[Op, tuple]] = {
    "add": (lambda L, a, b: L.add(a, b), (_any, _any)),
    "add_alpha": (lambda L, a, b: L.add(a, b, alpha=-1.5), (_any, _any)),
    "+": (lambda L, a, b: a + b, (_any, _any)),
    "sub": (lambda L, a, b: L.sub(a, b, alpha=2), (_any, _any)),
    "-": (lambda L, a, b: a - b, (_any, _any)),
    "rsub": (lambda L, a, b: L.rsub(a, b, alpha=0.5), (_any, _any)),
    "*": (lambda L, a, b: a * b, (_any, _any)),
    "mul": (lambda L, a, b: L.mul(a, b), (_any, _any)),
    "/": (lambda L, a, b: a / b, (_any, _away)),
    "div": (lambda L, a, b: L.div(a, b), (_any, _away)),
    "div_floor": (lambda L, a, b: L.div(a, b, rounding_mode="floor"), (_any, _away)),
    "div_trunc": (lambda L, a, b: L.div(a, b, rounding_mode="trunc"), (_any, _away)),
    "**": (lambda L, a, b: a**b, (_pos, _any)),
    "pow": (lambda L, a, b: L.pow(a, b), (_pos, _any)),
    "maximum": (lambda L, a, b: L.maximum(a, b), (_any, _any)),
    "minimum": (lambda L, a, b: L.minimum(a, b), (_any, _any)),
    "where": (lambda L, a, b: L.where(a > b, a * 2, b), (_any, _any)),
    "clamp_min_t": (lambda L, a, b: L.clamp(a, min=b), (_any, _any)),
    "clamp_max_t": (lambda L, a, b: a.clamp(max=b), (_any, _any)),
    "clamp_t": (lambda L, a, b: L.clamp(a, b - 0.5, b + 0.5), (_any, _any)),
    "clamp_t_crossed": (lambda L, a, b: L.clamp(a, b + 0.5, b - 0.5), (_any, _any)),
}

UNARY: dict[str, tuple[Op, Any]] = {
    "neg": (lambda L, x: -x, _any),
    "neg()": (lambda L, x: L.neg(x), _any),
    "abs": (lambda L, x: abs(x), _any),
    "abs()": (lambda L, x: x.abs(), _any),
    "exp": (lambda L, x: x.exp(), _any),
    "log": (lambda L, x: L.log(x), _pos),
    "log1p": (lambda L, x: x.log1p(), _pos),
    "sqrt": (lambda L, x: L.sqrt(x), _pos),
    "rsqrt": (lambda L, x: x.rsqrt(), _pos),
    "sin": (lambda L, x: L.sin(x), _any),
    "cos": (lambda L, x: x.cos(), _any),
    "tanh": (lambda L, x: L.tanh(x), _any),
    "sigmoid": (lambda L, x: x.sigmoid(), _any),
    "relu": (lambda L, x: L.relu(x), _any),
    "relu()": (lambda L, x: x.relu(), _any),
    "x+2": (lambda L, x: x + 2, _any),
    "2+x": (lambda L, x: 2 + x, _any),
    "x-2.5": (lambda L, x: x - 2.5, _any),
    "2-x": (lambda L, x: 2 - x, _any),
    "3*x": (lambda L, x: 3 * x, _any),
    "x*-0.5": (lambda L, x: x * -0.5, _any),
    "x/3": (lambda L, x: x / 3, _any),
    "2/x": (lambda L, x: 2 / x, _away),
    "x**2": (lambda L, x: x**2, _any),
    "x**3": (lambda L, x: x**3, _any),
    "x**0": (lambda L, x: x**0, _any),
    "x**0.5": (lambda L, x: x**0.5, _pos),
    "x**-1.5": (lambda L, x: L.pow(x, -1.5), _pos),
    "2**x": (lambda L, x: 2**x, _any),
    "0.5**x": (lambda L, x: L.pow(0.5, x), _any),
    "clamp": (lambda L, x: x.clamp(-0.5, 0.5), _any),
    "clamp_min": (lambda L, x: L.clamp(x, min=0.1), _any),
    "clamp_max": (lambda L, x: L.clamp(x, max=0.1), _any),
    "clip": (lambda L, x: x.clip(-1, 1), _any),
    "masked_fill": (lambda L, x: x.masked_fill(x > 0.3, -2.0), _any),
    "where_scalar": (lambda L, x: L.where(x > 0, x, 0.0), _any),
    "maximum_scalar_t": (lambda L, x: L.maximum(x, L.tensor(0.2, dtype=x.dtype)), _any),
}


@st.composite
def binary_cases(draw: Any) -> tuple[str, list[np.ndarray], Any]:
    name = draw(st.sampled_from(sorted(BINARY)))
    shapes = draw(
        mutually_broadcastable_shapes(num_shapes=2, max_dims=3, min_side=0, max_side=3)
    ).input_shapes
    rng, dtype = draw_rng(draw), draw(st.sampled_from([np.float64, np.float32]))
    arrays = [f(rng.standard_normal(s)).astype(dtype) for f, s in zip(BINARY[name][1], shapes)]
    return name, arrays, dtype


@st.composite
def unary_cases(draw: Any) -> tuple[str, np.ndarray, Any]:
    name = draw(st.sampled_from(sorted(UNARY)))
    shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
    rng, dtype = draw_rng(draw), draw(st.sampled_from([np.float64, np.float32]))
    return name, UNARY[name][1](rng.standard_normal(shape)).astype(dtype), dtype


def _pair(call: Op) -> tuple[Op, Op]:
    return (lambda *t: call(ag, *t)), (lambda *t: call(torch, *t))


@given(binary_cases())
def test_binary_vs_torch(case: Any) -> None:
    name, arrays, dtype = case
    rtol, atol = TOL[dtype]
    against_torch(*_pair(BINARY[name][0]), arrays, rtol=rtol, atol=atol)


@given(unary_cases())
def test_unary_vs_torch(case: Any) -> None:
    name, x, dtype = case
    rtol, atol = TOL[dtype]
    against_torch(*_pair(UNARY[name][0]), [x], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradcheck(name: str) -> None:
    call, transforms = BINARY[name]
    rng = np.random.default_rng(len(name))
    arrays = [f(rng.standard_normal(s)) for f, s in zip(transforms, [(2, 3), (3,)])]
    if name.startswith("clamp") or name in ("maximum", "minimum", "where"):
        arrays[1] = arrays[1] + 0.05  # no exact ties at the kink
    assert tape_gradcheck(lambda a, b: call(ag, a, b), *arrays)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradcheck(name: str) -> None:
    call, transform = UNARY[name]
    x = transform(np.random.default_rng(len(name)).standard_normal((2, 3)))
    x = np.where(np.abs(np.abs(x) - 0.3) < 1e-3, x + 0.01, x)  # masked_fill's threshold
    assert tape_gradcheck(lambda t: call(ag, t), x)


def test_grad_fn_names() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    x, y = ag.ones(2, requires_grad=True), ag.ones(2, requires_grad=True)
    calls = [*(c for c, _ in BINARY.values()), *(c for c, _ in UNARY.values())]
    for call in calls[: len(BINARY)]:
        assert call(ag, x, y).grad_fn.name() == call(torch, a, b).grad_fn.name()
    for call in calls[len(BINARY) :]:
        assert call(ag, x).grad_fn.name() == call(torch, a).grad_fn.name()


# -- type promotion, integers, comparisons ------------------------------------------------------
PROMOTIONS = [
    (np.float32, (3,), np.float64, ()),  # a 0-d tensor does not widen a tensor with dims
    (np.float32, (3,), np.float64, (3,)),
    (np.float64, (2, 1), np.float32, (3,)),
    (np.int64, (3,), np.float32, (3,)),
    (np.float32, (3,), np.int64, (2, 3)),
    (np.int32, (3,), np.float64, ()),
]


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "maximum", "where", "**"])
@pytest.mark.parametrize(("da", "sa", "db", "sb"), PROMOTIONS)
def test_type_promotion(op: str, da: Any, sa: tuple, db: Any, sb: tuple) -> None:
    rng = np.random.default_rng(0)
    a, b = ((np.abs(rng.standard_normal(s)) * 3 + 1).astype(d) for d, s in ((da, sa), (db, sb)))
    against_torch(*_pair(BINARY[op][0]), [a, b], rtol=1e-6, atol=1e-6)


INTEGER_OPS = ["x+2", "2-x", "x*-0.5", "x/3", "2/x", "x**2", "2**x", "x**0.5", "clamp", "neg",
               "abs", "exp", "sqrt", "sigmoid", "relu"]  # fmt: skip


@pytest.mark.parametrize("op", INTEGER_OPS)
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_integer_inputs(op: str, dtype: Any) -> None:
    x = np.array([0, 1, 3, 2]).astype(dtype)
    call = UNARY[op][0]
    try:
        theirs = call(torch, torch.tensor(x))
    except (RuntimeError, NotImplementedError) as error:
        with pytest.raises(type(error)):
            call(ag, ag.Tensor(x))
        return
    ours = call(ag, ag.Tensor(x))
    assert ours.dtype == theirs.numpy().dtype and ours.grad_fn is None
    np.testing.assert_allclose(ours.data, theirs.numpy(), rtol=1e-6)


@given(st.data())
def test_comparisons(data: Any) -> None:
    shapes = data.draw(mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    rng = draw_rng(data.draw)
    a, b = (rng.integers(-2, 3, s).astype(np.float64) for s in shapes.input_shapes)
    ra, rb = ag.Tensor(a, requires_grad=True), ag.Tensor(b)
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b)
    for op in ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__"):
        for other_r, other_t in ((rb, tb), (0.0, 0.0), (1, 1)):
            ours, theirs = getattr(ra, op)(other_r), getattr(ta, op)(other_t)
            assert ours.dtype == np.bool_ and ours.grad_fn is None and not ours.requires_grad
            np.testing.assert_array_equal(ours.data, theirs.numpy())
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        np.testing.assert_array_equal(getattr(ag, name)(ra, rb).data, getattr(torch, name)(ta, tb))
    assert 2.0 > ag.tensor(1.0) and ag.tensor([1.0, 2.0]).__eq__(None) is NotImplemented


# -- kinks at the exact points -------------------------------------------------------------------
INF, NAN = np.inf, np.nan
KINKS: list[tuple[str, Op, list[list[float]]]] = [
    ("abs(0)", lambda L, x: x.abs(), [[0.0, -0.0, 1.0, -1.0, NAN]]),
    ("nan through", lambda L, x: (x.exp() + x.log() + x.sqrt() + x.sin() + x.tanh()).sigmoid(),
     [[NAN, 1.0]]),
    ("relu(0)", lambda L, x: L.relu(x), [[0.0, -0.0, 1.0]]),
    ("sqrt(0)", lambda L, x: x.sqrt(), [[0.0, 1.0]]),
    ("rsqrt(0)", lambda L, x: x.rsqrt(), [[0.0, 4.0]]),
    ("log(0)", lambda L, x: x.log(), [[0.0, 1.0]]),
    ("log(-1)", lambda L, x: x.log(), [[-1.0]]),
    ("log1p(-1)", lambda L, x: x.log1p(), [[-1.0, 0.0]]),
    ("exp(big)", lambda L, x: x.exp(), [[800.0, -800.0]]),
    ("clamp bounds", lambda L, x: x.clamp(0.0, 1.0), [[0.0, 1.0, 0.5, -1.0, 2.0, NAN]]),
    ("clamp crossed", lambda L, x: x.clamp(1.0, 0.0), [[0.0, 1.0, 0.5, -1.0, 2.0]]),
    ("clamp tensors", lambda L, x, lo, hi: x.clamp(lo, hi),
     [[0.0, 1.0, 0.5, -1.0, 2.0, 0.5, 1.0], [0.0] * 5 + [1.0, 1.0], [1.0] * 5 + [1.0, 0.0]]),
    ("clamp min t", lambda L, x, lo: L.clamp(x, min=lo), [[0.0, 1.0, -1.0], [0.0, 0.0, 0.0]]),
    ("maximum tie", lambda L, a, b: L.maximum(a, b), [[1.0, 2.0, NAN, 1.0], [1.0, 1.0, 1.0, NAN]]),
    ("minimum tie", lambda L, a, b: L.minimum(a, b), [[1.0, 2.0, NAN], [1.0, 1.0, 1.0]]),
    ("x**0", lambda L, x: x**0, [[0.0, -1.0, 2.0]]),
    ("x**2 at <=0", lambda L, x: x**2, [[0.0, -1.0, -3.0]]),
    ("x**0.5 at 0", lambda L, x: x**0.5, [[0.0, -1.0]]),
    ("x**-1 at 0", lambda L, x: x**-1.0, [[0.0, -0.0]]),
    ("a**b", lambda L, a, b: a**b,
     [[0.0, 0.0, 0.0, 0.0, -2.0, 2.0, -2.0], [0.0, 2.0, -1.0, 0.5, 2.0, 0.5, 0.5]]),
    ("0**x", lambda L, x: 0.0**x, [[0.0, 2.0, -1.0]]),
    ("-2**x", lambda L, x: (-2.0) ** x, [[0.0, 2.0, 0.5]]),
    ("x/0", lambda L, a, b: a / b, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]]),
    ("div floor", lambda L, a, b: L.div(a, b, rounding_mode="floor"),
     [[1.5, -1.5, -7.0, 7.0, 0.0], [2.0, 2.0, 2.0, -2.0, 3.0]]),
    ("div trunc", lambda L, a, b: L.div(a, b, rounding_mode="trunc"),
     [[1.5, -1.5, -7.0, 7.0, 0.0], [2.0, 2.0, 2.0, -2.0, 3.0]]),
    ("sigmoid big", lambda L, x: x.sigmoid(), [[-800.0, 0.0, 800.0]]),
    ("where", lambda L, a, b: L.where(a > 0, a, b), [[1.0, -1.0, 0.0], [5.0, 5.0, 5.0]]),
    ("masked_fill t", lambda L, x, v: x.masked_fill(x > 0, v), [[1.0, -1.0, 2.0], 3.0]),
]  # fmt: skip


def test_relu_at_nan() -> None:
    # torch's threshold_backward zeroes where x <= 0, so a NaN input passes its gradient
    with np.errstate(all="ignore"):
        against_torch(*_pair(lambda L, x: L.relu(x)), [np.array([NAN, 1.0])], rtol=0)


@pytest.mark.parametrize(("name", "call", "values"), KINKS, ids=[k[0] for k in KINKS])
def test_kinks(name: str, call: Op, values: list) -> None:
    arrays = [np.array(v, np.float64) for v in values]
    with np.errstate(all="ignore"):  # torch's inf/nan here are the answer, not a bug
        against_torch(*_pair(call), arrays, rtol=1e-15)


def test_integer_division_rounding() -> None:
    a, b = np.array([7, -7, 7, -7, 6]), np.array([2, 2, -2, -2, 3])
    for mode in ("floor", "trunc"):
        ours = ag.div(ag.Tensor(a), ag.Tensor(b), rounding_mode=mode)
        theirs = torch.div(torch.tensor(a), torch.tensor(b), rounding_mode=mode)
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert ag.div(ag.Tensor(a), ag.Tensor(b)).dtype == np.float32  # true division: float


# -- errors -------------------------------------------------------------------------------------
ERRORS: list[tuple[str, Op]] = [
    ("broadcast", lambda L: L.ones(2, 3) + L.ones(4)),
    ("broadcast mul", lambda L: L.ones(2, 3, 1) * L.ones(4, 2)),
    ("where shapes", lambda L: L.where(L.ones(3) > 0, L.ones(2, 1), L.ones(4))),
    ("where cond dtype", lambda L: L.where(L.ones(3), L.ones(3), L.ones(3))),
    ("masked_fill mask dtype", lambda L: L.ones(2, 3).masked_fill(L.ones(3), 1.0)),
    ("masked_fill value dims", lambda L: L.ones(2, 3).masked_fill(L.ones(3) > 0, L.ones(3))),
    ("clamp no bounds", lambda L: L.clamp(L.ones(3))),
    ("sub bool", lambda L: L.ones(2, dtype=L.bool) - L.ones(2, dtype=L.bool)),
    ("neg bool", lambda L: -L.ones(2, dtype=L.bool)),
    ("int negative power", lambda L: L.ones(2, dtype=L.int64) ** -1),
    ("div mode", lambda L: L.div(L.ones(2), L.ones(2), rounding_mode="round")),
]


@pytest.mark.parametrize(("name", "call"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_like_torch(name: str, call: Op) -> None:
    with pytest.raises(Exception) as theirs:
        call(torch)
    with pytest.raises(type(theirs.value)) as ours:
        call(ag)
    assert str(ours.value) == str(theirs.value).split("\n")[0]


# -- in-place methods through the operators --------------------------------------------------------
def test_inplace_methods() -> None:
    for lib in (ag, torch):
        w = lib.ones(3, dtype=lib.float64, requires_grad=True)
        with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
            w.add_(1.0)
    x, tx = ag.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    outs = []
    for leaf in (x, tx):
        y = leaf * 1.0
        y.add_(leaf, alpha=2)
        y.sub_(0.5)
        y.mul_(leaf)
        y.div_(2.0)
        y += leaf
        y -= 1
        y *= 3
        y /= leaf
        y.sum().backward()
        outs.append((y.detach().numpy(), leaf.grad.numpy(), y.grad_fn.name()))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-6)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-6)
    assert outs[0][2] == outs[1][2]


def test_manual_sgd_step_under_no_grad() -> None:
    """The tutorial's manual update: ``with no_grad(): w -= lr * w.grad``, then zero_()."""
    results = []
    for lib in (ag, torch):
        w = lib.tensor([1.0, -2.0, 0.5], requires_grad=True)
        for _ in range(3):
            loss = ((w * w).sum() - w.sum()) * 0.5
            loss.backward()
            with lib.no_grad() if lib is ag else torch.no_grad():
                w -= 0.1 * w.grad
            w.grad.zero_()
        results.append((w.detach().numpy().copy(), w.is_leaf, w.requires_grad))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    assert results[0][1:] == results[1][1:] == (True, True)


# -- torch's OpInfo samples ------------------------------------------------------------------------


def _fn(name: str) -> Op:
    return lambda *args, **kwargs: getattr(ag, name)(*args, **kwargs)


MATH_OP_DB: dict[str, tuple[Op, str | None, float]] = {
    name: (_fn(name), None, 1.0)
    for name in ["add", "sub", "mul", "neg", "abs", "exp", "log", "log1p", "sqrt", "rsqrt",
                 "sin", "cos", "tanh", "sigmoid", "maximum", "minimum", "rsub", "true_divide"]
}  # fmt: skip
MATH_OP_DB.update({
    "div.no_rounding_mode": (_fn("div"), "no_rounding_mode", 1.0),
    "div.trunc_rounding": (_fn("div"), "trunc_rounding", 1.0),
    "div.floor_rounding": (_fn("div"), "floor_rounding", 1.0),
    "pow": (_fn("pow"), None, 1.0),
    "clamp": (_fn("clamp"), None, 0.5),  # a number bound with a tensor one is refused
    "where": (lambda x, c, y: ag.where(c, x, y), None, 1.0),  # op_db: x.where(c, y)
    "masked_fill": (_fn("masked_fill"), None, 1.0),
    "nn.functional.relu": (_fn("relu"), None, 1.0),
})  # fmt: skip


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("key", sorted(MATH_OP_DB))
def test_op_db_samples(key: str) -> None:
    ours, variant, least = MATH_OP_DB[key]
    with np.errstate(all="ignore"):  # some samples divide by 0 or take log of <= 0, as torch
        supported, total = run_op_db(key.split(".")[0] if variant else key, ours, variant)
    print(f"op_db {key}: {supported}/{total}")
    assert total > 0 and supported >= least * total, (supported, total)
