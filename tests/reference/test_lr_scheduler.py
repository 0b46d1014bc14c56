"""Learning-rate schedulers against torch.optim.lr_scheduler over 100 epochs.

Each case builds the same scheduler (same name, same arguments) on a reference
optimizer and on its torch twin, both with two parameter groups at different
lrs, steps both once per epoch and compares the lr of every group at every
epoch (and the momentum, for OneCycleLR), then checks a state_dict round trip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

import reference.optim as ropt
from harness.compare import compare_arrays, tolerance
from reference.nn import Parameter
from reference.optim import lr_scheduler as rls

EPOCHS = 100


class Warmup:
    """A callable object: LambdaLR saves its ``__dict__`` (functions are saved as None)."""

    def __init__(self, epochs: int):
        self.epochs = epochs

    def __call__(self, epoch: int) -> float:
        return min(1.0, (epoch + 1) / self.epochs) * 0.98**epoch


def _decay(epoch: int) -> float:
    return 0.97**epoch


def _plateau_metrics(seed: int, sign: float = 1.0) -> list[float]:
    """Improves for 20 epochs, then noisy plateaus with occasional small gains."""
    rng = np.random.default_rng(seed)
    trend = np.concatenate([np.linspace(1.0, 0.3, 20), np.full(EPOCHS - 20, 0.3)])
    steps = np.cumsum(rng.random(EPOCHS) < 0.05) * -0.01
    return list(sign * (trend + steps + 0.002 * rng.standard_normal(EPOCHS)))


@dataclass
class Case:
    name: str
    kwargs: dict[str, Any]
    optimizer: str = "SGD"
    metrics: list[float] | None = None
    id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("StepLR", dict(step_size=7, gamma=0.5), id="step"),
    Case("MultiStepLR", dict(milestones=[10, 30, 30, 75], gamma=0.3), id="multistep"),
    Case("ExponentialLR", dict(gamma=0.95), id="exponential"),
    Case("CosineAnnealingLR", dict(T_max=30, eta_min=1e-3), id="cosine-eta_min"),
    Case("CosineAnnealingLR", dict(T_max=7), id="cosine-short"),
    Case("LinearLR", dict(), id="linear-defaults"),
    Case("LinearLR", dict(start_factor=0.25, end_factor=0.9, total_iters=20), id="linear"),
    Case("LambdaLR", dict(lr_lambda=_decay), id="lambda-function"),
    Case("LambdaLR", dict(lr_lambda=[Warmup(10), _decay]), id="lambda-per-group"),
    Case("OneCycleLR", dict(max_lr=[0.5, 0.05], total_steps=EPOCHS), id="onecycle-sgd"),
    Case(
        "OneCycleLR",
        dict(
            max_lr=0.3,
            total_steps=EPOCHS,
            anneal_strategy="linear",
            three_phase=True,
            pct_start=0.25,
            div_factor=10.0,
            final_div_factor=100.0,
        ),
        id="onecycle-linear-three-phase",
    ),
    Case(
        "OneCycleLR",
        dict(max_lr=0.01, total_steps=EPOCHS),
        optimizer="Adam",
        id="onecycle-adam-betas",
    ),
    Case(
        "OneCycleLR",
        dict(max_lr=0.1, epochs=10, steps_per_epoch=10, cycle_momentum=False),
        id="onecycle-epochs",
    ),
    Case("ReduceLROnPlateau", dict(patience=3), metrics=_plateau_metrics(0), id="plateau"),
    Case(
        "ReduceLROnPlateau",
        dict(
            mode="max",
            factor=0.5,
            patience=2,
            threshold=0.01,
            threshold_mode="abs",
            cooldown=3,
            min_lr=[1e-3, 1e-4],
        ),
        metrics=_plateau_metrics(1, sign=-1.0),
        id="plateau-max-abs-cooldown",
    ),
    Case(
        "ReduceLROnPlateau",
        dict(factor=0.2, patience=0, min_lr=0.005, eps=1e-3),
        metrics=_plateau_metrics(2),
        id="plateau-min_lr-eps",
    ),
]


def optimizer_pair(kind: str) -> tuple[ropt.Optimizer, torch.optim.Optimizer]:
    """The same two-group optimizer, reference and torch (no gradients: lrs only)."""
    kwargs = dict(momentum=0.9) if kind == "SGD" else {}

    def groups(params):
        return [{"params": params[:1]}, {"params": params[1:], "lr": 0.01}]

    ours = getattr(ropt, kind)(
        groups([Parameter(np.zeros(2)), Parameter(np.zeros(3))]), lr=0.1, **kwargs
    )
    theirs = getattr(torch.optim, kind)(
        groups([torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)]),
        lr=0.1,
        **kwargs,
    )
    return ours, theirs


def _make(case: Case, optimizer: Any, module: Any) -> Any:
    return getattr(module, case.name)(optimizer, **case.kwargs)


def _momenta(optimizer: Any) -> list[float]:
    return [
        g["betas"][0] if "betas" in g else g.get("momentum", 0.0) for g in optimizer.param_groups
    ]


def _advance(case: Case, optimizer: Any, scheduler: Any, epoch: int) -> None:
    optimizer.step()  # torch warns when a scheduler steps before its optimizer
    if case.metrics is not None:
        scheduler.step(case.metrics[epoch])
    else:
        scheduler.step()


def _history(case: Case, optimizer: Any, scheduler: Any, start: int, stop: int):
    lrs, momenta = [], []
    for epoch in range(start, stop):
        _advance(case, optimizer, scheduler, epoch)
        lrs.append(list(scheduler.get_last_lr()))
        momenta.append(_momenta(optimizer))
    return np.array(lrs), np.array(momenta)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lr_sequence_matches_torch_over_100_epochs(case):
    opt, torch_opt = optimizer_pair(case.optimizer)
    sched, torch_sched = _make(case, opt, rls), _make(case, torch_opt, torch.optim.lr_scheduler)
    tol = tolerance(np.float64)
    assert compare_arrays("epoch 0", sched.get_last_lr(), torch_sched.get_last_lr(), tol).ok
    lrs, momenta = _history(case, opt, sched, 0, EPOCHS - 1)
    torch_lrs, torch_momenta = _history(case, torch_opt, torch_sched, 0, EPOCHS - 1)
    for name, ours, theirs in [("lr", lrs, torch_lrs), ("momentum", momenta, torch_momenta)]:
        c = compare_arrays(name, ours, theirs, tol)
        assert c.ok, f"{case.id}: {c} (rows are epochs 1..{EPOCHS - 1})"
    assert [g["lr"] for g in opt.param_groups] == list(sched.get_last_lr())
    assert sched.last_epoch == torch_sched.last_epoch
    assert len(np.unique(lrs[:, 0])) > 1, "the schedule never changed the lr: a vacuous case"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_state_dict_round_trip_continues_the_schedule(case):
    opt = optimizer_pair(case.optimizer)[0]
    sched = _make(case, opt, rls)
    _history(case, opt, sched, 0, 40)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved_sched
    fresh_opt = optimizer_pair(case.optimizer)[0]
    fresh = _make(case, fresh_opt, rls)  # schedulers are built before the optimizer loads
    fresh_opt.load_state_dict(saved_opt)
    fresh.load_state_dict(saved_sched)
    before, _ = _history(case, opt, sched, 40, EPOCHS - 1)
    after, _ = _history(case, fresh_opt, fresh, 40, EPOCHS - 1)
    np.testing.assert_array_equal(after, before)


def test_lambda_lr_saves_callable_objects_but_not_functions():
    opt = optimizer_pair("SGD")[0]
    warmup = Warmup(10)
    sched = rls.LambdaLR(opt, [warmup, _decay])
    assert sched.state_dict()["lr_lambdas"] == [{"epochs": 10}, None]
    other = Warmup(3)
    rls.LambdaLR(optimizer_pair("SGD")[0], [other, _decay]).load_state_dict(sched.state_dict())
    assert other.epochs == 10


def test_cosine_recursion_agrees_with_the_closed_form_in_exact_arithmetic():
    opt = optimizer_pair("SGD")[0]
    sched = rls.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    for _ in range(EPOCHS - 1):
        opt.step()
        sched.step()
        c = compare_arrays("lr", sched.get_last_lr(), sched.closed_form_lr(), tolerance(np.float64))
        assert c.ok, f"epoch {sched.last_epoch}: {c}"
        if sched.last_epoch == 20:  # past T_max the lr climbs back: period 2 * T_max
            assert math.isclose(sched.get_last_lr()[0], 0.1)


def test_one_cycle_refuses_to_step_past_total_steps():
    opt = optimizer_pair("SGD")[0]
    sched = rls.OneCycleLR(opt, max_lr=0.1, total_steps=3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="Tried to step 4 times"):
        sched.step()


INVALID = [
    ("LinearLR", dict(start_factor=0.0), ValueError, "Starting multiplicative factor"),
    ("LinearLR", dict(end_factor=1.5), ValueError, "Ending multiplicative factor"),
    ("LambdaLR", dict(lr_lambda=[_decay]), ValueError, "Expected 2 lr_lambdas"),
    ("OneCycleLR", dict(max_lr=0.1), ValueError, "total_steps OR"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=0), ValueError, "positive integer total_steps"),
    ("OneCycleLR", dict(max_lr=0.1, total_steps=10, pct_start=1.5), ValueError, "pct_start"),
    (
        "OneCycleLR",
        dict(max_lr=0.1, total_steps=10, anneal_strategy="step"),
        ValueError,
        "anneal_strategy",
    ),
    ("OneCycleLR", dict(max_lr=[0.1, 0.2, 0.3], total_steps=10), ValueError, "same length"),
    ("ReduceLROnPlateau", dict(factor=1.0), ValueError, "Factor should be < 1.0"),
    ("ReduceLROnPlateau", dict(mode="minimum"), ValueError, "unknown"),
    ("ReduceLROnPlateau", dict(threshold_mode="relative"), ValueError, "unknown"),
    ("ReduceLROnPlateau", dict(min_lr=[0.1]), ValueError, "expected 2 min_lrs"),
]


@pytest.mark.parametrize(("name", "kwargs", "error", "match"), INVALID)
def test_invalid_arguments_raise_like_torch(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        getattr(rls, name)(optimizer_pair("SGD")[0], **kwargs)
    with pytest.raises(error):
        getattr(torch.optim.lr_scheduler, name)(optimizer_pair("SGD")[1], **kwargs)


def test_one_cycle_needs_an_optimizer_with_momentum():
    opt = ropt.Adagrad([Parameter(np.zeros(2))])
    with pytest.raises(ValueError, match="momentum or beta1"):
        rls.OneCycleLR(opt, max_lr=0.1, total_steps=10)


def test_a_scheduler_needs_a_reference_optimizer():
    with pytest.raises(TypeError, match="is not an Optimizer"):
        rls.StepLR(object(), step_size=1)


def test_resuming_needs_initial_lr():
    with pytest.raises(KeyError, match="initial_lr"):
        rls.StepLR(optimizer_pair("SGD")[0], step_size=2, last_epoch=5)
