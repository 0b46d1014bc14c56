"""Normalization: gradcheck of every functional backward, the functionals and modules
against torch (running statistics included), torch's state_dict and repr, and bad input.

Two tables drive it: ``OPS`` (functional pairs: a hypothesis strategy draws the
input, the affine parameters and the other arguments) and ``MODULES`` (a strategy
draws constructor arguments and an input shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.gradcheck import gradcheck

DTYPES = [np.float64, np.float32]

# Every normalization group the strategies draw holds at least 3 values. With 2, the
# normalized output is +-sigma/sqrt(sigma^2 + eps), nearly +-1 whatever x, so the input
# gradient is pure cancellation (O(eps/sigma^3)): neither torch nor NumPy resolves it
# in float32, and the tolerance (relative to the largest |expected|) cannot either.
# Groups of 1 and 2 values get their own tests below.
MIN_GROUP = 3


def _rng(draw: Any) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def spread_input(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Distinct values at least ~2/size apart, shifted and scaled at random.

    Any two values of a normalization group then differ, so its standard deviation
    is bounded away from 0: central differences stay accurate (their error grows
    like 1/sigma^2) and float32 keeps its digits.
    """
    n = math.prod(shape)
    values = (rng.permutation(n) + rng.uniform(0, 0.5, n)) * (4 / max(n, 1)) - 2
    return values.reshape(shape) * rng.uniform(0.5, 3) + rng.uniform(-3, 3)


def _affine(draw: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> dict:
    """weight and bias, each present or None (drawn), random values."""
    return {
        "weight": rng.uniform(0.5, 2, shape) * rng.choice([-1, 1], shape)
        if draw(st.booleans(), label="weight")
        else None,
        "bias": rng.standard_normal(shape) if draw(st.booleans(), label="bias") else None,
    }


def _running(rng: np.random.Generator, channels: int) -> dict:
    return {
        "running_mean": rng.standard_normal(channels),
        "running_var": rng.uniform(0.5, 2.0, channels),
    }


# -- the functional table ------------------------------------------------------------

Case = tuple[np.ndarray, dict[str, Any]]  # input, every other argument (keywords)


@st.composite
def batch_norm_cases(draw: Any) -> Case:
    rng = _rng(draw)
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="spatial"))
    n = draw(st.integers(1, 3), label="N")
    if n * math.prod(spatial) < MIN_GROUP:
        n = MIN_GROUP
    c = draw(st.integers(1, 3), label="C")
    training = draw(st.booleans(), label="training")
    kwargs = {
        **_affine(draw, rng, (c,)),
        "training": training,
        "momentum": draw(st.sampled_from([0.1, 0.5, 1.0])),
        "eps": draw(st.sampled_from([1e-5, 1e-3])),
    }
    running = _running(rng, c)
    if training and draw(st.booleans(), label="no running stats"):
        running = {"running_mean": None, "running_var": None}
    return spread_input(rng, (n, c) + spatial), {**running, **kwargs}


@st.composite
def instance_norm_cases(draw: Any) -> Case:
    rng = _rng(draw)
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2), label="spatial"))
    if math.prod(spatial) < MIN_GROUP:
        spatial = spatial[:-1] + (MIN_GROUP,)
    n, c = draw(st.integers(1, 3), label="N"), draw(st.integers(1, 3), label="C")
    use_input_stats = draw(st.booleans(), label="use_input_stats")
    running = _running(rng, c)
    if use_input_stats and draw(st.booleans(), label="no running stats"):
        running = {"running_mean": None, "running_var": None}
    kwargs = {
        **running,
        **_affine(draw, rng, (c,)),
        "use_input_stats": use_input_stats,
        "momentum": draw(st.sampled_from([0.1, 0.3])),
        "eps": 1e-5,
    }
    return spread_input(rng, (n, c) + spatial), kwargs


@st.composite
def layer_norm_cases(draw: Any) -> Case:
    rng = _rng(draw)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="leading"))
    normalized = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2), label="norm"))
    if math.prod(normalized) < MIN_GROUP:
        normalized = normalized[:-1] + (MIN_GROUP,)
    shape_arg: Any = normalized[0] if len(normalized) == 1 and draw(st.booleans()) else normalized
    kwargs = {
        "normalized_shape": shape_arg,
        **_affine(draw, rng, normalized),
        "eps": draw(st.sampled_from([1e-5, 1e-3])),
    }
    return spread_input(rng, lead + normalized), kwargs


@st.composite
def group_norm_cases(draw: Any) -> Case:
    rng = _rng(draw)
    groups, per_group = draw(st.integers(1, 3), label="G"), draw(st.integers(1, 2), label="C/G")
    spatial = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="spatial"))
    if per_group * math.prod(spatial) < MIN_GROUP:
        spatial = (MIN_GROUP,)
    n, c = draw(st.integers(1, 2), label="N"), groups * per_group
    kwargs = {"num_groups": groups, **_affine(draw, rng, (c,)), "eps": 1e-5}
    return spread_input(rng, (n, c) + spatial), kwargs


@dataclass(frozen=True)
class Op:
    name: str
    forward: Callable[..., np.ndarray]
    backward: Callable[..., tuple]
    torch_forward: Callable[..., torch.Tensor]
    cases: Callable[[], st.SearchStrategy[Case]]

    def __repr__(self) -> str:
        return self.name


OPS = [
    Op("batch_norm", F.batch_norm, F.batch_norm_backward, TF.batch_norm, batch_norm_cases),
    Op("instance_norm", F.instance_norm, F.instance_norm_backward, TF.instance_norm,
       instance_norm_cases),
    Op("layer_norm", F.layer_norm, F.layer_norm_backward, TF.layer_norm, layer_norm_cases),
    Op("group_norm", F.group_norm, F.group_norm_backward, TF.group_norm, group_norm_cases),
]  # fmt: skip


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_backward_passes_gradcheck(op: Op, data: st.DataObject) -> None:
    """Input, weight and bias gradients against central differences (training and eval)."""
    x, kwargs = data.draw(op.cases(), label="case")
    params = [k for k in ("weight", "bias") if kwargs[k] is not None]
    fixed = {k: v for k, v in kwargs.items() if k not in params}

    def forward(x: np.ndarray, *values: np.ndarray) -> np.ndarray:
        return op.forward(x, **fixed, **dict(zip(params, values)))

    def backward(g: np.ndarray, x: np.ndarray, *values: np.ndarray) -> tuple:
        grad_input, grad_weight, grad_bias = op.backward(g, x, **fixed, **dict(zip(params, values)))
        named = {"weight": grad_weight, "bias": grad_bias}
        return (grad_input, *[named[k] for k in params])

    inputs = [x] + [kwargs[k] for k in params]
    result = gradcheck(forward, *inputs, backward=backward, wrt=range(len(inputs)), **GRADCHECK)
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_functional_matches_torch_and_updates_running_stats_in_place(
    op: Op, dtype: Any, device: str, data: st.DataObject
) -> None:
    x, kwargs = data.draw(op.cases(), label="case")
    x = x.astype(dtype)
    ref_kwargs = {k: v.astype(dtype) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    torch_kwargs = {
        k: torch.tensor(v, device=device) if isinstance(v, np.ndarray) else v
        for k, v in ref_kwargs.items()
    }
    if isinstance(kwargs.get("normalized_shape"), int):  # torch's functional wants a tuple
        torch_kwargs["normalized_shape"] = (kwargs["normalized_shape"],)
    output = op.forward(x.copy(), **ref_kwargs)
    expected = op.torch_forward(torch.tensor(x, device=device), **torch_kwargs)
    tol = tolerance(dtype, device)
    checks = [compare_arrays("output", output, expected, tol)]
    for name in ("running_mean", "running_var"):
        if ref_kwargs.get(name) is not None:  # both were updated in place (or left alone)
            checks.append(compare_arrays(name, ref_kwargs[name], torch_kwargs[name], tol))
    assert all(c.ok for c in checks), "\n".join(map(str, checks))
    assert output.dtype == dtype


def test_groups_of_one_value_normalize_to_exactly_zero() -> None:
    """x_hat = 0 exactly in a group of one value; torch's fused a*x + b leaves rounding
    noise there (~1e-13 * |x| in float64), which is why the comparisons above draw
    groups of at least 2 values (the tolerance scales with the largest |expected|)."""
    x = np.array([[2.58032659], [-2.54795033]])  # N = 2, one channel, one group
    np.testing.assert_array_equal(F.group_norm(x, 1), np.zeros_like(x))
    expected = TF.group_norm(torch.tensor(x), 1).numpy()
    assert np.all(np.abs(expected) < 1e-12 * np.abs(x))
    grad_input, _, _ = F.group_norm_backward(np.ones_like(x), x, 1)
    np.testing.assert_array_equal(grad_input, np.zeros_like(x))


@pytest.mark.parametrize("shape", [(2, 3), (1, 2, 2), (2, 1, 1)])
def test_batch_norm_gradcheck_with_the_smallest_batches(shape: tuple[int, ...]) -> None:
    x = spread_input(np.random.default_rng(0), shape)
    w, b = np.array([1.5, -0.7, 2.0])[: shape[1]], np.array([0.3, 0.1, -1.0])[: shape[1]]
    result = gradcheck(
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        x,
        w,
        b,
        backward=lambda g, x, w, b: F.batch_norm_backward(g, x, None, None, w, b, training=True),
        **GRADCHECK,
    )
    assert result.ok, str(result)


def test_running_var_uses_the_unbiased_variance() -> None:
    x = np.array([[1.0], [2.0], [4.0]])  # m = 3 values of one channel, mean 7/3
    running_mean, running_var = np.zeros(1), np.ones(1)
    y = F.batch_norm(x, running_mean, running_var, training=True, momentum=1.0, eps=0.0)
    biased = np.var(x)
    np.testing.assert_allclose(running_var, [biased * 3 / 2])  # divides by m - 1
    np.testing.assert_allclose(running_mean, [7 / 3])
    np.testing.assert_allclose(y[:, 0], (x[:, 0] - 7 / 3) / np.sqrt(biased))  # by m


def test_eval_mode_backward_is_the_affine_maps() -> None:
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    mean, var, w = rng.standard_normal(3), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    grad_input, _, _ = F.batch_norm_backward(g, x, mean, var, w, None, training=False)
    np.testing.assert_allclose(grad_input, g * w / np.sqrt(var + 1e-5))


# -- the modules against torch ---------------------------------------------------------


@dataclass(frozen=True)
class ModuleCase:
    name: str
    kwargs: Callable[[], st.SearchStrategy[dict]]
    shape: Callable[[dict], st.SearchStrategy[tuple[int, ...]]]  # from the kwargs

    def __repr__(self) -> str:
        return self.name


def _running_options(momentum: list) -> dict[str, st.SearchStrategy]:
    return {
        "momentum": st.sampled_from(momentum),
        "affine": st.booleans(),
        "track_running_stats": st.booleans(),
        "bias": st.booleans(),
        "eps": st.sampled_from([1e-5, 1e-3]),
    }


def _bn_kwargs() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"num_features": st.integers(1, 3), **_running_options([0.1, None, 0.6])}
    )


def _in_kwargs() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {"num_features": st.integers(1, 3), **_running_options([0.1, None, 0.6])}
    )


def _batched(lead: st.SearchStrategy, c: int, spatial: int, min_values: int = MIN_GROUP) -> Any:
    """(N, C, *spatial) shapes with at least ``min_values`` values per channel."""
    sides = st.lists(st.integers(1, 3), min_size=spatial, max_size=spatial)
    return (
        st.tuples(lead, sides)
        .map(lambda t: (t[0], c, *t[1]))
        .filter(lambda s: s[0] * math.prod(s[2:]) >= min_values)
    )


def _instance_shape(spatial: int) -> Callable[[dict], st.SearchStrategy]:
    def shapes(kw: dict) -> st.SearchStrategy:
        c = kw["num_features"]
        sides = st.lists(st.integers(1, 3), min_size=spatial, max_size=spatial).filter(
            lambda s: math.prod(s) >= MIN_GROUP
        )
        batched = st.tuples(st.integers(1, 3), sides).map(lambda t: (t[0], c, *t[1]))
        return st.one_of(batched, sides.map(lambda s: (c, *s)))  # unbatched (C, *spatial)

    return shapes


MODULES = [
    ModuleCase("BatchNorm1d", _bn_kwargs,
               lambda kw: st.one_of(_batched(st.integers(2, 4), kw["num_features"], 0),
                                    _batched(st.integers(1, 3), kw["num_features"], 1))),
    ModuleCase("BatchNorm2d", _bn_kwargs,
               lambda kw: _batched(st.integers(1, 2), kw["num_features"], 2)),
    ModuleCase("InstanceNorm1d", _in_kwargs, _instance_shape(1)),
    ModuleCase("InstanceNorm2d", _in_kwargs, _instance_shape(2)),
    ModuleCase("LayerNorm",
               lambda: st.fixed_dictionaries({
                   "normalized_shape": st.one_of(st.integers(3, 4),
                                                 st.tuples(st.integers(1, 3), st.integers(3, 4))),
                   "elementwise_affine": st.booleans(), "bias": st.booleans()}),
               lambda kw: st.lists(st.integers(1, 3), max_size=2).map(
                   lambda lead: (*lead, *np.atleast_1d(kw["normalized_shape"]).tolist()))),
    ModuleCase("GroupNorm",
               lambda: st.tuples(st.integers(1, 3), st.integers(1, 2), st.booleans(),
                                 st.booleans()).map(lambda t: {
                                     "num_groups": t[0], "num_channels": t[0] * t[1],
                                     "affine": t[2], "bias": t[3]}),
               lambda kw: _batched(st.integers(1, 2), kw["num_channels"],
                                   2 if kw["num_channels"] > 2 else 1).filter(
                   lambda s: s[1] // kw["num_groups"] * math.prod(s[2:]) >= MIN_GROUP)),
]  # fmt: skip


def randomize(module: rnn.Module, rng: np.random.Generator) -> None:
    """Random parameters and running statistics, so every gradient and buffer has teeth."""
    for param in module.parameters():
        param.data = rng.uniform(0.5, 2, param.shape).astype(param.dtype)
    if getattr(module, "running_mean", None) is not None:
        module.running_mean[...] = rng.standard_normal(module.running_mean.shape)
        module.running_var[...] = rng.uniform(0.5, 2, module.running_var.shape)
        module.num_batches_tracked[...] = rng.integers(0, 5)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("case", MODULES, ids=repr)
@given(data=st.data())
def test_module_matches_torch(
    case: ModuleCase, dtype: Any, device: str, data: st.DataObject
) -> None:
    """Output, input and parameter gradients, and buffers after the forward (train/eval)."""
    kwargs = data.draw(case.kwargs(), label="kwargs")
    shape = data.draw(case.shape(kwargs), label="shape")
    rng = _rng(data.draw)
    module = getattr(rnn, case.name)(**kwargs)
    randomize(module, rng)
    module.train(data.draw(st.booleans(), label="training"))
    assert_twin(
        module,
        getattr(torch.nn, case.name)(**kwargs),
        [spread_input(rng, shape)],
        dtype=dtype,
        device=device,
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("momentum", [None, 0.1, 0.7])
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm2d", "InstanceNorm1d"])
def test_running_stats_over_several_forwards_then_eval(
    name: str, momentum: float | None, dtype: Any, device: str
) -> None:
    """Both run 4 training forwards on their own (momentum=None: a cumulative average);
    buffers are compared after each, then an eval forward and backward."""
    rng = np.random.default_rng(3)
    shape = {"BatchNorm1d": (4, 3), "BatchNorm2d": (2, 3, 2, 2), "InstanceNorm1d": (2, 3, 4)}
    kwargs = {"num_features": 3, "momentum": momentum, "track_running_stats": True, "affine": True}
    ref, twin = getattr(rnn, name)(**kwargs, dtype=dtype), getattr(torch.nn, name)(**kwargs)
    twin.to(device=device, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    tol = tolerance(dtype, device)
    for step in range(4):
        x = spread_input(rng, shape[name]).astype(dtype)
        ref(x)
        twin(torch.tensor(x, device=device))
        buffers = dict(twin.named_buffers())
        for key, value in ref.named_buffers():
            comparison = compare_arrays(f"{key} after forward {step + 1}", value, buffers[key], tol)
            assert comparison.ok, str(comparison)
    if name.startswith("BatchNorm"):
        assert int(ref.num_batches_tracked) == 4
        if momentum is None:  # the plain mean of the four batch means
            assert ref.running_mean.dtype == dtype
    else:
        assert int(ref.num_batches_tracked) == 0  # torch's instance norm never counts
    ref.eval()
    assert_twin(ref, twin, [spread_input(rng, shape[name])], dtype=dtype, device=device)


def test_momentum_none_is_the_cumulative_mean_of_batch_statistics() -> None:
    rng = np.random.default_rng(1)
    module = rnn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    batches = [rng.standard_normal((5, 2)) for _ in range(3)]
    for x in batches:
        module(x)
    np.testing.assert_allclose(module.running_mean, np.mean([b.mean(0) for b in batches], 0))
    np.testing.assert_allclose(module.running_var, np.mean([b.var(0, ddof=1) for b in batches], 0))


def test_eval_without_running_stats_uses_the_batch() -> None:
    x = spread_input(np.random.default_rng(2), (4, 3))
    module = rnn.BatchNorm1d(3, track_running_stats=False).eval()
    assert module.running_mean is None and "running_mean" not in module.state_dict()
    np.testing.assert_allclose(module(x), (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5))
    assert_twin(module, torch.nn.BatchNorm1d(3, track_running_stats=False), [x])


def test_empty_batch_keeps_the_running_stats_and_counts_the_forward() -> None:
    module = rnn.BatchNorm1d(3, dtype=np.float64)
    module.running_mean[...] = 5
    assert module(np.zeros((0, 3, 4))).shape == (0, 3, 4)
    np.testing.assert_array_equal(module.running_mean, [5, 5, 5])
    assert int(module.num_batches_tracked) == 1  # as torch's
    assert module.backward(np.zeros((0, 3, 4))).shape == (0, 3, 4)


# -- construction: state_dict, repr, dtype -------------------------------------------

CONSTRUCTIONS = [
    ("BatchNorm1d", {"num_features": 3}),
    ("BatchNorm2d", {"num_features": 4, "affine": False, "momentum": None}),
    ("BatchNorm2d", {"num_features": 2, "track_running_stats": False, "bias": False}),
    ("InstanceNorm1d", {"num_features": 3}),
    ("InstanceNorm2d", {"num_features": 3, "affine": True, "track_running_stats": True}),
    ("LayerNorm", {"normalized_shape": [2, 3], "bias": False}),
    ("LayerNorm", {"normalized_shape": 5, "elementwise_affine": False, "eps": 1e-3}),
    ("GroupNorm", {"num_groups": 2, "num_channels": 4}),
    ("GroupNorm", {"num_groups": 1, "num_channels": 3, "affine": False}),
]


@pytest.mark.parametrize(("name", "kwargs"), CONSTRUCTIONS, ids=lambda v: str(v))
def test_state_dict_and_repr_match_torch(name: str, kwargs: dict) -> None:
    ref, twin = getattr(rnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ref) == repr(twin)
    ours, theirs = ref.state_dict(), twin.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        assert ours[key].shape == tuple(value.shape), key
        assert str(ours[key].dtype) == str(value.dtype).replace("torch.", ""), key
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)  # the init values


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dtype_follows_the_input(dtype: Any) -> None:
    x = spread_input(np.random.default_rng(0), (2, 4, 3)).astype(dtype)
    for module in [
        rnn.BatchNorm1d(4, dtype=dtype),
        rnn.InstanceNorm1d(4),
        rnn.LayerNorm(3, dtype=dtype),
        rnn.GroupNorm(2, 4, dtype=dtype),
    ]:
        assert module(x).dtype == dtype
        assert module.backward(np.ones_like(x)).dtype == dtype
    assert rnn.BatchNorm1d(4, dtype=dtype).running_var.dtype == dtype


# -- bad input --------------------------------------------------------------------------

ERRORS = [
    (lambda: rnn.BatchNorm1d(3)(np.ones((1, 3))), "more than 1 value per channel"),
    (lambda: rnn.BatchNorm2d(3)(np.ones((1, 3, 1, 1))), "more than 1 value per channel"),
    (
        lambda: rnn.BatchNorm1d(3, track_running_stats=False).eval()(np.ones((1, 3))),
        "more than 1 value per channel",
    ),
    (
        lambda: F.batch_norm(np.ones((1, 3)), None, None, training=True),
        "more than 1 value per channel",
    ),
    (
        lambda: F.batch_norm(np.ones((2, 3)), None, None, training=False),
        "running_mean and running_var must be given",
    ),
    (lambda: rnn.BatchNorm1d(3)(np.ones((2, 3, 4, 5))), r"expected 2-D or 3-D input"),
    (lambda: rnn.BatchNorm1d(3)(np.ones(3)), r"expected 2-D or 3-D input"),
    (lambda: rnn.BatchNorm2d(3)(np.ones((3, 4, 5))), r"expected 4-D input"),
    (lambda: rnn.BatchNorm1d(3)(np.ones((2, 4))), r"num_features \(channels\) = 3 in dim 1, got 4"),
    (lambda: rnn.BatchNorm2d(3)(np.ones((2, 4, 2, 2))), r"num_features \(channels\) = 3"),
    (lambda: rnn.GroupNorm(3, 4), r"num_channels \(4\) must be divisible by num_groups \(3\)"),
    (lambda: F.group_norm(np.ones((2, 4, 3)), 3), r"must be divisible by num_groups \(3\)"),
    (lambda: rnn.GroupNorm(2, 2)(np.ones((1, 2))), "more than 1 value per group"),
    (lambda: rnn.GroupNorm(2, 4)(np.ones((2, 6, 3))), r"expected input of shape \(N, 4, \*\)"),
    (lambda: rnn.GroupNorm(2, 4)(np.ones(4)), r"expected input of shape \(N, 4, \*\)"),
    (lambda: rnn.LayerNorm(3)(np.ones((2, 4))), r"expected input of shape \(\*, 3\)"),
    (lambda: F.layer_norm(np.ones((2, 4)), (2, 4), np.ones(4)), r"weight must have shape \(2, 4\)"),
    (lambda: rnn.LayerNorm([]), "at least one dimension"),
    (lambda: rnn.InstanceNorm1d(3)(np.ones((2, 3, 4, 5))), r"expected 2-D or 3-D input"),
    (
        lambda: rnn.InstanceNorm1d(3, affine=True)(np.ones((2, 4, 5))),
        r"num_features \(channels\) = 3 in dim 1, got 4",
    ),
    (lambda: rnn.InstanceNorm2d(3)(np.ones((2, 3, 1, 1))), "more than 1 spatial element"),
    (
        lambda: F.batch_norm(np.ones((2, 3)), np.zeros(4), np.ones(4), training=True),
        r"running_mean must have one entry per channel, shape \(3,\)",
    ),
]


@pytest.mark.parametrize(("call", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_torch_raises_for_the_same_inputs() -> None:
    """The reference's errors above are torch's too (torch's types and words differ)."""
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.BatchNorm1d(3)(torch.ones(1, 3))
    with pytest.raises(ValueError, match="divisible by num_groups"):
        torch.nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="expected 2D or 3D input"):
        torch.nn.BatchNorm1d(3)(torch.ones(2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="running_mean should contain 4 elements"):
        torch.nn.BatchNorm1d(3)(torch.ones(2, 4))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        torch.nn.InstanceNorm2d(3)(torch.ones(2, 3, 1, 1))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        torch.nn.GroupNorm(2, 2)(torch.ones(1, 2))  # yet (2, 2) passes: see group_norm


def test_instance_norm_without_affine_warns_on_a_channel_mismatch_like_torch() -> None:
    x = spread_input(np.random.default_rng(0), (2, 4, 5))
    with pytest.warns(UserWarning, match="does not match num_features"):
        assert_twin(rnn.InstanceNorm1d(3), torch.nn.InstanceNorm1d(3), [x])


def test_integer_input_is_refused() -> None:
    with pytest.raises(TypeError, match=r"BatchNorm1d\(.*floating"):
        rnn.BatchNorm1d(3)(np.ones((2, 3), dtype=np.int64))
    with pytest.raises(TypeError, match="layer_norm: input must be a floating"):
        F.layer_norm(np.ones((2, 3), dtype=np.int64), 3)


def test_backward_before_forward_and_wrong_gradient_shape() -> None:
    module = rnn.GroupNorm(1, 3)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((2, 3)))
    module(spread_input(np.random.default_rng(0), (2, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(2, 3\)"):
        module.backward(np.ones((3, 2)))
