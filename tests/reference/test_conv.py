"""Convolutions and padding: gradcheck of every functional backward, every module against
torch (float64 and float32) on hypothesis-drawn configurations, init, repr, dtype, errors.
One op table drives the per-op tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import reference.functional as RF
import reference.nn as rnn
from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference import gradcheck

DTYPES = [np.float64, np.float32]
# torch warns (a UserWarning, an error under our filterwarnings) that 'same' with an
# even kernel copies the input; the copy is what we test, so the warning is noise here
SAME_WARNING = pytest.mark.filterwarnings("ignore:Using padding='same'")


@dataclass(frozen=True)
class ConvOp:
    name: str
    nd: int
    transposed: bool
    forward: Callable
    backward: Callable
    module: type
    torch_module: type

    def __repr__(self) -> str:
        return self.name


OPS = [
    ConvOp("conv1d", 1, False, RF.conv1d, RF.conv1d_backward, rnn.Conv1d, torch.nn.Conv1d),
    ConvOp("conv2d", 2, False, RF.conv2d, RF.conv2d_backward, rnn.Conv2d, torch.nn.Conv2d),
    ConvOp("conv_transpose1d", 1, True, RF.conv_transpose1d, RF.conv_transpose1d_backward,
           rnn.ConvTranspose1d, torch.nn.ConvTranspose1d),
    ConvOp("conv_transpose2d", 2, True, RF.conv_transpose2d, RF.conv_transpose2d_backward,
           rnn.ConvTranspose2d, torch.nn.ConvTranspose2d),
]  # fmt: skip


@st.composite
def conv_config(draw, op: ConvOp, padding_modes: bool = True) -> tuple[dict, tuple]:
    """Module kwargs and an input shape that torch accepts (batched or not)."""
    nd = op.nd
    ints = lambda lo, hi: st.tuples(*[st.integers(lo, hi)] * nd)  # noqa: E731
    groups = draw(st.sampled_from([1, 2]))
    kwargs = {
        "in_channels": groups * draw(st.integers(1, 2)),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": draw(ints(1, 3)),
        "stride": draw(ints(1, 2)),
        "dilation": draw(ints(1, 2)),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    kernel, stride, dilation = kwargs["kernel_size"], kwargs["stride"], kwargs["dilation"]
    extent = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    if op.transposed:
        padding = draw(ints(0, 2))
        kwargs["padding"] = padding
        kwargs["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation)
        )
        size = draw(ints(1, 4))
        out = [
            (n - 1) * s - 2 * p + e + o
            for n, s, p, e, o in zip(size, stride, padding, extent, kwargs["output_padding"])
        ]
        assume(min(out) >= 1)
    else:
        choices = ["valid", "ints"] + (["same"] if max(stride) == 1 else [])
        kind = draw(st.sampled_from(choices))
        padding = draw(ints(0, 2)) if kind == "ints" else kind
        kwargs["padding"] = padding
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
        kwargs["padding_mode"] = mode if padding_modes else "zeros"
        pads = [0] * nd if kind == "valid" else (
            [d * (k - 1) for k, d in zip(kernel, dilation)] if kind == "same"
            else [2 * p for p in padding])  # fmt: skip
        # smallest size torch accepts: the kernel fits, a reflection stays inside the
        # input, a wrap goes around at most once (the larger side pads (p + 1) // 2)
        wrap = {"reflect": 1, "circular": 0}.get(kwargs["padding_mode"])
        smallest = [max(1, e - p, (p + 1) // 2 + wrap if wrap is not None else 1)
                    for e, p in zip(extent, pads)]  # fmt: skip
        size = tuple(draw(st.integers(s, s + 3)) for s in smallest)
    batch = draw(st.sampled_from([(), (1,), (2,)]))
    return kwargs, (*batch, kwargs["in_channels"], *size)


def _functional_kwargs(op: ConvOp, kwargs: dict) -> dict:
    keys = ["stride", "padding", "dilation", "groups"]
    if op.transposed:
        keys.append("output_padding")
    return {k: kwargs[k] for k in keys}


def _weight_shape(op: ConvOp, kwargs: dict) -> tuple:
    g = kwargs["groups"]
    if op.transposed:
        return (kwargs["in_channels"], kwargs["out_channels"] // g, *kwargs["kernel_size"])
    return (kwargs["out_channels"], kwargs["in_channels"] // g, *kwargs["kernel_size"])


@SAME_WARNING
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_module_matches_torch(op, data, seed, device):
    kwargs, shape = data.draw(conv_config(op))
    x = np.random.default_rng(seed).standard_normal(shape)
    for dtype in DTYPES:
        ours = op.module(**kwargs, rng=seed)
        assert_twin(ours, op.torch_module(**kwargs), [x], dtype=dtype, device=device, seed=seed)


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_functional_backward_passes_gradcheck(op, data, seed):
    kwargs, shape = data.draw(conv_config(op, padding_modes=False))
    fkw = _functional_kwargs(op, kwargs)
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(shape), rng.standard_normal(_weight_shape(op, kwargs))
    if kwargs["bias"]:
        b = rng.standard_normal(kwargs["out_channels"])
        result = gradcheck(lambda x, w, b: op.forward(x, w, b, **fkw), x, w, b,
                           backward=lambda g, x, w, b: op.backward(g, x, w, b, **fkw),
                           seed=seed, **GRADCHECK)  # fmt: skip
    else:
        result = gradcheck(lambda x, w: op.forward(x, w, **fkw), x, w,
                           backward=lambda g, x, w: op.backward(g, x, w, **fkw)[:2],
                           seed=seed, **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@given(pads=st.lists(st.integers(0, 3), min_size=2, max_size=4).filter(lambda p: len(p) % 2 == 0),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_pad_matches_torch_and_passes_gradcheck(mode, pads, seed, device):
    # every pad in 0..3 is legal for reflect (< 4) and circular; torch's non-constant
    # modes pad the last dim of a 3-D input or the last two of a 4-D one
    shape = (2, 3, 5) if len(pads) == 2 else (2, 3, 4, 5)
    x = np.random.default_rng(seed).standard_normal(shape)
    result = gradcheck(lambda x: RF.pad(x, pads, mode), x,
                       backward=lambda g, x: RF.pad_backward(g, x, pads, mode), seed=seed,
                       **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)
    for dtype in DTYPES:
        xt = torch.tensor(x, dtype=getattr(torch, np.dtype(dtype).name), device=device,
                          requires_grad=True)  # fmt: skip
        yt = torch.nn.functional.pad(xt, pads, mode)
        g = np.random.default_rng(seed + 1).standard_normal(yt.shape).astype(dtype)
        yt.backward(torch.as_tensor(g, device=device))
        tol = tolerance(dtype, device)
        y = RF.pad(x.astype(dtype), pads, mode)
        gx = RF.pad_backward(g, x.astype(dtype), pads, mode)
        for name, ours, theirs in [("output", y, yt), ("grad", gx, xt.grad)]:
            assert ours.dtype == dtype
            comparison = compare_arrays(name, ours, theirs, tol)
            assert comparison.ok, str(comparison)


@SAME_WARNING
@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": (2, 4), "padding": "same"},  # even kernels: the extra zero goes last
        {"kernel_size": (3, 2), "padding": "same", "dilation": (3, 1)},
        {"kernel_size": 4, "padding": "same", "padding_mode": "reflect"},
        {"kernel_size": 2, "padding": "same", "padding_mode": "circular", "dilation": 3},
        {"kernel_size": 3, "padding": (2, 1), "padding_mode": "replicate", "stride": 2},
    ],
)
def test_same_padding_and_padding_modes_match_torch(kwargs, rng, device):
    x = rng.standard_normal((2, 2, 7, 6))
    for dtype in DTYPES:
        ours = rnn.Conv2d(2, 3, **kwargs, rng=0)
        assert_twin(ours, torch.nn.Conv2d(2, 3, **kwargs), [x], dtype=dtype, device=device)
    out = rnn.Conv2d(2, 3, **kwargs)(x.astype(np.float32))
    if kwargs["padding"] == "same":
        assert out.shape == (2, 3, 7, 6)


def test_conv_transpose_output_size_matches_torch(rng, device):
    x = rng.standard_normal((2, 3, 4, 5))
    for output_size in [(7, 9), (8, 10), [2, 2, 8, 9]]:
        ours = rnn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, rng=0).double()
        theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1).double().to(device)
        theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})
        xt = torch.tensor(x, device=device, requires_grad=True)
        yt = theirs(xt, output_size=output_size)
        y = ours(x, output_size=output_size)
        g = rng.standard_normal(y.shape)
        yt.backward(torch.as_tensor(g, device=device))
        gx = ours.backward(g)
        tol = tolerance(np.float64, device)
        for name, a, b in [("output", y, yt), ("grad input", gx, xt.grad),
                           ("grad weight", ours.weight.grad, theirs.weight.grad)]:  # fmt: skip
            assert compare_arrays(name, a, b, tol).ok, name
    with pytest.raises(ValueError, match=r"output_size \(13, 9\) is not reachable.*\[7, 8\]"):
        ours(x, output_size=(13, 9))


@pytest.mark.parametrize(
    "ours, theirs, fan_in",
    [
        (lambda: rnn.Conv2d(16, 32, 3, groups=2, rng=0),
         lambda: torch.nn.Conv2d(16, 32, 3, groups=2), 8 * 9),
        (lambda: rnn.Conv1d(8, 64, 5, rng=0), lambda: torch.nn.Conv1d(8, 64, 5), 8 * 5),
        # torch's fan_in for a transposed conv is weight.size(1) = out_channels / groups
        (lambda: rnn.ConvTranspose2d(32, 12, 3, groups=2, rng=0),
         lambda: torch.nn.ConvTranspose2d(32, 12, 3, groups=2), 6 * 9),
        (lambda: rnn.ConvTranspose1d(40, 8, 4, rng=0),
         lambda: torch.nn.ConvTranspose1d(40, 8, 4), 8 * 4),
    ],
)  # fmt: skip
def test_init_follows_torch_bounds_and_shapes(ours, theirs, fan_in):
    ours, theirs = ours(), theirs()
    bound = 1 / math.sqrt(fan_in)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in theirs.state_dict().items()
    }
    for name, p in ours.named_parameters():
        tp = dict(theirs.named_parameters())[name].detach().numpy()
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound and np.abs(tp).max() <= bound
    # the weights (hundreds of draws) span the interval: a wrong fan_in shows
    assert np.abs(ours.weight.data).max() > 0.95 * bound
    assert np.abs(theirs.weight.detach().numpy()).max() > 0.95 * bound


@SAME_WARNING
@pytest.mark.parametrize(
    "ours, theirs",
    [
        (rnn.Conv2d(1, 6, 5), torch.nn.Conv2d(1, 6, 5)),
        (rnn.Conv2d(2, 4, (3, 2), stride=2, padding=1, dilation=2, groups=2, bias=False,
                    padding_mode="reflect"),
         torch.nn.Conv2d(2, 4, (3, 2), stride=2, padding=1, dilation=2, groups=2, bias=False,
                         padding_mode="reflect")),
        (rnn.Conv1d(2, 4, 3, padding="same"), torch.nn.Conv1d(2, 4, 3, padding="same")),
        (rnn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1),
         torch.nn.ConvTranspose2d(2, 4, 3, stride=2, output_padding=1)),
        (rnn.ConvTranspose1d(2, 4, 3, groups=2, dilation=2),
         torch.nn.ConvTranspose1d(2, 4, 3, groups=2, dilation=2)),
    ],
    ids=repr,
)  # fmt: skip
def test_repr_attributes_and_state_dict_match_torch(ours, theirs):
    assert repr(ours) == repr(theirs)
    for attr in ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "output_padding", "groups", "padding_mode", "transposed",
                 "_reversed_padding_repeated_twice"]:  # fmt: skip
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_dtype_follows_the_input(op, rng):
    kwargs = {"in_channels": 2, "out_channels": 4, "kernel_size": 3, "stride": 2}
    shape = (2, 2) + (5,) * op.nd
    for dtype in DTYPES:
        layer = op.module(**kwargs, rng=0).to(dtype)
        out = layer(rng.standard_normal(shape).astype(dtype))
        grad = layer.backward(np.ones_like(out))
        assert out.dtype == grad.dtype == layer.weight.grad.dtype == layer.bias.grad.dtype == dtype


def _raises_both(ours: Callable, theirs: Callable, match: str, error: type = ValueError) -> None:
    """The reference raises ``error`` matching ``match`` where torch raises too."""
    with pytest.raises(error, match=match):
        ours()
    with pytest.raises((RuntimeError, ValueError, NotImplementedError)):
        theirs()


x4, t4 = np.zeros((1, 3, 5, 5), np.float32), torch.zeros(1, 3, 5, 5)


# fmt: off
@pytest.mark.parametrize("ours, theirs, match", [
    (lambda: rnn.Conv2d(3, 2, 3, groups=2), lambda: torch.nn.Conv2d(3, 2, 3, groups=2),
     r"Conv2d: in_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: rnn.Conv2d(4, 3, 3, groups=2), lambda: torch.nn.Conv2d(4, 3, 3, groups=2),
     r"out_channels \(3\) must be divisible by groups \(2\)"),
    (lambda: rnn.Conv2d(3, 2, 3, padding="same", stride=2),
     lambda: torch.nn.Conv2d(3, 2, 3, padding="same", stride=2),
     "padding='same' is not supported for strided convolutions"),
    (lambda: rnn.Conv1d(3, 2, 3, padding="full"), lambda: torch.nn.Conv1d(3, 2, 3, padding="full"),
     "invalid padding string 'full'"),
    (lambda: rnn.Conv2d(3, 2, 3, padding_mode="mirror"),
     lambda: torch.nn.Conv2d(3, 2, 3, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: rnn.ConvTranspose2d(3, 2, 3, padding_mode="reflect"),
     lambda: torch.nn.ConvTranspose2d(3, 2, 3, padding_mode="reflect"),
     'only "zeros" padding mode is supported'),
    (lambda: rnn.Conv2d(2, 4, 3)(x4), lambda: torch.nn.Conv2d(2, 4, 3)(t4),
     r"expects input with 2 channels in dim -3, got input of shape \(1, 3, 5, 5\) with 3"),
    (lambda: rnn.Conv2d(3, 4, 3)(x4[0, 0]), lambda: torch.nn.Conv2d(3, 4, 3)(t4[0, 0]),
     r"Conv2d: expected 3-D \(unbatched\) or 4-D \(batched\) input, got shape \(5, 5\)"),
    (lambda: rnn.Conv1d(3, 4, 3)(x4), lambda: torch.nn.Conv1d(3, 4, 3)(t4),
     r"expected 2-D \(unbatched\) or 3-D \(batched\) input, got shape \(1, 3, 5, 5\)"),
    (lambda: rnn.Conv2d(3, 4, 6)(x4), lambda: torch.nn.Conv2d(3, 4, 6)(t4),
     r"padded input \(5, 5\) is smaller than the kernel's extent \(6, 6\)"),
    (lambda: rnn.Conv2d(3, 4, 3, dilation=3)(x4), lambda: torch.nn.Conv2d(3, 4, 3, dilation=3)(t4),
     r"kernel's extent \(7, 7\) \(kernel \(3, 3\), dilation \(3, 3\)\)"),
    (lambda: RF.conv2d(x4, np.zeros((2, 1, 3, 3)), groups=2),
     lambda: torch.nn.functional.conv2d(t4, torch.zeros(2, 1, 3, 3), groups=2),
     r"conv2d: weight \(2, 1, 3, 3\) with groups=2 expects input with 2 channels"),
    (lambda: RF.conv2d(x4, np.zeros((3, 1, 3, 3)), groups=2),
     lambda: torch.nn.functional.conv2d(t4, torch.zeros(3, 1, 3, 3), groups=2),
     r"weight dim 0 \(3, the output channels\) must be divisible by groups=2"),
    (lambda: RF.conv2d(x4, np.zeros((1, 3, 3, 3)), stride=0),
     lambda: torch.nn.functional.conv2d(t4, torch.zeros(1, 3, 3, 3), stride=0),
     "stride must be positive"),
    (lambda: RF.conv2d(x4, np.zeros((1, 3, 3, 3)), padding=-1),
     lambda: torch.nn.functional.conv2d(t4, torch.zeros(1, 3, 3, 3), padding=-1),
     "padding must be non-negative"),
    (lambda: rnn.Conv2d(3, 1, 3, padding=5, padding_mode="reflect")(x4),
     lambda: torch.nn.Conv2d(3, 1, 3, padding=5, padding_mode="reflect")(t4),
     r"reflect padding must be smaller than the padded dim; got padding \(5, 5\)"),
    (lambda: rnn.Conv2d(3, 1, 3, padding=6, padding_mode="circular")(x4),
     lambda: torch.nn.Conv2d(3, 1, 3, padding=6, padding_mode="circular")(t4),
     "circular padding must be at most the padded dim"),
    (lambda: rnn.ConvTranspose2d(3, 1, 3, stride=2, output_padding=2)(x4),
     lambda: torch.nn.ConvTranspose2d(3, 1, 3, stride=2, output_padding=2)(t4),
     r"output_padding \(2, 2\) must be smaller than either stride \(2, 2\) or dilation"),
    (lambda: rnn.ConvTranspose2d(3, 1, 1, padding=3)(x4),
     lambda: torch.nn.ConvTranspose2d(3, 1, 1, padding=3)(t4),
     r"gives output size \(-1, -1\), which is too small"),
    (lambda: RF.conv2d(x4, np.zeros((2, 3, 3, 3)), np.zeros(3)),
     lambda: torch.nn.functional.conv2d(t4, torch.zeros(2, 3, 3, 3), torch.zeros(3)),
     r"conv2d: bias must have shape \(2,\), one value per output channel, got \(3,\)"),
    (lambda: RF.conv_transpose2d(x4, np.zeros((2, 1, 3, 3))),
     lambda: torch.nn.functional.conv_transpose2d(t4, torch.zeros(2, 1, 3, 3)),
     r"conv_transpose2d: weight \(2, 1, 3, 3\) with groups=1 expects input with 2 channels"),
])
# fmt: on
def test_bad_input_raises_like_torch(ours, theirs, match):
    _raises_both(ours, theirs, match)


def test_other_errors_are_clear():
    with pytest.raises(TypeError, match="must be a floating array.*int64"):
        rnn.Conv2d(3, 2, 3)(np.zeros((1, 3, 5, 5), np.int64))
    with pytest.raises(RuntimeError, match=r"Conv2d.backward\(\) called before forward\(\)"):
        rnn.Conv2d(3, 2, 3).backward(np.zeros((1, 2, 3, 3), np.float32))
    layer = rnn.Conv2d(3, 2, 3)
    layer(x4)
    with pytest.raises(ValueError, match=r"must have the output's shape \(1, 2, 3, 3\)"):
        layer.backward(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="kernel_size must be positive"):
        rnn.Conv2d(3, 2, 0)
    with pytest.raises(ValueError, match="pad: mode must be one of"):
        RF.pad(x4, (1, 1), "wrap")
    # torch crops for a negative pad (test_padding.py), but not more than the dim holds
    with pytest.raises(ValueError, match="pad: negative padding crops more than the dim holds"):
        RF.pad(x4, (-6, 0))
