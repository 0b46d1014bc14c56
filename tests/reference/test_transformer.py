"""TransformerEncoderLayer, TransformerDecoderLayer, TransformerEncoder, TransformerDecoder
and Transformer: torch's names and state_dict keys; forward and backward against torch
(float64 tight, float32) under random upstream gradients, every mask kind, unbatched
input; gradcheck in float64; the dropout path with imposed masks against a hand
composition in torch; torch's fused inference path and its nested-tensor conversion
(counted, so the tests prove they ran); bad input.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

import reference.functional as RF
import reference.nn as rnn
from harness.compare import GRADCHECK
from reference.gradcheck import gradcheck
from tests.reference.test_attention import _close
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

NESTED_WARNING = "enable_nested_tensor is True, but self.use_nested_tensor is False"
ACTIVATIONS = ["relu", "gelu", "fn_relu", "module_gelu", "module_relu"]


def _activations(kind: str) -> tuple[Any, Any]:
    """(torch's, the reference's) for one activation spelling."""
    return {
        "relu": ("relu", "relu"),
        "gelu": ("gelu", "gelu"),
        "fn_relu": (TF.relu, RF.relu),
        "module_gelu": (torch.nn.GELU(), rnn.GELU()),
        "module_relu": (torch.nn.ReLU(), rnn.ReLU()),
    }[kind]


def _masks(draw, rng, kind, n, nhead, L, S, causal_ok) -> dict[str, Any]:
    """An attention mask and a key padding mask of one kind (torch warns when they mix);
    key 0 is never masked, so no row is fully masked."""
    out: dict[str, Any] = {"attn": None, "kpm": None, "causal": False}
    if kind == "none":
        return out
    choice = draw(st.sampled_from(["attn", "kpm", "both", "causal"] if causal_ok else
                                  ["attn", "kpm", "both"]), label="which")  # fmt: skip
    if choice == "causal":
        out["causal"] = True
        mask = np.triu(np.ones((L, S), bool), 1)
        out["attn"] = mask if kind == "bool" else np.where(mask, -np.inf, 0.0)
        return out
    if choice in ("attn", "both"):
        shape = (L, S) if draw(st.booleans(), label="2d") else (n * nhead, L, S)
        if kind == "bool":
            mask = rng.random(shape) < 0.4
            mask[..., 0] = False
        else:
            mask = rng.standard_normal(shape)
        out["attn"] = mask
    if choice in ("kpm", "both"):
        pad = rng.random((n, S)) < 0.4
        pad[:, 0] = False
        out["kpm"] = pad if kind == "bool" else np.where(pad, -np.inf, 0.0)
    return out


@st.composite
def layer_cases(draw: Any, decoder: bool = False, small: bool = False) -> dict[str, Any]:
    """A layer's configuration, inputs and masks; ``small`` for gradcheck (every parameter
    element is perturbed twice)."""
    rng = draw_rng(draw)
    nhead = draw(st.integers(1, 2 if small else 3), label="nhead")
    d_model = draw(st.sampled_from([d for d in range(4, 7 if small else 13) if d % nhead == 0]))
    ff = draw(st.integers(2, 3 if small else 8), label="dim_feedforward")
    cfg = dict(d_model=d_model, nhead=nhead, dim_feedforward=ff,
               dropout=0.0, norm_first=draw(st.booleans(), label="norm_first"),
               bias=draw(st.booleans(), label="bias"),
               batch_first=draw(st.booleans(), label="batch_first"),
               layer_norm_eps=draw(st.sampled_from([1e-5, 1e-3])))  # fmt: skip
    act = draw(st.sampled_from(ACTIVATIONS), label="activation")
    batched = draw(st.booleans(), label="batched")
    n, L = draw(st.integers(1, 2 if small else 3), label="N"), draw(st.integers(1, 4), label="L")
    S = draw(st.integers(1, 3 if small else 4), label="S") if decoder else L
    kind = draw(st.sampled_from(["none", "bool", "float"]), label="mask")
    nb = n if batched else 1
    self_masks = _masks(draw, rng, kind, nb, nhead, L, L, True)
    cross = _masks(draw, rng, draw(st.sampled_from(["none", "bool", "float"])), nb, nhead, L,
                   S, False) if decoder else None  # fmt: skip
    if not batched:  # unbatched: a 2-D attn_mask, a (S,) key padding mask
        for m in (self_masks, cross or {}):
            if m.get("attn") is not None and m["attn"].ndim == 3:
                m["attn"] = m["attn"][0]
            if m.get("kpm") is not None:
                m["kpm"] = m["kpm"][0]

    def seq(length):
        shape = ((n, length) if cfg["batch_first"] else (length, n)) if batched else (length,)
        return rng.standard_normal((*shape, d_model))

    return dict(cfg=cfg, act=act, x=seq(L), memory=seq(S) if decoder else None,
                masks=self_masks, cross=cross, seed=int(rng.integers(2**31)))  # fmt: skip


def _t(x: Any, dtype: Any) -> Any:
    if x is None:
        return None
    return torch.from_numpy(x if x.dtype == bool else x.astype(dtype))


def _pair(cls: str, case: dict[str, Any], dtype: Any) -> tuple[Any, Any]:
    theirs_act, ours_act = _activations(case["act"])
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    theirs = getattr(torch.nn, cls)(**case["cfg"], activation=theirs_act, dtype=tdtype)
    ours = getattr(rnn, cls)(**case["cfg"], activation=ours_act, dtype=dtype, rng=case["seed"])
    gen = torch.Generator().manual_seed(case["seed"])
    with torch.no_grad():  # torch starts biases at 0 and norms at 1; move them off it
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=tdtype, generator=gen))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


def _compare_grads(ours, theirs, outs, inputs, our_inputs_grads, dtype, rng) -> None:
    g = rng.standard_normal(outs[0].shape).astype(dtype)
    params = dict(theirs.named_parameters())
    grads = torch.autograd.grad(outs[0], [*inputs, *params.values()], torch.from_numpy(g))
    ours_in = our_inputs_grads(g)
    for i, (a, b) in enumerate(zip(ours_in, grads[: len(inputs)])):
        _close(a, b, dtype, f"input gradient {i}")
    our_params = dict(ours.named_parameters())
    for (name, _), b in zip(params.items(), grads[len(inputs) :]):
        _close(our_params[name].grad, b, dtype, f"gradient of {name}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(case=layer_cases())
def test_encoder_layer_matches_torch(dtype: Any, case: dict[str, Any]) -> None:
    theirs, ours = _pair("TransformerEncoderLayer", case, dtype)
    m = case["masks"]
    x = torch.from_numpy(case["x"].astype(dtype)).requires_grad_()
    out = theirs(x, _t(m["attn"], dtype), _t(m["kpm"], dtype), m["causal"])
    our_out = ours(case["x"].astype(dtype), m["attn"], m["kpm"], m["causal"])
    _close(our_out, out, dtype, "output")
    _compare_grads(ours, theirs, [out], [x], lambda g: [ours.backward(g)], dtype,
                   np.random.default_rng(case["seed"]))  # fmt: skip


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(case=layer_cases(decoder=True))
def test_decoder_layer_matches_torch(dtype: Any, case: dict[str, Any]) -> None:
    theirs, ours = _pair("TransformerDecoderLayer", case, dtype)
    m, c = case["masks"], case["cross"]
    x = torch.from_numpy(case["x"].astype(dtype)).requires_grad_()
    mem = torch.from_numpy(case["memory"].astype(dtype)).requires_grad_()
    out = theirs(x, mem, _t(m["attn"], dtype), _t(c["attn"], dtype), _t(m["kpm"], dtype),
                 _t(c["kpm"], dtype), m["causal"])  # fmt: skip
    our_out = ours(case["x"].astype(dtype), case["memory"].astype(dtype), m["attn"], c["attn"],
                   m["kpm"], c["kpm"], m["causal"])  # fmt: skip
    _close(our_out, out, dtype, "output")
    _compare_grads(ours, theirs, [out], [x, mem], ours.backward, dtype,
                   np.random.default_rng(case["seed"]))  # fmt: skip


@settings(max_examples=8)
@given(case=layer_cases(small=True))
def test_encoder_layer_passes_gradcheck(case: dict[str, Any]) -> None:
    _, ours = _pair("TransformerEncoderLayer", case, np.float64)
    m = case["masks"]
    result = gradcheck(ours, case["x"], m["attn"], m["kpm"], m["causal"], **GRADCHECK)
    assert result.ok, str(result)


@settings(max_examples=5)
@given(case=layer_cases(decoder=True, small=True))
def test_decoder_layer_passes_gradcheck(case: dict[str, Any]) -> None:
    _, ours = _pair("TransformerDecoderLayer", case, np.float64)
    m, c = case["masks"], case["cross"]
    result = gradcheck(ours, case["x"], case["memory"], m["attn"], c["attn"], m["kpm"],
                       c["kpm"], m["causal"], wrt=[0, 1], **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


# ---------------------------------------------------------------- the stacks


def _torch_quiet(factory: Any) -> Any:
    """torch warns when it cannot use nested tensors (batch_first False...): not our case."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", NESTED_WARNING, UserWarning)
        return factory()


def _transformer_pair(cfg: dict[str, Any], dtype: Any, seed: int) -> tuple[Any, Any]:
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(seed)
    theirs = _torch_quiet(lambda: torch.nn.Transformer(**cfg, dropout=0.0, dtype=tdtype))
    ours = rnn.Transformer(**cfg, dropout=0.0, dtype=dtype, rng=seed)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=tdtype, generator=gen))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


@st.composite
def transformer_cases(draw: Any, small: bool = False) -> dict[str, Any]:
    rng = draw_rng(draw)
    nhead = draw(st.integers(1, 2), label="nhead")
    cfg = dict(d_model=draw(st.sampled_from([4, 6] if small else [4, 6, 8])), nhead=nhead,
               num_encoder_layers=draw(st.integers(1, 1 if small else 2)),
               num_decoder_layers=draw(st.integers(1, 1 if small else 2)),
               dim_feedforward=draw(st.integers(2, 3 if small else 6)),
               norm_first=draw(st.booleans()), bias=draw(st.booleans()),
               batch_first=draw(st.booleans()),
               activation=draw(st.sampled_from(["relu", "gelu"])))  # fmt: skip
    batched = draw(st.booleans(), label="batched")
    n, S, T = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    nb = n if batched else 1

    def seq(length):
        shape = ((n, length) if cfg["batch_first"] else (length, n)) if batched else (length,)
        return rng.standard_normal((*shape, cfg["d_model"]))

    kind = draw(st.sampled_from(["none", "bool", "float"]), label="mask")
    src_m = _masks(draw, rng, kind, nb, nhead, S, S, True)
    tgt_m = _masks(draw, rng, kind, nb, nhead, T, T, True)
    mem_m = _masks(draw, rng, kind, nb, nhead, T, S, False)
    for m in (src_m, tgt_m, mem_m):
        if not batched:
            m["attn"] = (
                None if m["attn"] is None else m["attn"].reshape(-1, *m["attn"].shape[-2:])[0]
            )
            m["kpm"] = None if m["kpm"] is None else m["kpm"][0]
    kwargs = dict(src_mask=src_m["attn"], tgt_mask=tgt_m["attn"], memory_mask=mem_m["attn"],
                  src_key_padding_mask=src_m["kpm"], tgt_key_padding_mask=tgt_m["kpm"],
                  memory_key_padding_mask=mem_m["kpm"], src_is_causal=src_m["causal"] or None,
                  tgt_is_causal=tgt_m["causal"] or None)  # fmt: skip
    return dict(cfg=cfg, src=seq(S), tgt=seq(T), kwargs=kwargs, seed=int(rng.integers(2**31)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=25)
@given(case=transformer_cases())
def test_transformer_matches_torch(dtype: Any, case: dict[str, Any]) -> None:
    theirs, ours = _transformer_pair(case["cfg"], dtype, case["seed"])
    src = torch.from_numpy(case["src"].astype(dtype)).requires_grad_()
    tgt = torch.from_numpy(case["tgt"].astype(dtype)).requires_grad_()
    t_kwargs = {k: _t(v, dtype) if isinstance(v, np.ndarray) else v
                for k, v in case["kwargs"].items()}  # fmt: skip
    out = theirs(src, tgt, **t_kwargs)
    our_out = ours(case["src"].astype(dtype), case["tgt"].astype(dtype), **case["kwargs"])
    _close(our_out, out, dtype, "output")
    _compare_grads(ours, theirs, [out], [src, tgt], ours.backward, dtype,
                   np.random.default_rng(case["seed"]))  # fmt: skip


@settings(max_examples=3)
@given(case=transformer_cases(small=True))
def test_transformer_passes_gradcheck(case: dict[str, Any]) -> None:
    _, ours = _transformer_pair(case["cfg"], np.float64, case["seed"])
    k = case["kwargs"]
    args = [k[name] for name in ("src_mask", "tgt_mask", "memory_mask", "src_key_padding_mask",
                                 "tgt_key_padding_mask", "memory_key_padding_mask",
                                 "src_is_causal", "tgt_is_causal")]  # fmt: skip
    result = gradcheck(ours, case["src"], case["tgt"], *args, wrt=[0, 1], **GRADCHECK)
    assert result.ok, str(result)


@pytest.mark.parametrize("norm", [False, True])
def test_encoder_and_decoder_stacks_match_torch(norm: bool) -> None:
    """TransformerEncoder/TransformerDecoder on their own, built from a reference layer
    (deep copies: every layer gets its own parameters, then torch's are loaded)."""
    rng = np.random.default_rng(3)
    t_enc_layer = torch.nn.TransformerEncoderLayer(6, 2, 5, 0.0, dtype=torch.float64)
    t_dec_layer = torch.nn.TransformerDecoderLayer(6, 2, 5, 0.0, dtype=torch.float64)
    t_norm = (lambda: torch.nn.LayerNorm(6, dtype=torch.float64)) if norm else (lambda: None)
    r_norm = (lambda: rnn.LayerNorm(6, dtype=np.float64)) if norm else (lambda: None)
    theirs = [_torch_quiet(lambda: torch.nn.TransformerEncoder(t_enc_layer, 3, t_norm())),
              torch.nn.TransformerDecoder(t_dec_layer, 2, t_norm())]  # fmt: skip
    layers = (rnn.TransformerEncoderLayer(6, 2, 5, 0.0, dtype=np.float64),
              rnn.TransformerDecoderLayer(6, 2, 5, 0.0, dtype=np.float64))  # fmt: skip
    ours = [rnn.TransformerEncoder(layers[0], 3, r_norm()),
            rnn.TransformerDecoder(layers[1], 2, r_norm())]  # fmt: skip
    for t, o in zip(theirs, ours):
        with torch.no_grad():
            for p in t.parameters():
                p.copy_(torch.from_numpy(rng.standard_normal(p.shape)))
        o.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    x, mem = rng.standard_normal((4, 2, 6)), rng.standard_normal((3, 2, 6))
    causal = rnn.Transformer.generate_square_subsequent_mask(4, dtype=np.float64)
    tx, tm = torch.from_numpy(x).requires_grad_(), torch.from_numpy(mem).requires_grad_()
    out = theirs[0](tx, torch.from_numpy(causal))  # is_causal detected from the mask
    _close(ours[0](x, causal), out, np.float64, "encoder output")
    _compare_grads(
        ours[0], theirs[0], [out], [tx], lambda g: [ours[0].backward(g)], np.float64, rng
    )
    out = theirs[1](tx, tm, torch.from_numpy(causal))
    _close(ours[1](x, mem, causal), out, np.float64, "decoder output")
    _compare_grads(ours[1], theirs[1], [out], [tx, tm], ours[1].backward, np.float64, rng)


# ---------------------------------------------------------------- dropout, imposed


def _keep(rng: np.random.Generator, shape: tuple[int, ...], p: float) -> np.ndarray:
    return rng.random(shape) >= p


def _torch_encoder_by_hand(t, x, keeps, p, norm_first):
    """torch's encoder layer written out with torch ops, each dropout a fixed keep-mask."""
    a, (N, L, E), H = t.self_attn, x.shape, t.self_attn.num_heads
    drop = {k: torch.from_numpy(v).to(x.dtype) / (1 - p) for k, v in keeps.items()}

    def heads(z):  # (N, L, E) -> (N, H, L, E/H)
        return z.reshape(N, L, H, E // H).transpose(1, 2)

    def sa(h):
        q, k, v = (h @ a.in_proj_weight.T + a.in_proj_bias).chunk(3, -1)
        probs = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / (E // H) ** 0.5, -1)
        o = ((probs * drop["attn"]) @ heads(v)).transpose(1, 2).reshape(N, L, E)
        return (o @ a.out_proj.weight.T + a.out_proj.bias) * drop["dropout1"]

    def ff(h):
        h = torch.relu(t.linear1(h)) * drop["dropout"]
        return t.linear2(h) * drop["dropout2"]

    n1, n2 = t.norm1, t.norm2
    if norm_first:
        x = x + sa(n1(x))
        return x + ff(n2(x))
    x = n1(x + sa(x))
    return n2(x + ff(x))


def _impose(layer: Any, keeps: dict[str, np.ndarray]) -> None:
    layer.self_attn.mask = keeps["attn"]
    for name in ("dropout", "dropout1", "dropout2"):
        getattr(layer, name).mask = keeps[name]


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_dropout_with_imposed_masks(norm_first: bool) -> None:
    """Every dropout of the layer (the attention's own included) given a keep-mask: the
    reference matches torch's layer written out by hand with the same masks, and its
    backward passes gradcheck with the masks held fixed."""
    rng, p, (N, L, E, H, F) = np.random.default_rng(5), 0.3, (2, 3, 6, 2, 5)
    t = torch.nn.TransformerEncoderLayer(E, H, F, p, batch_first=True, norm_first=norm_first,
                                         dtype=torch.float64)  # fmt: skip
    ours = rnn.TransformerEncoderLayer(E, H, F, p, batch_first=True, norm_first=norm_first,
                                       dtype=np.float64)  # fmt: skip
    with torch.no_grad():
        for q in t.parameters():
            q.add_(0.2 * torch.from_numpy(rng.standard_normal(q.shape)))
    ours.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    keeps = dict(attn=_keep(rng, (N, H, L, L), p), dropout=_keep(rng, (N, L, F), p),
                 dropout1=_keep(rng, (N, L, E), p), dropout2=_keep(rng, (N, L, E), p))  # fmt: skip
    x = rng.standard_normal((N, L, E))
    tx = torch.from_numpy(x).requires_grad_()
    out = _torch_encoder_by_hand(t, tx, keeps, p, norm_first)
    _impose(ours, keeps)
    _close(ours(x), out, np.float64, "output")
    assert ours.dropout1.last_mask is not None and ours.dropout1.mask is None  # used, cleared
    _compare_grads(ours, t, [out], [tx], lambda g: [ours.backward(g)], np.float64, rng)

    def f(x):
        _impose(ours, keeps)
        return ours(x)

    def b(g, x):
        f(x)
        return ours.backward(g)

    result = gradcheck(f, x, backward=b, **GRADCHECK)
    assert result.ok, str(result)


# ---------------------------------------------------------------- torch's fast paths


class _Counted:
    """Counts the calls to a torch function, then calls it."""

    def __init__(self, fn: Any):
        self.fn, self.calls = fn, 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.fn(*args, **kwargs)


def _counted(monkeypatch: Any, name: str) -> _Counted:
    counter = _Counted(getattr(torch, name))
    monkeypatch.setattr(torch, name, counter)
    return counter


def _fast_pair(cls: str, dtype: Any, seed: int, **cfg: Any) -> tuple[Any, Any]:
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    torch.manual_seed(seed)
    theirs = getattr(torch.nn, cls)(8, 2, 12, 0.0, batch_first=True, dtype=tdtype, **cfg).eval()
    ours = getattr(rnn, cls)(8, 2, 12, 0.0, batch_first=True, dtype=dtype, **cfg).eval()
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=tdtype))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    return theirs, ours


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_fast_path_matches(monkeypatch, dtype, norm_first, activation) -> None:
    """Eval, no grad, batch_first, an even nhead: torch runs its fused
    ``_transformer_encoder_layer_fwd`` (counted), with and without masks; the reference's
    plain forward gives the same numbers (every position)."""
    fused = _counted(monkeypatch, "_transformer_encoder_layer_fwd")
    theirs, ours = _fast_pair("TransformerEncoderLayer", dtype, 0, norm_first=norm_first,
                              activation=activation)  # fmt: skip
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 8)).astype(dtype)
    kpm = np.zeros((3, 5), bool)
    kpm[0, 3:], kpm[1, 1] = True, True
    attn = rng.random((5, 5)) < 0.3
    attn[:, 0] = False
    cases = [{}, {"src_key_padding_mask": kpm}, {"src_mask": attn}]
    for kwargs in cases:
        with torch.no_grad():
            out = theirs(torch.from_numpy(x), **{k: torch.from_numpy(v) for k, v in kwargs.items()})
        _close(ours(x, **kwargs), out, dtype, f"fast path output {list(kwargs)}")
    assert fused.calls == len(cases)  # the fused kernel ran every time


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("norm", [False, True])
@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors:UserWarning")  # torch's
def test_encoder_nested_tensor_path_matches(monkeypatch, dtype, norm) -> None:
    """TransformerEncoder with a left-aligned src_key_padding_mask in inference converts to a
    nested tensor (counted) and gives back 0 at padded positions (then the final norm of 0).
    Those positions are not computed by torch at all; the reference computes the plain
    formula there, so only the non-padded positions are compared."""
    fused = _counted(monkeypatch, "_transformer_encoder_layer_fwd")
    nested = _counted(monkeypatch, "_nested_tensor_from_mask")
    t_layer, r_layer = _fast_pair("TransformerEncoderLayer", dtype, 2)
    tdtype = t_layer.linear1.weight.dtype
    theirs = torch.nn.TransformerEncoder(
        t_layer, 2, torch.nn.LayerNorm(8, dtype=tdtype) if norm else None
    )
    ours = rnn.TransformerEncoder(r_layer, 2, rnn.LayerNorm(8, dtype=dtype) if norm else None)
    theirs.eval()
    ours.eval().load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 5, 8)).astype(dtype)
    lengths = np.array([3, 5, 4])
    kpm = np.arange(5)[None, :] >= lengths[:, None]  # left aligned: padding at the end
    with torch.no_grad():
        out = theirs(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(kpm)).numpy()
    assert nested.calls == 1 and fused.calls == 2  # nested conversion, both layers fused
    padded = out[kpm]
    expected = theirs.norm(torch.zeros(8, dtype=tdtype)).detach().numpy() if norm else 0.0
    np.testing.assert_array_equal(padded, np.broadcast_to(expected, padded.shape))
    ours_out = ours(x, src_key_padding_mask=kpm)
    _close(ours_out[~kpm], out[~kpm], dtype, "non-padded positions")


def test_decoder_layer_has_no_layer_fast_path(monkeypatch) -> None:
    """torch's decoder layer has no fused layer kernel; in inference only its self-attention
    takes MultiheadAttention's own fast path (query is key is value); cross-attention does
    not. The numbers are still the reference's."""
    fused = _counted(monkeypatch, "_transformer_encoder_layer_fwd")
    mha = _counted(monkeypatch, "_native_multi_head_attention")
    theirs, ours = _fast_pair("TransformerDecoderLayer", np.float64, 4)
    rng = np.random.default_rng(4)
    x, mem = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 3, 8))
    with torch.no_grad():
        out = theirs(torch.from_numpy(x), torch.from_numpy(mem))
    assert fused.calls == 0 and mha.calls == 1
    _close(ours(x, mem), out, np.float64, "output")


# ---------------------------------------------------------------- construction, bad input


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_names_and_state_dict_keys_are_torchs(act: str, bias: bool) -> None:
    t_act, r_act = _activations(act)
    for cls in ("TransformerEncoderLayer", "TransformerDecoderLayer"):
        t = getattr(torch.nn, cls)(6, 3, 5, activation=t_act, bias=bias)
        r = getattr(rnn, cls)(6, 3, 5, activation=r_act, bias=bias)
        assert [(k, tuple(v.shape)) for k, v in t.state_dict().items()] == [
            (k, v.shape) for k, v in r.state_dict().items()]  # fmt: skip
        assert [n for n, _ in t.named_modules()] == [n for n, _ in r.named_modules()]
        assert r.state_dict()["linear1.weight"].dtype == np.float32
    t_enc = torch.nn.TransformerEncoderLayer(6, 3, 5, activation=t_act)
    assert t_enc.activation_relu_or_gelu == rnn.TransformerEncoderLayer(
        6, 3, 5, activation=r_act).activation_relu_or_gelu  # fmt: skip
    t = _torch_quiet(lambda: torch.nn.Transformer(6, 3, 2, 1, 5, bias=bias))
    r = rnn.Transformer(6, 3, 2, 1, 5, bias=bias)
    assert list(t.state_dict()) == list(r.state_dict())
    assert [n for n, _ in t.named_modules()] == [n for n, _ in r.named_modules()]


def test_stack_layers_are_deep_copies_and_transformer_reinits_xavier() -> None:
    layer = rnn.TransformerEncoderLayer(4, 2, 8, rng=0)
    enc = rnn.TransformerEncoder(layer, 2)
    a, b = enc.layers[0], enc.layers[1]
    assert a is not layer and a is not b
    assert a.linear1.weight is not b.linear1.weight
    np.testing.assert_array_equal(a.linear1.weight.data, layer.linear1.weight.data)
    model = rnn.Transformer(16, 2, 1, 1, 64, rng=0)
    w2 = model.encoder.layers[0].linear2.weight.data  # (16, 64): Linear's bound 1/8
    xavier = np.sqrt(6 / (16 + 64))
    assert 1 / 8 < np.abs(w2).max() <= xavier  # re-drawn: beyond Linear's, within xavier's
    assert not model.encoder.layers[0].self_attn.in_proj_bias.data.any()  # 1-D: untouched
    assert model.encoder.layers[0].norm1.weight.data.tolist() == [1.0] * 16


@pytest.mark.parametrize("sz", [0, 1, 4])
@pytest.mark.parametrize("dtype", [None, np.float64])
def test_generate_square_subsequent_mask_is_torchs(sz: int, dtype: Any) -> None:
    tdtype = None if dtype is None else torch.float64
    theirs = torch.nn.Transformer.generate_square_subsequent_mask(sz, dtype=tdtype).numpy()
    ours = rnn.Transformer.generate_square_subsequent_mask(sz, dtype=dtype)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_activation_callables() -> None:
    with pytest.raises(TypeError, match="no hand-written backward"):
        rnn.TransformerEncoderLayer(4, 2, 8, activation=lambda x: x)
    with pytest.raises(RuntimeError, match="relu/gelu"):
        rnn.TransformerDecoderLayer(4, 2, 8, activation="tanh")
    with pytest.raises(RuntimeError, match="relu/gelu"):
        torch.nn.TransformerDecoderLayer(4, 2, 8, activation="tanh")
    layer = rnn.TransformerEncoderLayer(4, 2, 8, activation=TF.gelu)  # torch's, mapped
    assert layer.activation is RF.gelu and layer.activation_relu_or_gelu == 2


def _raises_both(theirs: Any, ours: Any, match: str) -> None:
    with pytest.raises((RuntimeError, AssertionError, ValueError)):
        theirs()
    with pytest.raises((RuntimeError, ValueError), match=match):
        ours()


def test_bad_input_raises_like_torch() -> None:
    with pytest.raises(AssertionError):
        torch.nn.TransformerEncoderLayer(6, 4)
    with pytest.raises(ValueError, match="divisible"):
        rnn.TransformerEncoderLayer(6, 4)
    t, r = torch.nn.TransformerEncoderLayer(4, 2, 8), rnn.TransformerEncoderLayer(4, 2, 8)
    x = np.zeros((3, 2, 5), np.float32)
    _raises_both(lambda: t(torch.from_numpy(x)), lambda: r(x), "TransformerEncoderLayer.*d_model")
    x = np.zeros((3, 2, 4), np.float32)
    bad = np.zeros((2, 3), bool)
    _raises_both(lambda: t(torch.from_numpy(x), src_mask=torch.from_numpy(bad)),
                 lambda: r(x, src_mask=bad), "TransformerEncoderLayer: src_mask")  # fmt: skip
    bad = np.zeros((3, 2), bool)  # (S, N): torch wants (N, S)
    _raises_both(lambda: t(torch.from_numpy(x), src_key_padding_mask=torch.from_numpy(bad)),
                 lambda: r(x, src_key_padding_mask=bad), "src_key_padding_mask")  # fmt: skip
    td, rd = torch.nn.TransformerDecoderLayer(4, 2, 8), rnn.TransformerDecoderLayer(4, 2, 8)
    mem = np.zeros((3, 5, 4), np.float32)  # batch 5, tgt's is 2
    _raises_both(lambda: td(torch.from_numpy(x), torch.from_numpy(mem)), lambda: rd(x, mem),
                 "TransformerDecoderLayer: memory")  # fmt: skip
    tt = _torch_quiet(lambda: torch.nn.Transformer(4, 2, 1, 1, 8))
    rt = rnn.Transformer(4, 2, 1, 1, 8)
    _raises_both(lambda: tt(torch.from_numpy(x), torch.from_numpy(mem)), lambda: rt(x, mem),
                 "batch number")  # fmt: skip
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        r(x, is_causal=True)
    with pytest.raises(RuntimeError, match="Need attn_mask"):
        t(torch.from_numpy(x), is_causal=True)
