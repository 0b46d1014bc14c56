"""``Optimizer.state_dict`` / ``load_state_dict`` round trips, 0-d parameters included.

Each case steps an optimizer three times over a 0-d and a 2-d parameter, loads
its ``state_dict()`` into a fresh optimizer over copies of the parameters, then
steps both five more times with the same gradients: parameters and state must
stay bit-for-bit identical. Loading must keep the per-parameter buffers arrays
of the parameter's shape and dtype (a 0-d parameter's too, which the optimizers
update in place) and turn only the scalar bookkeeping (``step``, ASGD's ``eta``
and ``mu``, NAdam's ``mu_product``) into Python floats.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from reference.nn import Parameter
from reference.optim import ASGD, SGD, Adagrad, Adam, NAdam, Optimizer, RMSprop

SHAPES = [(), (3, 4)]
SCALARS = {"step", "eta", "mu", "mu_product"}
CASES = [
    (Adam, dict(lr=0.01), "Adam"),
    (Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.01), "Adam-amsgrad"),
    (SGD, dict(lr=0.05, momentum=0.9), "SGD-momentum"),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True, dampening=0.0), "SGD-nesterov"),
    (RMSprop, dict(lr=0.01), "RMSprop"),
    (RMSprop, dict(lr=0.01, momentum=0.5, centered=True), "RMSprop-centered-momentum"),
    (Adagrad, dict(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1), "Adagrad"),
    (ASGD, dict(lr=0.05, t0=2.0), "ASGD"),
    (NAdam, dict(lr=0.01), "NAdam"),
]
IDS = [label for _, _, label in CASES]


def _state_of(opt: Optimizer, params: list[Parameter]) -> list[dict[str, Any]]:
    return [opt.state[p] for p in params]


def _assert_same_state(ours: dict[str, Any], theirs: dict[str, Any], context: str) -> None:
    assert list(ours) == list(theirs), context
    for key, value in ours.items():
        other = theirs[key]
        assert type(value) is type(other), f"{context} {key}: {type(value)} != {type(other)}"
        if isinstance(value, np.ndarray):
            assert value.shape == other.shape and value.dtype == other.dtype, f"{context} {key}"
        np.testing.assert_array_equal(value, other, err_msg=f"{context} {key}")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("cls", "kwargs"), [(c, k) for c, k, _ in CASES], ids=IDS)
def test_round_trip_continues_identically(cls: type[Optimizer], kwargs: dict, dtype: Any):
    rng = np.random.default_rng(7)
    params = [Parameter(rng.standard_normal(shape).astype(dtype)) for shape in SHAPES]
    opt = cls(params, **kwargs)

    def draw() -> list[np.ndarray]:
        return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]

    for _ in range(3):
        for p, g in zip(params, draw()):
            p.grad = g
        opt.step()

    clones = [Parameter(p.data.copy()) for p in params]
    fresh = cls(clones, **kwargs)
    fresh.load_state_dict(opt.state_dict())
    for p, clone in zip(params, clones):
        for key, value in fresh.state[clone].items():
            if key in SCALARS:
                assert type(value) is float, f"{key} should be a Python float, got {type(value)}"
            else:
                assert isinstance(value, np.ndarray), f"{key} should stay an array"
                assert value.shape == p.data.shape and value.dtype == p.data.dtype, key
        _assert_same_state(fresh.state[clone], opt.state[p], f"after load, shape {p.shape}")

    for step in range(5):
        for p, clone, g in zip(params, clones, draw()):
            p.grad, clone.grad = g, g.copy()
        opt.step()
        fresh.step()
        for p, clone in zip(params, clones):
            context = f"step {step}, shape {p.shape}"
            np.testing.assert_array_equal(clone.data, p.data, err_msg=context)
            assert clone.data.dtype == p.data.dtype
            _assert_same_state(fresh.state[clone], opt.state[p], context)


def test_loaded_state_does_not_alias_the_saved_dict():
    param = Parameter(np.array(0.5))
    opt = Adam([param], lr=0.1)
    param.grad = np.array(1.0)
    opt.step()
    saved = opt.state_dict()
    clone = Parameter(param.data.copy())
    fresh = Adam([clone], lr=0.1)
    fresh.load_state_dict(saved)
    clone.grad = np.array(1.0)
    fresh.step()
    assert saved["state"][0]["step"] == 1.0
    np.testing.assert_array_equal(saved["state"][0]["exp_avg"], opt.state[param]["exp_avg"])
    assert fresh.state[clone]["step"] == 2.0
