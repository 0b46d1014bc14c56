"""Each known torch bug (``harness.known_bugs``) is still there, the reference is right
where torch is wrong, and the generator never draws a layer that meets one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference.nn as rnn
from harness.generate import random_spec
from harness.known_bugs import KNOWN_TORCH_BUGS, torch_bug
from harness.spec import infer_shapes
from reference.gradcheck import gradcheck


def _torch_gradient(bug, x: np.ndarray, g: np.ndarray) -> np.ndarray:
    kwargs, _ = bug.example
    t = torch.from_numpy(x.copy()).requires_grad_()
    getattr(torch.nn, bug.layer)(**kwargs)(t).backward(torch.from_numpy(g))
    return t.grad.numpy()


@pytest.mark.parametrize("bug", KNOWN_TORCH_BUGS, ids=lambda bug: bug.layer)
def test_torch_still_disagrees_with_its_forward_and_the_reference_does_not(bug) -> None:
    kwargs, shape = bug.example
    assert torch_bug(bug.layer, kwargs, shape) is bug
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    ours = getattr(rnn, bug.layer)(**kwargs)
    out = ours(x)
    theirs_out = getattr(torch.nn, bug.layer)(**kwargs)(torch.from_numpy(x))
    np.testing.assert_allclose(out, theirs_out.numpy(), rtol=1e-12)  # one forward
    g = rng.standard_normal(out.shape)
    gap = np.max(np.abs(ours.backward(g) - _torch_gradient(bug, x, g)))
    assert gap > 1e-3, f"torch's {bug.layer} backward agrees now: remove its known bug"
    assert gradcheck(getattr(rnn, bug.layer)(**kwargs), x)  # the reference's is the math's


def test_the_generator_never_draws_a_known_bug() -> None:
    drawn = 0
    for seed in range(400):
        spec = random_spec(seed)
        shapes = [spec.input_shape, *infer_shapes(spec)]
        for layer, shape in zip(spec.layers, shapes):
            assert torch_bug(layer.type, layer.kwargs, shape) is None, (seed, layer)
            drawn += layer.type in {bug.layer for bug in KNOWN_TORCH_BUGS}
    assert drawn > 0  # Upsample is still drawn where torch is right
