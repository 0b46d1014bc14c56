"""Conv/Linear + BatchNorm fusion (reference.nn.fusion) against torch.nn.utils.fusion.

The fused layer must compute what the eval-mode pair computes (float64, tight), its
weights must be torch's fused weights (float64 and float32, mixed dtypes too), the
originals must stay as they were, and bad pairs must be refused as torch refuses them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.nn as rnn
from harness.compare import compare_arrays, tolerance
from reference.nn import utils
from reference.nn.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}

CONVS = {
    "Conv1d": (rnn.Conv1d, torch.nn.Conv1d, rnn.BatchNorm1d, torch.nn.BatchNorm1d, 1, False),
    "Conv2d": (rnn.Conv2d, torch.nn.Conv2d, rnn.BatchNorm2d, torch.nn.BatchNorm2d, 2, False),
    "ConvTranspose1d": (
        rnn.ConvTranspose1d,
        torch.nn.ConvTranspose1d,
        rnn.BatchNorm1d,
        torch.nn.BatchNorm1d,
        1,
        True,
    ),
    "ConvTranspose2d": (
        rnn.ConvTranspose2d,
        torch.nn.ConvTranspose2d,
        rnn.BatchNorm2d,
        torch.nn.BatchNorm2d,
        2,
        True,
    ),
}


def _torch_twin(module: Any, torch_cls: Any, *args: Any, **kwargs: Any) -> Any:
    """torch's module with the reference module's state (and its dtype), in eval mode."""
    twin = torch_cls(*args, **kwargs)
    state = {k: torch.from_numpy(np.array(v)) for k, v in module.state_dict().items()}
    twin.to(TORCH_DTYPE[np.dtype(next(iter(module.state_dict().values())).dtype)])
    twin.load_state_dict(state)
    return twin.eval()


def _batch_norm(cls: Any, channels: int, rng: np.random.Generator, dtype: Any, affine: bool):
    """A BatchNorm with random running statistics and affine parameters, in eval mode."""
    bn = cls(channels, eps=rng.choice([1e-5, 1e-3, 0.1]), affine=affine, dtype=dtype)
    bn.running_mean[...] = rng.standard_normal(channels)
    bn.running_var[...] = rng.uniform(0.1, 3.0, channels)
    if affine:
        bn.weight.data[...] = rng.standard_normal(channels)
        bn.bias.data[...] = rng.standard_normal(channels)
    return bn.eval()


def _same(name: str, ours: Any, theirs: Any, dtype: Any) -> None:
    c = compare_arrays(name, ours, theirs, tolerance(dtype))
    assert c.ok, str(c)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", list(CONVS))
@given(data=st.data())
def test_fused_conv_computes_conv_then_bn_and_has_torchs_weights(dtype, kind, data):
    ours_cls, torch_cls, bn_cls, torch_bn_cls, nd, transpose = CONVS[kind]
    rng = draw_rng(data.draw)
    cin, cout = data.draw(st.integers(1, 3), label="in"), data.draw(st.integers(1, 4), label="out")
    k = data.draw(st.integers(1, 3), label="kernel")
    bias, affine = data.draw(st.booleans(), label="bias"), data.draw(st.booleans(), label="affine")
    args = (cin, cout, k)
    conv = ours_cls(*args, bias=bias, dtype=dtype, rng=rng).eval()
    bn = _batch_norm(bn_cls, cout, rng, dtype, affine)
    before = {**conv.state_dict(), **{f"bn.{k}": v for k, v in bn.state_dict().items()}}
    fused = utils.fuse_conv_bn_eval(conv, bn, transpose=transpose)
    assert type(fused) is type(conv) and fused is not conv
    assert list(fused.state_dict()) == ["weight", "bias"]
    after = {**conv.state_dict(), **{f"bn.{k}": v for k, v in bn.state_dict().items()}}
    assert before.keys() == after.keys()
    for key in before:  # the originals are untouched
        np.testing.assert_array_equal(before[key], after[key])

    theirs = torch.nn.utils.fuse_conv_bn_eval(
        _torch_twin(conv, torch_cls, *args, bias=bias),
        _torch_twin(bn, torch_bn_cls, cout, affine=affine, eps=bn.eps),
        transpose=transpose,
    )
    _same("fused weight", fused.weight.data, theirs.weight, dtype)
    _same("fused bias", fused.bias.data, theirs.bias, dtype)
    assert fused.weight.dtype == fused.bias.dtype == dtype
    if dtype == np.float64:
        x = rng.standard_normal((2, cin, *([4] * nd)))
        _same("fused(x) vs bn(conv(x))", fused(x), bn(conv(x)), np.float64)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(data=st.data())
def test_fused_linear_computes_linear_then_bn_and_has_torchs_weights(dtype, data):
    rng = draw_rng(data.draw)
    fin, fout = data.draw(st.integers(1, 4), label="in"), data.draw(st.integers(1, 5), label="out")
    bias = data.draw(st.booleans(), label="bias")
    linear = rnn.Linear(fin, fout, bias=bias, dtype=dtype, rng=rng).eval()
    bn = _batch_norm(rnn.BatchNorm1d, fout, rng, dtype, True)
    fused = utils.fuse_linear_bn_eval(linear, bn)
    assert list(fused.state_dict()) == ["weight", "bias"] and fused is not linear
    theirs = torch.nn.utils.fuse_linear_bn_eval(
        _torch_twin(linear, torch.nn.Linear, fin, fout, bias=bias),
        _torch_twin(bn, torch.nn.BatchNorm1d, fout, eps=bn.eps),
    )
    _same("fused weight", fused.weight.data, theirs.weight, dtype)
    _same("fused bias", fused.bias.data, theirs.bias, dtype)
    if dtype == np.float64:
        x = rng.standard_normal((3, fin))
        _same("fused(x) vs bn(linear(x))", fused(x), bn(linear(x)), np.float64)


def test_a_one_feature_batch_norm_broadcasts_over_the_linears_outputs():
    rng = np.random.default_rng(0)
    linear = rnn.Linear(3, 4, dtype=np.float64, rng=rng).eval()
    bn = _batch_norm(rnn.BatchNorm1d, 1, rng, np.float64, True)
    fused = utils.fuse_linear_bn_eval(linear, bn)
    theirs = torch.nn.utils.fuse_linear_bn_eval(
        _torch_twin(linear, torch.nn.Linear, 3, 4),
        _torch_twin(bn, torch.nn.BatchNorm1d, 1, eps=bn.eps),
    )
    _same("weight", fused.weight.data, theirs.weight, np.float64)
    _same("bias", fused.bias.data, theirs.bias, np.float64)


@given(data=st.data(), transpose=st.booleans())
def test_the_weight_functions_match_torchs_with_missing_pieces_and_mixed_dtypes(data, transpose):
    rng = draw_rng(data.draw)
    w_dtype, bn_dtype = (data.draw(st.sampled_from(DTYPES), label=n) for n in ("w", "bn"))
    channels = 3
    w = rng.standard_normal((2, 3, 2) if transpose else (3, 2, 2)).astype(w_dtype)
    b = data.draw(st.sampled_from([None, rng.standard_normal(channels).astype(w_dtype)]))
    rm = rng.standard_normal(channels).astype(bn_dtype)
    rv = rng.uniform(0.1, 2, channels).astype(bn_dtype)
    gamma = data.draw(st.sampled_from([None, rng.standard_normal(channels).astype(bn_dtype)]))
    beta = data.draw(st.sampled_from([None, rng.standard_normal(channels).astype(bn_dtype)]))

    def t(x):
        return None if x is None else torch.from_numpy(x)

    ours = fuse_conv_bn_weights(w, b, rm, rv, 1e-5, gamma, beta, transpose)
    theirs = torch.nn.utils.fuse_conv_bn_weights(t(w), t(b), t(rm), t(rv), 1e-5, t(gamma),
                                                 t(beta), transpose)  # fmt: skip
    for name, a, e in zip(("weight", "bias"), ours, theirs):
        assert np.dtype(str(e.dtype).replace("torch.", "")) == a.dtype, name
        _same(name, a.data, e, np.float32 if np.float32 in (w_dtype, bn_dtype) else np.float64)
    if gamma is not None and beta is not None and not transpose:
        lw = w[:, :, 0]  # (3, 2): a Linear weight
        ours = fuse_linear_bn_weights(lw, b, rm, rv, 1e-5, gamma, beta)
        theirs = torch.nn.utils.fuse_linear_bn_weights(t(lw), t(b), t(rm), t(rv), 1e-5,
                                                       t(gamma), t(beta))  # fmt: skip
        for name, a, e in zip(("linear weight", "linear bias"), ours, theirs):
            assert np.dtype(str(e.dtype).replace("torch.", "")) == a.dtype, name
            _same(name, a.data, e, np.float32 if np.float32 in (w_dtype, bn_dtype) else np.float64)


# -- refusals, as torch's --------------------------------------------------------------


def _pair(training: bool = False, track: bool = True, out: int = 3, bn_features: int = 3):
    conv = rnn.Conv2d(2, out, 1, dtype=np.float64, rng=0)
    bn = rnn.BatchNorm2d(bn_features, track_running_stats=track, dtype=np.float64)
    tconv = _torch_twin(conv, torch.nn.Conv2d, 2, out, 1)
    tbn = torch.nn.BatchNorm2d(bn_features, track_running_stats=track).double()
    for module in (conv, bn, tconv, tbn):
        module.train(training)
    return (conv, bn), (tconv, tbn)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(training=True), AssertionError, "Fusion only for eval!"),
        (dict(track=False), AssertionError, "running_mean and bn.running_var must not be None"),
        (dict(bn_features=2), RuntimeError, ""),
    ],
)
def test_conv_fusion_refuses_like_torch(kwargs, error, match):
    ours, theirs = _pair(**kwargs)
    with pytest.raises(error, match=match or None):
        utils.fuse_conv_bn_eval(*ours)
    with pytest.raises(error, match=match or None):
        torch.nn.utils.fuse_conv_bn_eval(*theirs)


def test_transposed_fusion_with_groups_refuses_like_torch():
    """A grouped transposed conv's dim 1 is out_channels / groups: torch cannot fuse it."""
    conv = rnn.ConvTranspose2d(4, 4, 1, groups=2, dtype=np.float64, rng=0).eval()
    bn = _batch_norm(rnn.BatchNorm2d, 4, np.random.default_rng(1), np.float64, True)
    with pytest.raises(RuntimeError, match="channel counts do not fit"):
        utils.fuse_conv_bn_eval(conv, bn, transpose=True)
    tconv = _torch_twin(conv, torch.nn.ConvTranspose2d, 4, 4, 1, groups=2)
    tbn = _torch_twin(bn, torch.nn.BatchNorm2d, 4, eps=bn.eps)
    with pytest.raises(RuntimeError):
        torch.nn.utils.fuse_conv_bn_eval(tconv, tbn, transpose=True)


def test_linear_fusion_refuses_like_torch():
    linear = rnn.Linear(2, 3, dtype=np.float64, rng=0).eval()
    tlinear = _torch_twin(linear, torch.nn.Linear, 2, 3)
    cases = [
        (rnn.BatchNorm1d(2, dtype=np.float64).eval(), torch.nn.BatchNorm1d(2).double().eval(),
         AssertionError, "linear.out_features == bn.num_features"),
        (rnn.BatchNorm1d(3, dtype=np.float64), torch.nn.BatchNorm1d(3).double(),
         AssertionError, "Fusion only for eval!"),
        (rnn.BatchNorm1d(3, affine=False, dtype=np.float64).eval(),
         torch.nn.BatchNorm1d(3, affine=False).double().eval(), TypeError, None),
    ]  # fmt: skip
    for bn, tbn, error, match in cases:
        with pytest.raises(error, match=match):
            utils.fuse_linear_bn_eval(linear, bn)
        with pytest.raises(error, match=match):
            torch.nn.utils.fuse_linear_bn_eval(tlinear, tbn)


def test_re_exported_from_utils():
    from reference.nn import fusion

    for name in fusion.__all__:
        assert getattr(utils, name) is getattr(fusion, name) and name in utils.__all__
