"""gradcheck itself must have teeth: it passes a right backward and fails a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

import reference.nn as rnn
from harness.compare import GRADCHECK
from reference import functional as F
from reference import gradcheck


def test_passes_a_correct_backward(rng):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((2, 3))
    result = gradcheck(F.linear, x, w, backward=F.linear_backward, **GRADCHECK)
    assert result.ok, str(result)
    assert result.checked == x.size + w.size


@pytest.mark.parametrize(
    "wrong_backward, culprit",
    [
        (lambda g, x, w: (1.001 * (g @ w), g.T @ x), "input0"),  # a wrong constant
        (lambda g, x, w: (g @ w, (g.T @ x).T.reshape(g.shape[1], -1)), "input1"),  # transposed
        (lambda g, x, w: (g @ w, g.T @ x[::-1]), "input1"),  # rows off by order
    ],
)
def test_fails_a_wrong_backward_and_names_the_worst_element(rng, wrong_backward, culprit):
    x, w = rng.standard_normal((4, 3)), rng.standard_normal((3, 3))
    result = gradcheck(F.linear, x, w, backward=wrong_backward, **GRADCHECK)
    assert not result.ok
    assert result.worst["name"] == culprit
    assert "FAILED" in str(result) and culprit in str(result)


def test_random_upstream_gradient_catches_what_ones_would_hide(rng):
    # d/dx of sum(x @ P) for a permutation P: with g = ones, a backward that
    # forgets to permute still gives the right answer; a random g does not.
    perm = np.eye(4)[[1, 2, 3, 0]]
    result = gradcheck(
        lambda x: x @ perm, rng.standard_normal((2, 4)), backward=lambda g, x: g, **GRADCHECK
    )
    assert not result.ok


def test_module_parameters_are_checked_too(rng):
    from reference.nn import Linear

    layer = Linear(3, 2, rng=0)
    original = Linear.backward

    def no_bias_grad(self, grad_output):
        grad_input = original(self, grad_output)
        self.bias.grad = None
        return grad_input

    Linear.backward = no_bias_grad
    try:
        result = gradcheck(layer, rng.standard_normal((5, 3)), **GRADCHECK)
    finally:
        Linear.backward = original
    assert not result.ok and result.worst["name"] == "bias"


def test_a_plain_function_needs_a_backward():
    with pytest.raises(ValueError, match="pass backward="):
        gradcheck(np.tanh, np.zeros(3))


@pytest.mark.parametrize("a", [-1.5, 0.5, 2.0])
def test_the_numerical_derivative_has_central_difference_accuracy(a):
    """f(x) = x^3 at a, g = 1: f'(a) = 3a^2, exactly known.

    The central difference errs by eps^2 |f'''| / 6 = eps^2 = 1e-12 (truncation) plus
    about u |a|^3 / eps <= 1e-9 (rounding); a one-sided one by eps |f''| / 2 = 3 eps |a|
    >= 1.5e-6. 1e-8 sits between, so the test sees which difference gradcheck takes.
    """
    result = gradcheck(
        lambda x: x**3,
        np.array([a]),
        backward=lambda g, x: 3 * x**2 * g,
        grad_output=np.ones(1),
        atol=1e-8,
        rtol=0.0,
    )
    assert abs(result.worst["numerical"] - 3 * a**2) < 1e-8, str(result)
    assert result.ok, str(result)


def _linear_with_stale_grads(dtype):
    from reference.nn import Linear

    layer = Linear(3, 2, rng=0, dtype=dtype)
    x = np.random.default_rng(1).standard_normal((5, 3)).astype(dtype)  # torch: no promotion
    layer(x)
    layer.backward(np.random.default_rng(2).standard_normal((5, 2)))  # grads now non-zero
    return layer, x


def test_stale_parameter_grads_neither_fail_the_check_nor_change(rng):
    """Backward *adds* J^T g to Parameter.grad: a grad left by an earlier backward would
    be counted in the analytic side unless gradcheck clears it, and the caller's grads
    must come back as they were (gradcheck works on a copy)."""
    layer, x = _linear_with_stale_grads(np.float64)
    before = {name: p.grad.copy() for name, p in layer.named_parameters()}
    assert all(np.any(g != 0) for g in before.values())

    result = gradcheck(layer, x, **GRADCHECK)

    assert result.ok, str(result)
    for name, param in layer.named_parameters():
        assert param.grad is not None and param.grad.dtype == np.float64, name
        np.testing.assert_array_equal(param.grad, before[name], err_msg=name)


def test_the_callers_float32_layer_is_left_float32_and_unchanged():
    """gradcheck computes in float64 on a copy; the layer the caller passed keeps its
    dtype, values and grads (``.double()`` is in place, so it must not run on it)."""
    layer, x = _linear_with_stale_grads(np.float32)
    before = {name: (p.data.copy(), p.grad.copy()) for name, p in layer.named_parameters()}

    result = gradcheck(layer, x, **GRADCHECK)

    assert result.ok, str(result)
    for name, param in layer.named_parameters():
        data, grad = before[name]
        assert param.data.dtype == np.float32 and param.grad.dtype == np.float32, name
        np.testing.assert_array_equal(param.data, data, err_msg=name)
        np.testing.assert_array_equal(param.grad, grad, err_msg=name)


def _trained_batchnorm(mode: bool) -> tuple[rnn.BatchNorm1d, np.ndarray]:
    """A float32 BatchNorm1d after one forward and backward: non-trivial running
    statistics, a forward counted, grads, and the forward's cache."""
    layer = rnn.BatchNorm1d(3)
    layer.weight.data[...] = [0.5, 1.5, -2.0]
    x = np.random.default_rng(3).standard_normal((6, 3)).astype(np.float32)
    layer(x)
    layer.backward(np.random.default_rng(4).standard_normal((6, 3)).astype(np.float32))
    return layer.train(mode), x


def _snapshot(layer: rnn.Module) -> dict:
    return {
        "state": {k: (v.dtype, v.copy()) for k, v in layer.state_dict().items()},
        "grads": {k: (p.grad.dtype, p.grad.copy()) for k, p in layer.named_parameters()},
        "training": layer.training,
        "cache": layer._cache,
    }


def _assert_unchanged(layer: rnn.Module, before: dict) -> None:
    after = _snapshot(layer)
    assert after["training"] == before["training"]
    assert after["cache"] is before["cache"]  # the same saved forward, not a copy's
    for key in ("state", "grads"):
        assert after[key].keys() == before[key].keys()
        for name, (dtype, value) in before[key].items():
            assert after[key][name][0] == dtype, (key, name)
            np.testing.assert_array_equal(after[key][name][1], value, err_msg=f"{key} {name}")


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_the_callers_module_keeps_its_buffers_mode_and_cache(training):
    """Dtype, parameters, grads, running statistics, ``num_batches_tracked``, training mode
    and the cached forward all come back exactly: gradcheck's forwards (two per element,
    each moving the running statistics in training) and its backward run on a deep copy."""
    layer, x = _trained_batchnorm(training)
    before = _snapshot(layer)

    result = gradcheck(layer, x, **GRADCHECK)

    assert result.ok, str(result)
    _assert_unchanged(layer, before)
    assert int(layer.num_batches_tracked) == 1
    # the cache still belongs to the caller's last forward: its backward still runs
    assert layer.backward(np.ones((6, 3), np.float32)).dtype == np.float32


def test_a_planted_wrong_backward_is_caught_and_the_module_still_unchanged(monkeypatch):
    layer, x = _trained_batchnorm(True)
    before = _snapshot(layer)
    original = rnn.BatchNorm1d.backward
    monkeypatch.setattr(rnn.BatchNorm1d, "backward", lambda self, g: 1.001 * original(self, g))

    result = gradcheck(layer, x, **GRADCHECK)

    assert not result.ok and result.worst["name"] == "input0", str(result)
    _assert_unchanged(layer, before)


def test_the_default_step_and_tolerances_are_the_documented_ones():
    """The README calls ``gradcheck(layer, x)``: its defaults are torch.autograd.gradcheck's,
    as gradcheck's docstring says (eps = 1e-6, atol = 1e-5, rtol = 1e-3)."""
    import inspect

    import torch

    documented = {"eps": "1e-6", "atol": "1e-5", "rtol": "1e-3"}
    ours = inspect.signature(gradcheck).parameters
    torchs = inspect.signature(torch.autograd.gradcheck).parameters
    for name, value in documented.items():
        assert f"{name} = {value}" in (gradcheck.__doc__ or ""), name
        assert ours[name].default == float(value), name
        assert torchs[name].default == float(value), name


def test_the_readme_example_passes_with_the_defaults():
    """README: ``gradcheck(layer, x)`` on a float32 Conv2d, default step and tolerances."""
    import reference.nn as rnn

    layer = rnn.Conv2d(3, 8, 3, padding="same", rng=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 9))
    result = gradcheck(layer, x)
    assert result.ok and "passed" in str(result), str(result)
    assert result.checked == x.size + layer.weight.data.size + layer.bias.data.size
    assert layer.weight.dtype == np.float32
