"""gradcheck itself must have teeth: it passes a right backward and fails a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

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
