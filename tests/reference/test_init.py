"""reference.nn.init against torch.nn.init.

Values come from another random stream, so what is held to torch exactly is what
does not depend on it: the gains, the fans, and the bounds and standard deviations
each function hands its sampler (recorded on both sides: a recording NumPy Generator
here, torch's ``Tensor.uniform_``/``normal_`` wrapped there); the deterministic fills
(``eye_``, ``dirac_``, ``constant_``); ``orthogonal_`` fed torch's own normal draws;
the errors and warnings. The distributions are checked statistically on large
tensors (a Kolmogorov-Smirnov test with scipy, the mean and standard deviation
within a few standard errors always).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.nn as rnn
from harness.compare import compare_arrays, tolerance
from reference.nn import Parameter
from reference.nn import init as I
from tests.reference.test_normalization import DTYPES
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

try:
    from scipy import stats
except ImportError:  # pragma: no cover - the moments still run
    stats = None

TORCH_DTYPE = {np.dtype(np.float64): torch.float64, np.dtype(np.float32): torch.float32}
NONLINEARITIES = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid", "tanh", "relu",
                  "leaky_relu", "selu"]  # fmt: skip


class RecordingGenerator(np.random.Generator):
    """A NumPy Generator that notes the bounds and scales it is asked to draw with."""

    def __init__(self, seed: int = 0):
        super().__init__(np.random.PCG64(seed))
        self.calls: list[tuple] = []

    def uniform(self, low=0.0, high=1.0, size=None):
        self.calls.append(("uniform", low, high))
        return super().uniform(low, high, size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        self.calls.append(("normal", loc, scale))
        return super().normal(loc, scale, size)


@contextlib.contextmanager
def torch_draws() -> Iterator[list[tuple]]:
    """The ``(kind, a, b)`` of every ``uniform_``/``normal_`` torch's init makes."""
    calls: list[tuple] = []
    real_uniform, real_normal = torch.Tensor.uniform_, torch.Tensor.normal_

    def uniform_(self, a=0.0, b=1.0, *, generator=None):
        calls.append(("uniform", a, b))
        return real_uniform(self, a, b, generator=generator)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        calls.append(("normal", mean, std))
        return real_normal(self, mean, std, generator=generator)

    with mock.patch.object(torch.Tensor, "uniform_", uniform_):
        with mock.patch.object(torch.Tensor, "normal_", normal_):
            yield calls


def _both(shape: tuple[int, ...], ours: Callable, theirs: Callable, dtype: Any = np.float64):
    """Run ``ours(array, rng)`` and ``theirs(tensor)``; return both arrays and both calls."""
    rng = RecordingGenerator()
    array = np.zeros(shape, dtype=dtype)
    out = ours(array, rng)
    assert out is array  # in place, returned
    tensor = torch.zeros(shape, dtype=TORCH_DTYPE[np.dtype(dtype)])
    with torch_draws() as calls:
        theirs(tensor)
    return array, tensor.numpy(), rng.calls, calls


# -- gains, fans, and the bounds handed to the sampler ---------------------------------


@pytest.mark.parametrize("nonlinearity", NONLINEARITIES)
@pytest.mark.parametrize("param", [None, 0, 0.2, 3, -0.5, np.float64(0.1)])
def test_calculate_gain_is_torchs(nonlinearity, param):
    ours = I.calculate_gain(nonlinearity, param)
    theirs = torch.nn.init.calculate_gain(nonlinearity, param)
    assert ours == theirs and type(ours) is type(theirs)


@pytest.mark.parametrize("param", [True, "0.1", np.float32(0.1), [0.1]])
def test_calculate_gain_refuses_a_slope_that_is_not_a_number(param):
    for fn in (I.calculate_gain, torch.nn.init.calculate_gain):
        with pytest.raises(ValueError, match="not a valid number"):
            fn("leaky_relu", param)


def test_calculate_gain_values_and_unknown_names():
    assert I.calculate_gain("selu") == 0.75 and I.calculate_gain("tanh") == 5.0 / 3
    assert I.calculate_gain("relu") == math.sqrt(2) and I.calculate_gain("conv3d") == 1
    for fn in (I.calculate_gain, torch.nn.init.calculate_gain):
        with pytest.raises(ValueError, match="Unsupported nonlinearity gelu"):
            fn("gelu")


_SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=5).map(tuple)


@given(shape=_SHAPES)
def test_fans_are_torchs(shape):
    array = np.zeros(shape)
    theirs = torch.nn.init._calculate_fan_in_and_fan_out
    if len(shape) < 2:
        for fn, x in ((I._calculate_fan_in_and_fan_out, array), (theirs, torch.zeros(shape))):
            with pytest.raises(ValueError, match="fewer than 2 dimensions"):
                fn(x)
        return
    expected = theirs(torch.zeros(shape))
    assert I._calculate_fan_in_and_fan_out(array) == expected
    assert I._calculate_fan_in_and_fan_out(Parameter(array)) == expected


_WEIGHT_SHAPES = st.lists(st.integers(1, 6), min_size=2, max_size=5).map(tuple)
_GAINS = st.sampled_from([1.0, 0.5, math.sqrt(2), 5.0 / 3, 3])


@given(shape=_WEIGHT_SHAPES, gain=_GAINS, normal=st.booleans())
def test_xavier_hands_torchs_bound_to_the_sampler(shape, gain, normal):
    name = "xavier_normal_" if normal else "xavier_uniform_"
    _, _, ours, theirs = _both(
        shape,
        lambda x, rng: getattr(I, name)(x, gain, generator=rng),
        lambda t: getattr(torch.nn.init, name)(t, gain),
    )
    assert ours == theirs and len(ours) == 1


@given(
    shape=_WEIGHT_SHAPES,
    a=st.sampled_from([0, 0.01, 0.2, math.sqrt(5), 3]),
    mode=st.sampled_from(["fan_in", "fan_out", "FAN_IN", "Fan_Out"]),
    nonlinearity=st.sampled_from(NONLINEARITIES),
    normal=st.booleans(),
)
def test_kaiming_hands_torchs_bound_to_the_sampler(shape, a, mode, nonlinearity, normal):
    name = "kaiming_normal_" if normal else "kaiming_uniform_"
    _, _, ours, theirs = _both(
        shape,
        lambda x, rng: getattr(I, name)(x, a, mode, nonlinearity, generator=rng),
        lambda t: getattr(torch.nn.init, name)(t, a, mode, nonlinearity),
    )
    assert ours == theirs and len(ours) == 1


@pytest.mark.parametrize("fan_in", [1, 3, 4, 7, 12, 27, 100, 1000])
def test_the_modules_default_bound_is_torchs(fan_in):
    """Linear and Conv draw from ``kaiming_uniform_bound``: torch's kaiming_uniform_(a=sqrt 5)."""
    with torch_draws() as calls:
        torch.nn.init.kaiming_uniform_(torch.zeros(2, fan_in), a=math.sqrt(5))
    assert calls == [("uniform", -I.kaiming_uniform_bound(fan_in), I.kaiming_uniform_bound(fan_in))]
    assert I.bias_bound(fan_in) == 1 / math.sqrt(fan_in)


@given(a=st.floats(-3, 3), width=st.floats(0, 4), mean=st.floats(-2, 2), std=st.floats(0, 3))
def test_uniform_and_normal_draw_with_the_given_parameters(a, width, mean, std):
    rng = RecordingGenerator()
    x = np.zeros((50,))
    assert I.uniform_(x, a, a + width, generator=rng) is x
    assert np.all((x >= a) & (x <= a + width))
    assert I.normal_(x, mean, std, generator=rng) is x
    assert rng.calls == [("uniform", a, a + width), ("normal", mean, std)]


# -- distributions -------------------------------------------------------------------

N = 120_000


def _check_distribution(x: np.ndarray, mean: float, std: float, cdf: Any = None) -> None:
    """Mean and std within 5 standard errors; with scipy, a KS test (p > 1e-3) too."""
    x = x.astype(np.float64).reshape(-1)
    n = x.size
    assert abs(x.mean() - mean) < 5 * std / math.sqrt(n), (x.mean(), mean)
    # the std's standard error, sigma / sqrt(2n), for a normal; uniforms are tighter
    assert abs(x.std() - std) < 5 * std / math.sqrt(2 * n), (x.std(), std)
    if stats is not None and cdf is not None:
        assert stats.kstest(x, cdf).pvalue > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
def test_the_random_fills_have_their_distributions(seed):
    x = np.empty((300, 400))
    bound = math.sqrt(3.0) * math.sqrt(2.0 / 700)
    I.xavier_uniform_(x, generator=seed)
    _check_distribution(x, 0, bound / math.sqrt(3), stats and stats.uniform(-bound, 2 * bound).cdf)
    std = math.sqrt(2) / math.sqrt(400)
    I.kaiming_normal_(x, nonlinearity="relu", generator=seed)
    _check_distribution(x, 0, std, stats and stats.norm(0, std).cdf)
    I.normal_(x, 1.5, 0.25, generator=seed)
    _check_distribution(x, 1.5, 0.25, stats and stats.norm(1.5, 0.25).cdf)
    I.uniform_(x, -1, 3, generator=seed)
    _check_distribution(x, 1, 4 / math.sqrt(12), stats and stats.uniform(-1, 4).cdf)
    assert x.min() >= -1 and x.max() <= 3


def _truncnorm_moments(mean: float, std: float, a: float, b: float) -> tuple[float, float]:
    alpha, beta = (a - mean) / std, (b - mean) / std
    pdf = [math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi) for t in (alpha, beta)]
    z = 0.5 * (math.erf(beta / math.sqrt(2)) - math.erf(alpha / math.sqrt(2)))
    shift = (pdf[0] - pdf[1]) / z
    var = 1 + (alpha * pdf[0] - beta * pdf[1]) / z - shift**2
    return mean + std * shift, std * math.sqrt(var)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    ("mean", "std", "a", "b"),
    [(0.0, 1.0, -2.0, 2.0), (0.3, 0.5, 0.0, 2.0), (0.0, 1.0, 1.0, 3.0), (0.0, 0.5, -0.1, 0.2)],
    ids=["default", "p>0.3", "tail", "narrow"],  # the last two: torch's uniform proposals
)
def test_trunc_normal_is_the_truncated_normal(dtype, mean, std, a, b):
    x = I.trunc_normal_(np.empty(N, dtype=dtype), mean, std, a, b, generator=3)
    assert x.dtype == dtype and x.min() >= dtype(a) and x.max() <= dtype(b)
    m, s = _truncnorm_moments(mean, std, a, b)
    cdf = stats and stats.truncnorm((a - mean) / std, (b - mean) / std, mean, std).cdf
    _check_distribution(x, m, s, cdf)


def test_trunc_normal_warns_and_refuses_like_torch():
    for fn, x in ((I.trunc_normal_, np.empty(4)), (torch.nn.init.trunc_normal_, torch.empty(4))):
        with pytest.warns(UserWarning, match="mean is more than 2 std from"):
            fn(x, mean=5.0, std=1.0, a=-2.0, b=2.0)
        with pytest.raises(ZeroDivisionError):
            fn(x, std=0.0)
        with pytest.raises(RuntimeError, match=r"expects to return a \[from, to\) range"):
            fn(x, a=1.0, b=0.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sparse_zeroes_a_fixed_count_per_column(dtype):
    x = I.sparse_(np.empty((400, 300), dtype=dtype), 0.3, std=0.05, generator=4)
    t = torch.nn.init.sparse_(
        torch.empty((400, 300), dtype=TORCH_DTYPE[np.dtype(dtype)]), 0.3, 0.05
    )
    np.testing.assert_array_equal((x == 0).sum(axis=0), (t == 0).sum(dim=0).numpy())
    assert np.all((x == 0).sum(axis=0) == math.ceil(0.3 * 400))
    rows = [np.flatnonzero(x[:, j] == 0) for j in range(2)]
    assert not np.array_equal(rows[0], rows[1])  # each column its own rows
    _check_distribution(x[x != 0], 0, 0.05, stats and stats.norm(0, 0.05).cdf)


@pytest.mark.parametrize(
    "fill",
    [
        lambda x, g: I.uniform_(x, -1, 2, generator=g),
        lambda x, g: I.normal_(x, generator=g),
        lambda x, g: I.trunc_normal_(x, a=0.5, b=1.0, generator=g),
        lambda x, g: I.xavier_normal_(x, generator=g),
        lambda x, g: I.kaiming_uniform_(x, generator=g),
        lambda x, g: I.orthogonal_(x, generator=g),
        lambda x, g: I.sparse_(x, 0.5, generator=g),
    ],
)
def test_a_generator_or_a_seed_fixes_the_values(fill):
    a, b, c = (fill(np.empty((6, 5)), g) for g in (11, np.random.default_rng(11), 12))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# -- deterministic fills ---------------------------------------------------------------


@given(shape=st.tuples(st.integers(0, 5), st.integers(0, 5)))
def test_eye_is_torchs(shape):
    np.testing.assert_array_equal(
        I.eye_(np.full(shape, 7.0)), torch.nn.init.eye_(torch.full(shape, 7.0))
    )


@given(
    groups=st.integers(1, 3),
    per_group=st.integers(1, 3),
    in_channels=st.integers(1, 4),
    kernel=st.lists(st.integers(1, 4), min_size=1, max_size=3),
)
def test_dirac_is_torchs(groups, per_group, in_channels, kernel):
    shape = (groups * per_group, in_channels, *kernel)
    np.testing.assert_array_equal(
        I.dirac_(np.full(shape, 3.0), groups), torch.nn.init.dirac_(torch.full(shape, 3.0), groups)
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.int64])
def test_constant_ones_zeros_are_torchs(dtype):
    t_dtype = {np.dtype(np.int64): torch.int64, **TORCH_DTYPE}[np.dtype(dtype)]
    for ours, theirs, args in [(I.constant_, torch.nn.init.constant_, (2.7,)),
                               (I.constant_, torch.nn.init.constant_, (-1.5,)),
                               (I.ones_, torch.nn.init.ones_, ()),
                               (I.zeros_, torch.nn.init.zeros_, ())]:  # fmt: skip
        x = ours(np.full((2, 3), 9, dtype=dtype), *args)
        np.testing.assert_array_equal(x, theirs(torch.full((2, 3), 9, dtype=t_dtype), *args))
        assert x.dtype == dtype


def test_a_parameter_and_a_view_are_filled_in_place():
    p = Parameter(np.zeros((4, 3)))
    data = p.data
    assert I.kaiming_uniform_(p, generator=0) is p and p.data is data and data.any()
    w = np.zeros((3, 5))
    I.eye_(w.T)  # the transposed view: (5, 3)
    np.testing.assert_array_equal(w, np.eye(5, 3).T)
    with pytest.raises(TypeError, match="Parameter or a numpy.ndarray"):
        I.ones_([1.0, 2.0])


# -- orthogonal_ ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(shape=st.lists(st.integers(1, 6), min_size=2, max_size=4).map(tuple),
       gain=_GAINS, seed=st.integers(0, 2**32 - 1))  # fmt: skip
def test_orthogonal_is_torchs_on_the_same_normal_draws(dtype, shape, gain, seed):
    """Torch's QR and sign correction, fed the normal matrix we drew: the same matrix."""
    x = I.orthogonal_(np.empty(shape, dtype=dtype), gain, generator=seed)
    rows = shape[0]
    draws = np.random.default_rng(seed).normal(0, 1, (rows, x.size // rows)).astype(dtype)

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        return self.copy_(torch.from_numpy(draws))

    with mock.patch.object(torch.Tensor, "normal_", normal_):
        t = torch.nn.init.orthogonal_(torch.empty(shape, dtype=TORCH_DTYPE[np.dtype(dtype)]), gain)
    assert compare_arrays("orthogonal_", x, t, tolerance(dtype)).ok
    flat = x.reshape(rows, -1).astype(np.float64)  # (rows, cols)
    gram = flat.T @ flat if rows >= flat.shape[1] else flat @ flat.T
    np.testing.assert_allclose(
        gram, gain**2 * np.eye(len(gram)), atol=gain**2 * 100 * np.finfo(dtype).eps
    )


def test_orthogonal_sign_correction_makes_r_positive():
    """Q diag(sign R_ii): Q^T G is then R with a non-negative diagonal (and triangular)."""
    q = I.orthogonal_(np.empty((7, 4)), generator=5)
    g = np.random.default_rng(5).normal(0, 1, (7, 4))
    r = q.T @ g
    np.testing.assert_allclose(np.tril(r, -1), 0, atol=1e-12)
    assert np.all(np.diag(r) > 0)


# -- errors and warnings, as torch's ------------------------------------------------------

ERRORS = [
    ("xavier_uniform_", (3,), {}, ValueError, "fewer than 2 dimensions"),
    ("xavier_normal_", (0, 0), {}, ZeroDivisionError, "division by zero"),
    ("kaiming_normal_", (3, 4), {"mode": "fan_avg"}, ValueError, "Mode fan_avg not supported"),
    ("kaiming_uniform_", (3, 4), {"nonlinearity": "gelu"}, ValueError, "Unsupported"),
    ("kaiming_uniform_", (3, 4), {"a": True}, ValueError, "not a valid number"),
    ("kaiming_uniform_", (2,), {}, ValueError, "fewer than 2 dimensions"),
    ("eye_", (3, 4, 2), {}, ValueError, "Only tensors with 2 dimensions"),
    ("dirac_", (3, 4), {}, ValueError, "Only tensors with 3, 4, or 5 dimensions"),
    ("dirac_", (3, 4, 3), {"groups": 2}, ValueError, "dim 0 must be divisible by groups"),
    ("orthogonal_", (3,), {}, ValueError, "Only tensors with 2 or more dimensions"),
    ("sparse_", (3, 4, 2), {"sparsity": 0.1}, ValueError, "Only tensors with 2 dimensions"),
    ("uniform_", (3,), {"a": 1.0, "b": 0.0}, RuntimeError, r"\[from, to\) range"),
    ("normal_", (3,), {"std": -1.0}, RuntimeError, "normal expects std >= 0.0"),
]


@pytest.mark.parametrize(("name", "shape", "kwargs", "error", "match"), ERRORS)
def test_errors_are_torchs(name, shape, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(I, name)(np.zeros(shape), **kwargs)
    with pytest.raises(error, match=match):
        getattr(torch.nn.init, name)(torch.zeros(shape), **kwargs)


@pytest.mark.parametrize("name", ["uniform_", "normal_", "xavier_uniform_", "trunc_normal_"])
def test_random_fills_refuse_integer_arrays_like_torch(name):
    with pytest.raises(NotImplementedError, match="not implemented for"):
        getattr(I, name)(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(NotImplementedError, match="not implemented for"):
        getattr(torch.nn.init, name)(torch.zeros((2, 3), dtype=torch.int64))


@pytest.mark.parametrize("name", ["kaiming_uniform_", "kaiming_normal_"])
def test_kaiming_leaves_an_empty_tensor_with_torchs_warning(name):
    for fn, x in ((getattr(I, name), np.zeros((0, 3))),
                  (getattr(torch.nn.init, name), torch.zeros((0, 3)))):  # fmt: skip
        with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
            assert fn(x) is x


def test_the_module_defaults_still_use_torchs_bounds():
    layer = rnn.Linear(12, 5, rng=0)
    bound = I.kaiming_uniform_bound(12)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
