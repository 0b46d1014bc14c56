"""``assert_twin``: one reference module or function against its torch twin."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

import reference.functional as F
import reference.nn as rnn
from harness import assert_twin, run_twin
from harness.twin import upstream_gradient


def test_layer_norm_on_the_readmes_input_recipe_passes():
    # the input as the README draws it; the upstream gradient used to be the same draw,
    # and at g = x LayerNorm's true input gradient is 0: a comparison of rounding noise
    x = np.random.default_rng(0).standard_normal((4, 6))
    assert_twin(rnn.LayerNorm(6), torch.nn.LayerNorm(6), [x], dtype=np.float32)


def test_the_upstream_gradient_has_its_own_stream():
    for seed in (0, 1, 12345):
        x = np.random.default_rng(seed).standard_normal((4, 6))
        g = upstream_gradient((4, 6), np.float64, seed)
        assert not np.allclose(g, x)
        assert np.array_equal(g, upstream_gradient((4, 6), np.float64, seed))


def test_a_function_and_its_backward_by_name():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    result = assert_twin(F.linear, torch.nn.functional.linear, [x, w, b])
    names = [c.name for c in result.comparisons]
    assert names == ["output", "grad input0", "grad input1", "grad input2"]
    assert_twin(F.softmax, torch.softmax, [x], dim=1, dtype=np.float32)
    # a loss: its backward gives the input's gradient only, so only that is compared
    t = rng.standard_normal((3, 4))
    result = assert_twin(F.mse_loss, torch.nn.functional.mse_loss, [x, t])
    assert [c.name for c in result.comparisons] == ["output", "grad input0"]


def test_a_wrong_function_backward_is_caught():
    def tanh(x):
        return np.tanh(x)

    def tanh_backward(grad_output, x):
        return grad_output * (1 - np.tanh(x) ** 2) * (1 + 1e-6)  # a planted scale error

    home = types.ModuleType("planted")
    home.tanh, home.tanh_backward = tanh, tanh_backward
    tanh.__module__ = "planted"
    import sys

    sys.modules["planted"] = home
    try:
        x = np.random.default_rng(2).standard_normal((5, 3))
        result = run_twin(tanh, torch.tanh, [x])
        assert [c.name for c in result.failures()] == ["grad input0"]
        with pytest.raises(AssertionError, match="grad input0"):
            assert_twin(tanh, torch.tanh, [x])
    finally:
        del sys.modules["planted"]


def test_a_function_without_a_backward_is_a_clear_error():
    with pytest.raises(TypeError, match="has no print_backward"):
        run_twin(print, torch.tanh, [np.zeros(2)])
