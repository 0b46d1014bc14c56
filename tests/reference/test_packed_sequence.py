"""Packed sequences (``reference.nn.utils.rnn``) and recurrent layers on packed input:
packing and padding and their backwards against torch's autograd (random upstream
gradients), gradcheck, RNN/LSTM/GRU on packed input against torch in float64 and float32
(output, final states, every gradient), dropout between layers with imposed packed masks,
and torch's errors for bad input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.utils.rnn as TU
from hypothesis import given
from hypothesis import strategies as st

import reference.nn.utils.rnn as RU
from harness.compare import GRADCHECK
from reference.gradcheck import gradcheck
from reference.nn.rnn_layers import GRU, LSTM, RNN
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# torch's own note on its float32 CPU path, not a finding
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")
TOL = {np.float64: {"rtol": 1e-10, "atol": 1e-12}, np.float32: {"rtol": 2e-4, "atol": 2e-5}}
LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


def _t(x: np.ndarray, grad: bool = False) -> torch.Tensor:
    return torch.tensor(x, requires_grad=grad)


@st.composite
def batches(draw: Any) -> tuple:
    """``(rng, lengths, enforce_sorted, batch_first, T)``: T >= the longest length."""
    rng = draw_rng(draw)
    batch = draw(st.integers(1, 4), label="batch")
    lengths = np.array(draw(st.lists(st.integers(1, 4), min_size=batch, max_size=batch)))
    enforce_sorted = draw(st.booleans(), label="enforce_sorted")
    if enforce_sorted:
        lengths = np.sort(lengths)[::-1].copy()
    total = int(lengths.max()) + draw(st.integers(0, 1), label="extra padding")
    return rng, lengths, enforce_sorted, draw(st.booleans(), label="batch_first"), total


def _padded(rng: np.random.Generator, lengths, batch_first: bool, total: int, tail=(2,)):
    return rng.standard_normal(
        ((len(lengths), total) if batch_first else (total, len(lengths))) + tail
    )


@given(batches(), st.sampled_from([np.float64, np.float32]), st.sampled_from([(), (2,), (1, 3)]))
def test_pack_and_pad_and_their_backwards_match_torch(case, dtype, tail) -> None:
    rng, lengths, enforce_sorted, batch_first, total = case
    x = _padded(rng, lengths, batch_first, total, tail).astype(dtype)
    ours = RU.pack_padded_sequence(x, lengths, batch_first, enforce_sorted)
    t_x = _t(x, True)
    theirs = TU.pack_padded_sequence(t_x, torch.tensor(lengths), batch_first, enforce_sorted)
    assert ours.data.dtype == dtype and ours.batch_sizes.dtype == np.int64
    np.testing.assert_array_equal(ours.data, theirs.data.detach().numpy())
    np.testing.assert_array_equal(ours.batch_sizes, theirs.batch_sizes.numpy())
    for mine, torchs in zip(ours[2:], theirs[2:]):
        assert (mine is None) == (torchs is None) == enforce_sorted
        if mine is not None:
            np.testing.assert_array_equal(mine, torchs.numpy())
    grad = rng.standard_normal(ours.data.shape).astype(dtype)
    theirs.data.backward(_t(grad))
    ours_grad = RU.pack_padded_sequence_backward(grad, x, lengths, batch_first, enforce_sorted)
    np.testing.assert_array_equal(ours_grad, t_x.grad.numpy())  # a scatter: exact

    length = None if total == lengths.max() else total
    data = theirs.data.detach().requires_grad_()
    t_packed = TU.PackedSequence(data, *theirs[1:])
    t_padded, t_lengths = TU.pad_packed_sequence(t_packed, batch_first, -0.5, length)
    padded, out_lengths = RU.pad_packed_sequence(ours, batch_first, -0.5, length)
    np.testing.assert_array_equal(padded, t_padded.detach().numpy())
    np.testing.assert_array_equal(out_lengths, t_lengths.numpy())
    np.testing.assert_array_equal(out_lengths, lengths)
    grad = rng.standard_normal(padded.shape).astype(dtype)
    t_padded.backward(_t(grad))
    ours_grad = RU.pad_packed_sequence_backward(grad, ours, batch_first, -0.5, length)
    np.testing.assert_array_equal(ours_grad, data.grad.numpy())
    round_trip = RU.pad_packed_sequence(ours, batch_first, 0.0, total)[0]
    time = np.arange(total)[:, None] < lengths[None, :]  # (T, B)
    valid = time.T if batch_first else time  # (B, T) with batch_first
    np.testing.assert_array_equal(round_trip, np.where(valid[(...,) + (None,) * len(tail)], x, 0))


@given(batches())
def test_pack_and_pad_gradcheck(case) -> None:
    rng, lengths, enforce_sorted, batch_first, total = case
    x = _padded(rng, lengths, batch_first, total)
    pack = (lambda v: RU.pack_padded_sequence(v, lengths, batch_first, enforce_sorted).data,
            lambda g, v: RU.pack_padded_sequence_backward(g, v, lengths, batch_first,
                                                          enforce_sorted))  # fmt: skip
    assert gradcheck(pack[0], x, backward=pack[1], **GRADCHECK).ok
    packed = RU.pack_padded_sequence(x, lengths, batch_first, enforce_sorted)

    def pad(data):
        return RU.pad_packed_sequence(RU.PackedSequence(data, *packed[1:]), batch_first, 1.0)[0]

    def pad_backward(grad, data):
        return RU.pad_packed_sequence_backward(grad, packed, batch_first, 1.0)

    assert gradcheck(pad, packed.data, backward=pad_backward, **GRADCHECK).ok


@given(batches(), st.sampled_from(["left", "right"]))
def test_pad_pack_unpad_unpack_sequence_match_torch(case, side: str) -> None:
    rng, lengths, enforce_sorted, batch_first, _ = case
    seqs = [rng.standard_normal((int(n), 2)) for n in lengths]
    t_seqs = [_t(s) for s in seqs]
    np.testing.assert_array_equal(
        RU.pad_sequence(seqs, batch_first, 2.5, side),
        TU.pad_sequence(t_seqs, batch_first, 2.5, side).numpy(),
    )
    ours, theirs = RU.pack_sequence(seqs, enforce_sorted), TU.pack_sequence(t_seqs, enforce_sorted)
    np.testing.assert_array_equal(ours.data, theirs.data.numpy())
    np.testing.assert_array_equal(ours.batch_sizes, theirs.batch_sizes.numpy())
    for a, b in zip(RU.unpack_sequence(ours), seqs, strict=True):
        np.testing.assert_array_equal(a, b)
    padded = RU.pad_sequence(seqs, batch_first)
    for a, b in zip(RU.unpad_sequence(padded, lengths, batch_first), seqs, strict=True):
        np.testing.assert_array_equal(a, b)
    assert RU.invert_permutation(None) is None
    assert RU.PackedSequence._fields == TU.PackedSequence._fields
    pair = RU.PackedSequence((ours.data, ours.batch_sizes))  # torch's other constructor form
    assert pair.sorted_indices is None and pair.unsorted_indices is None
    if not enforce_sorted:
        np.testing.assert_array_equal(RU.invert_permutation(ours.sorted_indices),
                                      theirs.unsorted_indices.numpy())  # fmt: skip


@st.composite
def packed_layer_cases(draw: Any) -> tuple:
    rng, lengths, enforce_sorted, _, total = draw(batches())
    name = draw(st.sampled_from(sorted(LAYERS)), label="layer")
    h_in, h = draw(st.integers(1, 3)), draw(st.integers(2, 3))
    kwargs: dict[str, Any] = {
        "num_layers": draw(st.integers(1, 2), label="num_layers"),
        "bias": draw(st.booleans(), label="bias"),
        "bidirectional": draw(st.booleans(), label="bidirectional"),
    }
    if name == "RNN":
        kwargs["nonlinearity"] = draw(st.sampled_from(["tanh", "relu"]))
    if name == "LSTM":
        kwargs["proj_size"] = draw(st.integers(0, h - 1), label="proj_size")
    batch_first = draw(st.booleans(), label="batch_first")
    x = _padded(rng, lengths, batch_first, total, (h_in,))
    k = kwargs["num_layers"] * (2 if kwargs["bidirectional"] else 1)
    sizes = [kwargs.get("proj_size") or h] + ([h] if name == "LSTM" else [])
    hx = None
    if draw(st.booleans(), label="hx"):
        hx = [rng.standard_normal((k, len(lengths), s)) for s in sizes]
    kwargs["batch_first"] = batch_first
    return name, (h_in, h), kwargs, x, lengths, enforce_sorted, hx, int(rng.integers(2**31))


def _states(value: Any) -> list:
    return list(value) if isinstance(value, tuple) else [value]


def _hx(name: str, hx: list | None) -> Any:
    return None if hx is None else tuple(hx) if name == "LSTM" else hx[0]


@given(packed_layer_cases(), st.sampled_from([np.float64, np.float32]))
def test_packed_layer_matches_torch(case: tuple, dtype: type) -> None:
    name, sizes, kwargs, x, lengths, enforce_sorted, hx, seed = case
    ours = LAYERS[name](*sizes, **kwargs, rng=seed).to(dtype)
    theirs = getattr(torch.nn, name)(*sizes, **kwargs).to(_t(np.zeros(0, dtype)).dtype)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x, bf = x.astype(dtype), kwargs["batch_first"]
    hx = None if hx is None else [s.astype(dtype) for s in hx]
    t_x = _t(x, True)
    t_hx = None if hx is None else [_t(s, True) for s in hx]
    packed = RU.pack_padded_sequence(x, lengths, bf, enforce_sorted)
    out, finals = ours(packed, _hx(name, hx))
    t_out, t_finals = theirs(
        TU.pack_padded_sequence(t_x, torch.tensor(lengths), bf, enforce_sorted), _hx(name, t_hx)
    )
    assert isinstance(out, RU.PackedSequence) and out.data.dtype == dtype
    for a, b in zip(out[1:], t_out[1:]):
        np.testing.assert_array_equal(a, None if b is None else b.numpy())
    t_all, all_out = [t_out.data, *_states(t_finals)], [out.data, *_states(finals)]
    for o, t in zip(all_out, t_all, strict=True):
        assert o.dtype == dtype
        np.testing.assert_allclose(o, t.detach().numpy(), **TOL[dtype])
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(o.shape).astype(dtype) for o in all_out]
    wrt = [t_x] + (t_hx or []) + list(theirs.parameters())
    t_grads = torch.autograd.grad(t_all, wrt, [torch.from_numpy(g) for g in grads])
    grad_data = ours.backward(RU.PackedSequence(grads[0], *out[1:]), *grads[1:])
    assert grad_data.shape == packed.data.shape
    ours_grads = [RU.pack_padded_sequence_backward(grad_data, x, lengths, bf, enforce_sorted)]
    ours_grads += [] if hx is None else _states(ours.grad_hx)
    ours_grads += [p.grad for p in ours.parameters()]
    for o, t in zip(ours_grads, t_grads, strict=True):
        assert o.shape == t.shape and o.dtype == dtype
        np.testing.assert_allclose(o, t.numpy(), **TOL[dtype])


def test_packed_lstm_gradcheck() -> None:
    """A 2-layer bidirectional projected LSTM on an unsorted packed batch: the gradients
    wrt the padded input (through the packing), h0, c0 and every parameter."""
    lengths = np.array([2, 4, 1])

    class Flat(LSTM):
        def forward(self, x, h0, c0):
            self._x = x
            packed = RU.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out, (h_n, c_n) = super().forward(packed, (h0, c0))
            self._sizes = [out.data.shape, h_n.shape, c_n.shape]
            return np.concatenate([out.data.ravel(), h_n.ravel(), c_n.ravel()])

        def backward(self, grad):
            cuts = np.cumsum([int(np.prod(s)) for s in self._sizes])[:-1]
            pieces = [g.reshape(s) for g, s in zip(np.split(grad, cuts), self._sizes)]
            grad_data = super().backward(*pieces)
            grad_x = RU.pack_padded_sequence_backward(grad_data, self._x, lengths,
                                                      enforce_sorted=False)  # fmt: skip
            return (grad_x, *self.grad_hx)

    rng = np.random.default_rng(3)
    module = Flat(2, 3, num_layers=2, bidirectional=True, proj_size=2, rng=4)
    args = [rng.standard_normal((4, 3, 2)), rng.standard_normal((4, 3, 2)),
            rng.standard_normal((4, 3, 3))]  # fmt: skip
    result = gradcheck(module, *args, wrt=[0, 1, 2], **GRADCHECK)
    assert result.ok, result


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_packed_dropout_imposed_masks_match_torch_layer_by_layer(name: str) -> None:
    """Masks shaped as the packed data, against torch's one-layer modules chained by hand
    on the packed data, dropped out as torch does between its layers."""
    p, rng, lengths = 0.4, np.random.default_rng(5), np.array([1, 3, 2])
    ours = LAYERS[name](2, 3, num_layers=3, dropout=p, bidirectional=True, rng=1).double()
    x = rng.standard_normal((3, 3, 2))
    masks = [rng.random((6, 6)) > p for _ in range(2)]
    ours.mask = masks
    out, finals = ours(RU.pack_padded_sequence(x, lengths, enforce_sorted=False))
    assert [m.shape for m in ours.last_mask] == [(6, 6)] * 2
    t_x = _t(x, True)
    layer_input = TU.pack_padded_sequence(t_x, torch.tensor(lengths), enforce_sorted=False)
    t_finals, params = [], []
    for k in range(3):
        layer = getattr(torch.nn, name)(2 if k == 0 else 6, 3, bidirectional=True).double()
        layer.load_state_dict({n.replace(f"_l{k}", "_l0"): torch.from_numpy(v)
                               for n, v in ours.state_dict().items() if f"_l{k}" in n})  # fmt: skip
        params += list(layer.parameters())
        layer_input, final = layer(layer_input)
        t_finals.append(_states(final))
        if k < 2:
            data = layer_input.data * torch.from_numpy(masks[k]) / (1 - p)
            layer_input = TU.PackedSequence(data, *layer_input[1:])
    t_all = [layer_input.data] + [torch.cat(s) for s in zip(*t_finals)]
    all_out = [out.data, *_states(finals)]
    grads = [rng.standard_normal(o.shape) for o in all_out]
    for o, t in zip(all_out, t_all, strict=True):
        np.testing.assert_allclose(o, t.detach().numpy(), **TOL[np.float64])
    t_grads = torch.autograd.grad(t_all, [t_x] + params, [torch.from_numpy(g) for g in grads])
    grad_x = RU.pack_padded_sequence_backward(ours.backward(*grads), x, lengths, False, False)
    for o, t in zip([grad_x] + [q.grad for q in ours.parameters()], t_grads, strict=True):
        np.testing.assert_allclose(o, t.numpy(), **TOL[np.float64])
    ours.mask = [np.ones((5, 6), bool)] * 2
    with pytest.raises(ValueError, match="packed data"):
        ours(RU.pack_padded_sequence(x, lengths, enforce_sorted=False))


@pytest.mark.parametrize(
    ("shape", "lengths", "enforce_sorted"),
    [
        ((4, 3, 2), [2, 3, 1], True),  # unsorted
        ((4, 3, 2), [3, 2, 0], True),  # a zero length
        ((4, 3, 2), [3, 0, 2], False),  # a zero length, unsorted
        ((4, 3, 2), [3, 2], True),  # batch mismatch
        ((4, 3, 2), [[3, 2, 1]], True),  # 2-D lengths
        ((4, 0, 2), [], True),  # empty
    ],
)
def test_pack_bad_input_raises_like_torch(shape, lengths, enforce_sorted) -> None:
    x = np.zeros(shape)
    with pytest.raises(RuntimeError) as theirs:
        TU.pack_padded_sequence(_t(x), torch.tensor(lengths), enforce_sorted=enforce_sorted)
    words = str(theirs.value).split(",")[0].split("`")[0][:30]
    with pytest.raises(RuntimeError, match="pack_padded_sequence") as ours:
        RU.pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    assert words.lower().strip("' ") in str(ours.value).lower()


def test_pad_and_layer_bad_input_raises_like_torch() -> None:
    packed = RU.pack_padded_sequence(np.zeros((3, 2, 2)), [3, 1])
    with pytest.raises(ValueError, match="total_length=2"):
        RU.pad_packed_sequence(packed, total_length=2)
    with pytest.raises(ValueError, match="total_length=2"):
        TU.pad_packed_sequence(
            TU.pack_padded_sequence(torch.zeros(3, 2, 2), [3, 1]), total_length=2
        )
    for bad, kwargs in [([], {}), ([np.zeros((2, 2)), np.zeros((1, 3))], {}),
                        ([np.zeros((2, 2))], {"padding_side": "up"})]:  # fmt: skip
        with pytest.raises(RuntimeError):
            TU.pad_sequence([_t(b) for b in bad], **kwargs)
        with pytest.raises(RuntimeError, match="pad_sequence"):
            RU.pad_sequence(bad, **kwargs)
    with pytest.raises(IndexError):
        TU.pack_padded_sequence(torch.zeros(4), [3])
    with pytest.raises(IndexError, match="pack_padded_sequence"):
        RU.pack_padded_sequence(np.zeros(4), [3])
    with pytest.raises(RuntimeError, match="sorted in decreasing"):
        RU.pack_sequence([np.zeros((1, 2)), np.zeros((2, 2))])
    with pytest.raises(ValueError, match="exceeds"):  # torch reads out of bounds here
        RU.pack_padded_sequence(np.zeros((2, 1, 1)), [3])
    lstm = LSTM(2, 3, rng=0).double()
    with pytest.raises(RuntimeError, match="LSTM"):  # torch: a raw matmul shape error
        lstm(RU.pack_padded_sequence(np.zeros((3, 2, 4)), [3, 1]))
    with pytest.raises(RuntimeError, match="hidden"):
        lstm(packed._replace(data=np.zeros((4, 2))), (np.zeros((1, 3, 3)), np.zeros((1, 3, 3))))
    with pytest.raises(RuntimeError):
        torch.nn.LSTM(2, 3).double()(
            TU.pack_padded_sequence(torch.zeros(3, 2, 2), [3, 1]), (torch.zeros(1, 3, 3),) * 2
        )
    lstm(RU.PackedSequence(np.zeros((4, 2)), packed.batch_sizes))
    with pytest.raises(ValueError, match="output.data"):
        lstm.backward(np.zeros((3, 3)))
