"""Normalization modules against torch (running statistics over several forwards,
eval mode), torch's state_dict and repr, dtype, and bad input.

The table ``MODULES`` drives it: a strategy draws constructor arguments and an input
shape. The functionals are in test_normalization.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import compare_arrays, tolerance
from harness.twin import assert_twin
from tests.reference.test_normalization import DTYPES, MIN_GROUP, draw_rng, spread_input

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
    rng = draw_rng(data.draw)
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
    module = rnn.BatchNorm1d(3, track_running_stats=False, dtype=np.float64).eval()
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
    module = rnn.GroupNorm(1, 3, dtype=np.float64)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((2, 3)))
    module(spread_input(np.random.default_rng(0), (2, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(2, 3\)"):
        module.backward(np.ones((3, 2)))
