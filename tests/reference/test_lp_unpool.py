"""LPPool1d/2d/3d and MaxUnpool1d/2d/3d with their functionals: gradcheck, module and
functional against torch (float64, float32, random upstream gradient, batched and
unbatched) on hypothesis-drawn configurations, torch's values and gradients at zero
sums, NaN and norm_type = +-inf, unpooling with torch's max_pool indices (repeated ones
included), the output_size rules, raising where torch raises, repr, dtype and errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import reference.functional as RF
import reference.nn as rnn
from harness.compare import GRADCHECK
from harness.twin import assert_twin
from reference import gradcheck
from reference.functional.pooling import pool_output_size
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

TF = torch.nn.functional
NDS = [1, 2, 3]
INF = float("inf")


def _per_dim(draw: Any, nd: int, low: int, high: int, int_ok: bool = True) -> Any:
    values = tuple(draw(st.integers(low, high)) for _ in range(nd))
    if nd == 1 or (int_ok and len(set(values)) == 1 and draw(st.booleans())):
        return values[0]  # torch takes an int for equal values (1-d LP: an int only)
    return values


def _as_tuple(v: Any, nd: int) -> tuple:
    return tuple(v) if isinstance(v, tuple) else (v,) * nd


# -- LP pooling ------------------------------------------------------------------------
@st.composite
def lp_case(draw: Any, nd: int, signed_ok: bool = True, max_size: int = 5) -> tuple:
    """``(kwargs, input)``: torch's arguments and an input torch computes finite values
    for: positive (any ``norm_type``) or signed (``norm_type`` 1, 2 or +-inf)."""
    p = draw(st.sampled_from([1, 2, 2.0, 3.0, 1.5, 0.5, -1.0, 4.0, INF, -INF]))
    kernel = _per_dim(draw, nd, 1, 3)
    stride = None if draw(st.booleans()) else _per_dim(draw, nd, 1, 3)
    kwargs = {"norm_type": p, "kernel_size": kernel, "stride": stride,
              "ceil_mode": draw(st.booleans())}  # fmt: skip
    size = tuple(draw(st.integers(1, max_size)) for _ in range(nd))
    k, s = _as_tuple(kernel, nd), _as_tuple(stride or kernel, nd)
    out = [pool_output_size(n, k[a], s[a], 0, 1, kwargs["ceil_mode"]) for a, n in enumerate(size)]
    assume(min(out) >= 1 and (nd < 3 or all(n >= kk for n, kk in zip(size, k))))
    shape = (*draw(st.sampled_from([(), (1,), (2,)])), draw(st.integers(1, 2)), *size)
    rng = draw_rng(draw)
    if signed_ok and p in (1, 2, INF, -INF) and draw(st.booleans()):
        return kwargs, rng.standard_normal(shape)
    return kwargs, rng.uniform(0.5, 2.0, shape) * rng.choice([1.0, -1.0]) ** (p in (2, 4))


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_lp_pool_module_matches_torch(nd: int, data: st.DataObject, device: str) -> None:
    kwargs, x = data.draw(lp_case(nd), label="case")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    name = f"LPPool{nd}d"
    for dtype in DTYPES:
        assert_twin(getattr(rnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs), [x],
                    dtype=dtype, device=device, seed=seed)  # fmt: skip


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_lp_pool_functional_matches_torch(nd: int, data: st.DataObject, device: str) -> None:
    kwargs, x = data.draw(lp_case(nd), label="case")
    name = f"lp_pool{nd}d"
    for dtype in DTYPES:
        assert_twin(getattr(RF, name), getattr(TF, name), [x], dtype=dtype, device=device,
                    **kwargs)  # fmt: skip


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_lp_pool_backward_passes_gradcheck(nd: int, data: st.DataObject) -> None:
    kwargs, x = data.draw(lp_case(nd, max_size=4), label="case")  # no ties, no zero sums
    x = x[(..., slice(0, 1), *(slice(None),) * nd)]  # one channel: a quick check
    forward, backward = getattr(RF, f"lp_pool{nd}d"), getattr(RF, f"lp_pool{nd}d_backward")
    result = gradcheck(lambda x: forward(x, **kwargs), x,
                       backward=lambda g, x: backward(g, x, **kwargs), **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


def _torch_lp(nd: int, x: np.ndarray, g: np.ndarray, *args: Any) -> tuple:
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(TF, f"lp_pool{nd}d")(xt, *args)
    yt.backward(torch.tensor(g))
    return yt.detach().numpy(), xt.grad.numpy()


def _ours_lp(nd: int, x: np.ndarray, g: np.ndarray, *args: Any) -> tuple:
    y = getattr(RF, f"lp_pool{nd}d")(x, *args)
    return y, getattr(RF, f"lp_pool{nd}d_backward")(g, x, *args)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, 1.5, 0.5, -1.0, INF, -INF])
@pytest.mark.parametrize("nd", NDS)
def test_lp_pool_at_zero_sums_zeros_nan_and_negatives_is_torchs(nd: int, p: float) -> None:
    """Windows of zeros (relu's mask: no gradient for p > 1; NaN from 0 * inf for p < 1),
    -0, NaN (sign(NaN) = 0 in torch: p = 1 sends 0), negative sums (NaN for p = 3): the
    same values, infs and NaNs as torch, where they are."""
    row = [0.0, 0.0, 1.0, 2.0, 0.0, -0.0, -1.0, -2.0, np.nan, 1.0, 0.0, 3.0]
    x = np.array(row).reshape((1, 1) + (1,) * (nd - 1) + (12,))
    g = np.arange(1.0, 7.0).reshape((1, 1) + (1,) * (nd - 1) + (6,))
    kernel = 2 if nd == 1 else (1,) * (nd - 1) + (2,)
    expected, ours = _torch_lp(nd, x, g, p, kernel), _ours_lp(nd, x, g, p, kernel)
    for theirs, mine in zip(expected, ours):
        np.testing.assert_allclose(mine, theirs, rtol=1e-14, atol=0)  # NaN matches NaN only
    if p > 1 and np.isfinite(p):
        assert np.all(ours[1][..., :2] == 0) and np.all(ours[1][..., 4:6] == 0)  # no gradient


def test_lp_pool_norm_1_at_a_zero_sum_takes_torchs_zero_not_the_derivative() -> None:
    """For p = 1 the pool is linear, y = (K / D) * sum(x), so its derivative is 1 at
    every x; torch's relu mask still zeroes a window whose sum is exactly 0 (here
    [1, -1]). The reference follows torch; central differences give the math's 1."""
    x, g = np.array([[[1.0, -1.0, 2.0, -1.0]]]), np.array([[[1.0, 1.0]]])
    theirs = _torch_lp(1, x, g, 1, 2)[1]
    ours = RF.lp_pool1d_backward(g, x, 1, 2)
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, [[[0.0, 0.0, 1.0, 1.0]]])
    math = gradcheck(lambda x: RF.lp_pool1d(x, 1, 2), x, grad_output=g,
                     backward=lambda g, x: np.ones_like(x), **GRADCHECK)  # fmt: skip
    assert math.ok, str(math)


def test_lp_pool_ceil_mode_scales_an_edge_window_by_k_over_d_like_torch() -> None:
    """Torch's avg * K: a ceil-mode window holding 1 of its 2 elements counts it twice."""
    x = np.array([[[1.0, 1.0, 1.0]]])
    y = RF.lp_pool1d(x, 1, 2, ceil_mode=True)
    np.testing.assert_array_equal(y, TF.lp_pool1d(torch.tensor(x), 1, 2, ceil_mode=True).numpy())
    np.testing.assert_array_equal(y, [[[2.0, 2.0]]])


@pytest.mark.parametrize("nd", NDS)
def test_lp_pool_infinite_norm_follows_max_pools_tie_rule(nd: int) -> None:
    values = np.array([3.0, -3.0, 0.0, 0.0, -1.0, 1.0, 2.0, -2.0])
    x = values.reshape((1, 1) + (1,) * (nd - 1) + (8,))
    g = np.array([1.0, 2.0, 3.0, 4.0]).reshape((1, 1) + (1,) * (nd - 1) + (4,))
    kernel = 2 if nd == 1 else (1,) * (nd - 1) + (2,)
    for p in (INF, -INF):
        for theirs, mine in zip(_torch_lp(nd, x, g, p, kernel), _ours_lp(nd, x, g, p, kernel)):
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_lp_pool_raises_exactly_where_torch_raises(nd: int, data: st.DataObject) -> None:
    kernel = data.draw(st.tuples(*[st.integers(1, 4)] * nd))
    kernel = kernel[0] if nd == 1 else kernel
    stride = data.draw(st.none() | st.integers(1, 3))
    ceil_mode = data.draw(st.booleans())
    shape = (
        data.draw(st.sampled_from([(), (1,)]))
        + (1,)
        + data.draw(st.tuples(*[st.integers(1, 4)] * nd))
    )
    x = np.random.default_rng(0).uniform(0.5, 2, shape)
    args = (2.0, kernel, stride, ceil_mode)
    try:
        expected = getattr(TF, f"lp_pool{nd}d")(torch.as_tensor(x), *args)
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError, match=f"lp_pool{nd}d"):
            getattr(RF, f"lp_pool{nd}d")(x, *args)
        return
    np.testing.assert_allclose(getattr(RF, f"lp_pool{nd}d")(x, *args), expected, rtol=1e-12)


def test_lp_pool_errors_match_torch() -> None:
    x, xt = np.ones((1, 1, 4)), torch.ones(1, 1, 4)
    with pytest.raises(ZeroDivisionError):
        TF.lp_pool1d(xt, 0, 2)
    with pytest.raises(ZeroDivisionError, match="lp_pool1d: norm_type must not be 0"):
        RF.lp_pool1d(x, 0, 2)
    with pytest.raises(TypeError, match="must be Tensor, not tuple"):
        TF.lp_pool1d(xt, 2, (2,))  # torch multiplies by the 1-d kernel_size
    with pytest.raises(TypeError, match="lp_pool1d: kernel_size must be an int"):
        RF.lp_pool1d(x, 2, (2,))
    # norm_type = inf takes the max pooling branch first, which takes a 1-tuple
    np.testing.assert_array_equal(RF.lp_pool1d(x, INF, (2,)), TF.lp_pool1d(xt, INF, (2,)))
    with pytest.raises(IndexError):  # torch's avg_pool2d on a 1-D input
        TF.lp_pool2d(xt[0, 0], 2, 2)
    with pytest.raises(ValueError, match=r"lp_pool2d: expected a 3-D \(unbatched\) or 4-D"):
        RF.lp_pool2d(x[0, 0], 2, 2)
    with pytest.raises(ValueError, match=r"lp_pool2d_backward: grad_output must have the"):
        RF.lp_pool2d_backward(np.ones((1, 3, 3)), np.ones((1, 4, 4)), 2, 2)
    with pytest.raises(TypeError, match="must be a floating array"):
        rnn.LPPool3d(2, 2)(np.ones((1, 2, 2, 2), np.int64))


@pytest.mark.parametrize(
    "nd, args",
    [(1, (2, 3)), (2, (2.0, (2, 3), 1, True)), (3, (INF, 2, (1, 2, 1))), (2, (1, 2, None))],
)
def test_lp_pool_repr_attributes_and_dtype_match_torch(nd: int, args: tuple) -> None:
    ours, theirs = getattr(rnn, f"LPPool{nd}d")(*args), getattr(torch.nn, f"LPPool{nd}d")(*args)
    assert repr(ours) == repr(theirs)
    for attr in ["norm_type", "kernel_size", "stride", "ceil_mode"]:
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    for dtype in DTYPES:
        out = ours(np.full((2, 3) + (4,) * nd, 0.5, dtype))
        assert out.dtype == ours.backward(np.ones_like(out)).dtype == dtype


# -- max unpooling ---------------------------------------------------------------------
@st.composite
def unpool_case(draw: Any, nd: int, ties: bool = False) -> tuple[dict, np.ndarray, np.ndarray]:
    """``(kwargs, input, indices)``: the indices of torch's max pooling of a drawn source
    (few distinct values when ``ties``, so overlapping windows repeat an index), an input
    of the pooled shape, and the pooling's kernel_size, stride, padding, and sometimes
    the source's size as ``output_size`` (``nd`` or ``nd + 2`` values)."""
    kernel = _per_dim(draw, nd, 1, 3)
    stride = None if draw(st.booleans()) else _per_dim(draw, nd, 1, 3)
    padding = tuple(draw(st.integers(0, k // 2)) for k in _as_tuple(kernel, nd))
    ceil_mode = draw(st.booleans())
    size = tuple(draw(st.integers(1, 5)) for _ in range(nd))
    k, s = _as_tuple(kernel, nd), _as_tuple(stride or kernel, nd)
    out = [pool_output_size(n, k[a], s[a], padding[a], 1, ceil_mode) for a, n in enumerate(size)]
    assume(min(out) >= 1)
    shape = (*draw(st.sampled_from([(), (1,), (2,)])), draw(st.integers(1, 2)), *size)
    rng = draw_rng(draw)
    source = rng.integers(0, 2, shape).astype(float) if ties else rng.standard_normal(shape)
    pool = getattr(TF, f"max_pool{nd}d")
    _, indices = pool(torch.tensor(source), kernel, stride, padding, 1, ceil_mode, True)
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    default = tuple((o - 1) * s[a] + k[a] - 2 * padding[a] for a, o in enumerate(out))
    # the default size may be smaller than the source, and its indices invalid there
    choice = draw(
        st.sampled_from(["none", "spatial", "full"] if default == size else ["spatial", "full"])
    )
    if choice != "none":  # torch ignores the first two of nd + 2 values
        kwargs["output_size"] = size if choice == "spatial" else (7, 7, *size)
    return kwargs, rng.standard_normal(indices.shape), indices.numpy()


def _unique_per_plane(indices: np.ndarray, nd: int) -> bool:
    planes = indices.reshape(-1, int(np.prod(indices.shape[-nd:])))
    return all(len(np.unique(row)) == row.size for row in planes)  # test-only check


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_max_unpool_functional_matches_torch(nd: int, data: st.DataObject, device: str) -> None:
    kwargs, x, indices = data.draw(unpool_case(nd, ties=data.draw(st.booleans())), label="case")
    name = f"max_unpool{nd}d"
    for dtype in DTYPES:
        assert_twin(getattr(RF, name), getattr(TF, name), [x, indices], dtype=dtype,
                    device=device, **kwargs)  # fmt: skip


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_max_unpool_module_matches_torch(nd: int, data: st.DataObject, device: str) -> None:
    kwargs, x, indices = data.draw(unpool_case(nd, ties=data.draw(st.booleans())), label="case")
    output_size = kwargs.pop("output_size", None)
    seed = data.draw(st.integers(0, 2**16), label="seed")
    name = f"MaxUnpool{nd}d"
    for dtype in DTYPES:
        ours, theirs = getattr(rnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
        if output_size is None:
            assert_twin(ours, theirs, [x, indices], dtype=dtype, device=device, seed=seed)
            continue
        xt = torch.tensor(x.astype(dtype), requires_grad=True)
        yt = theirs(xt, torch.tensor(indices), output_size)
        y = ours(x.astype(dtype), indices, output_size)
        np.testing.assert_array_equal(y, yt.detach().numpy())  # a copy: exact
        g = np.random.default_rng(seed).standard_normal(y.shape).astype(dtype)
        yt.backward(torch.tensor(g))
        np.testing.assert_array_equal(ours.backward(g), xt.grad.numpy())  # a gather: exact


@pytest.mark.parametrize("nd", NDS)
@given(data=st.data())
def test_max_unpool_backward_passes_gradcheck(nd: int, data: st.DataObject) -> None:
    kwargs, x, indices = data.draw(unpool_case(nd), label="case")
    assume(_unique_per_plane(indices, nd))  # a repeated index: see the test below
    forward = getattr(RF, f"max_unpool{nd}d")
    backward = getattr(RF, f"max_unpool{nd}d_backward")
    result = gradcheck(lambda x: forward(x, indices, **kwargs), x,
                       backward=lambda g, x: backward(g, x, indices, **kwargs),
                       **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


def test_repeated_index_keeps_the_last_value_and_gathers_like_torch() -> None:
    """Two inputs sharing index 1: the output holds the last (torch's sequential
    writes), and torch's gradient (a gather) gives both g[1], although the first never
    reached the output: its exact derivative, by central differences, is 0."""
    x, indices = np.array([[[3.0, 5.0, 7.0]]]), np.array([[[1, 1, 2]]])
    g = np.array([[[10.0, 20.0, 30.0, 40.0]]])
    xt = torch.tensor(x, requires_grad=True)
    yt = TF.max_unpool1d(xt, torch.tensor(indices), 2, 1)
    yt.backward(torch.tensor(g))
    y = RF.max_unpool1d(x, indices, 2, 1)
    grad = RF.max_unpool1d_backward(g, x, indices, 2, 1)
    np.testing.assert_array_equal(y, yt.detach().numpy())
    np.testing.assert_array_equal(y, [[[0.0, 5.0, 7.0, 0.0]]])
    np.testing.assert_array_equal(grad, xt.grad.numpy())
    np.testing.assert_array_equal(grad, [[[20.0, 20.0, 30.0]]])
    exact = gradcheck(lambda x: RF.max_unpool1d(x, indices, 2, 1), x, grad_output=g,
                      backward=lambda g, x: grad * [[[0.0, 1.0, 1.0]]], **GRADCHECK)  # fmt: skip
    assert exact.ok, str(exact)  # the math: the overwritten input gets 0


@pytest.mark.parametrize("nd", NDS)
def test_max_unpool_inverts_max_pool_on_its_maxima(nd: int, rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3) + (4,) * nd)
    pooled, indices = getattr(RF, f"max_pool{nd}d")(x, 2, return_indices=True)
    restored = getattr(RF, f"max_unpool{nd}d")(pooled, indices, 2)
    kept = restored != 0
    np.testing.assert_array_equal(restored[kept], x[kept])
    assert kept.sum() == pooled.size


x4, i4 = np.ones((1, 2, 2, 2)), np.zeros((1, 2, 2, 2), np.int64)
t4, ti4 = torch.ones(1, 2, 2, 2), torch.zeros(1, 2, 2, 2, dtype=torch.long)
x5, i5, t5, ti5 = x4[..., None], i4[..., None], t4[..., None], ti4[..., None]


# fmt: off
UNPOOL_ERRORS = [
    (lambda F, x, i: F.max_unpool2d(x, i + 16, 2), RuntimeError,
     r"max_unpool2d: found an invalid max index 16 \(output planes are of size 4x4\)"),
    (lambda F, x, i: F.max_unpool2d(x, i - 1, 2), RuntimeError, "invalid max index -1"),
    (lambda F, x, i: F.max_unpool2d(x, i, 2, output_size=(2, 2)), ValueError,
     r"max_unpool2d: invalid output_size \(2, 2\) \(dim 0 must be between 2 and 6"),
    (lambda F, x, i: F.max_unpool2d(x, i, 2, output_size=(5,)), ValueError,
     "output_size should be a sequence containing 2 or 4 elements, but it has a length of 1"),
    (lambda F, x, i: F.max_unpool1d(x[0], i[0], 2, output_size=4), TypeError,
     "max_unpool1d: output_size must be a sequence"),
    (lambda F, x, i: F.max_unpool2d(x, i[..., :1], 2), ValueError,
     r"max_unpool2d: indices must have the input's shape \(1, 2, 2, 2\), got \(1, 2, 2, 1\)"),
    (lambda F, x, i: F.max_unpool2d(x[0, 0], i[0, 0], 2), ValueError,
     r"max_unpool2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input"),
    (lambda F, x, i: F.max_unpool1d(x[None], i[None], 2), ValueError,
     r"max_unpool1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input"),
    (lambda F, x, i: F.max_unpool2d(x[:, :0], i[:, :0], 2), ValueError,
     r"non-empty except for the batch, got shape \(1, 0, 2, 2\)"),
    (lambda F, x, i: F.max_unpool2d(x, i, -1), ValueError,
     r"output_size must contain non-negative spatial dimensions, but got output_size\[0\]=-2"),
    (lambda F, x, i: F.max_unpool3d(x[..., None], i[..., None], 2, stride=0), ValueError,
     "max_unpool3d: stride must be positive"),
    (lambda F, x, i: F.max_unpool3d(x[..., None], i[..., None] + 64, 2), RuntimeError,
     r"invalid max index 64 \(output planes are of size 4x4x2\)"),
]
# fmt: on


@pytest.mark.parametrize("call, error, match", UNPOOL_ERRORS, ids=[m for *_, m in UNPOOL_ERRORS])
def test_max_unpool_raises_like_torch(call: Callable, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call(RF, x4, i4)
    with pytest.raises((error, RuntimeError)):
        call(TF, t4, ti4)


def test_max_unpool_edge_cases_match_torch() -> None:
    # stride 0 is accepted in 1-d and 2-d (it only enters the output size), as in torch
    assert RF.max_unpool2d(x4, i4, 2, 0).shape == TF.max_unpool2d(t4, ti4, 2, 0).shape
    # an empty output: torch returns it without reading the indices, and its backward fails
    xt = t4.clone().requires_grad_()
    yt = TF.max_unpool2d(xt, ti4 + 99, 1, padding=1)
    assert RF.max_unpool2d(x4, i4 + 99, 1, padding=1).shape == yt.shape == (1, 2, 0, 0)
    with pytest.raises(RuntimeError, match="out of bounds"):
        yt.backward(torch.zeros_like(yt))
    with pytest.raises(RuntimeError, match="invalid max index"):
        RF.max_unpool2d_backward(np.zeros((1, 2, 0, 0)), x4, i4, 1, padding=1)
    # an empty batch
    assert RF.max_unpool2d(x4[:0], i4[:0], 2).shape == TF.max_unpool2d(t4[:0], ti4[:0], 2).shape
    assert RF.max_unpool2d_backward(np.zeros((0, 2, 4, 4)), x4[:0], i4[:0], 2).shape == (0, 2, 2, 2)
    # indices must be int64, as torch's
    with pytest.raises(RuntimeError, match="should be type int64"):
        TF.max_unpool2d(t4, ti4.int(), 2)
    with pytest.raises(TypeError, match="max_unpool2d: indices must be int64.*int32"):
        RF.max_unpool2d(x4, i4.astype(np.int32), 2)
    with pytest.raises(ValueError, match=r"max_unpool2d_backward: grad_output must have the"):
        RF.max_unpool2d_backward(np.zeros((1, 2, 3, 3)), x4, i4, 2)
    with pytest.raises(RuntimeError, match=r"MaxUnpool2d.backward\(\) called before forward"):
        rnn.MaxUnpool2d(2).backward(np.zeros((1, 2, 4, 4)))


@pytest.mark.parametrize(
    "nd, args", [(1, (2,)), (2, ((2, 3), 1, (1, 0))), (3, (2, None, 1)), (3, ((1, 2, 3), 2))]
)
def test_max_unpool_repr_attributes_and_dtype_match_torch(nd: int, args: tuple) -> None:
    name = f"MaxUnpool{nd}d"
    ours, theirs = getattr(rnn, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    for attr in ["kernel_size", "stride", "padding"]:
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []
    for dtype in DTYPES:
        x = np.ones((2, 3) + (2,) * nd, dtype)
        out = ours(x, np.zeros(x.shape, np.int64))
        assert out.dtype == ours.backward(np.ones_like(out)).dtype == dtype
