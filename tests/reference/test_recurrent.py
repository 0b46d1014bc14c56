"""Recurrent cells (RNNCell, LSTMCell, GRUCell): gradcheck of the functional backward and
of the modules, forward and backward against torch in float64 and float32 under a random
upstream gradient (unbatched included), torch's errors for bad input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import GRADCHECK
from reference import functional as F
from reference.gradcheck import gradcheck
from reference.nn.rnn import GRUCell, LSTMCell, RNNCell
from reference.nn.rnn_layers import GRU, LSTM, RNN
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

GATES = {"rnn_tanh_cell": 1, "rnn_relu_cell": 1, "lstm_cell": 4, "gru_cell": 3}
# torch's own note on its float32 CPU path, not a finding
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-4, "atol": 2e-5}}


def _cell_args(rng: np.random.Generator, name: str, n: int, h_in: int, h: int, bias: bool):
    g = GATES[name] * h
    args = [rng.standard_normal((n, h_in)), rng.standard_normal((n, h))]
    if name == "lstm_cell":
        args.append(rng.standard_normal((n, h)))
    args += [rng.standard_normal((g, h_in)) * 0.5, rng.standard_normal((g, h)) * 0.5]
    if bias:
        args += [rng.standard_normal(g) * 0.5, rng.standard_normal(g) * 0.5]
    return args


def _stacked(name: str):
    """The cell as ``fn(x, h[, c], *w)`` with one array output, and its backward."""
    fn, back = getattr(F, name), getattr(F, f"{name}_backward")
    if name != "lstm_cell":
        return fn, back

    def forward(x, h, c, *w):
        return np.stack(fn(x, (h, c), *w))  # (h', c') -> (2, N, H)

    def backward(g, x, h, c, *w):
        return back((g[0], g[1]), x, (h, c), *w)

    return forward, backward


@st.composite
def cell_cases(draw: Any) -> tuple:
    rng = draw_rng(draw)
    name = draw(st.sampled_from(sorted(GATES)), label="cell")
    n, h_in, h = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.booleans(), label="bias")
    return name, _cell_args(rng, name, n, h_in, h, bias)


@given(cell_cases())
def test_cell_backward_gradcheck(case: tuple) -> None:
    name, args = case
    if name == "rnn_relu_cell":  # keep central differences off the kink
        pre = args[0] @ args[2].T + args[1] @ args[3].T
        if len(args) > 4:
            pre = pre + args[4] + args[5]
        if np.min(np.abs(pre)) < 1e-3:
            return
    fn, back = _stacked(name)
    result = gradcheck(fn, *args, backward=back, **GRADCHECK)
    assert result.ok, result


def _torch_cell(name: str, args: list) -> tuple:
    t = [torch.tensor(a, requires_grad=True) for a in args]
    if name == "lstm_cell":
        x, h, c, *w = t
        out = torch.stack(torch.lstm_cell(x, (h, c), *w))
    else:
        out = getattr(torch, name)(*t)
    return t, out


@given(cell_cases(), st.sampled_from([np.float64, np.float32]))
def test_cell_functional_matches_torch(case: tuple, dtype: type) -> None:
    name, args = case
    args = [a.astype(dtype) for a in args]
    fn, back = _stacked(name)
    out = fn(*args)
    t, t_out = _torch_cell(name, args)
    grad = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, t_out.detach().numpy(), **TOL[dtype])
    t_grads = torch.autograd.grad(t_out, t, torch.from_numpy(grad))
    for ours, theirs in zip(back(grad, *args), t_grads):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs.numpy(), **TOL[dtype])


MODULES = {"RNNCell": RNNCell, "LSTMCell": LSTMCell, "GRUCell": GRUCell}


@st.composite
def module_cases(draw: Any) -> tuple:
    rng = draw_rng(draw)
    name = draw(st.sampled_from(sorted(MODULES)), label="module")
    h_in, h = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kwargs: dict[str, Any] = {"bias": draw(st.booleans(), label="bias")}
    if name == "RNNCell":
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    lead = draw(st.sampled_from([(), (1,), (3,)]), label="batch")  # () is unbatched
    with_hx = draw(st.booleans(), label="hx")
    x = rng.standard_normal((*lead, h_in))
    states = 2 if name == "LSTMCell" else 1
    hx = [rng.standard_normal((*lead, h)) for _ in range(states)] if with_hx else None
    return name, (h_in, h), kwargs, x, hx, int(rng.integers(2**31))


def _as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


@given(module_cases(), st.sampled_from([np.float64, np.float32]))
def test_cell_module_matches_torch(case: tuple, dtype: type) -> None:
    name, sizes, kwargs, x, hx, seed = case
    ours = MODULES[name](*sizes, **kwargs, rng=seed)
    if dtype == np.float64:
        ours.double()
    theirs = getattr(torch.nn, name)(*sizes, **kwargs).to(
        torch.from_numpy(np.zeros(0, dtype)).dtype
    )
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = x.astype(dtype)
    t_x = torch.tensor(x, requires_grad=True)
    t_hx = None if hx is None else [torch.tensor(s.astype(dtype), requires_grad=True) for s in hx]
    if name == "LSTMCell":
        out = ours(x, None if hx is None else tuple(s.astype(dtype) for s in hx))
        t_out = theirs(t_x, None if t_hx is None else tuple(t_hx))
    else:
        out = ours(x, None if hx is None else hx[0].astype(dtype))
        t_out = theirs(t_x, None if t_hx is None else t_hx[0])
    out, t_out = _as_tuple(out), _as_tuple(t_out)
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(o.shape).astype(dtype) for o in out]
    for o, t in zip(out, t_out):
        assert o.dtype == dtype
        np.testing.assert_allclose(o, t.detach().numpy(), **TOL[dtype])
    wrt = [t_x] + (t_hx or []) + list(theirs.parameters())
    t_grads = torch.autograd.grad(t_out, wrt, [torch.from_numpy(g) for g in grads])
    grad_x, grad_hx = ours.backward(tuple(grads) if name == "LSTMCell" else grads[0])
    ours_grads = [grad_x] + ([] if hx is None else list(_as_tuple(grad_hx)))
    ours_grads += [p.grad for p in ours.parameters()]
    for o, t in zip(ours_grads, t_grads):
        assert o.shape == t.shape
        np.testing.assert_allclose(o, t.numpy(), **TOL[dtype])


@given(module_cases())
def test_cell_module_gradcheck(case: tuple) -> None:
    name, sizes, kwargs, x, hx, seed = case
    if kwargs.get("nonlinearity") == "relu":
        return  # the functional test covers relu's kink handling
    if name == "LSTMCell":  # gradcheck drives one output: h' alone (grad_c = None)
        module = LSTMCell(*sizes, **kwargs, rng=seed)
        h, c = (None, None) if hx is None else hx

        class HOnly(LSTMCell):
            def forward(self, input, h=None, c=None):
                return super().forward(input, None if h is None else (h, c))[0]

            def backward(self, grad):
                grad_x, (grad_h, grad_c) = super().backward((grad, None))
                return grad_x, grad_h, grad_c

        module.__class__ = HOnly
        args = (x,) if hx is None else (x, h, c)
    else:
        module = MODULES[name](*sizes, **kwargs, rng=seed)
        args = (x,) if hx is None else (x, hx[0])
    result = gradcheck(module, *args, wrt=list(range(len(args))), **GRADCHECK)
    assert result.ok, result


@pytest.mark.parametrize("name", sorted(MODULES))
@pytest.mark.parametrize(
    ("x_shape", "h_shape", "error"),
    [
        ((3, 4), (3, 5), RuntimeError),  # input_size 4, expected 3
        ((2, 3), (2, 6), RuntimeError),  # hidden_size 6, expected 5
        ((2, 3), (4, 5), RuntimeError),  # batch 2 vs 4
        ((2, 3), (2, 1, 1, 5), ValueError),  # hx 4-D
        ((1, 2, 3), (2, 5), ValueError),  # input 3-D
        ((3,), (2, 5), RuntimeError),  # unbatched input, batched hx
    ],
)
def test_cell_bad_input_raises_like_torch(name: str, x_shape, h_shape, error) -> None:
    x, h = np.zeros(x_shape), np.zeros(h_shape)
    theirs = getattr(torch.nn, name)(3, 5).double()
    hx = (h, h) if name == "LSTMCell" else h
    t_hx = tuple(map(torch.from_numpy, hx)) if name == "LSTMCell" else torch.from_numpy(h)
    with pytest.raises(error):
        theirs(torch.from_numpy(x), t_hx)
    with pytest.raises(error, match=name):
        MODULES[name](3, 5).double()(x, hx)


def test_cell_dtype_mismatch_and_nonlinearity() -> None:
    with pytest.raises(RuntimeError, match="dtype"):
        GRUCell(2, 3)(np.zeros((1, 2)))  # float32 parameters, float64 input
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(2, 3, nonlinearity="sigmoid")
    with pytest.raises(RuntimeError, match="before forward"):
        RNNCell(2, 3).backward(np.zeros(3))


def test_cell_init_bounds_and_state_dict() -> None:
    for name, module in MODULES.items():
        ours, theirs = module(4, 9, rng=0), getattr(torch.nn, name)(4, 9)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (k, v), t in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert v.shape == tuple(t.shape) and v.dtype == np.float32, k
            assert np.max(np.abs(v)) <= 1 / 3 and np.max(np.abs(v)) > 0.25, k


# -- whole layers: RNN, LSTM, GRU -----------------------------------------------------

LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


@st.composite
def layer_cases(draw: Any) -> tuple:
    rng = draw_rng(draw)
    name = draw(st.sampled_from(sorted(LAYERS)), label="layer")
    h_in, h = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    kwargs: dict[str, Any] = {
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "bias": draw(st.booleans(), label="bias"),
        "batch_first": draw(st.booleans(), label="batch_first"),
        "bidirectional": draw(st.booleans(), label="bidirectional"),
    }
    if name == "RNN":
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if name == "LSTM":
        kwargs["proj_size"] = draw(st.integers(0, h - 1), label="proj_size")
    length, batch = draw(st.integers(1, 3)), draw(st.sampled_from([None, 1, 2]))  # None: unbatched
    lead = (
        (length,)
        if batch is None
        else (batch, length)
        if kwargs["batch_first"]
        else (length, batch)
    )
    x = rng.standard_normal((*lead, h_in))
    k = kwargs["num_layers"] * (2 if kwargs["bidirectional"] else 1)
    sizes = [kwargs.get("proj_size") or h] + ([h] if name == "LSTM" else [])
    hx = None
    if draw(st.booleans(), label="hx"):
        hx = [rng.standard_normal((k, *(() if batch is None else (batch,)), s)) for s in sizes]
    return name, (h_in, h), kwargs, x, hx, int(rng.integers(2**31))


def _torch_dtype(dtype: type) -> torch.dtype:
    return torch.from_numpy(np.zeros(0, dtype)).dtype


def _flatten(value: Any) -> list:
    if isinstance(value, (tuple, list)):
        return [v for item in value for v in _flatten(item)]
    return [value]


@given(layer_cases(), st.sampled_from([np.float64, np.float32]))
def test_layer_matches_torch(case: tuple, dtype: type) -> None:
    name, sizes, kwargs, x, hx, seed = case
    ours = LAYERS[name](*sizes, **kwargs, rng=seed)
    if dtype == np.float64:
        ours.double()
    theirs = getattr(torch.nn, name)(*sizes, **kwargs).to(_torch_dtype(dtype))
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = x.astype(dtype)
    hx = None if hx is None else [s.astype(dtype) for s in hx]
    t_x = torch.tensor(x, requires_grad=True)
    t_hx = None if hx is None else [torch.tensor(s, requires_grad=True) for s in hx]
    if name == "LSTM":
        out, t_out = ours(x, None if hx is None else tuple(hx)), theirs(t_x, t_hx and tuple(t_hx))
    else:
        out, t_out = ours(x, hx and hx[0]), theirs(t_x, t_hx and t_hx[0])
    out, t_out = _flatten(out), _flatten(t_out)
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(o.shape).astype(dtype) for o in out]
    for o, t in zip(out, t_out, strict=True):
        assert o.dtype == dtype
        np.testing.assert_allclose(o, t.detach().numpy(), **TOL[dtype])
    wrt = [t_x] + (t_hx or []) + list(theirs.parameters())
    t_grads = torch.autograd.grad(t_out, wrt, [torch.from_numpy(g) for g in grads])
    ours_grads = [ours.backward(*grads)]
    ours_grads += [] if hx is None else _flatten(ours.grad_hx)
    ours_grads += [p.grad for p in ours.parameters()]
    for o, t in zip(ours_grads, t_grads, strict=True):
        assert o.shape == t.shape and o.dtype == dtype
        np.testing.assert_allclose(o, t.numpy(), **TOL[dtype])


def _all_outputs(module_cls: type) -> type:
    """The layer with one flat output (output, h_n[, c_n] raveled and joined), for gradcheck,
    its backward returning the gradients wrt input and each initial state."""

    class Flat(module_cls):
        def forward(self, input, *hx):
            lstm = module_cls is LSTM
            out = super().forward(input, (tuple(hx) if lstm else hx[0]) if hx else None)
            parts = _flatten(out)
            self._sizes = [p.shape for p in parts]
            return np.concatenate([p.ravel() for p in parts])

        def backward(self, grad):
            cuts = np.cumsum([int(np.prod(s)) for s in self._sizes])[:-1]
            pieces = [g.reshape(s) for g, s in zip(np.split(grad, cuts), self._sizes)]
            grad_x = super().backward(*pieces)
            return (grad_x, *_flatten(self.grad_hx))

    return Flat


@pytest.mark.parametrize(
    ("name", "kwargs", "x_shape", "state_shapes"),
    [
        (
            "LSTM",
            {"num_layers": 2, "bidirectional": True, "proj_size": 2},
            (3, 2, 2),
            [(4, 2, 2), (4, 2, 3)],
        ),
        ("GRU", {"num_layers": 2, "batch_first": True}, (2, 3, 2), [(2, 2, 3)]),
        ("RNN", {"bidirectional": True}, (3, 2), [(2, 3)]),  # unbatched
    ],
)
def test_layer_gradcheck(name: str, kwargs: dict, x_shape: tuple, state_shapes: list) -> None:
    rng = np.random.default_rng(7)
    module = _all_outputs(LAYERS[name])(2, 3, **kwargs, rng=3)
    args = [rng.standard_normal(x_shape)] + [rng.standard_normal(s) for s in state_shapes]
    result = gradcheck(module, *args, wrt=list(range(len(args))), **GRADCHECK)
    assert result.ok, result


@pytest.mark.parametrize("name", sorted(LAYERS))
@pytest.mark.parametrize(
    ("x_shape", "h_shape", "error"),
    [
        ((2, 1, 4), (1, 1, 5), RuntimeError),  # input_size 4, expected 3
        ((2, 1, 3), (1, 1, 6), RuntimeError),  # hidden_size 6, expected 5
        ((2, 1, 3), (2, 1, 5), RuntimeError),  # 2 states for 1 layer
        ((2, 1, 3), (1, 5), RuntimeError),  # batched input, 2-D hx
        ((2, 3), (1, 1, 5), RuntimeError),  # unbatched input, 3-D hx
        ((1, 2, 1, 3), (1, 1, 5), ValueError),  # input 4-D
    ],
)
def test_layer_bad_input_raises_like_torch(name: str, x_shape, h_shape, error) -> None:
    x, h = np.zeros(x_shape), np.zeros(h_shape)
    theirs = getattr(torch.nn, name)(3, 5).double()
    hx = (h, h) if name == "LSTM" else h
    t_hx = tuple(map(torch.from_numpy, hx)) if name == "LSTM" else torch.from_numpy(h)
    with pytest.raises(error):
        theirs(torch.from_numpy(x), t_hx)
    with pytest.raises(error, match=name):
        LAYERS[name](3, 5).double()(x, hx)


def test_layer_state_dict_order_and_dropout() -> None:
    ours = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, rng=0)
    theirs = torch.nn.LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (k, v), t in zip(ours.state_dict().items(), theirs.state_dict().values()):
        assert v.shape == tuple(t.shape) and np.max(np.abs(v)) <= 0.5, k
    with pytest.raises(ValueError, match="proj_size"):
        LSTM(3, 4, proj_size=4)
    gru = GRU(2, 3, num_layers=2, dropout=0.5, rng=0)
    gru(np.zeros((2, 1, 2), np.float32))  # drawn masks
    assert [m.shape for m in gru.last_mask] == [(2, 1, 3)] and gru.mask is None
    gru.mask = [np.ones((2, 1, 3), bool)] * 2
    with pytest.raises(ValueError, match="num_layers - 1"):
        gru(np.zeros((2, 1, 2), np.float32))
    gru.eval()
    torch_gru = torch.nn.GRU(2, 3, num_layers=2, dropout=0.5).eval()
    torch_gru.load_state_dict({k: torch.from_numpy(v) for k, v in gru.state_dict().items()})
    x = np.random.default_rng(0).standard_normal((2, 1, 2)).astype(np.float32)
    t_out = torch_gru(torch.from_numpy(x))[0].detach().numpy()
    np.testing.assert_allclose(gru(x)[0], t_out, **TOL[np.float32])
    assert gru.last_mask is None


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_dropout_imposed_mask_matches_torch_layer_by_layer(name: str) -> None:
    """Training with dropout between 3 layers, masks imposed, against torch's one-layer
    modules chained by hand with the same masks (torch's own masks cannot be imposed)."""
    p, rng = 0.4, np.random.default_rng(5)
    ours = LAYERS[name](2, 3, num_layers=3, dropout=p, bidirectional=True, rng=1).double()
    x = rng.standard_normal((4, 2, 2))
    masks = [rng.random((4, 2, 6)) > p for _ in range(2)]
    ours.mask = masks
    out = _flatten(ours(x))
    assert ours.mask is None and all(a is b for a, b in zip(ours.last_mask, masks))
    t_x = torch.tensor(x, requires_grad=True)
    layer_input, finals, params = t_x, [], []
    for k in range(3):
        layer = getattr(torch.nn, name)(2 if k == 0 else 6, 3, bidirectional=True).double()
        state = {n.replace(f"_l{k}", "_l0"): torch.from_numpy(v)
                 for n, v in ours.state_dict().items() if f"_l{k}" in n}  # fmt: skip
        layer.load_state_dict(state)
        params += list(layer.parameters())
        layer_input, final = layer(layer_input)
        finals.append(_flatten(final))
        if k < 2:
            layer_input = layer_input * torch.from_numpy(masks[k]) / (1 - p)
    t_out = [layer_input] + [torch.cat(states) for states in zip(*finals)]
    grads = [rng.standard_normal(o.shape) for o in out]
    for o, t in zip(out, t_out, strict=True):
        np.testing.assert_allclose(o, t.detach().numpy(), **TOL[np.float64])
    t_grads = torch.autograd.grad(t_out, [t_x] + params, [torch.from_numpy(g) for g in grads])
    ours_grads = [ours.backward(*grads)] + [q.grad for q in ours.parameters()]
    for o, t in zip(ours_grads, t_grads, strict=True):
        np.testing.assert_allclose(o, t.numpy(), **TOL[np.float64])
