"""reference.autograd shape ops (reshape, view, flatten, unflatten, transpose, permute, t,
T, mT, squeeze, unsqueeze, expand, expand_as, repeat, contiguous, clone, movedim) against
torch (float64 and float32, random upstream gradient), gradcheck, grad_fn names, torch's
errors, and torch's OpInfo samples. Also home of :func:`run_op_db`, shared with
test_autograd_index.py.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.autograd as ag
from tests.reference.autograd_helpers import against_torch, run_op_db, tape_gradcheck
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

Op = Callable[[Any], Any]
# float32: the gradients that sum (a broadcast or repeated index) may sum in another order
TOL = {np.float64: (1e-12, 0.0), np.float32: (1e-5, 1e-6)}


def _shape(draw: Any, max_dims: int = 4, min_dims: int = 0, low: int = 0) -> tuple:
    return tuple(draw(st.lists(st.integers(low, 3), min_size=min_dims, max_size=max_dims)))


def _dim(draw: Any, ndim: int) -> int:
    """A valid dim, negative half the time (a 0-d tensor takes 0 and -1)."""
    span = max(ndim, 1)
    return draw(st.integers(-span, span - 1))


def _reshape_target(draw: Any, shape: tuple) -> tuple:
    sizes = list(shape)
    draw(st.randoms()).shuffle(sizes)
    while len(sizes) > 1 and draw(st.booleans()):  # merge two neighbours
        i = draw(st.integers(0, len(sizes) - 2))
        sizes[i : i + 2] = [sizes[i] * sizes[i + 1]]
    if sizes and math.prod(sizes) and draw(st.booleans()):
        sizes[draw(st.integers(0, len(sizes) - 1))] = -1
    return tuple(sizes)


@st.composite
def shape_cases(draw: Any) -> tuple[str, tuple, Op]:
    """An op, an input shape, and a call that reads the same on both libraries."""
    name = draw(st.sampled_from(sorted(_BUILDERS)))
    shape, op = _BUILDERS[name](draw)
    return name, shape, op


def _b_reshape(draw: Any) -> tuple:
    shape = _shape(draw)
    target = _reshape_target(draw, shape)
    method = draw(st.sampled_from(["reshape", "view"]))
    return shape, lambda x: getattr(x, method)(target)


def _b_flatten(draw: Any) -> tuple:
    shape = _shape(draw)
    ndim = len(shape)
    a = draw(st.integers(0, max(ndim, 1) - 1))
    b = draw(st.integers(a, max(ndim, 1) - 1))
    start = a - ndim if draw(st.booleans()) and ndim else a
    end = b - ndim if draw(st.booleans()) and ndim else b
    return shape, lambda x: x.flatten(start, end)


def _b_unflatten(draw: Any) -> tuple:
    shape = _shape(draw, min_dims=1, low=1)
    d = _dim(draw, len(shape))
    n = shape[d]
    first = draw(st.sampled_from([k for k in range(1, n + 1) if n % k == 0]))
    sizes = (first, -1) if draw(st.booleans()) else (first, n // first)
    return shape, lambda x: x.unflatten(d, sizes)


def _b_transpose(draw: Any) -> tuple:
    shape = _shape(draw)
    a, b = _dim(draw, len(shape)), _dim(draw, len(shape))
    return shape, lambda x: x.transpose(a, b)


def _b_permute(draw: Any) -> tuple:
    shape = _shape(draw)
    dims = draw(st.permutations(range(len(shape))))
    dims = [d - len(shape) if draw(st.booleans()) else d for d in dims]
    return shape, lambda x: x.permute(dims)


def _b_t(draw: Any) -> tuple:
    shape = _shape(draw, max_dims=2)
    return shape, lambda x: x.t()


def _b_T_mT(draw: Any) -> tuple:
    shape = _shape(draw, min_dims=2)
    return shape, (lambda x: x.T) if len(shape) == 2 and draw(st.booleans()) else (lambda x: x.mT)


def _b_squeeze(draw: Any) -> tuple:
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 1, 2, 3]), max_size=4)))
    kind = draw(st.sampled_from(["none", "int", "tuple"]))
    if kind == "none":
        return shape, lambda x: x.squeeze()
    if kind == "int":
        d = _dim(draw, len(shape))
        return shape, lambda x: x.squeeze(d)
    dims = tuple(draw(st.sets(st.integers(0, max(len(shape), 1) - 1))))
    return shape, lambda x: x.squeeze(dims)


def _b_unsqueeze(draw: Any) -> tuple:
    shape = _shape(draw, max_dims=3)
    d = draw(st.integers(-len(shape) - 1, len(shape)))
    return shape, lambda x: x.unsqueeze(d)


def _b_expand(draw: Any) -> tuple:
    shape = tuple(draw(st.lists(st.sampled_from([0, 1, 1, 2, 3]), max_size=3)))
    lead = tuple(draw(st.lists(st.integers(0, 3), max_size=2)))
    sizes = lead + tuple(
        draw(st.sampled_from([-1, s] if s != 1 else [-1, 0, 1, 2, 3])) for s in shape
    )
    if draw(st.booleans()):
        full = tuple(shape[i - len(lead)] if s == -1 else s for i, s in enumerate(sizes))
        return shape, lambda x: x.expand_as(_like(x, np.zeros(full)))
    return shape, lambda x: x.expand(sizes)


def _like(x: Any, array: np.ndarray) -> Any:
    """``array`` as a tensor of ``x``'s library."""
    return ag.Tensor(array) if isinstance(x, ag.Tensor) else torch.tensor(array)


def _b_repeat(draw: Any) -> tuple:
    shape = _shape(draw, max_dims=3)
    repeats = tuple(draw(st.lists(st.integers(0, 3), min_size=len(shape), max_size=len(shape) + 2)))
    return shape, lambda x: x.repeat(repeats)


def _b_clone(draw: Any) -> tuple:
    shape = _shape(draw)
    method = draw(st.sampled_from(["clone", "contiguous"]))
    return shape, lambda x: getattr(x, method)()


def _b_movedim(draw: Any) -> tuple:
    shape = _shape(draw, min_dims=1)
    n = draw(st.integers(1, len(shape)))
    src = draw(st.permutations(range(len(shape))))[:n]
    dst = draw(st.permutations(range(len(shape))))[:n]
    return shape, lambda x: x.movedim(tuple(src), tuple(d - len(shape) for d in dst))


_BUILDERS = {
    "reshape": _b_reshape, "flatten": _b_flatten, "unflatten": _b_unflatten,
    "transpose": _b_transpose, "permute": _b_permute, "t": _b_t, "T/mT": _b_T_mT,
    "squeeze": _b_squeeze, "unsqueeze": _b_unsqueeze, "expand": _b_expand,
    "repeat": _b_repeat, "clone": _b_clone, "movedim": _b_movedim,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_BUILDERS))
@given(data=st.data())
def test_against_torch(name: str, data: Any) -> None:
    shape, op = _BUILDERS[name](data.draw)
    x = draw_rng(data.draw).standard_normal(shape)
    for dtype, (rtol, atol) in TOL.items():
        against_torch(op, op, [x.astype(dtype)], rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(_BUILDERS))
@given(data=st.data())
def test_gradcheck(name: str, data: Any) -> None:
    shape, op = _BUILDERS[name](data.draw)
    x = draw_rng(data.draw).standard_normal(shape)
    result = tape_gradcheck(op, x)
    assert result, str(result)


@given(case=shape_cases())
def test_grad_fn_names(case: tuple) -> None:
    _, shape, op = case
    x = np.ones(shape)
    ours, theirs = op(ag.Tensor(x, requires_grad=True)), op(torch.tensor(x, requires_grad=True))
    if theirs.grad_fn is None or theirs.grad_fn.name() in ("AliasBackward0",):
        return  # torch returned the input itself (or an alias)
    if theirs.grad_fn.name() == "UnsafeViewBackward0":  # reshape that had to copy
        assert ours.grad_fn.name() == "ViewBackward0"
        return
    assert ours.grad_fn.name() == theirs.grad_fn.name()


def test_float32_in_float32_out_and_integers_flow() -> None:
    x = np.arange(6, dtype=np.int64)
    ours = ag.Tensor(x).reshape(2, 3).T.expand(4, 3, 2).repeat(1, 2, 1)
    theirs = torch.tensor(x).reshape(2, 3).T.expand(4, 3, 2).repeat(1, 2, 1)
    assert ours.dtype == np.int64 and ours.grad_fn is None
    np.testing.assert_array_equal(ours.data, theirs.numpy())


def test_T_warns_as_torch_on_other_than_2d() -> None:
    for shape in [(), (2, 3, 4)]:
        x = np.ones(shape)
        with warnings.catch_warnings(record=True) as ours_w:
            warnings.simplefilter("always")
            ours = ag.Tensor(x).T
        with warnings.catch_warnings(record=True) as torch_w:
            warnings.simplefilter("always")
            theirs = torch.tensor(x).T
        assert ours.shape == tuple(theirs.shape)
        assert [str(w.message) for w in ours_w] == [
            str(w.message).split(" (Triggered")[0] for w in torch_w
        ]
    assert ag.Tensor(np.ones(3)).T.shape == (3,)


def test_contiguous_returns_self_and_view_shares_no_storage() -> None:
    x = ag.Tensor(np.zeros((2, 3)))
    assert x.contiguous() is x
    y = x.view(6)
    y[0] = 5.0  # the reference keeps no strides: x is not written (torch's would be)
    assert x.data[0, 0] == 0.0 and y.data[0] == 5.0


ERRORS: list[tuple[tuple, Op, bool]] = [
    ((12,), lambda x: x.reshape(3, 5), True),
    ((12,), lambda x: x.reshape(-1, -1), True),
    ((12,), lambda x: x.view(-1, 5), True),
    ((0,), lambda x: x.reshape(-1, 0), True),
    ((3, 4), lambda x: x.transpose(0, 2), True),
    ((3, 4), lambda x: x.permute(0, 0), True),
    ((3, 4), lambda x: x.permute(0), True),
    ((3,), lambda x: x.expand(2, 4), True),
    ((3, 1), lambda x: x.expand(3), False),
    ((3,), lambda x: x.expand(-1, 3), True),
    ((3, 4), lambda x: x.repeat(2), True),
    ((3,), lambda x: x.repeat(-1), True),
    ((3, 4), lambda x: x.flatten(1, 0), True),
    ((3, 4), lambda x: x.unflatten(1, (3, 2)), True),
    ((2, 3, 4), lambda x: x.t(), True),
    ((3,), lambda x: x.mT, True),
    ((3, 4), lambda x: x.squeeze(5), True),
    ((3, 4), lambda x: x.unsqueeze(3), True),
    ((3, 4, 5), lambda x: x.movedim((0, 1), (0, 0)), True),
    ((), lambda x: x.transpose(0, 1), True),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors_as_torch(case: int) -> None:
    shape, op, same_message = ERRORS[case]
    x = np.ones(shape)
    with pytest.raises(Exception) as theirs:
        op(torch.tensor(x))
    with pytest.raises(Exception) as ours:
        op(ag.Tensor(x))
    assert isinstance(ours.value, type(theirs.value)) or issubclass(
        type(theirs.value), type(ours.value)
    ), (ours.value, theirs.value)
    if same_message:
        assert str(ours.value) == str(theirs.value).split("\n")[0]


# -- torch's OpInfo samples ---------------------------------------------------------------


def _method(name: str) -> Callable[..., Any]:
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


SHAPE_OP_DB = {
    "reshape": (_method("reshape"), 1.0),
    "view": (_method("view"), 1.0),
    "reshape_as": (_method("reshape_as"), 1.0),
    "view_as": (_method("view_as"), 1.0),
    "flatten": (_method("flatten"), 1.0),
    "unflatten": (_method("unflatten"), 1.0),
    "transpose": (_method("transpose"), 1.0),
    "permute": (_method("permute"), 1.0),
    "t": (_method("t"), 1.0),
    "T": (lambda x: x.T, 1.0),
    "mT": (lambda x: x.mT, 1.0),
    "squeeze": (_method("squeeze"), 1.0),
    "unsqueeze": (_method("unsqueeze"), 1.0),
    "expand": (_method("expand"), 1.0),
    "expand_as": (_method("expand_as"), 1.0),
    "repeat": (_method("repeat"), 1.0),
    "contiguous": (_method("contiguous"), 1.0),
    "clone": (_method("clone"), 1.0),
    "movedim": (_method("movedim"), 1.0),
}


@pytest.mark.filterwarnings("ignore:The use of `x.T`:UserWarning")
@pytest.mark.filterwarnings("ignore:Tensor.T is deprecated:UserWarning")
@pytest.mark.parametrize("name", sorted(SHAPE_OP_DB))
def test_op_db_samples(name: str) -> None:
    ours, least = SHAPE_OP_DB[name]
    supported, total = run_op_db(name, ours, rtol=1e-12, atol=0.0)
    print(f"op_db {name}: {supported}/{total}")
    assert total > 0 and supported >= least * total, (supported, total)
