"""BatchNorm3d, InstanceNorm3d and CrossMapLRN2d: gradcheck, against torch (float64 and
float32, unbatched InstanceNorm3d, running statistics, state_dict, repr), bad input, and
torch's CrossMapLRN2d at its quirks: its forward's window, and a hand-written backward
that is not the gradient of that forward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.nn.modules._functions import CrossMapLRN2d as TorchCrossMapLRN2d

import reference.nn as rnn
from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.functional.rms_norm import (
    cross_map_lrn2d,
    cross_map_lrn2d_backward,
    cross_map_lrn2d_torch_backward,
    local_response_norm,
)
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng, spread_input
from tests.reference.test_normalization_modules import (
    _batched,
    _bn_kwargs,
    _in_kwargs,
    _instance_shape,
    randomize,
)
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# -- BatchNorm3d, InstanceNorm3d --------------------------------------------------------

SHAPES = {
    "BatchNorm3d": lambda kw: _batched(st.integers(1, 2), kw["num_features"], 3),
    "InstanceNorm3d": _instance_shape(3),  # batched (N, C, D, H, W) or unbatched (C, D, H, W)
}
KWARGS = {"BatchNorm3d": _bn_kwargs, "InstanceNorm3d": _in_kwargs}


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", sorted(SHAPES))
@given(data=st.data())
def test_3d_norms_match_torch(name: str, dtype: Any, device: str, data: st.DataObject) -> None:
    kwargs = data.draw(KWARGS[name](), label="kwargs")
    shape = data.draw(SHAPES[name](kwargs), label="shape")
    rng = draw_rng(data.draw)
    module = getattr(rnn, name)(**kwargs)
    randomize(module, rng)
    module.train(data.draw(st.booleans(), label="training"))
    assert_twin(module, getattr(torch.nn, name)(**kwargs), [spread_input(rng, shape)],
                dtype=dtype, device=device)  # fmt: skip


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(("name", "shape"), [("BatchNorm3d", (2, 2, 2, 1, 3)),
                                             ("InstanceNorm3d", (2, 2, 3, 1, 2)),
                                             ("InstanceNorm3d", (2, 2, 2, 3))])  # fmt: skip
def test_3d_norms_pass_gradcheck(name: str, shape: tuple, training: bool) -> None:
    rng = np.random.default_rng(0)
    module = getattr(rnn, name)(2, affine=True, track_running_stats=True, dtype=np.float64)
    randomize(module, rng)
    module.train(training)
    result = gradcheck(module, spread_input(rng, shape), **GRADCHECK)
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", ["BatchNorm3d", "InstanceNorm3d"])
def test_running_stats_over_several_forwards_then_eval(name: str, dtype: Any) -> None:
    rng = np.random.default_rng(3)
    kwargs = {"num_features": 3, "momentum": None, "track_running_stats": True, "affine": True}
    ref, twin = getattr(rnn, name)(**kwargs, dtype=dtype), getattr(torch.nn, name)(**kwargs)
    twin.to(torch.float64 if dtype == np.float64 else torch.float32)
    for step in range(3):
        x = spread_input(rng, (2, 3, 2, 2, 3)).astype(dtype)
        ref(x)
        twin(torch.tensor(x))
        buffers = dict(twin.named_buffers())
        for key, value in ref.named_buffers():
            comparison = compare_arrays(f"{key} after {step + 1}", value, buffers[key],
                                        tolerance(dtype))  # fmt: skip
            assert comparison.ok, str(comparison)
    ref.eval()
    assert_twin(ref, twin, [spread_input(rng, (2, 3, 2, 2, 3))], dtype=dtype)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("BatchNorm3d", {"num_features": 3}),
     ("BatchNorm3d", {"num_features": 2, "affine": False, "momentum": None}),
     ("InstanceNorm3d", {"num_features": 3}),
     ("InstanceNorm3d", {"num_features": 2, "affine": True, "track_running_stats": True})],
    ids=str,
)  # fmt: skip
def test_3d_state_dict_and_repr_match_torch(name: str, kwargs: dict) -> None:
    ref, twin = getattr(rnn, name)(**kwargs), getattr(torch.nn, name)(**kwargs)
    assert repr(ref) == repr(twin)
    ours, theirs = ref.state_dict(), twin.state_dict()
    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        np.testing.assert_array_equal(ours[key], value.numpy(), err_msg=key)
        assert str(ours[key].dtype) == str(value.dtype).replace("torch.", ""), key


def test_3d_norms_refuse_the_ranks_torch_refuses() -> None:
    for ours, theirs, shape in [
        (rnn.BatchNorm3d(2), torch.nn.BatchNorm3d(2), (2, 2, 3, 3)),
        (rnn.BatchNorm3d(2), torch.nn.BatchNorm3d(2), (2, 2, 1, 2, 3, 1)),
        (rnn.InstanceNorm3d(2), torch.nn.InstanceNorm3d(2), (2, 3, 3)),
        (rnn.InstanceNorm3d(2), torch.nn.InstanceNorm3d(2), (1, 2, 2, 2, 2, 2)),
    ]:
        with pytest.raises(ValueError, match=r"expected .*-D input.*got shape"):
            ours(np.ones(shape))
        with pytest.raises(ValueError, match="expected"):
            theirs(torch.ones(shape))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        rnn.BatchNorm3d(2)(np.ones((1, 2, 1, 1, 1)))
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        rnn.InstanceNorm3d(2)(np.ones((2, 2, 1, 1, 1)))
    with pytest.raises(ValueError, match=r"num_features \(channels\) = 2 in dim 1, got 3"):
        rnn.BatchNorm3d(2)(np.ones((2, 3, 2, 2, 2)))


# -- CrossMapLRN2d ----------------------------------------------------------------------


@st.composite
def lrn_cases(draw: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """``(N, C, H, W)`` with windows narrower and wider than C, odd and even sizes."""
    rng = draw_rng(draw)
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 8), label="C"),
             draw(st.integers(1, 3)), draw(st.integers(1, 3)))  # fmt: skip
    kwargs = {
        "size": draw(st.integers(1, 7), label="size"),
        "alpha": draw(st.sampled_from([1e-4, 0.5, 2.0]), label="alpha"),
        "beta": draw(st.sampled_from([0.75, 0.5, 1.5]), label="beta"),
        "k": draw(st.sampled_from([1, 2.0, 0.5]), label="k"),
    }
    return rng.standard_normal(shape) * rng.uniform(0.5, 2), kwargs


def _torch_lrn(x: np.ndarray, kwargs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.tensor(x, requires_grad=True)
    return t, torch.nn.CrossMapLRN2d(**kwargs)(t)


@given(case=lrn_cases())
def test_cross_map_backward_passes_gradcheck(case: tuple) -> None:
    x, kwargs = case
    result = gradcheck(
        lambda x: cross_map_lrn2d(x, **kwargs),
        x,
        backward=lambda g, x: cross_map_lrn2d_backward(g, x, **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)
    assert gradcheck(rnn.CrossMapLRN2d(**kwargs), x, **GRADCHECK).ok


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=lrn_cases())
def test_cross_map_forward_matches_torch_and_its_backward_is_torchs_rule(
    case: tuple, dtype: Any
) -> None:
    """The forward is torch's; torch's gradient is exactly what
    cross_map_lrn2d_torch_backward models (and torch's size=1 backward raises)."""
    x, kwargs = case
    x = x.astype(dtype)
    module = rnn.CrossMapLRN2d(**kwargs)
    y = module(x)
    t, expected = _torch_lrn(x, kwargs)
    tol = tolerance(dtype)
    assert compare_arrays("output", expected, y, tol).ok
    g = np.random.default_rng(0).standard_normal(y.shape).astype(dtype)
    assert module.backward(g).dtype == dtype
    if kwargs["size"] == 1:
        with pytest.raises(RuntimeError, match="exceeds dimension size"):
            expected.backward(torch.tensor(g))
        return
    expected.backward(torch.tensor(g))
    modelled = cross_map_lrn2d_torch_backward(g, x, **kwargs)
    assert compare_arrays("torch's grad input", t.grad, modelled, tol).ok


def test_cross_map_window_keeps_channel_0_and_spans_size_minus_1_when_even() -> None:
    """alpha = n, k = 0, beta = 1 makes y_c = x_c / (sum of the squares in the window)."""
    x = np.sqrt(np.array([1.0, 10, 100, 1000, 10000, 100000]))[None, :, None, None]
    windows = {
        3: [11, 111, 1111, 11101, 111001, 110001],  # P = 2: [c-1, c+1], + x_0 from c=2
        4: [11, 111, 1111, 11101, 111001, 110001],  # even: 3 channels, as for size 3
        5: [111, 1111, 11111, 111111, 111101, 111001],
    }  # P = 3, + x_0 from c = 3
    for size, sums in windows.items():
        y = cross_map_lrn2d(x, size, alpha=size, beta=1.0, k=0)
        np.testing.assert_allclose(x[0, :, 0, 0] / y[0, :, 0, 0], sums, rtol=1e-13)
        theirs = TorchCrossMapLRN2d.apply(torch.tensor(x), size, size, 1.0, 0)
        np.testing.assert_allclose(theirs.numpy(), y, rtol=1e-13)
    # where no window reaches past channel P - 1, an odd size is LocalResponseNorm's
    small = np.random.default_rng(1).standard_normal((2, 3, 2, 2))
    lrn = local_response_norm(small, 5, 0.5, 0.75, 2.0)
    np.testing.assert_allclose(cross_map_lrn2d(small, 5, 0.5, 0.75, 2.0), lrn, rtol=1e-14)


@pytest.mark.parametrize(("size", "channels"), [(3, 3), (3, 6), (4, 5), (5, 9), (2, 4)])
def test_torch_cross_map_backward_is_not_the_gradient_of_its_forward(size, channels) -> None:
    """float64 evidence: central differences of torch's own forward against torch's
    backward, and against ours."""
    rng = np.random.default_rng(size * 10 + channels)
    x, g = rng.standard_normal((2, channels, 2, 2)), rng.standard_normal((2, channels, 2, 2))
    kwargs = {"size": size, "alpha": 0.5, "beta": 0.75, "k": 1.0}

    def torch_loss(a: np.ndarray) -> float:
        return float((_torch_lrn(a, kwargs)[1].detach() * torch.tensor(g)).sum())

    numerical, eps = np.zeros_like(x), 1e-6
    for i in np.ndindex(x.shape):
        step = np.zeros_like(x)
        step[i] = eps
        numerical[i] = (torch_loss(x + step) - torch_loss(x - step)) / (2 * eps)
    t, y = _torch_lrn(x, kwargs)
    y.backward(torch.tensor(g))
    ours = cross_map_lrn2d_backward(g, x, **kwargs)
    np.testing.assert_allclose(ours, numerical, rtol=1e-6, atol=1e-8)
    assert np.abs(t.grad.numpy() - numerical).max() > 0.05 * np.abs(numerical).max()


def test_cross_map_backward_agrees_with_torch_where_every_window_covers_every_channel() -> None:
    x = np.random.default_rng(2).standard_normal((2, 3, 2, 2))
    t, y = _torch_lrn(x, {"size": 7})
    g = np.random.default_rng(3).standard_normal(y.shape)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(cross_map_lrn2d_backward(g, x, 7), t.grad.numpy(), rtol=1e-12)


def test_cross_map_repr_state_dict_and_errors_like_torch() -> None:
    for args in [(3,), (5, 0.1, 2.0, 2.5)]:
        ours, theirs = rnn.CrossMapLRN2d(*args), torch.nn.CrossMapLRN2d(*args)
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and not theirs.state_dict()
    for shape in [(2, 3, 4), (1, 2, 3, 4, 5)]:
        with pytest.raises(ValueError, match=r"CrossMapLRN2d\(3, .*4-D input .*got shape"):
            rnn.CrossMapLRN2d(3)(np.ones(shape))
        with pytest.raises(ValueError, match="Expected input to be 4D"):
            torch.nn.CrossMapLRN2d(3)(torch.ones(shape))
    with pytest.raises(ValueError, match="size must be a positive integer"):
        rnn.CrossMapLRN2d(0)
    with pytest.raises(ZeroDivisionError):
        torch.nn.CrossMapLRN2d(0)(torch.ones(1, 2, 2, 2))
    with pytest.raises(ValueError, match="at least one channel"):
        cross_map_lrn2d(np.ones((2, 0, 2, 2)), 3)
    with pytest.raises(IndexError):
        torch.nn.CrossMapLRN2d(3)(torch.ones(2, 0, 2, 2))
    with pytest.raises(TypeError, match="floating"):
        rnn.CrossMapLRN2d(3)(np.ones((1, 2, 2, 2), np.int64))
    module = rnn.CrossMapLRN2d(2)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((1, 2, 2, 2)))
    assert module(np.zeros((0, 3, 2, 2))).shape == (0, 3, 2, 2)  # torch: an empty batch too
    assert module.backward(np.zeros((0, 3, 2, 2))).shape == (0, 3, 2, 2)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("eps", [0.0, -1.0])
@pytest.mark.parametrize("name", ["BatchNorm1d", "BatchNorm3d"])
def test_batch_norm_eps_bounds_like_torch(name: str, eps: float, training: bool) -> None:
    """torch 2.13: eps > 0 with batch statistics, eps >= 0 with the running ones."""
    shape = (2, 3, 2) if name == "BatchNorm1d" else (2, 3, 2, 1, 2)
    ours = getattr(rnn, name)(3, eps=eps, dtype=np.float64).train(training)
    theirs = getattr(torch.nn, name)(3, eps=eps).double().train(training)
    x = spread_input(np.random.default_rng(4), shape)
    if eps < 0 or training:
        with pytest.raises(
            ValueError, match=r"BatchNorm.d\(.*\): batch_norm eps must be (positive|non-negative)"
        ):
            ours(x)
        with pytest.raises(ValueError, match=r"eps must be (positive|non-negative)"):
            theirs(torch.tensor(x))
    else:
        assert_twin(ours, theirs, [x])
