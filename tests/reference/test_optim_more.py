"""ASGD, Rprop and Adafactor against torch.optim, step for step; SGD/Adam's implementation flags.

Each case runs the reference optimizer and its torch twin over identical
parameters (1-d, 2-d, 3-d and 0-d) for 20 steps with fresh random gradients
each step (a parameter's gradient sometimes ``None``: it must then be skipped),
and compares every parameter and every state entry after every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from reference.nn import Parameter
from reference.optim.adafactor import Adafactor
from reference.optim.adam import Adam, AdamW
from reference.optim.asgd import ASGD
from reference.optim.rprop import Rprop
from reference.optim.sgd import SGD
from tests.reference.optim_helpers import OptimPair, run_and_compare, torch_scalar_dtype

SHAPES = [(5,), (3, 4), (2, 3, 4), ()]
OURS = {"ASGD": ASGD, "Rprop": Rprop, "Adafactor": Adafactor, "SGD": SGD, "Adam": Adam}
OURS["AdamW"] = AdamW

CASES = [
    ("ASGD", dict(), "defaults"),
    ("ASGD", dict(lr=0.05, lambd=0.01, alpha=0.6, t0=5.0, weight_decay=0.05), "averaging-wd"),
    ("ASGD", dict(lr=0.02, t0=3.0, maximize=True), "maximize"),
    ("Rprop", dict(), "defaults"),
    ("Rprop", dict(lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-3, 0.05)), "clamped"),
    ("Rprop", dict(lr=0.005, maximize=True), "maximize"),
    ("Adafactor", dict(), "defaults"),
    ("Adafactor", dict(lr=0.1, weight_decay=0.05, d=2.0), "wd-clip2"),
    ("Adafactor", dict(lr=0.05, beta2_decay=-0.5, eps=(1e-20, 1e-2)), "eps1-beta2_decay"),
    ("Adafactor", dict(lr=0.03, weight_decay=0.1, maximize=True), "maximize-wd"),
]
IDS = [f"{name}-{label}" for name, _, label in CASES]


class Pair(OptimPair):
    """A reference optimizer and its torch twin (by name) over identical parameters."""

    ordered_state = True  # the state keys in torch's order, too

    def __init__(
        self, name: str, seed: int, dtype: Any, shapes=SHAPES, torch_flags=None, **kwargs: Any
    ):
        super().__init__(name, shapes, seed, dtype)
        self.opt = OURS[name](self.ours, **kwargs)
        # foreach=False: torch's single-tensor loop, the order the reference follows
        flags = dict(foreach=False) if torch_flags is None else torch_flags
        self.torch_opt = getattr(torch.optim, name)(self.theirs, **kwargs, **flags)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(("name", "kwargs", "label"), CASES, ids=IDS)
def test_matches_torch_step_for_step_float64(name, kwargs, label, seed):
    run_and_compare(Pair(name, seed, np.float64, **kwargs))


@pytest.mark.parametrize(("name", "kwargs", "label"), CASES, ids=IDS)
def test_matches_torch_step_for_step_float32(name, kwargs, label):
    run_and_compare(Pair(name, 7, np.float32, **kwargs))


def test_the_cases_exercise_what_they_claim():
    """Averaging really averages, Rprop's clamp binds, Adafactor's clipping divides."""
    pair = Pair("ASGD", 3, np.float64, lr=0.05, lambd=0.01, t0=5.0)
    run_and_compare(pair, steps=10)
    state = pair.opt.state[pair.ours[0]]
    assert state["mu"] < 1 and not np.allclose(state["ax"], pair.ours[0].data)
    pair = Pair("Rprop", 3, np.float64, lr=0.02, etas=(0.3, 1.5), step_sizes=(1e-3, 0.05))
    for _ in range(10):
        pair.draw_grads(none_probability=0.0)
        for p in pair.ours + pair.theirs:
            p.grad = abs(p.grad) if isinstance(p.grad, np.ndarray) else p.grad.abs()
        pair.step()
    assert np.all(pair.opt.state[pair.ours[1]]["step_size"] == 0.05)
    assert not pair.mismatches("Rprop same signs")
    # Adafactor at step 1 has U = sign(g) exactly (RMS 1): d = 1 never clips it, but
    # eps1 large enough floors the variance and shrinks U
    pair = Pair("Adafactor", 3, np.float64, shapes=[(3, 4)], eps=(0.5, 1e-3))
    run_and_compare(pair, steps=3)


def test_state_dict_round_trip_and_torchs_state_dict():
    # the 0-d parameter included: its buffers must stay 0-d arrays after loading
    shapes = SHAPES
    pair = Pair("Adafactor", 5, np.float64, shapes=shapes, lr=0.05, weight_decay=0.01)
    for _ in range(4):
        pair.draw_grads(none_probability=0.0)
        with torch_scalar_dtype(np.float64):
            pair.torch_opt.step()  # only torch moves
    for ours, theirs in zip(pair.ours, pair.theirs):
        ours.data = theirs.detach().numpy().copy()
    pair.opt.load_state_dict(pair.torch_opt.state_dict())
    run_and_compare(pair, steps=5)
    for name, kwargs in [("ASGD", dict(t0=2.0)), ("Rprop", dict())]:
        pair = Pair(name, 6, np.float64, shapes=shapes, **kwargs)
        for _ in range(4):
            pair.draw_grads(none_probability=0.0)
            pair.step()
        clones = [Parameter(p.data.copy()) for p in pair.ours]
        fresh = OURS[name](clones, **kwargs)
        fresh.load_state_dict(pair.torch_opt.state_dict())
        for clone, p in zip(clones, pair.ours):
            clone.grad = p.grad = np.ones_like(p.data)
        fresh.step()
        pair.opt.step()
        for clone, p in zip(clones, pair.ours):
            np.testing.assert_allclose(clone.data, p.data, rtol=1e-12, atol=1e-12)


def test_adafactor_eps1_none_follows_the_groups_first_parameter_in_torch():
    """A torch quirk the reference does not copy: ``eps=(None, ...)`` in a mixed-dtype group.

    Torch resolves eps1 once per group step, from the first parameter it meets;
    a float64 parameter after a float32 one then gets float32's epsilon.
    """
    theirs = [torch.zeros(3, dtype=torch.float32), torch.zeros(3, dtype=torch.float64)]
    ours = [Parameter(np.zeros(3, np.float32)), Parameter(np.zeros(3))]
    opt, torch_opt = Adafactor(ours, lr=0.5), torch.optim.Adafactor(theirs, lr=0.5)
    for p in ours:
        p.grad = np.full(3, 1e-9, dtype=p.data.dtype)
    for t in theirs:
        t.grad = torch.full((3,), 1e-9, dtype=t.dtype)
    opt.step()
    torch_opt.step()
    # g / max(|g|, eps1): float64's eps keeps 1e-9 / 1e-9 = 1, float32's floors it at 1.2e-7
    float32_eps = float(np.finfo(np.float32).eps)
    expected_torch = -1e-3 * 0.5 * (1e-9 / float32_eps)
    np.testing.assert_allclose(theirs[1].numpy(), expected_torch, rtol=1e-6)
    np.testing.assert_allclose(ours[1].data, -1e-3 * 0.5, rtol=1e-12)


INVALID = [
    (ASGD, dict(lr=-0.1), "Invalid learning rate"),
    (ASGD, dict(weight_decay=-1.0), "Invalid weight_decay"),
    (Rprop, dict(lr=-0.1), "Invalid learning rate"),
    (Rprop, dict(etas=(1.5, 1.2)), "Invalid eta values"),
    (Rprop, dict(etas=(0.5, 0.9)), "Invalid eta values"),
    (Adafactor, dict(lr=-1.0), "Learning rate should be >= 0"),
    (Adafactor, dict(beta2_decay=0.5), "beta2_decay should be <= 0"),
    (Adafactor, dict(eps=(-1.0, 1e-3)), "epsilon1 should be >= 0"),
    (Adafactor, dict(eps=(None, -1e-3)), "epsilon2 should be >= 0"),
    (Adafactor, dict(d=0.5), "Clipping threshold d should be >= 1"),
    (Adafactor, dict(weight_decay=-0.1), "weight_decay should be >= 0"),
]


@pytest.mark.parametrize(("cls", "kwargs", "match"), INVALID)
def test_invalid_arguments_raise_like_torch(cls, kwargs, match):
    with pytest.raises(ValueError, match=match):
        cls([Parameter(np.zeros(2))], **kwargs)
    with pytest.raises(ValueError):
        getattr(torch.optim, cls.__name__)([torch.zeros(2, requires_grad=True)], **kwargs)


TORCH_PATHS = [
    ("ASGD", dict(lr=0.05, lambd=0.01, t0=5.0, weight_decay=0.05), dict(foreach=True)),
    ("Rprop", dict(lr=0.02, maximize=True), dict(foreach=True)),
    ("Adafactor", dict(lr=0.1, weight_decay=0.05), dict(foreach=True)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), dict(foreach=True)),
    ("SGD", dict(lr=0.05, momentum=0.5, dampening=0.1), dict(fused=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.01), dict(foreach=True)),
    ("Adam", dict(lr=0.01, maximize=True), dict(fused=True)),
    ("AdamW", dict(lr=0.01, amsgrad=True), dict(fused=True)),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "flags"), TORCH_PATHS, ids=[f"{n}-{f}" for n, _, f in TORCH_PATHS]
)
def test_torchs_foreach_and_fused_paths_follow_the_reference_too(name, kwargs, flags):
    """What the accepted-and-ignored flags select in torch is the same update (float64, CPU)."""
    run_and_compare(Pair(name, 4, np.float64, shapes=SHAPES[:3], torch_flags=flags, **kwargs))


FLAGS = [
    (SGD, dict(foreach=True, differentiable=True)),
    (SGD, dict(fused=True)),
    (Adam, dict(foreach=True, capturable=True)),
    (Adam, dict(fused=True, amsgrad=True)),
    (AdamW, dict(differentiable=True, capturable=True, foreach=False)),
    (ASGD, dict(foreach=True, differentiable=True, capturable=True)),
    (Rprop, dict(foreach=True, differentiable=True, capturable=True)),
    (Adafactor, dict(foreach=True)),
]


@pytest.mark.parametrize(("cls", "flags"), FLAGS, ids=[f"{c.__name__}-{f}" for c, f in FLAGS])
def test_implementation_flags_are_accepted_and_change_nothing(cls, flags):
    start = np.random.default_rng(0).standard_normal((3, 4))
    plain, flagged = Parameter(start.copy()), Parameter(start.copy())
    kwargs = {k: v for k, v in flags.items() if k == "amsgrad"}
    opt = cls([plain], **kwargs)
    other = cls([flagged], **flags)
    for k in range(3):
        plain.grad = flagged.grad = np.full((3, 4), 0.1 * (k + 1))
        opt.step()
        other.step()
    np.testing.assert_array_equal(flagged.data, plain.data)
    assert not (set(flags) - {"amsgrad"}) & set(other.param_groups[0])


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
@pytest.mark.parametrize(
    ("flags", "match"),
    [
        (dict(fused=True, foreach=True), "cannot be `True` together"),
        (dict(fused=True, differentiable=True), "does not support `differentiable`"),
    ],
)
def test_flag_combinations_torch_refuses_are_refused(cls, flags, match):
    with pytest.raises(RuntimeError, match=match):
        cls([Parameter(np.zeros(2))], **flags)
    with pytest.raises(RuntimeError, match=match):
        getattr(torch.optim, cls.__name__)([torch.zeros(2, requires_grad=True)], **flags)
