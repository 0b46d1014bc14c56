"""Pooling: gradcheck of every functional backward, every module against torch (float64,
float32) on hypothesis-drawn configurations, torch's exact tie / NaN / -inf choices and
gradients, the average divisor rules, repr, dtype and errors. One op table drives it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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

DTYPES = [np.float64, np.float32]
TF = torch.nn.functional


@dataclass(frozen=True)
class PoolOp:
    name: str
    kind: str  # "max", "avg", "adaptive_avg", "adaptive_max"
    nd: int
    forward: Callable
    backward: Callable
    module: type
    torch_module: type
    torch_functional: Callable

    def __repr__(self) -> str:
        return self.name


def _op(kind: str, nd: int) -> PoolOp:
    name = f"{kind}_pool{nd}d"
    cls = {"max": "MaxPool", "avg": "AvgPool", "adaptive_avg": "AdaptiveAvgPool",
           "adaptive_max": "AdaptiveMaxPool"}[kind] + f"{nd}d"  # fmt: skip
    return PoolOp(name, kind, nd, getattr(RF, name), getattr(RF, f"{name}_backward"),
                  getattr(rnn, cls), getattr(torch.nn, cls), getattr(TF, name))  # fmt: skip


OPS = [_op(kind, nd) for kind in ("max", "avg", "adaptive_avg", "adaptive_max") for nd in (1, 2)]
MAX_OPS = [op for op in OPS if op.kind.endswith("max")]


@st.composite
def pool_config(draw, op: PoolOp) -> tuple[dict, tuple]:
    """Module kwargs (torch's names) and an input shape torch accepts, batched or not."""
    nd = op.nd
    one = lambda s: draw(s) if nd == 1 else tuple(draw(s) for _ in range(nd))  # noqa: E731
    as_tuple = lambda v: v if isinstance(v, tuple) else (v,)  # noqa: E731
    if op.kind.startswith("adaptive"):
        sizes = [st.integers(1, 5)] + ([st.none()] if nd == 2 else [])
        kwargs = {"output_size": one(st.one_of(*sizes))}
        shape = one(st.integers(1, 7))
    else:
        kernel = one(st.integers(1, 3))
        kwargs = {
            "kernel_size": kernel,
            "stride": draw(st.none()) if draw(st.booleans()) else one(st.integers(1, 3)),
            "padding": tuple(draw(st.integers(0, k // 2)) for k in as_tuple(kernel)),
            "ceil_mode": draw(st.booleans()),
        }
        if nd == 1:
            kwargs["padding"] = kwargs["padding"][0]
        dilation = (1,) * nd
        if op.kind == "max":
            kwargs["dilation"] = one(st.integers(1, 2))
            dilation = as_tuple(kwargs["dilation"])
        else:
            kwargs["count_include_pad"] = draw(st.booleans())
            if nd == 2:
                kwargs["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
        stride = as_tuple(kwargs["stride"] or kernel)
        padding = as_tuple(kwargs["padding"])
        shape = tuple(draw(st.integers(1, 7)) for _ in range(nd))
        geometry = list(zip(shape, as_tuple(kernel), stride, padding, dilation))
        out = [pool_output_size(*g, kwargs["ceil_mode"]) for g in geometry]
        assume(min(out) >= 1)
        # torch mishandles a window of padding only (see test_padding_only_window)
        assume(not any(_padding_only(*g, o) for g, o in zip(geometry, out)))
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return kwargs, (*batch, draw(st.integers(1, 2)), *as_tuple(shape))


def _padding_only(size: int, k: int, s: int, p: int, d: int, out: int) -> bool:
    """Whether some dilated window of one dim reads no input element."""
    taps = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d  # (out, k)
    return bool((((taps < 0) | (taps >= size)).all(axis=1)).any())


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_module_matches_torch(op, data, seed, device):
    kwargs, shape = data.draw(pool_config(op))
    x = np.random.default_rng(seed).standard_normal(shape)
    for dtype in DTYPES:
        assert_twin(op.module(**kwargs), op.torch_module(**kwargs), [x], dtype=dtype,
                    device=device, seed=seed)  # fmt: skip


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_functional_backward_passes_gradcheck(op, data, seed):
    kwargs, shape = data.draw(pool_config(op))
    x = np.random.default_rng(seed).standard_normal(shape)  # no ties: max is differentiable
    result = gradcheck(lambda x: op.forward(x, **kwargs), x,
                       backward=lambda g, x: op.backward(g, x, **kwargs), seed=seed,
                       **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


NAMED = [
    (RF.max_pool2d, RF.max_pool2d_backward,
     {"kernel_size": 3, "stride": 2, "padding": 1, "dilation": 2, "ceil_mode": True}),
    (RF.max_pool1d, RF.max_pool1d_backward,
     {"kernel_size": 2, "stride": 1, "padding": 1, "dilation": 2}),  # overlapping windows
    (RF.avg_pool2d, RF.avg_pool2d_backward,
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (RF.avg_pool2d, RF.avg_pool2d_backward,
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True, "count_include_pad": False}),
    (RF.avg_pool2d, RF.avg_pool2d_backward,
     {"kernel_size": (2, 3), "stride": 1, "padding": (1, 0), "divisor_override": 5}),
    (RF.avg_pool1d, RF.avg_pool1d_backward,
     {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (RF.adaptive_avg_pool2d, RF.adaptive_avg_pool2d_backward, {"output_size": (3, 4)}),
    (RF.adaptive_max_pool2d, RF.adaptive_max_pool2d_backward, {"output_size": (4, 2)}),
]  # fmt: skip


@pytest.mark.parametrize(
    "forward, backward, kwargs",
    NAMED,
    ids=[f"{f.__name__}-{i}" for i, (f, _, _) in enumerate(NAMED)],
)
def test_gradcheck_at_named_configurations(forward, backward, kwargs, rng):
    """ceil_mode overhang, count_include_pad, divisor_override, dilation, each for sure."""
    shape = (2, 2, 7) if forward.__name__.endswith("1d") else (2, 2, 6, 7)
    x = rng.standard_normal(shape)
    result = gradcheck(lambda x: forward(x, **kwargs), x,
                       backward=lambda g, x: backward(g, x, **kwargs), **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


@st.composite
def tied_input(draw, op: PoolOp) -> tuple[dict, np.ndarray]:
    """Integer-valued inputs (many ties), sometimes with NaN and -inf, and a config."""
    kwargs, shape = draw(pool_config(op))
    values = draw(st.sampled_from([[0.0, 1.0], [-1.0, 0.0, 1.0], [0.0, np.nan],
                                   [-np.inf, 0.0], [-np.inf], [1.0, np.nan, -np.inf]]))  # fmt: skip
    seed = draw(st.integers(0, 2**16))
    return kwargs, np.random.default_rng(seed).choice(values, size=shape)


@pytest.mark.parametrize("op", MAX_OPS, ids=repr)
@given(data=st.data())
def test_max_pool_ties_nan_and_inf_follow_torch_exactly(op, data):
    """Torch's CPU choice (first maximum; last NaN; first real element of an all -inf
    window) decides where the gradient goes: values, indices and gradients are equal."""
    kwargs, x = data.draw(tied_input(op))
    for dtype in DTYPES:
        xt = torch.tensor(x.astype(dtype), requires_grad=True)
        yt, it = op.torch_functional(xt, **kwargs, return_indices=True)
        y, i = op.forward(x.astype(dtype), **kwargs, return_indices=True)
        np.testing.assert_array_equal(y, yt.detach().numpy())  # NaN equals NaN here
        np.testing.assert_array_equal(i, it.numpy())
        assert y.dtype == dtype and i.dtype == np.int64
        # small integers: every sum of gradients is exact, in any order
        g = np.random.default_rng(0).integers(-3, 4, y.shape).astype(dtype)
        yt.backward(torch.as_tensor(g))
        grad = op.backward(g, x.astype(dtype), **kwargs, indices=i)
        np.testing.assert_array_equal(grad, xt.grad.numpy())
        np.testing.assert_array_equal(op.backward(g, x.astype(dtype), **kwargs), grad)


@pytest.mark.parametrize(
    "x, kwargs, expected_index",
    [
        ([[1.0, 3.0, 3.0, 2.0]], {"kernel_size": 4}, 1),  # first of equal maxima
        ([[np.nan, 1.0, np.nan, 0.0]], {"kernel_size": 4}, 2),  # the last NaN
        ([[-np.inf, -np.inf, 5.0]], {"kernel_size": 2, "padding": 1}, 0),  # not the padding
    ],
)
def test_max_pool_tie_rules_at_the_points(x, kwargs, expected_index):
    _, index = RF.max_pool1d(np.array(x), **kwargs, return_indices=True)
    _, torch_index = TF.max_pool1d(torch.tensor(x), **kwargs, return_indices=True)
    assert index[0, 0] == torch_index[0, 0] == expected_index


# kernel 2 with dilation 3 and padding 1 over length 2: the first window reads
# positions -1 and 2, both padding
PADDING_ONLY = {"kernel_size": 2, "stride": 1, "padding": 1, "dilation": 3}


def test_padding_only_window_gets_no_gradient():
    """Its maximum is the -inf padding: output -inf, torch's index (past the input),
    and no input element receives its gradient."""
    x = np.array([[[5.0, 6.0], [1.0, 2.0]]])
    y, i = RF.max_pool1d(x, **PADDING_ONLY, return_indices=True)
    yt, it = TF.max_pool1d(torch.tensor(x), **PADDING_ONLY, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(i, it.numpy())
    assert np.all(y == -np.inf) and np.all(i == 2)
    grad = RF.max_pool1d_backward(np.array([[[10.0], [100.0]]]), x, **PADDING_ONLY, indices=i)
    np.testing.assert_array_equal(grad, np.zeros_like(x))


@pytest.mark.xfail(
    reason="torch CPU max_pool backward adds a padding-only window's gradient "
    "at its out-of-plane index: into the next channel",
    strict=True,
)
def test_torch_drops_the_gradient_of_a_padding_only_window():
    xt = torch.tensor([[[5.0, 6.0], [1.0, 2.0]]], requires_grad=True)
    TF.max_pool1d(xt, **PADDING_ONLY).backward(torch.tensor([[[10.0], [100.0]]]))
    np.testing.assert_array_equal(xt.grad.numpy(), np.zeros((1, 2, 2)))  # torch: [1, 0] = 10


@pytest.mark.parametrize("op", MAX_OPS, ids=repr)
def test_return_indices_from_the_module(op, rng):
    kwargs = {"output_size": 3} if op.kind.startswith("adaptive") else {
        "kernel_size": 3, "stride": 2, "padding": 1}  # fmt: skip
    x = rng.integers(0, 3, (2, 3) + (7,) * op.nd).astype(np.float32)
    out, indices = op.module(**kwargs, return_indices=True)(x)
    t_out, t_indices = op.torch_module(**kwargs, return_indices=True)(torch.as_tensor(x))
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(indices, t_indices.numpy())


@pytest.mark.parametrize(
    "kwargs",
    [
        # the last ceil-mode window runs past the padding: that overhang is never counted
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {
            "kernel_size": 3,
            "stride": 2,
            "padding": 1,
            "ceil_mode": True,
            "count_include_pad": False,
        },
        {"kernel_size": (3, 2), "stride": (2, 3), "padding": (1, 0), "ceil_mode": True},
        {"kernel_size": 2, "stride": 3, "padding": 1, "divisor_override": 3, "ceil_mode": True},
        {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},
    ],
)
def test_avg_pool_divisor_rules_match_torch(kwargs, device):
    x = np.ones((1, 1, 6, 5))  # ones: each output is (elements counted) / divisor
    for dtype in DTYPES:
        assert_twin(rnn.AvgPool2d(**kwargs), torch.nn.AvgPool2d(**kwargs), [x], dtype=dtype,
                    device=device)  # fmt: skip


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (rnn.MaxPool2d(2), torch.nn.MaxPool2d(2)),
        (rnn.MaxPool1d(3, 1, 1, 2, ceil_mode=True), torch.nn.MaxPool1d(3, 1, 1, 2, ceil_mode=True)),
        (rnn.AvgPool2d((2, 3), padding=1, divisor_override=2),
         torch.nn.AvgPool2d((2, 3), padding=1, divisor_override=2)),
        (rnn.AvgPool1d(3), torch.nn.AvgPool1d(3)),
        (rnn.AdaptiveAvgPool2d((3, None)), torch.nn.AdaptiveAvgPool2d((3, None))),
        (rnn.AdaptiveAvgPool1d(4), torch.nn.AdaptiveAvgPool1d(4)),
        (rnn.AdaptiveMaxPool2d(2), torch.nn.AdaptiveMaxPool2d(2)),
        (rnn.AdaptiveMaxPool1d(3, True), torch.nn.AdaptiveMaxPool1d(3, True)),
    ],
    ids=repr,
)  # fmt: skip
def test_repr_and_attributes_match_torch(ours, theirs):
    assert repr(ours) == repr(theirs)
    for attr in ["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
                 "count_include_pad", "divisor_override", "output_size"]:  # fmt: skip
        assert getattr(ours, attr, None) == getattr(theirs, attr, None), attr
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_dtype_follows_the_input(op, rng):
    kwargs = {"output_size": 2} if op.kind.startswith("adaptive") else {"kernel_size": 2}
    for dtype in DTYPES:
        layer = op.module(**kwargs)
        out = layer(rng.standard_normal((2, 3) + (5,) * op.nd).astype(dtype))
        assert out.dtype == layer.backward(np.ones_like(out)).dtype == dtype


x4, t4 = np.zeros((1, 2, 5, 5), np.float32), torch.zeros(1, 2, 5, 5)


# fmt: off
@pytest.mark.parametrize("ours, theirs, match", [
    (lambda: rnn.MaxPool2d(3, padding=2)(x4), lambda: torch.nn.MaxPool2d(3, padding=2)(t4),
     r"max_pool2d: padding must be non-negative and at most half the kernel size, got "
     r"padding=\(2, 2\) for kernel_size=\(3, 3\)"),
    (lambda: rnn.MaxPool1d(2, padding=2)(x4[0]), lambda: torch.nn.MaxPool1d(2, padding=2)(t4[0]),
     "at most half the kernel size"),
    (lambda: rnn.AvgPool2d(3, padding=2)(x4), lambda: torch.nn.AvgPool2d(3, padding=2)(t4),
     "avg_pool2d: padding must be non-negative and at most half"),
    (lambda: rnn.MaxPool2d(6)(x4), lambda: torch.nn.MaxPool2d(6)(t4),
     r"input of shape \(1, 2, 5, 5\) gives output size \(0, 0\), which is too small"),
    (lambda: rnn.AvgPool1d(6)(x4[0]), lambda: torch.nn.AvgPool1d(6)(t4[0]),
     r"avg_pool1d: input of shape \(2, 5, 5\) gives output size \(0,\)"),
    (lambda: rnn.MaxPool2d(2)(x4[0, 0]), lambda: torch.nn.MaxPool2d(2)(t4[0, 0]),
     r"max_pool2d: expected a 3-D \(unbatched\) or 4-D \(batched\) input, .* got shape \(5, 5\)"),
    (lambda: rnn.AvgPool1d(2)(x4[0, 0, 0]), lambda: torch.nn.AvgPool1d(2)(t4[0, 0, 0]),
     r"avg_pool1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input"),
    (lambda: rnn.MaxPool2d(2)(x4[:, :0]), lambda: torch.nn.MaxPool2d(2)(t4[:, :0]),
     r"non-empty except for the batch, got shape \(1, 0, 5, 5\)"),
    (lambda: rnn.AvgPool2d(2, divisor_override=0)(x4),
     lambda: torch.nn.AvgPool2d(2, divisor_override=0)(t4), "divisor_override must be a non-zero"),
    (lambda: rnn.MaxPool2d(2, stride=0)(x4), lambda: torch.nn.MaxPool2d(2, stride=0)(t4),
     "stride must be positive"),
    (lambda: rnn.MaxPool2d(2, dilation=0)(x4), lambda: torch.nn.MaxPool2d(2, dilation=0)(t4),
     "dilation must be positive"),
    (lambda: rnn.AdaptiveAvgPool2d(-1)(x4), lambda: torch.nn.AdaptiveAvgPool2d(-1)(t4),
     r"adaptive_avg_pool2d: output_size must hold non-negative ints or None, got -1"),
    (lambda: rnn.AdaptiveMaxPool1d(2)(x4), lambda: torch.nn.AdaptiveMaxPool1d(2)(t4),
     r"adaptive_max_pool1d: expected a 2-D \(unbatched\) or 3-D \(batched\) input"),
    (lambda: rnn.AdaptiveAvgPool2d(2)(x4[:, :, :0]),
     lambda: torch.nn.AdaptiveAvgPool2d(2)(t4[:, :, :0]),
     r"got shape \(1, 2, 0, 5\)"),
])
# fmt: on
def test_bad_input_raises_like_torch(ours, theirs, match):
    with pytest.raises(ValueError, match=match):
        ours()
    with pytest.raises((RuntimeError, ValueError)):
        theirs()


def test_other_errors_are_clear():
    with pytest.raises(TypeError, match="must be a floating array.*int64"):
        rnn.MaxPool2d(2)(np.zeros((1, 1, 4, 4), np.int64))
    with pytest.raises(RuntimeError, match=r"MaxPool2d.backward\(\) called before forward\(\)"):
        rnn.MaxPool2d(2).backward(np.zeros((1, 1, 2, 2), np.float32))
    for layer in (rnn.MaxPool2d(2), rnn.AvgPool2d(2), rnn.AdaptiveAvgPool2d(2),
                  rnn.AdaptiveMaxPool2d(2)):  # fmt: skip
        layer(np.zeros((1, 1, 4, 4), np.float32))
        with pytest.raises(ValueError, match=r"must have the output's shape \(1, 1, 2, 2\)"):
            layer.backward(np.zeros((1, 1, 3, 3), np.float32))
