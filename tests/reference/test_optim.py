"""Optimizers against torch.optim, step for step: parameters and every state tensor.

One table drives the tests: the reference class, torch's class, and a hypothesis
strategy over its hyperparameters with every flag. Gradients are drawn from a
seed, with a parameter's gradient sometimes ``None`` (it must then be skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.optim as ropt
from reference.nn import Parameter
from tests.reference.optim_helpers import (
    OptimPair,
    compare_state,  # noqa: F401 - test_optim_lbfgs imports it from here
    run_and_compare,
    torch_scalar_dtype,
)


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


def _zero_or(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), _floats(lo, hi))


_BETAS = st.tuples(_floats(0.0, 0.95), _floats(0.5, 0.999))
_EPS = st.sampled_from([1e-8, 1e-6, 1e-3])


@st.composite
def _sgd_kwargs(draw: st.DrawFn) -> dict[str, Any]:
    nesterov = draw(st.booleans())
    momentum = draw(_floats(0.1, 0.95) if nesterov else _zero_or(0.1, 0.95))
    return dict(
        lr=draw(_floats(1e-3, 0.2)),
        momentum=momentum,
        dampening=0.0 if nesterov else draw(_zero_or(0.0, 0.5)),
        weight_decay=draw(_zero_or(1e-4, 0.1)),
        nesterov=nesterov,
        maximize=draw(st.booleans()),
    )


def _adam_like(**extra: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        dict(
            lr=_floats(1e-4, 0.05),
            betas=_BETAS,
            eps=_EPS,
            weight_decay=_zero_or(1e-4, 0.1),
            maximize=st.booleans(),
            **extra,
        )
    )


@dataclass(frozen=True)
class OptimCase:
    ours: type
    theirs: type
    kwargs: st.SearchStrategy[dict[str, Any]]


OPTIMIZERS = {
    "SGD": OptimCase(ropt.SGD, torch.optim.SGD, _sgd_kwargs()),
    "Adam": OptimCase(
        ropt.Adam,
        torch.optim.Adam,
        _adam_like(amsgrad=st.booleans(), decoupled_weight_decay=st.booleans()),
    ),
    "AdamW": OptimCase(ropt.AdamW, torch.optim.AdamW, _adam_like(amsgrad=st.booleans())),
    "Adamax": OptimCase(ropt.Adamax, torch.optim.Adamax, _adam_like()),
    "NAdam": OptimCase(
        ropt.NAdam,
        torch.optim.NAdam,
        _adam_like(momentum_decay=_floats(0.0, 0.05), decoupled_weight_decay=st.booleans()),
    ),
    "RAdam": OptimCase(
        ropt.RAdam, torch.optim.RAdam, _adam_like(decoupled_weight_decay=st.booleans())
    ),
    "RMSprop": OptimCase(
        ropt.RMSprop,
        torch.optim.RMSprop,
        st.fixed_dictionaries(
            dict(
                lr=_floats(1e-4, 0.02),
                alpha=_floats(0.5, 0.999),
                eps=_EPS,
                weight_decay=_zero_or(1e-4, 0.1),
                momentum=_zero_or(0.1, 0.95),
                centered=st.booleans(),
                maximize=st.booleans(),
            )
        ),
    ),
    "Adagrad": OptimCase(
        ropt.Adagrad,
        torch.optim.Adagrad,
        st.fixed_dictionaries(
            dict(
                lr=_floats(1e-3, 0.5),
                lr_decay=_zero_or(1e-3, 0.5),
                weight_decay=_zero_or(1e-4, 0.1),
                initial_accumulator_value=_zero_or(0.01, 1.0),
                eps=st.sampled_from([1e-10, 1e-6, 1e-3]),
                maximize=st.booleans(),
            )
        ),
    ),
    "Adadelta": OptimCase(
        ropt.Adadelta,
        torch.optim.Adadelta,
        st.fixed_dictionaries(
            dict(
                lr=_floats(0.1, 1.0),
                rho=_floats(0.5, 0.99),
                eps=st.sampled_from([1e-6, 1e-4]),
                weight_decay=_zero_or(1e-4, 0.1),
                maximize=st.booleans(),
            )
        ),
    ),
}
NAMES = list(OPTIMIZERS)

_SHAPES = st.lists(st.lists(st.integers(1, 4), max_size=3).map(tuple), min_size=1, max_size=3)


# -- running both ------------------------------------------------------------------


class Pair(OptimPair):
    """A reference optimizer from the table and its torch twin over identical parameters."""

    def __init__(
        self, name: str, shapes: list[tuple], seed: int, dtype: Any, make_groups=None, **kwargs: Any
    ):
        super().__init__(name, shapes, seed, dtype)
        case = OPTIMIZERS[name]
        groups = make_groups or (lambda params: params)
        self.opt = case.ours(groups(self.ours), **kwargs)
        # foreach=False pins torch to the single-tensor loop (CPU's default anyway)
        self.torch_opt = case.theirs(groups(self.theirs), **kwargs, foreach=False)


# -- the step-for-step comparison ----------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), shapes=_SHAPES, seed=st.integers(0, 2**32 - 1))
def test_matches_torch_step_for_step_float64(name, data, shapes, seed):
    kwargs = data.draw(OPTIMIZERS[name].kwargs, label="kwargs")
    run_and_compare(Pair(name, shapes, seed, np.float64, **kwargs), context=f"{name}({kwargs})")


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_two_param_groups_with_their_own_options(name, data, seed):
    base = data.draw(OPTIMIZERS[name].kwargs, label="defaults")
    own = data.draw(OPTIMIZERS[name].kwargs, label="group 1 options")
    # Adagrad's state is made in the constructor from the constructor's
    # initial_accumulator_value, so torch ignores a group's own value (see
    # test_torch_adagrad_ignores_a_groups_initial_accumulator_value)
    own.pop("initial_accumulator_value", None)

    def groups(params):
        return [{"params": params[:2]}, {"params": params[2:], **own}]

    pair = Pair(name, [(3,), (2, 2), (4,)], seed, np.float64, make_groups=groups, **base)
    run_and_compare(pair, context=f"{name}: defaults {base}, group 1 {own}")


@pytest.mark.parametrize("name", NAMES)
def test_matches_torch_float32_with_defaults(name):
    run_and_compare(Pair(name, [(3, 4), (4,)], 7, np.float32), context=name)


def test_torch_nadam_keeps_mu_product_in_float32_by_default():
    """A torch quirk the reference does not copy: float64 parameters, float32 mu_product.

    With the default dtype float32, torch's ``mu_product`` is the float32
    running product (each factor and product rounded to float32); ours is the
    float64 product, which torch reproduces under ``set_default_dtype(float64)``.
    """
    ours = Parameter(np.zeros(3))
    theirs = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt, torch_opt = ropt.NAdam([ours]), torch.optim.NAdam([theirs], foreach=False)
    product32 = np.float32(1.0)
    for t in range(1, 11):
        ours.grad, theirs.grad = np.ones(3), torch.ones(3, dtype=torch.float64)
        opt.step()
        torch_opt.step()  # default dtype float32
        mu = 0.9 * (1.0 - 0.5 * 0.96 ** (t * 4e-3))
        product32 = np.float32(product32 * np.float32(mu))
        torch_product = torch_opt.state[theirs]["mu_product"]
        assert torch_product.dtype == torch.float32
        assert torch_product.item() == float(product32)
    assert opt.state[ours]["mu_product"] != float(product32)
    assert abs(opt.state[ours]["mu_product"] / float(product32) - 1) < 1e-6


def test_torch_adagrad_ignores_a_groups_initial_accumulator_value():
    """A torch quirk the reference does not copy: per-group initial_accumulator_value.

    Torch fills every ``sum`` in the constructor from the constructor's
    argument, so a group's own ``initial_accumulator_value`` has no effect; the
    reference honours the group's option, as for every other option.
    """
    a, b = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    ta, tb = torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    opt = ropt.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 0.5}])
    torch_opt = torch.optim.Adagrad(
        [{"params": [ta]}, {"params": [tb], "initial_accumulator_value": 0.5}]
    )
    np.testing.assert_array_equal(opt.state[b]["sum"], [0.5, 0.5])
    np.testing.assert_array_equal(torch_opt.state[tb]["sum"].numpy(), [0.0, 0.0])


def test_a_planted_error_is_caught():
    """Teeth: an lr wrong by one part in a million is a mismatch within 20 steps."""
    pair = Pair("Adam", [(5,)], 3, np.float64, lr=0.01)
    pair.opt.param_groups[0]["lr"] = 0.01 * (1 + 1e-6)
    with pytest.raises(AssertionError, match=r"mismatch|max \|got - expected\|"):
        run_and_compare(pair)


# -- checkpoints ---------------------------------------------------------------------


def _kwargs_example(name: str) -> dict[str, Any]:
    flags = {
        "SGD": dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
        "Adam": dict(lr=0.01, amsgrad=True, weight_decay=0.01),
        "AdamW": dict(lr=0.01, amsgrad=True),
        "Adamax": dict(lr=0.01, weight_decay=0.01),
        "NAdam": dict(lr=0.01, decoupled_weight_decay=True, weight_decay=0.01),
        "RAdam": dict(lr=0.01, weight_decay=0.01),
        "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
        "Adagrad": dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
        "Adadelta": dict(lr=1.0, weight_decay=0.01),
    }
    return flags[name]


@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_identically(name):
    kwargs = _kwargs_example(name)
    pair = Pair(name, [(3,), (2, 2)], 11, np.float64, **kwargs)
    for _ in range(5):
        pair.draw_grads(none_probability=0.0)
        pair.step()
    saved = pair.opt.state_dict()
    assert sorted(saved) == ["param_groups", "state"]
    assert saved["param_groups"][0]["params"] == [0, 1]
    assert set(saved["state"]) == set(pair.torch_opt.state_dict()["state"])
    # a fresh optimizer over copies of the parameters picks up where the first left off
    clones = [Parameter(p.data.copy()) for p in pair.ours]
    fresh = OPTIMIZERS[name].ours(clones, **kwargs)
    fresh.load_state_dict(saved)
    saved["state"].clear()  # the loaded state must not alias the dict we handed in
    for _ in range(5):
        pair.draw_grads(none_probability=0.0)
        for clone, p in zip(clones, pair.ours):
            clone.grad = p.grad.copy()
        pair.opt.step()
        fresh.step()
        for clone, p in zip(clones, pair.ours):
            np.testing.assert_array_equal(clone.data, p.data)


@pytest.mark.parametrize("name", NAMES)
def test_loads_torchs_state_dict_and_follows_it(name):
    kwargs = _kwargs_example(name)
    pair = Pair(name, [(3,), (2, 2)], 5, np.float64, **kwargs)
    for _ in range(4):
        pair.draw_grads(none_probability=0.0)
        with torch_scalar_dtype(np.float64):
            pair.torch_opt.step()  # only torch moves
    for ours, theirs in zip(pair.ours, pair.theirs):
        ours.data = theirs.detach().numpy().copy()
    pair.opt.load_state_dict(pair.torch_opt.state_dict())
    run_and_compare(pair, steps=5, context=name)


# -- construction and errors ----------------------------------------------------------

INVALID = [
    (ropt.SGD, dict(lr=-0.1), "Invalid learning rate"),
    (ropt.SGD, dict(momentum=-0.5), "Invalid momentum"),
    (ropt.SGD, dict(weight_decay=-1e-3), "Invalid weight_decay"),
    (ropt.SGD, dict(nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (ropt.SGD, dict(nesterov=True, momentum=0.9, dampening=0.1), "zero dampening"),
    (ropt.Adam, dict(betas=(1.0, 0.999)), "Invalid beta parameter at index 0"),
    (ropt.Adam, dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1"),
    (ropt.Adam, dict(eps=-1e-8), "Invalid epsilon"),
    (ropt.AdamW, dict(lr=-1.0), "Invalid learning rate"),
    (ropt.Adamax, dict(betas=(0.9, 1.0)), "index 1"),
    (ropt.NAdam, dict(momentum_decay=-1.0), "Invalid momentum_decay"),
    (ropt.RAdam, dict(weight_decay=-0.1), "Invalid weight_decay"),
    (ropt.RMSprop, dict(alpha=-0.1), "Invalid alpha"),
    (ropt.RMSprop, dict(momentum=-0.1), "Invalid momentum"),
    (ropt.Adagrad, dict(lr_decay=-0.1), "Invalid lr_decay"),
    (ropt.Adagrad, dict(initial_accumulator_value=-1.0), "Invalid initial_accumulator_value"),
    (ropt.Adadelta, dict(rho=1.5), "Invalid rho"),
    (ropt.LBFGS, dict(lr=-1.0), "Invalid learning rate"),
    (ropt.LBFGS, dict(line_search_fn="wolfe"), "line_search_fn"),
]


@pytest.mark.parametrize(("cls", "kwargs", "match"), INVALID)
def test_invalid_arguments_raise_like_torch(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([Parameter(np.zeros(2))], **kwargs)
    theirs = getattr(torch.optim, cls.__name__)
    if kwargs.get("line_search_fn") is None:  # torch only checks line_search_fn in step()
        with pytest.raises(ValueError):
            theirs([torch.zeros(2, requires_grad=True)], **kwargs)


def test_parameter_lists_are_checked():
    p = Parameter(np.zeros(2))
    with pytest.raises(ValueError, match="empty parameter list"):
        ropt.SGD([])
    with pytest.raises(TypeError, match="single Parameter"):
        ropt.SGD(p)
    with pytest.raises(TypeError, match="can only optimize Parameters"):
        ropt.SGD([np.zeros(2)])
    with pytest.raises(ValueError, match="more than one parameter group"):
        ropt.SGD([{"params": [p]}, {"params": [p]}])
    with pytest.raises(ValueError, match="parameter groups"):
        ropt.LBFGS([{"params": [p]}, {"params": [Parameter(np.zeros(1))]}])


def test_accepts_a_generator_and_fills_group_defaults():
    from reference.nn import Linear

    model = Linear(3, 2, rng=0)
    opt = ropt.Adam(model.parameters(), lr=0.1)
    assert [len(g["params"]) for g in opt.param_groups] == [2]
    assert opt.param_groups[0]["betas"] == (0.9, 0.999)
    assert opt.param_groups[0]["lr"] == 0.1
    assert "Parameter Group 0" in repr(opt)


def test_step_returns_the_closures_loss():
    p = Parameter(np.ones(2))

    def closure():
        p.grad = 2 * p.data
        return float(np.sum(p.data**2))

    assert ropt.SGD([p], lr=0.25).step(closure) == 2.0
    np.testing.assert_array_equal(p.data, [0.5, 0.5])


def test_zero_grad_to_none_or_to_zeros():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(3))
    opt = ropt.SGD([a, b])
    a.grad = np.ones(2)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad, [0.0, 0.0])
    assert b.grad is None
    opt.zero_grad()
    assert a.grad is None


def test_parameters_without_gradient_keep_value_and_get_no_state():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = ropt.Adam([a, b], lr=0.1)
    a.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(b.data, [1.0, 1.0])
    assert list(opt.state_dict()["state"]) == [0]
