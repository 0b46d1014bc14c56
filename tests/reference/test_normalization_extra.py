"""RMSNorm and LocalResponseNorm: gradcheck of both backwards, the functionals and the
modules against torch (float64 and float32), torch's eps=None, state_dict, repr, bad input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.functional.rms_norm import (
    local_response_norm,
    local_response_norm_backward,
    rms_norm,
    rms_norm_backward,
)
from reference.gradcheck import gradcheck
from reference.nn.normalization_extra import LocalResponseNorm, RMSNorm
from tests.reference.test_normalization import DTYPES, draw_rng, spread_input
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# -- strategies -------------------------------------------------------------------------


@st.composite
def rms_cases(draw: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """An input ``(*lead, *normalized)`` (unbatched: no lead) and rms_norm's other arguments."""
    rng = draw_rng(draw)
    lead = tuple(draw(st.lists(st.integers(1, 3), max_size=2), label="leading"))
    normalized = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=2), label="norm"))
    if math.prod(normalized) < 2:  # one value: y = sign(x), its gradient pure rounding
        normalized = normalized[:-1] + (2,)
    weight = rng.uniform(0.5, 2, normalized) * rng.choice([-1, 1], normalized)
    kwargs = {
        "normalized_shape": normalized,
        "weight": weight if draw(st.booleans(), label="weight") else None,
        "eps": draw(st.sampled_from([None, 1e-5, 1e-2]), label="eps"),
    }
    return rng.standard_normal(lead + normalized) * rng.uniform(0.5, 3), kwargs


@st.composite
def lrn_cases(draw: Any) -> tuple[np.ndarray, dict[str, Any]]:
    """3-d, 4-d or 5-d ``(N, C, *)`` inputs; windows narrower and wider than C."""
    rng = draw_rng(draw)
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="spatial"))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 5), label="C"), *spatial)
    kwargs = {
        "size": draw(st.integers(1, 6), label="size"),
        "alpha": draw(st.sampled_from([1e-4, 0.5, 2.0]), label="alpha"),
        "beta": draw(st.sampled_from([0.75, 0.5, 1.5]), label="beta"),
        "k": draw(st.sampled_from([1.0, 2.0, 0.5]), label="k"),
    }
    return rng.standard_normal(shape) * rng.uniform(0.5, 2), kwargs


# -- gradcheck --------------------------------------------------------------------------


@given(case=rms_cases())
def test_rms_norm_backward_passes_gradcheck(case: tuple[np.ndarray, dict]) -> None:
    x, kwargs = case
    shape, weight, eps = kwargs["normalized_shape"], kwargs["weight"], kwargs["eps"]
    if weight is None:
        result = gradcheck(
            lambda x: rms_norm(x, shape, None, eps),
            x,
            backward=lambda g, x: rms_norm_backward(g, x, shape, None, eps)[0],
            **GRADCHECK,
        )
    else:
        result = gradcheck(
            lambda x, w: rms_norm(x, shape, w, eps),
            x,
            weight,
            backward=lambda g, x, w: rms_norm_backward(g, x, shape, w, eps),
            **GRADCHECK,
        )
    assert result.ok, str(result)


@given(case=lrn_cases())
def test_local_response_norm_backward_passes_gradcheck(case: tuple[np.ndarray, dict]) -> None:
    x, kwargs = case
    result = gradcheck(
        lambda x: local_response_norm(x, **kwargs),
        x,
        backward=lambda g, x: local_response_norm_backward(g, x, **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)


# -- against torch ----------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=rms_cases())
def test_rms_norm_functional_matches_torch(
    case: tuple[np.ndarray, dict], dtype: Any, device: str
) -> None:
    """Output and the input and weight gradients, torch's autograd against the backward."""
    x, kwargs = case
    x = x.astype(dtype)
    shape, eps = kwargs["normalized_shape"], kwargs["eps"]
    weight = None if kwargs["weight"] is None else kwargs["weight"].astype(dtype)
    g = np.random.default_rng(7).standard_normal(x.shape).astype(dtype)
    output = rms_norm(x, shape, weight, eps)
    grad_input, grad_weight = rms_norm_backward(g, x, shape, weight, eps)
    tx = torch.tensor(x, device=device, requires_grad=True)
    tw = None if weight is None else torch.tensor(weight, device=device, requires_grad=True)
    expected = TF.rms_norm(tx, list(shape), tw, eps)
    expected.backward(torch.tensor(g, device=device))
    tol = tolerance(dtype, device)
    checks = [
        compare_arrays("output", output, expected, tol),
        compare_arrays("grad input", grad_input, tx.grad, tol),
    ]
    if tw is not None:
        checks.append(compare_arrays("grad weight", grad_weight, tw.grad, tol))
    assert all(c.ok for c in checks), "\n".join(map(str, checks))
    assert output.dtype == grad_input.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=lrn_cases())
def test_local_response_norm_functional_matches_torch(
    case: tuple[np.ndarray, dict], dtype: Any, device: str
) -> None:
    x, kwargs = case
    assert_twin(
        local_response_norm, TF.local_response_norm, [x], dtype=dtype, device=device, **kwargs
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=rms_cases(), data=st.data())
def test_rms_norm_module_matches_torch(
    case: tuple[np.ndarray, dict], dtype: Any, device: str, data: st.DataObject
) -> None:
    x, kwargs = case
    shape = kwargs["normalized_shape"]
    ctor = {
        "normalized_shape": shape[0] if len(shape) == 1 and data.draw(st.booleans()) else shape,
        "eps": kwargs["eps"],
        "elementwise_affine": kwargs["weight"] is not None,
    }
    module = RMSNorm(**ctor)
    if module.weight is not None:
        module.weight.data = kwargs["weight"].astype(np.float32)
    assert_twin(module, torch.nn.RMSNorm(**ctor), [x], dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=lrn_cases())
def test_local_response_norm_module_matches_torch(
    case: tuple[np.ndarray, dict], dtype: Any, device: str
) -> None:
    x, kwargs = case
    module, twin = LocalResponseNorm(**kwargs), torch.nn.LocalResponseNorm(**kwargs)
    assert_twin(module, twin, [x], dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64], ids=str)
def test_eps_none_is_the_computation_types_machine_epsilon_like_torch(dtype: Any) -> None:
    """Values small enough that eps dominates: float16 is computed in float32 and gets
    float32's epsilon (not float16's 1e-3, which would shrink this output 100-fold)."""
    x = np.array([[1e-4, 0.0, 0.0], [3e-9, -2e-9, 1e-9]], dtype=dtype)
    ours = rms_norm(x, 3)
    theirs = TF.rms_norm(torch.tensor(x), [3]).numpy()
    assert ours.dtype == theirs.dtype == dtype
    np.testing.assert_allclose(
        ours.astype(np.float64), theirs, rtol=2e-3 if dtype == np.float16 else 1e-5
    )
    expected_eps = np.finfo(np.float64 if dtype == np.float64 else np.float32).eps
    np.testing.assert_allclose(ours[0, 0], 1e-4 / np.sqrt(1e-8 / 3 + expected_eps), rtol=2e-3)


def test_rms_norm_weight_of_another_dtype_follows_the_input_like_torch() -> None:
    x = spread_input(np.random.default_rng(0), (2, 3))
    module = RMSNorm(3)  # float32 weight, float64 input: torch warns and computes anyway
    assert module(x).dtype == np.float64
    module.backward(np.ones_like(x))
    assert module.weight.grad is not None and module.weight.grad.dtype == np.float32
    with pytest.warns(UserWarning, match="Mismatch dtype"):
        assert torch.nn.RMSNorm(3)(torch.tensor(x)).dtype == torch.float64


def test_empty_inputs() -> None:
    assert rms_norm(np.zeros((0, 3)), 3, np.ones(3)).shape == (0, 3)
    grad_input, grad_weight = rms_norm_backward(np.zeros((0, 3)), np.zeros((0, 3)), 3, np.ones(3))
    assert grad_input.shape == (0, 3)
    np.testing.assert_array_equal(grad_weight, np.zeros(3))
    assert local_response_norm(np.zeros((0, 3, 2)), 2).shape == (0, 3, 2)


# -- construction and bad input ---------------------------------------------------------

CONSTRUCTIONS = [
    (RMSNorm, torch.nn.RMSNorm, {"normalized_shape": [2, 3]}),
    (RMSNorm, torch.nn.RMSNorm, {"normalized_shape": 4, "eps": 1e-5, "elementwise_affine": False}),
    (LocalResponseNorm, torch.nn.LocalResponseNorm, {"size": 2}),
    (LocalResponseNorm, torch.nn.LocalResponseNorm, {"size": 5, "alpha": 0.1, "beta": 2, "k": 3}),
]


@pytest.mark.parametrize(("ours", "theirs", "kwargs"), CONSTRUCTIONS, ids=str)
def test_state_dict_and_repr_match_torch(ours: Any, theirs: Any, kwargs: dict) -> None:
    ref, twin = ours(**kwargs), theirs(**kwargs)
    assert repr(ref) == repr(twin)
    state, expected = ref.state_dict(), twin.state_dict()
    assert list(state) == list(expected)
    for key, value in expected.items():
        assert state[key].dtype == np.float32
        np.testing.assert_array_equal(state[key], value.numpy())


ERRORS = [
    (lambda: RMSNorm(3)(np.ones((2, 4))), r"RMSNorm\(\(3,\).*expected input of shape \(\*, 3\)"),
    (lambda: rms_norm(np.ones((2, 3)), 3, np.ones(4)), r"rms_norm: weight must have shape \(3,\)"),
    (lambda: rms_norm(np.ones((2, 3)), ()), "at least one dimension"),
    (lambda: RMSNorm([]), "at least one dimension"),
    (lambda: LocalResponseNorm(2)(np.ones((2, 3))), r"3 or more dimensions, got \(2, 3\)"),
    (lambda: local_response_norm(np.ones((2, 3, 4)), 0), "size .* must be a positive integer"),
    (lambda: LocalResponseNorm(2.5), "size must be a positive integer"),
    (
        lambda: local_response_norm_backward(np.ones((2, 3)), np.ones((2, 3, 1)), 2),
        r"grad_output must have the output's shape \(2, 3, 1\)",
    ),
]


@pytest.mark.parametrize(("call", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_bad_input_raises_a_clear_error(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_torch_raises_for_the_same_inputs() -> None:
    with pytest.raises(RuntimeError, match="expected input with shape"):
        torch.nn.RMSNorm(3)(torch.ones(2, 4))
    with pytest.raises(ValueError, match="Expected 3D or higher"):
        torch.nn.LocalResponseNorm(2)(torch.ones(2, 3))
    with pytest.raises(RuntimeError, match="kernel size should be greater than zero"):
        TF.local_response_norm(torch.ones(2, 3, 4), 0)


def test_backward_before_forward_and_integer_input() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        RMSNorm(3).backward(np.ones((2, 3)))
    with pytest.raises(TypeError, match="floating"):
        LocalResponseNorm(2)(np.ones((2, 3, 4), dtype=np.int64))
