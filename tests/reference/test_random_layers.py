"""RReLU, AlphaDropout, FeatureAlphaDropout: gradcheck with the random draws fixed, torch's
draws read by the extractors of ``harness/dropout_masks.py`` and imposed on the reference
(forward and backward against torch's real kernels, float64 and float32), evaluation
modes, the kink of RReLU at 0, the SELU constants of alpha dropout, and bad input.

Fractional max pooling, the third random layer, is in ``test_fractional_pool.py``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import GRADCHECK
from harness.dropout_masks import (
    Reseeded,
    torch_alpha_dropout_mask,
    torch_dropout_mask,
    torch_rrelu_noise,
)
from harness.twin import assert_twin
from reference.functional.activation import SELU_ALPHA, SELU_SCALE
from reference.functional.alpha_dropout import ALPHA
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

DTYPE_IDS = lambda d: np.dtype(d).name  # noqa: E731
SHAPES = [(), (5,), (3, 4), (2, 3, 4)]  # 0-d and unbatched included: any shape


@st.composite
def bounds(draw: Any) -> tuple[float, float]:
    """``lower <= upper``, negative slopes and ``lower == upper`` included (torch takes them)."""
    lower = draw(st.sampled_from([0.0, 0.125, 0.1, -0.5, 0.3]))
    return lower, lower + draw(st.sampled_from([0.0, 1e-7, 0.2, 1.0 / 3, 1.2]))


@st.composite
def rrelu_inputs(draw: Any, away_from_zero: bool = False) -> np.ndarray:
    """Standard normal, with exact zeros (+0 and -0) sprinkled in unless ``away_from_zero``."""
    rng = draw_rng(draw)
    x = rng.standard_normal(draw(st.sampled_from(SHAPES), label="shape"))
    if away_from_zero:
        return np.where(np.abs(x) < 0.05, 0.5, x)  # central differences stay on one side
    zeros = rng.random(x.shape) < 0.2
    return np.where(zeros, np.where(rng.random(x.shape) < 0.5, 0.0, -0.0), x)


# -- RReLU -----------------------------------------------------------------------------------


@given(x=rrelu_inputs(away_from_zero=True), lu=bounds(), training=st.booleans(),
       seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_rrelu_backward_passes_gradcheck_with_fixed_noise(
    x: np.ndarray, lu: tuple, training: bool, seed: int
) -> None:
    noise = F.rrelu_noise(x, *lu, rng=seed)
    result = gradcheck(
        lambda x: F.rrelu(x, *lu, training, noise=noise),
        x,
        backward=lambda g, x: F.rrelu_backward(g, x, *lu, training, noise=noise),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@given(x=rrelu_inputs(), lu=bounds(), seed=st.integers(0, 2**31 - 1), training=st.booleans())
def test_rrelu_module_with_torchs_noise_matches_torch(
    dtype: Any, device: str, x: np.ndarray, lu: tuple, seed: int, training: bool
) -> None:
    """Training: the noise read from torch's real module on the real input, imposed; the
    re-seeded torch module draws the same slopes. Evaluation: the mean slope, exactly."""
    x = x.astype(dtype)
    twin = torch.nn.RReLU(*lu)
    module = rnn.RReLU(*lu, rng=0).train(training)
    if training:
        noise = torch_rrelu_noise(twin, torch.tensor(x, device=device), seed)
        assert noise.shape == x.shape and noise.dtype == dtype
        module.noise = noise
    assert_twin(module, Reseeded(twin, seed), [x], dtype=dtype, device=device)
    assert module.noise is None  # used once, then cleared
    if training:
        np.testing.assert_array_equal(module.last_noise, noise)
    else:
        assert module.last_noise is None


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rrelu_functional_with_torchs_noise_is_bitwise_torchs(dtype: Any) -> None:
    """The float32 products round as torch's: the outputs are identical, not just close."""
    x = np.random.default_rng(3).standard_normal((6, 7)).astype(dtype)
    noise = torch_rrelu_noise(torch.nn.RReLU(0.1, 0.3), x, 21)
    torch.manual_seed(21)
    expected = torch.nn.functional.rrelu(torch.tensor(x), 0.1, 0.3, training=True).numpy()
    np.testing.assert_array_equal(F.rrelu(x, 0.1, 0.3, True, noise=noise), expected)
    evaluated = torch.nn.functional.rrelu(torch.tensor(x), 0.1, 0.3, training=False).numpy()
    np.testing.assert_array_equal(F.rrelu(x, 0.1, 0.3), evaluated)


@pytest.mark.parametrize("training", [True, False])
def test_rrelu_at_zero_nan_and_inf_as_torch(training: bool) -> None:
    """torch draws a slope at x = +-0 too (x <= 0), so the training gradient there is that
    slope; evaluation uses the mean slope at 0 and at NaN; NaN and +inf keep slope 1 in
    training. Compared with torch's gradient, element by element."""
    x = np.array([0.0, -0.0, -2.0, 3.0, np.nan, -np.inf, np.inf, 0.0])
    twin = torch.nn.RReLU(0.1, 0.3).train(training)
    module = rnn.RReLU(0.1, 0.3).train(training)
    if training:
        module.noise = torch_rrelu_noise(twin, x, 4)
    g = np.random.default_rng(0).standard_normal(x.shape)
    ours, our_grad = module(x), module.backward(g)
    tx = torch.tensor(x, requires_grad=True)
    Reseeded(twin, 4)(tx).backward(torch.tensor(g))
    np.testing.assert_array_equal(our_grad, tx.grad.numpy())
    np.testing.assert_array_equal(ours, Reseeded(twin, 4)(torch.tensor(x)).numpy())
    slope = module.last_noise if training else np.full(x.shape, 0.2)
    np.testing.assert_array_equal(our_grad[[0, 1]], g[[0, 1]] * slope[[0, 1]])
    assert np.signbit(ours[1]) and not np.signbit(ours[0])  # -0 * a is -0
    if training:
        assert 0.1 <= module.last_noise[0] <= 0.3 and module.last_noise[0] != module.last_noise[1]
        np.testing.assert_array_equal(module.last_noise[[3, 4, 6]], 1.0)
    else:
        assert our_grad[4] == g[4] * 0.2


def test_the_rrelu_draw_depends_on_the_input_signs_and_the_helper_reads_it() -> None:
    """Torch draws only where x <= 0, in order: the same seed gives the k-th non-positive
    element the k-th slope, whatever the positive ones in between."""
    a = np.array([-1.0, 2.0, -3.0, -4.0])
    b = np.array([-1.0, -2.0, 3.0, -4.0])
    na, nb = (torch_rrelu_noise(torch.nn.RReLU(), x, 5) for x in (a, b))
    np.testing.assert_array_equal(na[[0, 2, 3]], nb[[0, 1, 3]])
    assert na[1] == nb[2] == 1
    inplace = torch.nn.RReLU(inplace=True).eval()
    np.testing.assert_array_equal(torch_rrelu_noise(inplace, a, 5), na)
    assert not inplace.training  # its mode is restored
    with pytest.raises(RuntimeError, match="does not compute input \\* noise"):
        torch_rrelu_noise(torch.nn.Tanh(), a, 5)


@given(lu=bounds(), seed=st.integers(0, 2**32 - 1))
def test_rrelu_own_noise_is_uniform_on_the_bounds_where_x_is_not_positive(
    lu: tuple, seed: int
) -> None:
    x = np.random.default_rng(seed).standard_normal(2000)
    x[:10] = 0.0
    noise = F.rrelu_noise(x, *lu, rng=seed)
    lower, upper = lu
    drawn = noise[x <= 0]
    assert ((drawn >= lower) & (drawn <= upper)).all()
    np.testing.assert_array_equal(noise[x > 0], 1.0)
    if upper - lower > 0.1:  # mean within 5 standard deviations of (lower + upper) / 2
        sd = (upper - lower) / math.sqrt(12 * drawn.size)
        assert abs(drawn.mean() - (lower + upper) / 2) < 5 * sd
    np.testing.assert_array_equal(F.rrelu_noise(x, *lu, rng=seed), noise)  # a seed reproduces
    module = rnn.RReLU(*lu, rng=seed)
    np.testing.assert_array_equal(module(x), F.rrelu(x, *lu, True, noise=noise))


def test_rrelu_repr_state_and_dtype_like_torch() -> None:
    for args in [(), (0.1, 0.3), (0.1, 0.3, True)]:
        assert repr(rnn.RReLU(*args)) == repr(torch.nn.RReLU(*args))
        assert rnn.RReLU(*args).state_dict() == {}
    x = np.array([-1.0, 2.0], dtype=np.float32)
    module = rnn.RReLU(rng=0)
    assert module(x).dtype == np.float32 and module.backward(x).dtype == np.float32
    assert module.last_noise.dtype == np.float32


# -- AlphaDropout, FeatureAlphaDropout ----------------------------------------------------------

ALPHA_KINDS = {
    "AlphaDropout": ([(), (5,), (3, 4), (2, 3, 4)], False),
    "FeatureAlphaDropout": ([(3, 4), (2, 3, 4), (2, 3, 2, 2), (3, 2, 2, 2)], True),
}
ALPHA_CASES = [
    pytest.param(name, shape, id=f"{name}-{shape}")
    for name, (shapes, _) in ALPHA_KINDS.items()
    for shape in shapes
]
P_VALUES = [0.0, 0.2, 0.5, 0.9, 1.0]


def _functionals(name: str) -> tuple[Callable, Callable]:
    if name == "AlphaDropout":
        return F.alpha_dropout, F.alpha_dropout_backward
    return F.feature_alpha_dropout, F.feature_alpha_dropout_backward


def _normal(shape: tuple, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize(("name", "shape"), ALPHA_CASES)
@given(p=st.sampled_from(P_VALUES), seed=st.integers(0, 2**32 - 1), training=st.booleans())
def test_alpha_dropout_backward_passes_gradcheck_with_a_fixed_mask(
    name: str, shape: tuple, p: float, seed: int, training: bool
) -> None:
    forward, backward = _functionals(name)
    mask_shape = F.alpha_dropout_mask_shape(shape, ALPHA_KINDS[name][1])
    mask = F.dropout_mask(mask_shape, p, seed)
    result = gradcheck(
        lambda x: forward(x, p, training, mask=mask),
        _normal(shape, seed),
        backward=lambda g, x: backward(g, x, p, training, mask=mask),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize(("name", "shape"), ALPHA_CASES)
@given(p=st.sampled_from(P_VALUES), seed=st.integers(0, 2**31 - 1), training=st.booleans())
def test_alpha_dropout_module_with_torchs_mask_matches_torch(
    name: str, shape: tuple, dtype: Any, device: str, p: float, seed: int, training: bool
) -> None:
    """torch's mask read on ones, imposed; the re-seeded torch forward on the real input
    drops the same units (evaluation: the identity on both sides)."""
    twin = getattr(torch.nn, name)(p)
    mask = torch_alpha_dropout_mask(twin, shape, dtype, device, seed)
    assert mask.shape == F.alpha_dropout_mask_shape(shape, ALPHA_KINDS[name][1])
    module = getattr(rnn, name)(p, rng=0).train(training)
    module.mask = mask
    assert_twin(module, Reseeded(twin, seed), [_normal(shape, seed)], dtype=dtype, device=device)
    if training:
        assert module.mask is None  # used once, then cleared
        draws = 0 < p < 1 and math.prod(shape) > 0
        assert (module.last_mask is not None) == draws
    else:
        assert module.last_mask is None and module.mask is mask  # kept for a training forward


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("p", [0.1, 0.3, 0.77])
def test_alpha_dropout_is_bitwise_torchs_with_infinities(dtype: Any, p: float) -> None:
    """torch's steps in the input's dtype, b = (M - 1) alpha a + alpha a p first: the same
    bits (a dropped inf is inf * 0 + b = NaN in both)."""
    x = (_normal(3000, 1) * 3).astype(dtype)
    x[:4] = [np.inf, -np.inf, np.nan, 0.0]
    mask = torch_alpha_dropout_mask(torch.nn.AlphaDropout(p), x.shape, dtype, "cpu", 8)
    torch.manual_seed(8)
    expected = torch.nn.functional.alpha_dropout(torch.tensor(x), p, True).numpy()
    np.testing.assert_array_equal(F.alpha_dropout(x, p, True, mask=mask), expected)


def test_alpha_dropout_constants_are_selus_and_keep_mean_and_variance() -> None:
    """torch's alpha is lambda * alpha of SELU (to one ulp: torch's literal), and the affine
    map brings a standard normal input back to mean 0, variance 1 after dropping."""
    assert math.isclose(ALPHA, SELU_SCALE * SELU_ALPHA, rel_tol=2**-52)
    x = _normal(400_000, 2)
    for p in [0.1, 0.5, 0.8]:
        y = F.alpha_dropout(x, p, True, rng=3)
        assert abs(y.mean()) < 5 / math.sqrt(x.size) and abs(y.var() - 1) < 0.02
        kept = F.alpha_dropout(np.zeros(1), p, True, mask=np.ones(1, bool))
        dropped = F.alpha_dropout(np.zeros(1), p, True, mask=np.zeros(1, bool))
        a = ((1 - p) * (1 + p * ALPHA**2)) ** -0.5  # the paper's a, b with alpha' = -ALPHA
        np.testing.assert_allclose(kept, a * ALPHA * p, rtol=1e-15)  # b
        np.testing.assert_allclose(dropped, -a * ALPHA + a * ALPHA * p, rtol=1e-15)


@pytest.mark.parametrize("name", list(ALPHA_KINDS))
def test_alpha_dropout_eval_p0_p1_and_empty_as_torch(name: str) -> None:
    forward, backward = _functionals(name)
    x = _normal((2, 3, 2))
    g = _normal(x.shape, 1)
    np.testing.assert_array_equal(forward(x, 0.7), x)  # training=False: torch's default
    np.testing.assert_array_equal(forward(x, 0.0, True, rng=0), x)
    np.testing.assert_array_equal(backward(g, x, 0.0, True), g)
    np.testing.assert_array_equal(forward(x, 1.0, True), 0 * x)
    np.testing.assert_array_equal(backward(g, x, 1.0, True), 0 * g)
    torch_fn = getattr(torch.nn.functional, name.replace("AlphaDropout", "alpha_dropout")
                       .replace("Feature", "feature_").lower())  # fmt: skip
    np.testing.assert_array_equal(torch_fn(torch.tensor(x), 1.0, True).numpy(), 0 * x)
    module = getattr(rnn, name)(0.7).eval()
    np.testing.assert_array_equal(module(x), x)
    np.testing.assert_array_equal(module.backward(g), g)
    empty = np.ones((0, 3))
    assert forward(empty, 0.5, True, rng=0).shape == (0, 3)


def test_feature_alpha_dropout_takes_dim_0_as_the_batch_as_torch() -> None:
    """An unbatched (C, D, H, W) input gets one bit per (c, d), as torch's make_feature_noise."""
    twin = torch.nn.FeatureAlphaDropout(0.5)
    mask = torch_alpha_dropout_mask(twin, (3, 4, 2, 2), np.float64, "cpu", 1)
    assert mask.shape == (3, 4, 1, 1)
    functional = functools.partial(torch.nn.functional.feature_alpha_dropout, p=0.5)
    np.testing.assert_array_equal(
        torch_alpha_dropout_mask(functional, (3, 4, 2, 2), np.float64, "cpu", 1), mask
    )


def test_alpha_dropout_own_masks_keep_1_minus_p_within_a_binomial_bound() -> None:
    for p in [0.2, 0.6]:
        module = rnn.AlphaDropout(p, rng=11)
        module(np.ones((50, 80)))
        n = module.last_mask.size
        assert abs(module.last_mask.mean() - (1 - p)) <= 5 * math.sqrt(p * (1 - p) / n)
        module = rnn.FeatureAlphaDropout(p, rng=11)
        y = module(np.ones((40, 100, 3)))
        assert module.last_mask.shape == (40, 100, 1)
        np.testing.assert_array_equal(y > 0, np.broadcast_to(module.last_mask, y.shape))


def test_alpha_dropout_repr_state_and_dtype_like_torch() -> None:
    for name in ALPHA_KINDS:
        for args in [(), (0.3,), (0.3, True)]:
            assert repr(getattr(rnn, name)(*args)) == repr(getattr(torch.nn, name)(*args))
        assert getattr(rnn, name)().state_dict() == {}
        x = np.ones((2, 3, 4), dtype=np.float32)
        module = getattr(rnn, name)(0.3, rng=0)
        assert module(x).dtype == np.float32 and module.backward(x).dtype == np.float32


def test_the_mask_helpers_refuse_each_others_layers() -> None:
    with pytest.raises(TypeError, match="is not alpha dropout"):
        torch_alpha_dropout_mask(torch.nn.Dropout(0.5), (2, 3), np.float64, "cpu", 0)
    with pytest.raises(TypeError, match="cannot tell the dropout kind"):
        torch_dropout_mask(torch.nn.FeatureAlphaDropout(0.5), (2, 3), np.float64, "cpu", 0)
    module = torch.nn.AlphaDropout(0.5).eval()
    torch_alpha_dropout_mask(module, (2, 3), np.float32, "cpu", 0)
    assert not module.training  # its mode is restored


# -- bad input ----------------------------------------------------------------------------------

ERRORS = [
    (lambda: rnn.RReLU(0.4, 0.1), RuntimeError, "Lower bound should be less than or equal"),
    (lambda: F.rrelu(np.ones(3), 0.4, 0.1), RuntimeError, "rrelu: Lower bound"),
    (lambda: F.rrelu(np.ones(3), 0.1, 0.3, True, noise=np.ones(4)), ValueError,
     r"noise must have the input's shape \(3,\), got \(4,\)"),
    (lambda: F.rrelu_backward(np.ones(3), np.ones(3), 0.1, 0.3, True), ValueError,
     "training needs the per-element slopes"),
    (lambda: F.rrelu(np.ones(3, dtype=np.int64)), TypeError, "floating"),
    (lambda: rnn.RReLU("a"), TypeError, "lower must be a number"),
    (lambda: rnn.AlphaDropout(-0.1), ValueError, r"between 0 and 1, but got -0.1"),
    (lambda: rnn.FeatureAlphaDropout(1.5), ValueError, r"between 0 and 1, but got 1.5"),
    (lambda: F.alpha_dropout(np.ones(3), 2.0, True), ValueError, "between 0 and 1"),
    (lambda: F.feature_alpha_dropout(np.ones(3), 0.5, True), RuntimeError,
     r"Feature dropout requires at least 2 dimensions in the input, got shape \(3,\)"),
    (lambda: F.alpha_dropout(np.ones((2, 3)), 0.5, True, mask=np.ones((2, 3))), TypeError,
     "must be a bool array"),
    (lambda: F.feature_alpha_dropout(np.ones((2, 3, 4)), 0.5, True,
                                     mask=np.ones((2, 3, 4), bool)),
     ValueError, r"does not broadcast to the keep-mask shape \(2, 3, 1\)"),
    (lambda: F.alpha_dropout_backward(np.ones(3), np.ones(3), 0.5, True), ValueError,
     "needs the keep-mask the forward used"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "error", "message"), ERRORS, ids=[m for *_, m in ERRORS])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_torch_refuses_the_same() -> None:
    with pytest.raises(RuntimeError, match="Lower bound should be less than or equal"):
        torch.nn.RReLU(0.4, 0.1)(torch.ones(3))
    with pytest.raises(ValueError, match="between 0 and 1"):
        torch.nn.AlphaDropout(-0.1)
    with pytest.raises(RuntimeError, match="Feature dropout requires at least 2 dimensions"):
        torch.nn.functional.feature_alpha_dropout(torch.ones(3), 0.5, True)
    with pytest.raises(RuntimeError, match="noise tensor shape must match"):
        torch.ops.aten.rrelu_with_noise(torch.ones(3), torch.ones(4), 0.1, 0.3, True)


def test_an_imposed_draw_of_the_wrong_shape_is_refused_and_kept() -> None:
    module = rnn.RReLU()
    module.noise = np.ones(4)
    with pytest.raises(ValueError, match="noise must have the input's shape"):
        module(np.ones(3))
    assert module.noise is not None
    module = rnn.FeatureAlphaDropout(0.5)
    module.mask = np.ones((2, 3, 4), dtype=bool)
    with pytest.raises(ValueError, match="does not broadcast"):
        module(np.ones((2, 3, 4)))
    assert module.mask is not None


def test_backward_before_forward_and_wrong_gradient_shape() -> None:
    for module in [rnn.RReLU(), rnn.AlphaDropout(0.5)]:
        with pytest.raises(RuntimeError, match="before forward"):
            module.backward(np.ones((2, 3)))
        module(np.ones((2, 3)))
        with pytest.raises(ValueError, match=r"grad_output must have the output's shape"):
            module.backward(np.ones((3, 2)))
