"""Conv3d and ConvTranspose3d: gradcheck of both functional backwards, functionals and
modules against torch (float64 tight, float32) on hypothesis-drawn configurations
(stride, padding, 'same'/'valid', padding_mode, dilation, groups, output_padding,
unbatched), init, repr, state_dict, dtype, and bad input raising where torch raises.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reference.functional as RF
import reference.nn as rnn
from harness.compare import GRADCHECK, Tolerance, compare_arrays, tolerance
from harness.twin import upstream_gradient
from reference import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# float64 held tighter than the harness's 1e-9: these sums have at most a few hundred terms
TIGHT_FLOAT64 = Tolerance(rtol=1e-10, atol=1e-10)
# torch warns that 'same' with an even kernel copies the input (an error under our
# filterwarnings); the copy is what we test, so the warning is noise here
SAME_WARNING = pytest.mark.filterwarnings("ignore:Using padding='same'")


@dataclass(frozen=True)
class Op:
    name: str
    transposed: bool
    forward: Callable
    backward: Callable
    torch_forward: Callable
    module: type
    torch_module: type

    def __repr__(self) -> str:
        return self.name


OPS = [
    Op("conv3d", False, RF.conv3d, RF.conv3d_backward, TF.conv3d, rnn.Conv3d, torch.nn.Conv3d),
    Op("conv_transpose3d", True, RF.conv_transpose3d, RF.conv_transpose3d_backward,
       TF.conv_transpose3d, rnn.ConvTranspose3d, torch.nn.ConvTranspose3d),
]  # fmt: skip


def _triples(lo: int, hi: int) -> st.SearchStrategy[tuple[int, int, int]]:
    return st.tuples(*[st.integers(lo, hi)] * 3)


@st.composite
def conv3d_config(draw: Any, transposed: bool, small: bool = False, mode: str = "zeros") -> tuple:
    """Module kwargs and an input shape torch accepts (batched or not); ``small`` for the
    gradcheck, whose cost is two forwards per input element. A ``mode`` other than
    ``'zeros'`` (Conv3d only) comes with some padding, or it would not show."""
    groups = draw(st.sampled_from([1, 2]), label="groups")
    kwargs = {
        "in_channels": groups * (1 if small else draw(st.integers(1, 2))),
        "out_channels": groups * draw(st.integers(1, 2)),
        "kernel_size": draw(_triples(1, 2 if small else 3), label="kernel"),
        # all ones a third of the time: only then is 'same' allowed
        "stride": draw(
            st.one_of(st.just((1, 1, 1)), _triples(1, 2), _triples(1, 2)), label="stride"
        ),  # fmt: skip
        "dilation": draw(_triples(1, 2), label="dilation"),
        "groups": groups,
        "bias": draw(st.booleans()),
    }
    extent = [d * (k - 1) + 1 for k, d in zip(kwargs["kernel_size"], kwargs["dilation"])]
    grow = 1 if small else 2
    if transposed:
        padding = draw(_triples(0, 2), label="padding")
        kwargs["padding"] = padding
        kwargs["output_padding"] = tuple(
            draw(st.integers(0, max(s, d) - 1))
            for s, d in zip(kwargs["stride"], kwargs["dilation"])
        )
        size = draw(_triples(1, 1 + grow), label="size")
        steps = zip(size, kwargs["stride"], padding, extent, kwargs["output_padding"])
        assume(min((n - 1) * s - 2 * p + e + o for n, s, p, e, o in steps) >= 1)
    else:
        kinds = ["ints", "ints"] + (["valid"] if mode == "zeros" else [])
        kinds += ["same"] * 2 if max(kwargs["stride"]) == 1 else []
        kind = draw(st.sampled_from(kinds), label="padding kind")
        some = _triples(0, 2).filter(lambda p: mode == "zeros" or max(p) > 0)
        kwargs["padding"] = draw(some, label="padding") if kind == "ints" else kind
        kwargs["padding_mode"] = mode
        if kind == "same":
            totals = [d * (k - 1) for k, d in zip(kwargs["kernel_size"], kwargs["dilation"])]
        else:
            totals = [2 * p for p in kwargs["padding"]] if kind == "ints" else [0] * 3
        # torch's smallest size: the kernel fits; a reflection stays inside the input
        # (each side < size), a wrap goes around at most once (each side <= size); the
        # larger side pads (total + 1) // 2
        wrap = {"reflect": 1, "circular": 0}.get(kwargs["padding_mode"])
        smallest = [max(1, e - t, (t + 1) // 2 + wrap if wrap is not None else 1)
                    for e, t in zip(extent, totals)]  # fmt: skip
        size = tuple(draw(st.integers(s, s + grow)) for s in smallest)
    batch = draw(st.sampled_from([(), (1,), (2,)]), label="batch")
    return kwargs, (*batch, kwargs["in_channels"], *size)


def _functional_kwargs(op: Op, kwargs: dict) -> dict:
    keys = ["stride", "padding", "dilation", "groups", "output_padding"][: 4 + op.transposed]
    return {k: kwargs[k] for k in keys}


def _weight_shape(op: Op, kwargs: dict) -> tuple:
    c_in, c_out, g = kwargs["in_channels"], kwargs["out_channels"], kwargs["groups"]
    first, second = (c_in, c_out // g) if op.transposed else (c_out, c_in // g)
    return (first, second, *kwargs["kernel_size"])


def _tol(dtype: Any, device: str) -> Tolerance:
    return TIGHT_FLOAT64 if np.dtype(dtype) == np.float64 else tolerance(dtype, device)


def _assert_close(pairs: list[tuple[str, Any, Any]], dtype: Any, device: str) -> None:
    """Each (name, reference, torch) within the dtype's tolerance, the reference in ``dtype``."""
    for name, ours, theirs in pairs:
        assert np.asarray(ours).dtype == dtype, (name, np.asarray(ours).dtype)
        comparison = compare_arrays(name, theirs, ours, _tol(dtype, device))
        assert comparison.ok, str(comparison)


def module_matches_torch(ours: Any, theirs: Any, x: np.ndarray, dtype: Any, device: str,
                         seed: int = 0, **forward_kwargs: Any) -> None:  # fmt: skip
    """Torch's weights into ``ours``, then forward and backward with a random upstream
    gradient; output, input gradient and every parameter gradient compared."""
    theirs = theirs.to(device=device, dtype=getattr(torch, np.dtype(dtype).name))
    ours = ours.to(dtype)  # load_state_dict casts to the destination's dtype
    ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})
    x = x.astype(dtype)
    xt = torch.tensor(x, device=device, requires_grad=True)
    y, yt = ours(x, **forward_kwargs), theirs(xt, **forward_kwargs)
    g = upstream_gradient(y.shape, dtype, seed)
    yt.backward(torch.as_tensor(g, device=device))
    pairs = [("output", y, yt), ("grad input", ours.backward(g), xt.grad)]
    torch_params = dict(theirs.named_parameters())
    pairs += [(f"grad {k}", p.grad, torch_params[k].grad) for k, p in ours.named_parameters()]
    _assert_close(pairs, dtype, device)


# every padding mode torch allows for each layer (the transposed ones: zeros only)
MODULE_CASES = [(OPS[0], m) for m in ["zeros", "reflect", "replicate", "circular"]]
MODULE_CASES += [(OPS[1], "zeros")]


@SAME_WARNING
@pytest.mark.parametrize("op, mode", MODULE_CASES, ids=lambda v: str(v))
@settings(max_examples=20)  # x5 cases; the functional tests take the profile's count
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_module_matches_torch(op: Op, mode: str, data: st.DataObject, seed: int, device: str):
    kwargs, shape = data.draw(conv3d_config(op.transposed, mode=mode), label="config")
    x = np.random.default_rng(seed).standard_normal(shape)
    for dtype in DTYPES:
        ours = op.module(**kwargs, rng=seed)
        module_matches_torch(ours, op.torch_module(**kwargs), x, dtype, device, seed)


@SAME_WARNING
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_functional_matches_torch(op: Op, data: st.DataObject, device: str) -> None:
    kwargs, shape = data.draw(conv3d_config(op.transposed), label="config")
    fkw, rng = _functional_kwargs(op, kwargs), draw_rng(data.draw)
    arrays = [rng.standard_normal(shape), rng.standard_normal(_weight_shape(op, kwargs))]
    if kwargs["bias"]:
        arrays.append(rng.standard_normal(kwargs["out_channels"]))
    for dtype in DTYPES:
        ours = [a.astype(dtype) for a in arrays]
        theirs = [torch.tensor(a, device=device, requires_grad=True) for a in ours]
        y, yt = op.forward(*ours, **fkw), op.torch_forward(*theirs, **fkw)
        g = rng.standard_normal(y.shape).astype(dtype)
        yt.backward(torch.as_tensor(g, device=device))
        grads = op.backward(g, *ours, **fkw)
        assert len(grads) == 3 and (grads[2] is None) == (not kwargs["bias"])
        names = ["grad input", "grad weight", "grad bias"]
        pairs = [("output", y, yt), *((n, a, t.grad) for n, a, t in zip(names, grads, theirs))]
        _assert_close(pairs, dtype, device)


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_functional_backward_passes_gradcheck(op: Op, data: st.DataObject, seed: int) -> None:
    kwargs, shape = data.draw(conv3d_config(op.transposed, small=True), label="config")
    fkw, rng = _functional_kwargs(op, kwargs), np.random.default_rng(seed)
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


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@given(data=st.data(), seed=st.integers(0, 2**16))
def test_module_with_padding_mode_passes_gradcheck(mode: str, data: st.DataObject, seed: int):
    # the explicit F.pad before the convolution, and its backward, through the module
    padding = data.draw(st.one_of(_triples(0, 1), st.just("same")), label="padding")
    kernel = data.draw(_triples(1, 2), label="kernel")
    layer = rnn.Conv3d(2, 2, kernel, padding=padding, padding_mode=mode, groups=2, rng=seed)
    x = np.random.default_rng(seed).standard_normal((1, 2, 2, 3, 2))
    result = gradcheck(layer, x, seed=seed, **GRADCHECK)
    assert result.ok, str(result)


@SAME_WARNING
@pytest.mark.parametrize(
    "kwargs",
    [
        {"kernel_size": (2, 3, 4), "padding": "same"},  # even kernels: the extra zero goes last
        {"kernel_size": (3, 2, 1), "padding": "same", "dilation": (1, 3, 2)},
        {"kernel_size": 2, "padding": "same", "padding_mode": "reflect"},
        {"kernel_size": (2, 3, 2), "padding": "same", "padding_mode": "circular", "dilation": 2},
        {"kernel_size": 3, "padding": (2, 1, 0), "padding_mode": "replicate", "stride": (2, 1, 2)},
        {"kernel_size": 3, "padding": (1, 2, 1), "padding_mode": "reflect", "groups": 2},
        {"kernel_size": (1, 3, 2), "padding": (3, 1, 2), "padding_mode": "circular"},
        {"kernel_size": 3, "padding": "valid", "padding_mode": "replicate", "dilation": (1, 2, 1)},
    ],
)
def test_same_padding_and_padding_modes_match_torch(kwargs: dict, device: str) -> None:
    x = np.random.default_rng(0).standard_normal((2, 2, 4, 6, 5))
    for dtype in DTYPES:
        ours, theirs = rnn.Conv3d(2, 4, **kwargs), torch.nn.Conv3d(2, 4, **kwargs)
        module_matches_torch(ours, theirs, x, dtype, device)
        if kwargs["padding"] == "same":
            assert ours(x.astype(dtype)).shape == (2, 4, 4, 6, 5)


@pytest.mark.parametrize("output_size", [(7, 9, 5), (8, 10, 5), [2, 2, 8, 9, 5], (3, 2, 7, 10, 5)])
def test_conv_transpose_output_size_matches_torch(output_size: Any, device: str) -> None:
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5, 3) if len(output_size) != 4
                                                   else (3, 4, 5, 3))  # fmt: skip
    kwargs = {"stride": (2, 2, 1), "padding": (1, 1, 0)}
    for dtype in DTYPES:
        ours, theirs = (
            rnn.ConvTranspose3d(3, 2, 3, **kwargs),
            torch.nn.ConvTranspose3d(3, 2, 3, **kwargs),
        )
        module_matches_torch(ours, theirs, x, dtype, device, output_size=output_size)
    with pytest.raises(ValueError, match=r"output_size \(13, 9, 5\) is not reachable.*\[7, 8\]"):
        ours(x.astype(np.float32), output_size=(13, 9, 5))  # (ours: the last dtype's module)


@pytest.mark.parametrize(
    "ours, theirs, fan_in",
    [
        (lambda: rnn.Conv3d(8, 32, 3, groups=2, rng=0),
         lambda: torch.nn.Conv3d(8, 32, 3, groups=2), 4 * 27),
        (lambda: rnn.Conv3d(4, 16, (1, 2, 3), rng=0),
         lambda: torch.nn.Conv3d(4, 16, (1, 2, 3)), 4 * 6),
        # torch's fan_in for a transposed conv is weight.size(1) = out_channels / groups
        (lambda: rnn.ConvTranspose3d(32, 12, 3, groups=2, rng=0),
         lambda: torch.nn.ConvTranspose3d(32, 12, 3, groups=2), 6 * 27),
    ],
)  # fmt: skip
def test_init_follows_torch_bounds_and_shapes(ours: Callable, theirs: Callable, fan_in: int):
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
    "args, kwargs",
    [
        ((1, 6, 5), {}),
        ((2, 4, (3, 2, 1)), {"stride": 2, "padding": 1, "dilation": 2, "groups": 2,
                             "bias": False, "padding_mode": "reflect"}),
        ((2, 4, 3), {"padding": "same", "padding_mode": "circular"}),
        ((2, 4, 3), {"padding": "valid"}),
    ],
)  # fmt: skip
@pytest.mark.parametrize("transposed", [False, True])
def test_repr_attributes_and_state_dict_match_torch(args: tuple, kwargs: dict, transposed: bool):
    if transposed and (isinstance(kwargs.get("padding"), str) or "padding_mode" in kwargs):
        kwargs = {**kwargs, "padding": 1, "output_padding": 1, "padding_mode": "zeros",
                  "stride": 2}  # fmt: skip
    name = "ConvTranspose3d" if transposed else "Conv3d"
    ours, theirs = getattr(rnn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    for attr in ["in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation",
                 "output_padding", "groups", "padding_mode", "transposed",
                 "_reversed_padding_repeated_twice"]:  # fmt: skip
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    assert list(ours.state_dict()) == list(theirs.state_dict())


@SAME_WARNING
@pytest.mark.parametrize(
    "name, kwargs",
    [("Conv3d", {}), ("Conv3d", {"bias": False}), ("Conv3d", {"padding": "same"}),
     ("Conv3d", {"padding": 1, "padding_mode": "replicate"}), ("ConvTranspose3d", {}),
     ("ConvTranspose3d", {"bias": False})],
)  # fmt: skip
@pytest.mark.parametrize("module_dtype, input_dtype", [(np.float32, np.float64),
                         (np.float64, np.float32), (np.float32, np.float16)])  # fmt: skip
def test_parameter_dtype_mismatch_raises_like_torch(name, kwargs, module_dtype, input_dtype):
    # (the output and gradient dtypes of a matching module: module_matches_torch)
    x, torch_dtype = np.zeros((1, 2, 4, 4, 4), input_dtype), getattr(torch, module_dtype.__name__)
    with pytest.raises(RuntimeError) as theirs:
        getattr(torch.nn, name)(2, 3, 3, **kwargs).to(torch_dtype)(torch.as_tensor(x))
    with pytest.raises(RuntimeError, match=name) as ours:
        getattr(rnn, name)(2, 3, 3, **kwargs).to(module_dtype)(x)
    assert str(ours.value).split("\n")[0] == str(theirs.value).split("\n")[0]


MIXES = [m for m in itertools.product([np.float32, np.float64], repeat=3) if len(set(m)) > 1]


@SAME_WARNING
@pytest.mark.parametrize("x_dtype, w_dtype, b_dtype", MIXES, ids=str)
@pytest.mark.parametrize("op, padding", [(OPS[0], 1), (OPS[0], "same"), (OPS[1], 1)], ids=str)
def test_functional_dtype_mix_raises_or_casts_like_torch(op, padding, x_dtype, w_dtype, b_dtype):
    """torch refuses a weight or bias of another dtype, in its own order, except a bias
    with 'same' / 'valid' padding: cast to the input's dtype, its gradient in its own."""
    rng = np.random.default_rng(3)
    shapes = [(1, 2, 3, 4, 3), (2, 2, 3, 3, 2), (2,)]
    arrays = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, [x_dtype, w_dtype, b_dtype])]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    try:
        yt = op.torch_forward(*theirs, padding=padding)
    except RuntimeError as error:
        with pytest.raises(RuntimeError, match=op.name) as ours:
            op.forward(*arrays, padding=padding)
        assert str(ours.value).split("\n")[0] == str(error).split("\n")[0]
        return
    y = op.forward(*arrays, padding=padding)
    g = rng.standard_normal(y.shape).astype(y.dtype)
    yt.backward(torch.as_tensor(g))
    grads = op.backward(g, *arrays, padding=padding)
    for name, a, t in [("output", y, yt), *zip(["x", "w", "b"], grads, [t.grad for t in theirs])]:
        assert a.dtype == getattr(np, str(t.dtype).replace("torch.", "")), name
        comparison = compare_arrays(name, t, a, tolerance(np.float32))
        assert comparison.ok, str(comparison)


x5, t5 = np.zeros((1, 3, 4, 5, 5), np.float32), torch.zeros(1, 3, 4, 5, 5)


# fmt: off
@pytest.mark.parametrize("ours, theirs, match", [
    (lambda: rnn.Conv3d(2, 4, 3)(x5), lambda: torch.nn.Conv3d(2, 4, 3)(t5),
     r"Conv3d: weight \(4, 2, 3, 3, 3\) with groups=1 expects input with 2 channels in dim -4, "
     r"got input of shape \(1, 3, 4, 5, 5\) with 3"),
    (lambda: rnn.Conv3d(3, 4, 3)(x5[0, 0]), lambda: torch.nn.Conv3d(3, 4, 3)(t5[0, 0]),
     r"Conv3d: expected 4-D \(unbatched\) or 5-D \(batched\) input, got shape \(4, 5, 5\)"),
    (lambda: rnn.Conv3d(3, 4, 5)(x5), lambda: torch.nn.Conv3d(3, 4, 5)(t5),
     r"conv3d: the padded input \(4, 5, 5\) is smaller than the kernel's extent \(5, 5, 5\)"),
    (lambda: rnn.Conv3d(3, 4, 3, dilation=(2, 1, 1))(x5),
     lambda: torch.nn.Conv3d(3, 4, 3, dilation=(2, 1, 1))(t5),
     r"kernel's extent \(5, 3, 3\) \(kernel \(3, 3, 3\), dilation \(2, 1, 1\)\)"),
    (lambda: rnn.Conv3d(3, 2, 3, padding="same", stride=(1, 2, 1)),
     lambda: torch.nn.Conv3d(3, 2, 3, padding="same", stride=(1, 2, 1)),
     "padding='same' is not supported for strided convolutions"),
    (lambda: rnn.Conv3d(3, 2, (3, 3))(x5), lambda: torch.nn.Conv3d(3, 2, (3, 3))(t5),
     r"kernel_size must be an int or 3 ints, got \(3, 3\)"),
    (lambda: rnn.Conv3d(3, 1, 3, padding=(4, 0, 0), padding_mode="reflect")(x5),
     lambda: torch.nn.Conv3d(3, 1, 3, padding=(4, 0, 0), padding_mode="reflect")(t5),
     "reflect padding must be smaller than the padded dim"),
    (lambda: rnn.Conv3d(3, 1, 3, padding=(0, 6, 0), padding_mode="circular")(x5),
     lambda: torch.nn.Conv3d(3, 1, 3, padding=(0, 6, 0), padding_mode="circular")(t5),
     "circular padding must be at most the padded dim"),
    (lambda: rnn.ConvTranspose3d(3, 2, 3, padding_mode="replicate"),
     lambda: torch.nn.ConvTranspose3d(3, 2, 3, padding_mode="replicate"),
     'only "zeros" padding mode is supported'),
    (lambda: rnn.ConvTranspose3d(3, 1, 3, stride=2, output_padding=(0, 2, 0))(x5),
     lambda: torch.nn.ConvTranspose3d(3, 1, 3, stride=2, output_padding=(0, 2, 0))(t5),
     r"output_padding \(0, 2, 0\) must be smaller than either stride \(2, 2, 2\) or dilation"),
    (lambda: rnn.ConvTranspose3d(3, 1, 3, output_padding=1)(x5),
     lambda: torch.nn.ConvTranspose3d(3, 1, 3, output_padding=1)(t5),
     r"output_padding \(1, 1, 1\) must be smaller than either stride \(1, 1, 1\)"),
    (lambda: rnn.ConvTranspose3d(3, 1, 1, padding=(2, 0, 0))(x5),
     lambda: torch.nn.ConvTranspose3d(3, 1, 1, padding=(2, 0, 0))(t5),
     r"gives output size \(0, 5, 5\), which is too small"),
    (lambda: rnn.ConvTranspose3d(2, 4, 3)(x5), lambda: torch.nn.ConvTranspose3d(2, 4, 3)(t5),
     r"ConvTranspose3d: weight \(2, 4, 3, 3, 3\) with groups=1 expects input with 2 channels"),
    (lambda: RF.conv3d(x5, np.zeros((3, 1, 3, 3, 3)), groups=3, stride=(1, 0, 1)),
     lambda: TF.conv3d(t5, torch.zeros(3, 1, 3, 3, 3), groups=3, stride=(1, 0, 1)),
     "conv3d: stride must be positive"),
    (lambda: RF.conv3d(x5, np.zeros((2, 3, 3, 3, 3)), np.zeros(3)),
     lambda: TF.conv3d(t5, torch.zeros(2, 3, 3, 3, 3), torch.zeros(3)),
     r"conv3d: bias must have shape \(2,\), one value per output channel, got \(3,\)"),
    (lambda: RF.conv3d(x5, np.zeros((3, 1, 3, 3, 3)), groups=2),
     lambda: TF.conv3d(t5, torch.zeros(3, 1, 3, 3, 3), groups=2),
     r"weight dim 0 \(3, the output channels\) must be divisible by groups=2"),
    (lambda: RF.conv_transpose3d(x5, np.zeros((3, 1, 3, 3, 3)), padding="same"),
     lambda: TF.conv_transpose3d(t5, torch.zeros(3, 1, 3, 3, 3), padding="same"),
     "conv_transpose3d: padding must be an int or a tuple of ints, got 'same'"),
], ids=lambda v: v if isinstance(v, str) else "")
# fmt: on
def test_bad_input_raises_like_torch(ours: Callable, theirs: Callable, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ours()
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError)):
        theirs()


def test_backward_errors_are_clear() -> None:
    with pytest.raises(RuntimeError, match=r"Conv3d.backward\(\) called before forward\(\)"):
        rnn.Conv3d(3, 2, 3).backward(np.zeros((1, 2, 2, 3, 3), np.float32))
    layer = rnn.Conv3d(3, 2, 3)
    layer(x5)
    with pytest.raises(ValueError, match=r"conv3d_backward: .* output's shape \(1, 2, 2, 3, 3\)"):
        layer.backward(np.zeros((1, 2, 3, 3, 3), np.float32))
    layer = rnn.ConvTranspose3d(3, 2, 2, stride=2)
    layer(x5)
    with pytest.raises(ValueError, match=r"conv_transpose3d_backward: .* \(1, 2, 8, 10, 10\)"):
        layer.backward(np.zeros((1, 2, 8, 10, 9), np.float32))
