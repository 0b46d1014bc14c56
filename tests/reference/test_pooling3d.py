"""3-d pooling: MaxPool3d, AvgPool3d, AdaptiveAvgPool3d, AdaptiveMaxPool3d and their
functionals. Gradcheck of every backward, module and functional against torch (float64,
float32, random upstream gradient, batched and unbatched) on hypothesis-drawn
configurations, torch's exact tie / NaN / -inf choices and flat volume indices, the
divisor rules, raising exactly where torch raises, repr, dtype and errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Op:
    kind: str  # "max", "avg", "adaptive_avg", "adaptive_max"
    module: str

    def __repr__(self) -> str:
        return self.module

    @property
    def name(self) -> str:
        return f"{self.kind}_pool3d"

    @property
    def forward(self) -> Callable[..., Any]:
        return getattr(RF, self.name)

    @property
    def backward(self) -> Callable[..., Any]:
        return getattr(RF, f"{self.name}_backward")

    @property
    def torch_functional(self) -> Callable[..., Any]:
        return getattr(TF, self.name)


OPS = [
    Op("max", "MaxPool3d"),
    Op("avg", "AvgPool3d"),
    Op("adaptive_avg", "AdaptiveAvgPool3d"),
    Op("adaptive_max", "AdaptiveMaxPool3d"),
]
MAX_OPS = [op for op in OPS if op.kind.endswith("max")]


def _triple(v: Any) -> tuple:
    return tuple(v) if isinstance(v, tuple) else (v,) * 3


def padding_only(size: int, k: int, s: int, p: int, d: int, out: int) -> bool:
    """Whether some dilated window of one dim reads no input element. Torch's CPU max
    pool backward then writes that window's gradient past its plane (into the next
    channel, or past the whole buffer for the last one: memory corruption), so such a
    configuration never reaches torch's backward here."""
    taps = np.arange(out)[:, None] * s - p + np.arange(k)[None, :] * d  # (out, k)
    return bool((((taps < 0) | (taps >= size)).all(axis=1)).any())


def _maybe_int(draw: Any, values: tuple) -> Any:
    """Torch takes an int for three equal values: use it sometimes."""
    return values[0] if len(set(values)) == 1 and draw(st.booleans()) else values


@st.composite
def window_kwargs(draw: Any, kind: str, max_size: int = 5) -> tuple[dict, tuple]:
    """Torch's keyword arguments for max or avg pooling and a spatial size it accepts."""
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(3))
    stride = None if draw(st.booleans()) else tuple(draw(st.integers(1, 3)) for _ in range(3))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    kwargs: dict[str, Any] = {"kernel_size": _maybe_int(draw, kernel),
                              "stride": stride and _maybe_int(draw, stride),
                              "padding": _maybe_int(draw, padding),
                              "ceil_mode": draw(st.booleans())}  # fmt: skip
    dilation = (1, 1, 1)
    if kind == "max":
        dilation = tuple(draw(st.integers(1, 2)) for _ in range(3))
        kwargs["dilation"] = _maybe_int(draw, dilation)
    else:
        kwargs["count_include_pad"] = draw(st.booleans())
        kwargs["divisor_override"] = draw(st.one_of(st.none(), st.integers(1, 5)))
    size = tuple(draw(st.integers(1, max_size)) for _ in range(3))
    geometry = list(zip(size, kernel, stride or kernel, padding, dilation))
    out = [pool_output_size(*g, kwargs["ceil_mode"]) for g in geometry]
    assume(min(out) >= 1)
    if kind == "max":
        assume(not any(padding_only(*g, o) for g, o in zip(geometry, out)))
    else:
        assume(all(n >= k for n, k in zip(size, kernel)))  # torch's avg_pool3d requires it
    return kwargs, size


@st.composite
def pool_case(draw: Any, op: Op, max_size: int = 5, batches=((), (1,), (2,))) -> tuple:
    """``(kwargs, input)``: a configuration torch accepts and a standard normal input,
    batched ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``."""
    if op.kind.startswith("adaptive"):
        sizes = st.one_of(st.integers(1, 4), st.none()) if draw(st.booleans()) else None
        output = (tuple(draw(sizes) for _ in range(3)) if sizes is not None
                  else draw(st.integers(1, 4)))  # fmt: skip
        kwargs, size = (
            {"output_size": output},
            tuple(draw(st.integers(1, max_size + 1)) for _ in range(3)),
        )
    else:
        kwargs, size = draw(window_kwargs(op.kind, max_size))
    shape = (*draw(st.sampled_from(batches)), draw(st.integers(1, 2)), *size)
    return kwargs, draw_rng(draw).standard_normal(shape)


# -- against torch -------------------------------------------------------------------
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_module_matches_torch(op: Op, data: st.DataObject, device: str) -> None:
    kwargs, x = data.draw(pool_case(op), label="case")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    for dtype in DTYPES:
        assert_twin(getattr(rnn, op.module)(**kwargs), getattr(torch.nn, op.module)(**kwargs),
                    [x], dtype=dtype, device=device, seed=seed)  # fmt: skip


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_functional_matches_torch(op: Op, data: st.DataObject, device: str) -> None:
    kwargs, x = data.draw(pool_case(op), label="case")
    for dtype in DTYPES:
        assert_twin(op.forward, op.torch_functional, [x], dtype=dtype, device=device, **kwargs)


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_backward_passes_gradcheck(op: Op, data: st.DataObject) -> None:
    kwargs, x = data.draw(pool_case(op, max_size=4, batches=((), (2,))), label="case")
    x = x[..., :1, :, :, :] if x.ndim == 5 else x[:1]  # one channel: a quick check
    result = gradcheck(lambda x: op.forward(x, **kwargs), x,  # normal draws: no ties
                       backward=lambda g, x: op.backward(g, x, **kwargs), **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_raises_exactly_where_torch_raises(op: Op, data: st.DataObject) -> None:
    """Unfiltered configurations (padding over half the kernel, input smaller than the
    window, output size 0...): forward only, so torch's backward never sees them."""
    if op.kind.startswith("adaptive"):
        kwargs = {
            "output_size": data.draw(st.integers(-1, 3) | st.tuples(*[st.integers(-1, 3)] * 3))
        }
    else:
        kwargs = {"kernel_size": data.draw(st.tuples(*[st.integers(1, 4)] * 3)),
                  "stride": data.draw(st.tuples(*[st.integers(1, 3)] * 3)),
                  "padding": data.draw(st.tuples(*[st.integers(0, 2)] * 3)),
                  "ceil_mode": data.draw(st.booleans())}  # fmt: skip
        if op.kind == "max":
            kwargs["dilation"] = data.draw(st.tuples(*[st.integers(1, 3)] * 3))
    shape = (
        data.draw(st.sampled_from([(), (1,)]))
        + (1,)
        + data.draw(st.tuples(*[st.integers(0 if op.kind.startswith("adaptive") else 1, 4)] * 3))
    )
    x = np.random.default_rng(0).standard_normal(shape)
    try:
        expected = op.torch_functional(torch.as_tensor(x), **kwargs)
    except (RuntimeError, ValueError):
        with pytest.raises(ValueError, match=op.name):
            op.forward(x, **kwargs)
        return
    np.testing.assert_allclose(op.forward(x, **kwargs), expected.numpy(), rtol=1e-12)


# -- ties, NaN, -inf: torch's exact choice --------------------------------------------
@st.composite
def tied_case(draw: Any, op: Op) -> tuple[dict, np.ndarray]:
    """Inputs of a few values (many ties), sometimes with NaN and -inf."""
    kwargs, x = draw(pool_case(op))
    values = draw(st.sampled_from([[0.0, 1.0], [-1.0, 0.0, 1.0], [0.0, np.nan], [-np.inf, 0.0],
                                   [-np.inf], [1.0, np.nan, -np.inf]]))  # fmt: skip
    return kwargs, draw_rng(draw).choice(values, size=x.shape)


@pytest.mark.parametrize("op", MAX_OPS, ids=repr)
@given(data=st.data())
def test_max_pool_ties_nan_and_inf_follow_torch_exactly(op: Op, data: st.DataObject) -> None:
    """First maximum in (depth, row, column) scan order; the last NaN; the first real
    element of an all -inf window: values, flat volume indices and gradients are equal."""
    kwargs, x = data.draw(tied_case(op), label="case")
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


def test_index_is_flat_into_the_volume_and_first_tie_wins() -> None:
    x = np.zeros((1, 1, 2, 3, 4))
    x[0, 0, 1, 2, 3] = x[0, 0, 1, 0, 1] = 5.0  # tie: (1, 0, 1) comes first in scan order
    for forward, torch_forward in [(RF.max_pool3d, TF.max_pool3d),
                                   (RF.adaptive_max_pool3d, TF.adaptive_max_pool3d)]:  # fmt: skip
        arg = (2, 3, 4) if forward is RF.max_pool3d else 1
        _, i = forward(x, arg, return_indices=True)
        _, it = torch_forward(torch.tensor(x), arg, return_indices=True)
        assert i.item() == it.item() == (1 * 3 + 0) * 4 + 1


def test_padding_only_window_gets_no_gradient() -> None:
    """A dilated window of padding only: output -inf and torch's (out-of-volume) index,
    and no input element receives its gradient. Torch's backward is not run: it writes
    at that index, past the volume (a test above xfails the 1-d case)."""
    kwargs = {"kernel_size": (1, 1, 2), "stride": 1, "padding": (0, 0, 1), "dilation": (1, 1, 3)}
    x = np.array([5.0, 6.0, 1.0, 2.0]).reshape(1, 2, 1, 1, 2)
    y, i = RF.max_pool3d(x, **kwargs, return_indices=True)
    yt, it = TF.max_pool3d(torch.tensor(x), **kwargs, return_indices=True)
    np.testing.assert_array_equal(y, yt.numpy())
    np.testing.assert_array_equal(i, it.numpy())
    assert np.all(y == -np.inf) and np.all(i == 2)
    grad = RF.max_pool3d_backward(np.array([10.0, 100.0]).reshape(y.shape), x, **kwargs)
    np.testing.assert_array_equal(grad, np.zeros_like(x))


@pytest.mark.parametrize("op", MAX_OPS, ids=repr)
def test_return_indices_from_the_module(op: Op, rng: np.random.Generator) -> None:
    kwargs = {"output_size": (2, 3, 1)} if op.kind.startswith("adaptive") else {
        "kernel_size": 3, "stride": 2, "padding": 1}  # fmt: skip
    x = rng.integers(0, 3, (2, 3, 5, 4, 6)).astype(np.float32)
    out, indices = getattr(rnn, op.module)(**kwargs, return_indices=True)(x)
    t_out, t_indices = getattr(torch.nn, op.module)(**kwargs, return_indices=True)(
        torch.as_tensor(x)
    )
    np.testing.assert_array_equal(out, t_out.numpy())
    np.testing.assert_array_equal(indices, t_indices.numpy())


# -- the average's divisor --------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs",
    [
        # the last ceil-mode window runs past the padding: that overhang is never counted
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True,
         "count_include_pad": False},
        {"kernel_size": (3, 2, 2), "stride": (2, 3, 1), "padding": (1, 0, 1), "ceil_mode": True},
        {"kernel_size": 2, "stride": 3, "padding": 1, "divisor_override": 3, "ceil_mode": True},
        {"kernel_size": 3, "stride": 1, "padding": 1, "count_include_pad": False},
    ],
)  # fmt: skip
def test_avg_pool_divisor_rules_match_torch(kwargs: dict, device: str) -> None:
    x = np.ones((1, 1, 6, 5, 4))  # ones: each output is (elements counted) / divisor
    for dtype in DTYPES:
        assert_twin(rnn.AvgPool3d(**kwargs), torch.nn.AvgPool3d(**kwargs), [x], dtype=dtype,
                    device=device)  # fmt: skip


def test_avg_pool3d_needs_the_input_at_least_the_kernel_like_torch() -> None:
    """Torch's 3-d average (not its 2-d one) checks the unpadded input against the kernel."""
    x = np.zeros((1, 1, 2, 2, 2))
    with pytest.raises(RuntimeError, match="smaller than kernel size"):
        TF.avg_pool3d(torch.tensor(x), 3, 1, 1)
    with pytest.raises(
        ValueError, match=r"avg_pool3d: input of shape \(1, 1, 2, 2, 2\) is smaller"
    ):
        RF.avg_pool3d(x, 3, 1, 1)
    assert RF.avg_pool2d(x[0], 3, 1, 1).shape == TF.avg_pool2d(torch.tensor(x[0]), 3, 1, 1).shape


# -- modules: repr, attributes, dtype, errors -----------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ("MaxPool3d", (2,), {}),
        ("MaxPool3d", ((3, 2, 1), 1, (1, 1, 0), 2), {"ceil_mode": True, "return_indices": True}),
        ("AvgPool3d", ((2, 3, 2),), {"padding": 1, "divisor_override": 2}),
        ("AvgPool3d", (3, 2, 1, True, False), {}),
        ("AdaptiveAvgPool3d", ((3, None, 2),), {}),
        ("AdaptiveMaxPool3d", (2, True), {}),
    ],
    ids=lambda a: f"{a[0]}{a[1]}",
)
def test_repr_and_attributes_match_torch(args: tuple) -> None:
    name, positional, kw = args
    ours, theirs = getattr(rnn, name)(*positional, **kw), getattr(torch.nn, name)(*positional, **kw)
    assert repr(ours) == repr(theirs)
    for attr in ["kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices",
                 "count_include_pad", "divisor_override", "output_size"]:  # fmt: skip
        assert getattr(ours, attr, None) == getattr(theirs, attr, None), attr
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_dtype_follows_the_input(op: Op, rng: np.random.Generator) -> None:
    kwargs = {"output_size": 2} if op.kind.startswith("adaptive") else {"kernel_size": 2}
    for dtype in DTYPES:
        layer = getattr(rnn, op.module)(**kwargs)
        out = layer(rng.standard_normal((2, 3, 4, 5, 4)).astype(dtype))
        assert out.dtype == layer.backward(np.ones_like(out)).dtype == dtype


x5, t5 = np.zeros((1, 2, 5, 5, 5), np.float32), torch.zeros(1, 2, 5, 5, 5)


# fmt: off
@pytest.mark.parametrize("ours, theirs, match", [
    (lambda: rnn.MaxPool3d(3, padding=2)(x5), lambda: torch.nn.MaxPool3d(3, padding=2)(t5),
     r"max_pool3d: padding must be non-negative and at most half the kernel size, got "
     r"padding=\(2, 2, 2\) for kernel_size=\(3, 3, 3\)"),
    (lambda: rnn.AvgPool3d(3, padding=2)(x5), lambda: torch.nn.AvgPool3d(3, padding=2)(t5),
     "avg_pool3d: padding must be non-negative and at most half"),
    (lambda: rnn.MaxPool3d(6)(x5), lambda: torch.nn.MaxPool3d(6)(t5),
     r"input of shape \(1, 2, 5, 5, 5\) gives output size \(0, 0, 0\), which is too small"),
    (lambda: rnn.AvgPool3d(6)(x5), lambda: torch.nn.AvgPool3d(6)(t5), "avg_pool3d: input of"),
    (lambda: rnn.MaxPool3d(2)(x5[0, 0]), lambda: torch.nn.MaxPool3d(2)(t5[0, 0]),
     r"max_pool3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input, .* shape \(5, 5, 5\)"),
    (lambda: rnn.AvgPool3d(2)(x5[None]), lambda: torch.nn.AvgPool3d(2)(t5[None]),
     r"avg_pool3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input"),
    (lambda: rnn.MaxPool3d(2)(x5[:, :0]), lambda: torch.nn.MaxPool3d(2)(t5[:, :0]),
     r"non-empty except for the batch, got shape \(1, 0, 5, 5, 5\)"),
    (lambda: rnn.AvgPool3d(2, divisor_override=0)(x5),
     lambda: torch.nn.AvgPool3d(2, divisor_override=0)(t5), "divisor_override must be a non-zero"),
    (lambda: rnn.MaxPool3d(2, stride=0)(x5), lambda: torch.nn.MaxPool3d(2, stride=0)(t5),
     "stride must be positive"),
    (lambda: rnn.MaxPool3d(2, dilation=0)(x5), lambda: torch.nn.MaxPool3d(2, dilation=0)(t5),
     "dilation must be positive"),
    (lambda: rnn.MaxPool3d((2, 2))(x5), lambda: torch.nn.MaxPool3d((2, 2))(t5),
     r"max_pool3d: kernel_size must be an int or 3 ints, got \(2, 2\)"),
    (lambda: rnn.AdaptiveAvgPool3d(-1)(x5), lambda: torch.nn.AdaptiveAvgPool3d(-1)(t5),
     r"adaptive_avg_pool3d: output_size must hold non-negative ints or None, got -1"),
    (lambda: rnn.AdaptiveMaxPool3d((2, 2))(x5), lambda: torch.nn.AdaptiveMaxPool3d((2, 2))(t5),
     r"adaptive_max_pool3d: output_size must be an int or 3 values"),
    (lambda: rnn.AdaptiveMaxPool3d(2)(x5[0, 0]), lambda: torch.nn.AdaptiveMaxPool3d(2)(t5[0, 0]),
     r"adaptive_max_pool3d: expected a 4-D \(unbatched\) or 5-D \(batched\) input"),
    (lambda: rnn.AdaptiveAvgPool3d(2)(x5[:, :, :0]),
     lambda: torch.nn.AdaptiveAvgPool3d(2)(t5[:, :, :0]), r"got shape \(1, 2, 0, 5, 5\)"),
])
# fmt: on
def test_bad_input_raises_like_torch(ours: Callable, theirs: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ours()
    with pytest.raises((RuntimeError, ValueError)):
        theirs()


@pytest.mark.parametrize("op", [op for op in OPS if op.kind.startswith("adaptive")], ids=repr)
def test_output_size_zero_is_empty_and_its_backward_raises_like_torch(op: Op) -> None:
    x = np.ones((1, 2, 3, 3, 3))
    y = op.forward(x, (0, 2, 2))
    xt = torch.tensor(x, requires_grad=True)
    yt = op.torch_functional(xt, (0, 2, 2))
    assert y.shape == yt.shape == (1, 2, 0, 2, 2)
    with pytest.raises(RuntimeError, match="non-zero size for non-batch dimensions"):
        yt.backward(torch.zeros_like(yt))
    with pytest.raises(ValueError, match=rf"{op.name}_backward: output_size \(0, 2, 2\) has a 0"):
        op.backward(y, x, (0, 2, 2))


def test_empty_batch_and_other_errors() -> None:
    for name, arg in [("MaxPool3d", 2), ("AvgPool3d", 2), ("AdaptiveMaxPool3d", 2),
                      ("AdaptiveAvgPool3d", 2)]:  # fmt: skip
        layer = getattr(rnn, name)(arg)
        out = layer(x5[:0])
        assert out.shape == getattr(torch.nn, name)(arg)(t5[:0]).shape == (0, 2, 2, 2, 2)
        assert layer.backward(out).shape == (0, 2, 5, 5, 5)
        layer(x5)
        with pytest.raises(ValueError, match=r"must have the output's shape \(1, 2, 2, 2, 2\)"):
            layer.backward(np.zeros((1, 2, 2, 2, 3), np.float32))
    with pytest.raises(TypeError, match="must be a floating array.*int64"):
        rnn.MaxPool3d(2)(np.zeros((1, 1, 4, 4, 4), np.int64))
    with pytest.raises(RuntimeError, match=r"AvgPool3d.backward\(\) called before forward\(\)"):
        rnn.AvgPool3d(2).backward(np.zeros((1, 1, 2, 2, 2), np.float32))
