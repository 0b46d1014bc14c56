"""scaled_dot_product_attention (functional) and MultiheadAttention: gradcheck in float64,
forward and backward against torch (float64 tight, float32) under random upstream
gradients, masks (bool, float, causal, key padding), GQA, dropout with an imposed mask,
fully masked rows, unbatched input, torch's parameters and init, bad input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import GRADCHECK
from reference.functional import attention as A
from reference.gradcheck import gradcheck
from reference.nn.attention import MultiheadAttention
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-4, atol=2e-5)}


def _close(ours: Any, theirs: Any, dtype: Any, what: str) -> None:
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    assert np.asarray(ours).dtype == theirs.dtype, f"{what}: dtype {np.asarray(ours).dtype}"
    tol = TOL[dtype]
    scale = max(1.0, float(np.nanmax(np.abs(theirs), initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=tol["rtol"], atol=tol["atol"] * scale,
                               err_msg=what, equal_nan=True)  # fmt: skip


# ---------------------------------------------------------------- scaled_dot_product_attention


@st.composite
def sdpa_cases(draw: Any) -> tuple[list[np.ndarray], dict[str, Any]]:
    """``(query, key, value)`` with 0 to 2 leading dims and one mask kind; GQA on 3+ dims."""
    rng = draw_rng(draw)
    lead = list(draw(st.lists(st.integers(1, 2), max_size=2), label="lead"))
    L, S = draw(st.integers(1, 4), label="L"), draw(st.integers(1, 4), label="S")
    E, Ev = draw(st.integers(1, 4), label="E"), draw(st.integers(1, 3), label="Ev")
    kwargs: dict[str, Any] = {}
    kv_lead = list(lead)
    if lead and draw(st.booleans(), label="gqa"):
        group = draw(st.integers(1, 3))
        lead[-1] *= group
        kwargs["enable_gqa"] = True
    kind = draw(st.sampled_from(["none", "bool", "float", "causal"]), label="mask")
    if kind == "bool":
        kwargs["attn_mask"] = rng.random((L, S)) > 0.3  # some rows may be fully masked
    elif kind == "float":
        kwargs["attn_mask"] = rng.standard_normal((*lead, L, S))
    elif kind == "causal":
        kwargs["is_causal"] = True
    if draw(st.booleans(), label="scale"):
        kwargs["scale"] = draw(st.floats(0.1, 2.0))
    q = rng.standard_normal((*lead, L, E))
    k, v = rng.standard_normal((*kv_lead, S, E)), rng.standard_normal((*kv_lead, S, Ev))
    return [q, k, v], kwargs


def _torch_kwargs(kwargs: dict[str, Any], dtype: Any) -> dict[str, Any]:
    out = dict(kwargs)
    if "attn_mask" in out:
        mask = out["attn_mask"]
        out["attn_mask"] = torch.from_numpy(mask if mask.dtype == bool else mask.astype(dtype))
    return out


@given(case=sdpa_cases())
def test_sdpa_backward_passes_gradcheck(case: Any) -> None:
    (q, k, v), kwargs = case
    result = gradcheck(
        lambda q, k, v: A.scaled_dot_product_attention(q, k, v, **kwargs),
        q, k, v,
        backward=lambda g, q, k, v: A.scaled_dot_product_attention_backward(g, q, k, v, **kwargs),
        **GRADCHECK,
    )  # fmt: skip
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(case=sdpa_cases(), seed=st.integers(0, 2**32 - 1))
def test_sdpa_matches_torch(dtype: Any, case: Any, seed: int) -> None:
    (q, k, v), kwargs = case
    q, k, v = (x.astype(dtype) for x in (q, k, v))
    out = A.scaled_dot_product_attention(q, k, v, **kwargs)
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    t_out = TF.scaled_dot_product_attention(tq, tk, tv, **_torch_kwargs(kwargs, dtype))
    _close(out, t_out, dtype, "output")
    g = np.random.default_rng(seed).standard_normal(out.shape).astype(dtype)
    t_grads = torch.autograd.grad(t_out, (tq, tk, tv), torch.from_numpy(g))
    grads = A.scaled_dot_product_attention_backward(g, q, k, v, **kwargs)
    for name, ours, theirs in zip("qkv", grads, t_grads):
        _close(ours, theirs, dtype, f"grad_{name}")


@pytest.mark.parametrize("lead", [(2,), (2, 3)])  # 3-D: torch's math path; 4-D: its flash kernel
def test_sdpa_fully_masked_rows_give_zero_like_torch(lead: tuple[int, ...]) -> None:
    rng = np.random.default_rng(1)
    q, k, v = (rng.standard_normal((*lead, 3, 4)) for _ in range(3))
    mask = np.ones((3, 3), dtype=bool)
    mask[1] = False
    for m in (mask, np.where(mask, 0.0, -np.inf)):
        out = A.scaled_dot_product_attention(q, k, v, attn_mask=m)
        assert np.all(out[..., 1, :] == 0)
        tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
        t_out = TF.scaled_dot_product_attention(tq, tk, tv, attn_mask=torch.from_numpy(m))
        g = rng.standard_normal(out.shape)
        t_grads = torch.autograd.grad(t_out, (tq, tk, tv), torch.from_numpy(g))
        _close(out, t_out, np.float64, "output")
        for ours, theirs in zip(A.scaled_dot_product_attention_backward(g, q, k, v, m), t_grads):
            _close(ours, theirs, np.float64, "gradient")


def test_sdpa_dropout_with_imposed_mask() -> None:
    """With a keep-mask D: O = (softmax(S) * D / (1-p)) V, torch's math path's formula."""
    rng = np.random.default_rng(2)
    q, k, v = (
        rng.standard_normal((2, 3, 4)),
        rng.standard_normal((2, 5, 4)),
        rng.standard_normal((2, 5, 2)),
    )
    keep, p = rng.random((2, 3, 5)) >= 0.4, 0.4
    out = A.scaled_dot_product_attention(q, k, v, dropout_p=p, dropout_mask=keep)
    tq, tk, tv = (torch.tensor(x, requires_grad=True) for x in (q, k, v))
    probs = torch.softmax(tq @ tk.transpose(-1, -2) / 2.0, dim=-1)
    t_out = (probs * torch.from_numpy(keep) / (1 - p)) @ tv
    _close(out, t_out, np.float64, "output")
    g = rng.standard_normal(out.shape)
    grads = A.scaled_dot_product_attention_backward(g, q, k, v, dropout_p=p, dropout_mask=keep)
    for ours, theirs in zip(grads, torch.autograd.grad(t_out, (tq, tk, tv), torch.from_numpy(g))):
        _close(ours, theirs, np.float64, "gradient")
    result = gradcheck(
        lambda q, k, v: A.scaled_dot_product_attention(q, k, v, dropout_p=p, dropout_mask=keep),
        q, k, v,
        backward=lambda g, q, k, v: A.scaled_dot_product_attention_backward(
            g, q, k, v, dropout_p=p, dropout_mask=keep),
        **GRADCHECK,
    )  # fmt: skip
    assert result.ok, str(result)
    # without a mask: drawn from the Generator, reproducible from its seed
    a = A.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=5)
    b = A.scaled_dot_product_attention(q, k, v, dropout_p=p, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "shapes, kwargs, match",
    [
        (((2, 3, 4), (2, 5, 3), (2, 5, 4)), {}, "query"),
        (((2, 3, 4), (2, 5, 4), (2, 4, 4)), {}, "value"),
        (((3, 3, 4), (2, 5, 4), (2, 5, 4)), {"enable_gqa": True}, "multiple"),
        (((4, 3, 4), (2, 5, 4), (2, 5, 4)), {}, "enable_gqa"),
        (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"is_causal": True, "attn_mask": np.ones((3, 5), bool)},
         "is_causal"),
        (((2, 3, 4), (2, 5, 4), (2, 5, 4)), {"attn_mask": np.ones((4, 5), bool)}, "attn_mask"),
    ],
)  # fmt: skip
def test_sdpa_bad_input_raises_like_torch(shapes: Any, kwargs: dict, match: str) -> None:
    q, k, v = (np.zeros(s) for s in shapes)
    with pytest.raises(RuntimeError, match=match):
        A.scaled_dot_product_attention(q, k, v, **kwargs)
    with pytest.raises(RuntimeError):
        TF.scaled_dot_product_attention(*(torch.from_numpy(x) for x in (q, k, v)),
                                        **_torch_kwargs(kwargs, np.float64))  # fmt: skip


# ------------------------------------------------------------------------ MultiheadAttention


@st.composite
def mha_cases(draw: Any) -> dict[str, Any]:
    heads = draw(st.integers(1, 2), label="heads")
    cfg = dict(
        embed_dim=heads * draw(st.integers(1, 2)), num_heads=heads,
        bias=draw(st.booleans()), add_bias_kv=draw(st.booleans()),
        add_zero_attn=draw(st.booleans()), batch_first=draw(st.booleans()),
    )  # fmt: skip
    if draw(st.booleans(), label="kvdim"):
        cfg["kdim"], cfg["vdim"] = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.sampled_from([None, 1, 2]), label="batch")  # None: unbatched
    L, S = draw(st.integers(1, 3), label="L"), draw(st.integers(1, 3), label="S")
    rng = draw_rng(draw)
    lead = (
        (lambda n: (n,))
        if batch is None
        else (lambda n: (batch, n) if cfg["batch_first"] else (n, batch))
    )
    E = cfg["embed_dim"]
    inputs = [rng.standard_normal((*lead(n), d)) for n, d in
              ((L, E), (S, cfg.get("kdim", E)), (S, cfg.get("vdim", E)))]  # fmt: skip
    fwd: dict[str, Any] = {"need_weights": draw(st.booleans()),
                           "average_attn_weights": draw(st.booleans())}  # fmt: skip
    kind = draw(st.sampled_from(["none", "bool2d", "float3d"]), label="attn_mask")
    n = 1 if batch is None else batch
    if kind == "bool2d":  # True = masked out; keep the diagonal-ish first key so no row is empty
        mask = rng.random((L, S)) > 0.6
        mask[:, 0] = False
        fwd["attn_mask"] = mask
    elif kind == "float3d":
        fwd["attn_mask"] = rng.standard_normal((n * heads, L, S))
    if draw(st.booleans(), label="kpm"):
        kpm = rng.random((S,) if batch is None else (n, S)) > 0.6
        kpm[..., 0] = False  # torch warns on a bool kpm with a float attn_mask: match types
        fwd["key_padding_mask"] = rng.standard_normal(kpm.shape) if kind == "float3d" else kpm
    return dict(cfg=cfg, inputs=inputs, fwd=fwd, seed=int(rng.integers(2**31)))


def _pair(cfg: dict[str, Any], dtype: Any) -> tuple[torch.nn.Module, MultiheadAttention]:
    theirs = torch.nn.MultiheadAttention(**cfg, dtype=torch.float64)
    ours = MultiheadAttention(**cfg, rng=0)
    state = {k: v.detach().numpy().astype(dtype) for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state)
    ours.double() if dtype == np.float64 else ours.float()
    ours.load_state_dict(state)
    return theirs.to(torch.float64 if dtype == np.float64 else torch.float32), ours


def _params_fn(module: MultiheadAttention, fwd: dict[str, Any]) -> tuple[Any, Any]:
    """``f(q, k, v, *params) -> attn_output`` and its backward, for gradcheck of all."""
    table = [p for _, p in module.named_parameters()]

    def load(params: tuple) -> None:
        for param, value in zip(table, params):
            param.data = value

    def f(q, k, v, *params):
        load(params)
        return module(q, k, v, **fwd)[0]

    def b(g, q, k, v, *params):
        f(q, k, v, *params)
        module.zero_grad()
        grads = module.backward(g)
        return (*grads, *(p.grad for p in table))

    return f, b, [p.data.copy() for p in table]


@given(case=mha_cases())
def test_mha_backward_passes_gradcheck(case: dict[str, Any]) -> None:
    module = MultiheadAttention(**case["cfg"], rng=case["seed"], dtype=np.float64)
    if module.in_proj_bias is not None:  # torch starts them at 0; move off it
        rng = np.random.default_rng(case["seed"])
        module.in_proj_bias.data = rng.standard_normal(module.in_proj_bias.shape)
    f, b, params = _params_fn(module, case["fwd"])
    result = gradcheck(f, *case["inputs"], *params, backward=b, **GRADCHECK)
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(case=mha_cases())
def test_mha_matches_torch(dtype: Any, case: dict[str, Any]) -> None:
    theirs, ours = _pair(case["cfg"], dtype)
    inputs = [x.astype(dtype) for x in case["inputs"]]
    fwd = case["fwd"]
    t_inputs = [torch.tensor(x, requires_grad=True) for x in inputs]
    t_fwd = {k: torch.from_numpy(v.astype(dtype) if v.dtype != bool else v)
             if isinstance(v, np.ndarray) else v for k, v in fwd.items()}  # fmt: skip
    t_out, t_w = theirs(*t_inputs, **t_fwd)
    out, w = ours(*inputs, **fwd)
    _close(out, t_out, dtype, "attn_output")
    assert (w is None) == (t_w is None)
    if w is not None:
        _close(w, t_w, dtype, "attn_weights")
    g = np.random.default_rng(case["seed"]).standard_normal(out.shape).astype(dtype)
    params = dict(theirs.named_parameters())
    t_grads = torch.autograd.grad(t_out, [*t_inputs, *params.values()], torch.from_numpy(g))
    grads = ours.backward(g)
    for i, (mine, their) in enumerate(zip(grads, t_grads)):
        _close(mine, their, dtype, f"gradient wrt input {i}")
    ours_params = dict(ours.named_parameters())
    for (name, _), their in zip(params.items(), t_grads[3:]):
        _close(ours_params[name].grad, their, dtype, f"gradient wrt {name}")


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_fully_padded_batch_like_torch(need_weights: bool) -> None:
    """torch's weights path (plain softmax) gives NaN for a fully padded batch, its SDPA
    path (need_weights=False) 0; the reference follows each."""
    theirs, ours = _pair({"embed_dim": 4, "num_heads": 2}, np.float64)
    x = np.random.default_rng(3).standard_normal((3, 2, 4))
    kpm = np.zeros((2, 3), dtype=bool)
    kpm[1] = True
    t_out, _ = theirs(*(torch.from_numpy(x),) * 3, key_padding_mask=torch.from_numpy(kpm),
                      need_weights=need_weights)  # fmt: skip
    out, _ = ours(x, x, x, key_padding_mask=kpm, need_weights=need_weights)
    assert np.isnan(out[:, 1]).all() == need_weights
    _close(out, t_out, np.float64, "attn_output")


def test_mha_is_causal_uses_the_causal_mask() -> None:
    theirs, ours = _pair({"embed_dim": 4, "num_heads": 2}, np.float64)
    x = np.random.default_rng(4).standard_normal((3, 2, 4))
    mask = np.triu(np.ones((3, 3), bool), 1)  # True = masked out, as torch's MHA takes it
    tx = torch.tensor(x, requires_grad=True)
    for nw in (True, False):
        t_out, _ = theirs(
            tx, tx, tx, attn_mask=torch.from_numpy(mask), is_causal=True, need_weights=nw
        )
        out, _ = ours(x, x, x, attn_mask=mask, is_causal=True, need_weights=nw)
        _close(out, t_out, np.float64, "attn_output")
        g = np.random.default_rng(5).standard_normal(out.shape)
        (t_grad,) = torch.autograd.grad(t_out, tx, torch.from_numpy(g))
        _close(sum(ours.backward(g)), t_grad, np.float64, "summed input gradient")


@pytest.mark.parametrize("kdim", [None, 3])
@pytest.mark.parametrize("add_bias_kv", [False, True])
def test_mha_parameters_and_init_like_torch(kdim: Any, add_bias_kv: bool) -> None:
    cfg = dict(embed_dim=4, num_heads=2, add_bias_kv=add_bias_kv, kdim=kdim, vdim=kdim)
    theirs, ours = torch.nn.MultiheadAttention(**cfg), MultiheadAttention(**cfg, rng=0)
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    state = ours.state_dict()
    assert all(v.dtype == np.float32 for v in state.values())
    assert np.all(state["in_proj_bias"] == 0) and np.all(state["out_proj.bias"] == 0)
    bound = np.sqrt(6 / (4 + 12)) if kdim is None else np.sqrt(6 / (4 + 3))
    weight = state["in_proj_weight" if kdim is None else "k_proj_weight"]
    assert np.abs(weight).max() <= bound and np.abs(weight).max() > 0


@pytest.mark.parametrize(
    "fwd, match",
    [
        ({"attn_mask": np.zeros((2, 3))}, "2D attn_mask"),
        ({"attn_mask": np.zeros((3, 3, 3))}, "3D attn_mask"),
        ({"attn_mask": np.zeros((1, 1, 3, 3))}, "dimension"),
        ({"is_causal": True}, "Need attn_mask"),
        ({"key_padding_mask": np.zeros((2, 4), bool)}, "key_padding_mask"),
    ],
)
def test_mha_bad_input_raises_like_torch(fwd: dict[str, Any], match: str) -> None:
    theirs, ours = _pair({"embed_dim": 4, "num_heads": 2}, np.float64)
    x = np.zeros((3, 2, 4))
    with pytest.raises(RuntimeError, match=match):
        ours(x, x, x, **fwd)
    t_fwd = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in fwd.items()}
    with pytest.raises((RuntimeError, AssertionError)):
        theirs(*(torch.from_numpy(x),) * 3, **t_fwd)


def test_mha_bad_construction_and_dropout() -> None:
    with pytest.raises(ValueError, match="divisible"):
        MultiheadAttention(5, 2)
    with pytest.raises(AssertionError):
        torch.nn.MultiheadAttention(5, 2)
    with pytest.raises(ValueError, match="MultiheadAttention"):
        MultiheadAttention(4, 2, dropout=1.5)
    module = MultiheadAttention(4, 2, dropout=0.1)
    x = np.zeros((3, 4), np.float32)
    module.mask = np.ones((2, 3), bool)  # not broadcastable to (N, H, L, S) = (1, 2, 3, 3)
    with pytest.raises(ValueError, match="dropout_mask"):
        module(x, x, x)
    with pytest.raises(RuntimeError, match="query"):
        module(np.zeros((3, 5), np.float32), x, x)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_dropout_with_imposed_mask(need_weights: bool, monkeypatch: Any) -> None:
    """Training dropout on the probabilities: torch's weights path calls F.dropout, which is
    replaced here by the same imposed keep-mask; the SDPA path is checked by gradcheck."""
    cfg = {"embed_dim": 4, "num_heads": 2, "dropout": 0.4, "add_bias_kv": True}
    theirs, ours = _pair(cfg, np.float64)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 2, 4))
    keep = rng.random((2, 2, 3, 4)) >= 0.4  # (N, H, L, S + 1)
    ours.mask = keep
    out, w = ours(x, x, x, need_weights=need_weights)
    assert ours.mask is None and np.array_equal(ours.last_mask, keep)
    if need_weights:

        def imposed(input: torch.Tensor, p: float, *args: Any, **kwargs: Any) -> torch.Tensor:
            return input * torch.from_numpy(keep).reshape(input.shape) / (1 - p)

        monkeypatch.setattr(TF, "dropout", imposed)
        tx = torch.tensor(x, requires_grad=True)
        t_out, t_w = theirs.train()(tx, tx, tx)
        _close(out, t_out, np.float64, "attn_output")
        _close(w, t_w, np.float64, "attn_weights (after dropout, as torch's)")
        g = rng.standard_normal(out.shape)
        (t_grad,) = torch.autograd.grad(t_out, tx, torch.from_numpy(g))
        _close(sum(ours.backward(g)), t_grad, np.float64, "summed input gradient")
    f, b, params = _params_fn(ours, {"need_weights": need_weights})

    def f_masked(*args: Any) -> np.ndarray:
        ours.mask = keep  # a forward uses the imposed mask once
        return f(*args)

    def b_masked(*args: Any) -> tuple:
        ours.mask = keep
        return b(*args)

    result = gradcheck(f_masked, x, x, x, *params, backward=b_masked, **GRADCHECK)
    assert result.ok, str(result)
