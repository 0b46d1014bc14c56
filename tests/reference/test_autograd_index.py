"""reference.autograd indexing and joining ops (``x[key]``, ``x[key] = v``, select, narrow,
gather, index_select, take_along_dim, cat, stack, split, chunk, unbind, iteration) against
torch (float64 and float32, random upstream gradient, repeated indices), gradcheck,
grad_fn names, torch's errors, and torch's OpInfo samples.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import reference.autograd as ag
from tests.reference.autograd_helpers import against_torch, run_op_db, tape_gradcheck
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# float32: the gradients that sum (a broadcast or repeated index) may sum in another order
TOL = {np.float64: (1e-12, 0.0), np.float32: (1e-5, 1e-6)}
Built = tuple[list[np.ndarray], Callable[..., Any]]


def lib(x: Any) -> Any:
    """The module of ``x``'s library: ``reference.autograd`` or ``torch``."""
    return ag if isinstance(x, ag.Tensor) else torch


def as_lib(x: Any, value: Any) -> Any:
    """``value`` (an ndarray, or a tuple/list holding some) as tensors of ``x``'s library."""
    if isinstance(value, np.ndarray):
        return ag.Tensor(value) if isinstance(x, ag.Tensor) else torch.tensor(value)
    if isinstance(value, tuple):
        return tuple(as_lib(x, v) for v in value)
    return value


def joined(x: Any, pieces: Any, keep: list[bool]) -> Any:
    """The kept pieces flattened end to end: one output for the comparison, the others
    unused (their gradient must be zero)."""
    kept = [p for p, k in zip(pieces, keep) if k]
    return lib(x).cat([p.reshape(-1) for p in kept]) if kept else pieces[0]


def _shape(draw: Any, min_dims: int = 0, max_dims: int = 3, low: int = 0) -> tuple:
    return tuple(draw(st.lists(st.integers(low, 4), min_size=min_dims, max_size=max_dims)))


def _index_array(draw: Any, rng: np.random.Generator, size: int, shape: tuple) -> np.ndarray:
    """Indices into a dim of ``size``, negative ones included; repeats are likely."""
    assume(size > 0 or int(np.prod(shape)) == 0)
    return rng.integers(-size, max(size, 1), size=shape) if size else np.zeros(shape, np.int64)


def _key(draw: Any, rng: np.random.Generator, shape: tuple) -> tuple:
    """A key mixing ints, slices (steps > 0), None, one Ellipsis, integer arrays that
    broadcast together (adjacent or separated by a slice), and boolean masks."""
    parts: list[Any] = []
    dim, arrays = 0, tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    ellipsis_at = draw(st.integers(0, len(shape))) if draw(st.booleans()) else -1
    while dim < len(shape):
        if dim == ellipsis_at:
            parts.append(Ellipsis)
            ellipsis_at = -1
            skip = draw(st.integers(0, len(shape) - dim))
            dim += skip
            continue
        size = shape[dim]
        kind = draw(st.sampled_from(["int", "slice", "none", "array", "list", "mask", "stop"]))
        if kind == "stop":
            break
        if kind == "int" and size:
            parts.append(int(rng.integers(-size, size)))
        elif kind == "none":
            parts.append(None)
            continue
        elif kind == "array":
            lead = draw(st.sampled_from([(), (1,) * len(arrays), arrays[1:]]))
            parts.append(_index_array(draw, rng, size, lead if len(lead) <= len(arrays) else ()))
        elif kind == "list" and size:
            parts.append([int(i) for i in rng.integers(-size, size, size=draw(st.integers(1, 3)))])
        elif kind == "mask" and not any(isinstance(p, (np.ndarray, list)) for p in parts):
            width = draw(st.integers(1, len(shape) - dim))
            parts.append(rng.random(shape[dim : dim + width]) < 0.5)
            dim += width
            continue
        else:
            start, stop = draw(st.integers(-5, 5)), draw(st.integers(-5, 5))
            parts.append(slice(start, stop, draw(st.integers(1, 3))))
        dim += 1
    if ellipsis_at >= 0:
        parts.append(Ellipsis)
    return tuple(parts)


def _check_key(shape: tuple, key: tuple) -> None:
    """Keep only keys torch accepts (e.g. broadcastable index arrays)."""
    try:
        torch.zeros(shape)[tuple(torch.tensor(p) if isinstance(p, np.ndarray) else p for p in key)]
    except (IndexError, RuntimeError, ValueError):
        assume(False)


@st.composite
def getitem_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw)
    key = _key(draw, rng, shape)
    _check_key(shape, key)
    return [rng.standard_normal(shape)], lambda x: x[as_lib(x, key)]


@st.composite
def setitem_cases(draw: Any) -> Built:
    """``y = x.clone(); y[key] = v`` with ``v`` broadcast; no repeated positions (torch
    leaves which write wins unspecified)."""
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1)
    key = _key(draw, rng, shape)
    _check_key(shape, key)
    positions = torch.arange(int(np.prod(shape))).reshape(shape)
    picked = positions[as_lib(positions, key)].numpy()  # torch's rules, not NumPy's
    assume(np.unique(picked).size == picked.size)
    v_shape = list(picked.shape)
    v_shape = [1 if draw(st.booleans()) else s for s in v_shape][
        draw(st.integers(0, len(v_shape))) :
    ]

    def op(x: Any, v: Any) -> Any:
        y = x.clone()
        y[as_lib(x, key)] = v
        return y

    return [rng.standard_normal(shape), rng.standard_normal(tuple(v_shape))], op


def _dim(draw: Any, ndim: int) -> int:
    span = max(ndim, 1)
    return draw(st.integers(-span, span - 1))


@st.composite
def gather_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1)
    d = _dim(draw, len(shape))
    ishape = tuple(draw(st.integers(0, s)) if i != d % len(shape) else draw(st.integers(0, 4))
                   for i, s in enumerate(shape))  # fmt: skip
    size = shape[d]
    assume(size > 0 or int(np.prod(ishape)) == 0)
    index = rng.integers(0, max(size, 1), size=ishape)
    if draw(st.booleans()):
        return [rng.standard_normal(shape)], lambda x: lib(x).gather(x, d, as_lib(x, index))
    return [rng.standard_normal(shape), index], lambda x, i: x.gather(d, i)


@st.composite
def index_select_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1)
    d = _dim(draw, len(shape))
    size = shape[d]
    ishape = draw(st.sampled_from([(), (draw(st.integers(0, 5)),)]))
    assume(size > 0 or int(np.prod(ishape)) == 0)
    index = rng.integers(0, max(size, 1), size=ishape)
    return [rng.standard_normal(shape), index], lambda x, i: lib(x).index_select(x, d, i)


@st.composite
def narrow_select_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1)
    d = _dim(draw, len(shape))
    size = shape[d]
    if draw(st.booleans()) and size:
        i = draw(st.integers(-size, size - 1))
        return [rng.standard_normal(shape)], lambda x: x.select(d, i)
    start = draw(st.integers(-size, size))
    length = draw(st.integers(0, size - start if start >= 0 else -start))
    return [rng.standard_normal(shape)], lambda x: x.narrow(d, start, length)


@st.composite
def take_along_dim_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1, low=1)
    if draw(st.booleans()):
        index = rng.integers(0, int(np.prod(shape)), size=_shape(draw))  # torch: no wrap here
        return [rng.standard_normal(shape)], lambda x: lib(x).take_along_dim(x, as_lib(x, index))
    d = _dim(draw, len(shape))
    ishape = tuple(draw(st.sampled_from([1, s])) for s in shape)
    ishape = ishape[: d % len(shape)] + (draw(st.integers(0, 3)),) + ishape[d % len(shape) + 1 :]
    xshape = tuple(1 if draw(st.booleans()) and i != d % len(shape) else s
                   for i, s in enumerate(shape))  # fmt: skip
    index = rng.integers(-shape[d], shape[d], size=ishape)
    return [rng.standard_normal(xshape)], lambda x: x.take_along_dim(as_lib(x, index), d)


@st.composite
def cat_stack_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1)
    count = draw(st.integers(1, 4))
    if draw(st.booleans()):  # stack: equal shapes, a new dim
        d = draw(st.integers(-len(shape) - 1, len(shape)))
        arrays = [rng.standard_normal(shape) for _ in range(count)]
        return arrays, lambda *xs: lib(xs[0]).stack(list(xs), d)
    d = _dim(draw, len(shape))
    arrays = []
    for _ in range(count):
        if draw(st.integers(0, 4)) == 0:
            arrays.append(np.zeros((0,)))  # torch's legacy empty tensor, skipped
            continue
        s = list(shape)
        s[d] = draw(st.integers(0, 3))
        arrays.append(rng.standard_normal(s))
    return arrays, lambda *xs: lib(xs[0]).cat(list(xs), dim=d)


@st.composite
def split_cases(draw: Any) -> Built:
    rng = draw_rng(draw)
    shape = _shape(draw, min_dims=1)
    d = _dim(draw, len(shape))
    size = shape[d]
    kind = draw(st.sampled_from(["size", "sections", "chunk", "unbind", "iter"]))
    if kind == "size":
        split_size = draw(st.integers(1 if size else 0, 5))
        call: Callable[[Any], Any] = lambda x: x.split(split_size, d)  # noqa: E731
    elif kind == "sections":
        cuts = sorted(draw(st.lists(st.integers(0, size), max_size=3)))
        sizes = list(np.diff([0, *cuts, size]))
        call = lambda x: lib(x).split(x, [int(s) for s in sizes], dim=d)  # noqa: E731
    elif kind == "chunk":
        chunks = draw(st.integers(1, 5))
        call = lambda x: x.chunk(chunks, d)  # noqa: E731
    elif kind == "unbind":
        assume(size > 0)
        call = lambda x: x.unbind(d)  # noqa: E731
    else:
        assume(shape[0] > 0)
        call = list
    keep = draw(st.lists(st.booleans(), min_size=6, max_size=6))
    return [rng.standard_normal(shape)], lambda x: joined(x, call(x), keep)


CASES = {
    "getitem": getitem_cases, "setitem": setitem_cases, "gather": gather_cases,
    "index_select": index_select_cases, "narrow/select": narrow_select_cases,
    "take_along_dim": take_along_dim_cases, "cat/stack": cat_stack_cases,
    "split/chunk/unbind/iter": split_cases,
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_against_torch(name: str, data: Any) -> None:
    arrays, op = data.draw(CASES[name]())
    for dtype, (rtol, atol) in TOL.items():
        cast = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
        against_torch(op, op, cast, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_gradcheck(name: str, data: Any) -> None:
    arrays, op = data.draw(CASES[name]())
    floats = [a for a in arrays if a.dtype.kind == "f"]
    ints = [a for a in arrays if a.dtype.kind != "f"]

    def fn(*xs: Any) -> Any:
        return op(*xs, *(ag.Tensor(i) for i in ints))

    result = tape_gradcheck(fn, *floats)
    assert result, str(result)


@pytest.mark.parametrize("name", sorted(CASES))
@given(data=st.data())
def test_grad_fn_names(name: str, data: Any) -> None:
    arrays, op = data.draw(CASES[name]())
    ours = op(*(ag.Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays))
    theirs = op(*(torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays))
    t_name = theirs.grad_fn.name() if theirs.grad_fn is not None else None
    if name == "getitem" and t_name != "IndexBackward0":
        return  # a basic key: torch records a chain of view nodes, named by its last
    if name == "split/chunk/unbind/iter" or t_name in (None, "AliasBackward0"):
        return  # joined() adds a cat (or torch returned an alias)
    if name == "setitem":  # torch picks copy_/fill_/index_put_ by its own fast paths (a
        # whole-tensor key, a one-element mask): only the family must match
        writes = {"torch::autograd::CopySlices", "IndexPutBackward0"}
        assert ours.grad_fn.name() in writes
        return
    assert ours.grad_fn is not None and ours.grad_fn.name() == t_name


def test_repeated_indices_accumulate() -> None:
    x = ag.Tensor(np.arange(4.0), requires_grad=True)
    g = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    x[ag.tensor([0, 0, -4, 3, 0])].backward(g)
    np.testing.assert_array_equal(x.grad.data, [1 + 2 + 4 + 16, 0, 0, 8])


def test_unused_piece_gets_zero_gradient() -> None:
    x = ag.Tensor(np.arange(5.0), requires_grad=True)
    a, b, c = x.split(2)
    b.backward(np.array([3.0, 5.0]))
    np.testing.assert_array_equal(x.grad.data, [0, 0, 3, 5, 0])
    assert a.grad_fn is b.grad_fn is c.grad_fn and b.output_nr == 1


def test_setitem_is_in_place() -> None:
    leaf = ag.Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        leaf[0] = 1.0
    with ag.no_grad():
        leaf[0] = 1.0
    assert leaf.data[0] == 1.0 and leaf.is_leaf and leaf._version == 1
    y = leaf.clone()
    version = y._version
    y[1:] = ag.Tensor(np.array([2.0, 3.0]), requires_grad=True)
    assert y._version == version + 1 and y.grad_fn.name() == "torch::autograd::CopySlices"
    plain = ag.Tensor(np.zeros(2))
    plain[0] = ag.Tensor(np.array(4.0), requires_grad=True)  # no grad before, now a node
    assert plain.requires_grad and plain.grad_fn.name() == "torch::autograd::CopySlices"


def test_setitem_after_a_save_refuses_backward_as_torch() -> None:
    for make in (ag.Tensor, torch.tensor):
        x = make(np.arange(3.0), requires_grad=True)
        y = x.clone()
        z = y * y  # saves y
        y[0] = 1.0
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            z.sum().backward()


def test_retain_grad_follows_an_in_place_write() -> None:
    grads = []
    for make in (ag.Tensor, torch.tensor):
        x = make(np.arange(3.0), requires_grad=True)
        y = x.clone()
        y.retain_grad()
        y[0] = 5.0
        (y * y).sum().backward()
        grads.append(np.asarray(y.grad.data if make is ag.Tensor else y.grad.numpy()))
    np.testing.assert_array_equal(grads[0], grads[1])  # torch: [10, 2, 4]


def test_cat_promotes_and_keeps_each_grad_dtype() -> None:
    a = np.ones((2, 2), np.float32)
    against_torch(lambda x, y: lib(x).cat([x, y], 1), lambda x, y: torch.cat([x, y], 1),
                  [a, np.ones((2, 1), np.float64)], rtol=1e-12)  # fmt: skip
    ints = ag.cat([ag.Tensor(np.ones(2, np.int64)), ag.Tensor(np.zeros(0, np.float32))])
    assert ints.dtype == np.float32  # torch: the legacy empty float tensor still promotes
    assert ag.cat([ag.Tensor(np.zeros(0)), ag.Tensor(np.zeros(0))], 1).shape == (0,)


def test_zero_d_and_iteration_errors() -> None:
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        iter(ag.Tensor(np.array(1.0)))
    x = ag.Tensor(np.array(2.0), requires_grad=True)
    y = x[None][0]
    y.backward(np.array(3.0))
    assert y.shape == () and x.grad.data == 3.0


@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence:UserWarning")
@pytest.mark.parametrize(
    "key", [[[1], [0]], [0, slice(None)], [np.array(0), np.array(1)], [0, 1], [[0, 1]]]
)
def test_list_key_read_as_tuple_as_torch(key: list) -> None:
    """torch still reads a list holding sequences/tensors/slices as a tuple, and warns."""
    x = np.arange(6.0).reshape(2, 3)
    ours_key = [as_lib(ag.Tensor(x), p) for p in key]
    theirs_key = [as_lib(torch.tensor(x), p) for p in key]
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = ag.Tensor(x)[ours_key]
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        theirs = torch.tensor(x)[theirs_key]
    np.testing.assert_array_equal(ours.data, theirs.numpy())
    assert len(ours_w) == len(theirs_w)


@pytest.mark.filterwarnings("ignore:indexing with dtype torch.uint8:UserWarning")
def test_byte_index_is_a_mask_as_torch() -> None:
    mask = np.array([1, 0, 1], np.uint8)
    against_torch(lambda x: x[ag.Tensor(mask)], lambda x: x[torch.tensor(mask)],
                  [np.arange(3.0)], rtol=1e-12)  # fmt: skip
    with pytest.warns(UserWarning, match="indexing with dtype torch.uint8"):
        ag.Tensor(np.arange(3.0))[ag.Tensor(mask)]


def test_where_torch_does_not_check_bounds() -> None:
    """Two places where torch reads out-of-range indices without raising and the
    reference raises, as the rest of torch's indexing does: ``take_along_dim`` with a
    ``dim`` wraps any index modulo the size (gather refuses it), and an advanced index
    whose result is empty is not bounds-checked."""
    x = np.arange(12.0).reshape(3, 4)
    index = np.array([[4], [9], [-6]])
    wrapped = torch.take_along_dim(torch.tensor(x), torch.tensor(index), 1)
    np.testing.assert_array_equal(wrapped.numpy().ravel(), x[[0, 1, 2], index.ravel() % 4])
    with pytest.raises(RuntimeError, match="index 4 is out of bounds for dimension 1"):
        ag.take_along_dim(ag.Tensor(x), ag.Tensor(index), 1)
    key = (np.array([[1], [0]]),)
    assert torch.zeros(1, 0)[tuple(torch.tensor(k) for k in key)].shape == (2, 1, 0)
    with pytest.raises(IndexError, match="index 1 is out of bounds for dimension 0 with size 1"):
        ag.Tensor(np.zeros((1, 0)))[tuple(ag.Tensor(k) for k in key)]


X = np.arange(12.0).reshape(3, 4)
L = np.int64
ERRORS: list[tuple[Callable[[Any], Any], bool]] = [
    (lambda x: x[5], True),
    (lambda x: x[:, -5], True),
    (lambda x: x[as_lib(x, np.array([5]))], True),
    (lambda x: x[[0, 7]], True),
    (lambda x: x[::-1], True),
    (lambda x: x[0, 0, 0], True),
    (lambda x: x[as_lib(x, np.ones(2, bool))], True),
    (lambda x: x[as_lib(x, np.array([0.5]))], True),
    (lambda x: lib(x).cat([x, as_lib(x, np.ones((3, 5)))]), True),
    (lambda x: lib(x).cat([x, as_lib(x, np.ones(3))]), True),
    (lambda x: lib(x).cat([]), True),
    (lambda x: lib(x).cat([as_lib(x, np.array(1.0))]), True),
    (lambda x: lib(x).cat([x, as_lib(x, np.ones((0, 4)))], 1), True),
    (lambda x: lib(x).cat([x], 2), True),
    (lambda x: lib(x).stack([x, as_lib(x, np.ones((3, 5)))]), True),
    (lambda x: lib(x).stack([]), True),
    (lambda x: lib(x).stack([x], 3), True),
    (lambda x: x.split(0), True),
    (lambda x: x.split([1, 1]), True),
    (lambda x: x.split(-1), True),
    (lambda x: x.split([2, -1]), True),
    (lambda x: x.chunk(0), True),
    (lambda x: x.unbind(2), True),
    (lambda x: x.gather(0, as_lib(x, np.zeros(2, L))), True),
    (lambda x: x.gather(0, as_lib(x, np.zeros((2, 5), L))), True),
    (lambda x: x.gather(0, as_lib(x, np.full((2, 2), 5))), True),
    (lambda x: x.gather(1, as_lib(x, np.full((2, 2), -1))), True),
    (lambda x: x.index_select(0, as_lib(x, np.array([[0]]))), True),
    (lambda x: x.index_select(0, as_lib(x, np.array([5]))), True),
    (lambda x: x.index_select(0, as_lib(x, np.array([-1]))), True),
    (lambda x: x.index_select(0, as_lib(x, np.array([0.0]))), True),
    (lambda x: x.narrow(0, 4, 1), True),
    (lambda x: x.narrow(0, 2, 3), True),
    (lambda x: x.narrow(0, -4, 1), True),
    (lambda x: x.narrow(0, 1, -1), True),
    (lambda x: x.select(0, 3), True),
    (lambda x: x.take_along_dim(as_lib(x, np.zeros(2, L)), 1), True),
]


@pytest.mark.parametrize("case", range(len(ERRORS)))
def test_errors_as_torch(case: int) -> None:
    op, same_message = ERRORS[case]
    with pytest.raises(Exception) as theirs:
        op(torch.tensor(X))
    with pytest.raises(Exception) as ours:
        op(ag.Tensor(X))
    assert isinstance(ours.value, type(theirs.value)), (ours.value, theirs.value)
    if same_message:
        assert str(ours.value) == str(theirs.value).split("\n")[0]


def _method(name: str) -> Callable[..., Any]:
    return lambda x, *args, **kwargs: getattr(x, name)(*args, **kwargs)


INDEX_OP_DB: dict[str, tuple[Callable[..., Any], float]] = {
    "__getitem__": (lambda x, key: x[key], 1.0),
    "cat": (ag.cat, 1.0),
    "stack": (ag.stack, 1.0),
    "split": (ag.split, 1.0),
    "split_with_sizes": (_method("split_with_sizes"), 1.0),
    "chunk": (_method("chunk"), 1.0),
    "unbind": (_method("unbind"), 1.0),
    "gather": (ag.gather, 1.0),
    "index_select": (ag.index_select, 1.0),
    "narrow": (ag.narrow, 1.0),
    "select": (ag.select, 1.0),
    "take_along_dim": (ag.take_along_dim, 1.0),
}


@pytest.mark.parametrize("name", sorted(INDEX_OP_DB))
def test_op_db_samples(name: str) -> None:
    ours, least = INDEX_OP_DB[name]
    supported, total = run_op_db(name, ours, rtol=1e-12, atol=0.0)
    print(f"op_db {name}: {supported}/{total}")
    assert total > 0 and supported >= least * total, (supported, total)
