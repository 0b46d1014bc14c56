"""Normalization functionals: gradcheck of every backward, and each functional against
torch (running statistics included). The modules are in test_normalization_modules.py.

The table ``OPS`` drives it: per functional pair, a hypothesis strategy draws the
input, the affine parameters and the other arguments.
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
from harness.compare import GRADCHECK, compare_arrays, tolerance
from reference.gradcheck import gradcheck

DTYPES = [np.float64, np.float32]

# Every normalization group the strategies draw holds at least 3 values. With 2, the
# normalized output is +-sigma/sqrt(sigma^2 + eps), nearly +-1 whatever x, so the input
# gradient is pure cancellation (O(eps/sigma^3)): neither torch nor NumPy resolves it
# in float32, and the tolerance (relative to the largest |expected|) cannot either.
# Groups of 1 and 2 values get their own tests below.
MIN_GROUP = 3


def draw_rng(draw: Any) -> np.random.Generator:
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
    rng = draw_rng(draw)
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
    rng = draw_rng(draw)
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
    rng = draw_rng(draw)
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
    rng = draw_rng(draw)
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


def test_a_constant_row_normalizes_to_exactly_zero_like_torch() -> None:
    """Equal values have their own value as mean: a float32 pairwise sum divided by m can
    miss it by an ulp, which 1/sqrt(eps) then makes a visible output (found by the
    harness, blamed on the reference); torch's Welford moments get it exactly."""
    x = np.full((2, 7), 0.1234567, np.float32)
    np.testing.assert_array_equal(F.layer_norm(x, (7,)), np.zeros_like(x))
    np.testing.assert_array_equal(TF.layer_norm(torch.from_numpy(x), (7,)).numpy(), 0.0)
    y = np.full((2, 4, 3), 0.3, np.float32)
    np.testing.assert_array_equal(F.group_norm(y, 2), np.zeros_like(y))
    np.testing.assert_array_equal(TF.group_norm(torch.from_numpy(y), 2).numpy(), 0.0)
