"""``lr_scheduler_more``'s and ``lr_scheduler_composite``'s schedulers against torch, 100 epochs.

Each case builds the same scheduler on a reference optimizer and on its torch
twin (two parameter groups at different lrs), steps both once per epoch and
compares the lr of every group at every epoch, and the momentum (SGD's
``momentum`` or Adam's ``beta1``, which CyclicLR cycles), then checks a
state_dict round trip. Combinators are built from the base module's schedulers.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import reference.optim as ropt
from harness.compare import compare_arrays, tolerance
from reference.nn import Parameter
from reference.optim import lr_scheduler as rls
from reference.optim import lr_scheduler_composite as rlc
from reference.optim import lr_scheduler_more as rlm
from tests.reference.test_lr_scheduler import optimizer_pair

EPOCHS = 100
# the base module's schedulers, then these modules' (which the base may re-export too)
_NAMES = {name: getattr(rls, name) for name in rls.__all__}
_NAMES.update({name: getattr(module, name) for module in (rlm, rlc) for name in module.__all__})
OURS = types.SimpleNamespace(**_NAMES)
THEIRS = torch.optim.lr_scheduler


class Factor:
    """A callable object: its ``__dict__`` is checkpointed (plain functions are not)."""

    def __init__(self, value: float):
        self.value = value

    def __call__(self, x: float) -> float:
        return self.value**x


def _shrink(epoch: int) -> float:
    return 0.95 if epoch % 3 else 1.02


def _sequential(m: Any, opt: Any) -> Any:
    warmup = m.LinearLR(opt, start_factor=0.1, total_iters=10)
    return m.SequentialLR(opt, [warmup, m.CosineAnnealingLR(opt, T_max=40)], milestones=[10])


def _sequential_three(m: Any, opt: Any) -> Any:
    parts = [
        m.ConstantLR(opt, factor=0.5, total_iters=3),
        m.ExponentialLR(opt, gamma=0.9),
        m.StepLR(opt, step_size=5, gamma=0.5),
    ]
    return m.SequentialLR(opt, parts, milestones=[20, 50])


def _sequential_restarts(m: Any, opt: Any) -> Any:
    parts = [
        m.MultiStepLR(opt, milestones=[0, 5, 8], gamma=0.5),
        m.PolynomialLR(opt, total_iters=20, power=0.5),
        m.CosineAnnealingWarmRestarts(opt, T_0=7),
        m.MultiplicativeLR(opt, lr_lambda=_shrink),
    ]
    return m.SequentialLR(opt, parts, milestones=[15, 40, 80])


def _chained(m: Any, opt: Any) -> Any:
    parts = [m.ConstantLR(opt, factor=0.1, total_iters=2), m.ExponentialLR(opt, gamma=0.9)]
    return m.ChainedScheduler(parts)


def _chained_cosine(m: Any, opt: Any) -> Any:
    parts = [
        m.LinearLR(opt, start_factor=0.2, total_iters=15),
        m.CosineAnnealingLR(opt, T_max=25, eta_min=1e-4),
        m.MultiStepLR(opt, milestones=[30, 60], gamma=0.3),
    ]
    return m.ChainedScheduler(parts, optimizer=opt)


@dataclass
class Case:
    id: str
    build: Callable[[Any, Any], Any]  # (scheduler namespace, optimizer) -> scheduler
    optimizer: str = "SGD"


def _simple(name: str, **kwargs: Any) -> Callable[[Any, Any], Any]:
    return lambda m, opt: getattr(m, name)(opt, **kwargs)


CASES = [
    Case("multiplicative", _simple("MultiplicativeLR", lr_lambda=_shrink)),
    Case(
        "multiplicative-per-group", _simple("MultiplicativeLR", lr_lambda=[Factor(0.999), _shrink])
    ),
    Case("constant-defaults", _simple("ConstantLR")),
    Case("constant", _simple("ConstantLR", factor=0.5, total_iters=30)),
    Case("polynomial-defaults", _simple("PolynomialLR")),
    Case("polynomial", _simple("PolynomialLR", total_iters=60, power=2.0)),
    Case("warm-restarts", _simple("CosineAnnealingWarmRestarts", T_0=10)),
    Case(
        "warm-restarts-mult",
        _simple("CosineAnnealingWarmRestarts", T_0=5, T_mult=2, eta_min=1e-3),
    ),
    Case("sequential-warmup-cosine", _sequential),
    Case("sequential-three", _sequential_three),
    Case("sequential-restarts", _sequential_restarts, optimizer="Adam"),
    Case("chained", _chained),
    Case("chained-three", _chained_cosine),
    Case("cyclic", _simple("CyclicLR", base_lr=0.01, max_lr=0.1, step_size_up=10)),
    Case(
        "cyclic-triangular2-asymmetric",
        _simple(
            "CyclicLR",
            base_lr=[0.01, 0.001],
            max_lr=[0.1, 0.02],
            step_size_up=7,
            step_size_down=13,
            mode="triangular2",
            base_momentum=[0.7, 0.8],
            max_momentum=0.95,
        ),
    ),
    Case(
        "cyclic-exp-range-adam",
        _simple(
            "CyclicLR", base_lr=1e-3, max_lr=0.05, step_size_up=8, mode="exp_range", gamma=0.97
        ),
        optimizer="Adam",
    ),
    Case(
        "cyclic-scale-fn-iterations",
        _simple(
            "CyclicLR",
            base_lr=0.01,
            max_lr=0.1,
            step_size_up=6,
            scale_fn=Factor(0.99),
            scale_mode="iterations",
            mode="no-such-mode",  # ignored: a scale_fn replaces the mode
        ),
    ),
    Case(
        "cyclic-scale-fn-cycle-no-momentum",
        _simple(
            "CyclicLR",
            base_lr=0.02,
            max_lr=0.2,
            step_size_up=5,
            scale_fn=lambda c: 1.0 / c,
            cycle_momentum=False,
        ),
    ),
]


def _momenta(optimizer: Any) -> list[float]:
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in optimizer.param_groups]


def _history(optimizer: Any, scheduler: Any, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    lrs, momenta = [], []
    for _ in range(epochs):
        optimizer.step()  # torch warns when a scheduler steps before its optimizer
        scheduler.step()
        lrs.append(list(scheduler.get_last_lr()))
        momenta.append(_momenta(optimizer))
    return np.array(lrs), np.array(momenta)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_lr_sequence_matches_torch_over_100_epochs(case):
    opt, torch_opt = optimizer_pair(case.optimizer)
    sched, torch_sched = case.build(OURS, opt), case.build(THEIRS, torch_opt)
    tol = tolerance(np.float64)
    start = [("lr", sched.get_last_lr(), torch_sched.get_last_lr())]
    start.append(("lr in groups", [g["lr"] for g in opt.param_groups], torch_sched.get_last_lr()))
    start.append(("momentum", _momenta(opt), _momenta(torch_opt)))
    for name, ours, theirs in start:
        assert compare_arrays(name, ours, theirs, tol).ok, f"epoch 0 {name}: {ours} != {theirs}"
    lrs, momenta = _history(opt, sched, EPOCHS - 1)
    torch_lrs, torch_momenta = _history(torch_opt, torch_sched, EPOCHS - 1)
    for name, ours, theirs in [("lr", lrs, torch_lrs), ("momentum", momenta, torch_momenta)]:
        c = compare_arrays(name, ours, theirs, tol)
        assert c.ok, f"{case.id}: {c} (rows are epochs 1..{EPOCHS - 1})"
    assert [g["lr"] for g in opt.param_groups] == list(sched.get_last_lr())
    assert len(np.unique(lrs[:, 0])) > 1, "the schedule never changed the lr: a vacuous case"
    if case.id.startswith("cyclic") and "no-momentum" not in case.id:
        assert len(np.unique(momenta[:, 0])) > 2, "the momentum never cycled"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_state_dict_round_trip_continues_the_schedule(case):
    opt = optimizer_pair(case.optimizer)[0]
    sched = case.build(OURS, opt)
    _history(opt, sched, 40)
    saved_opt, saved_sched = opt.state_dict(), sched.state_dict()
    assert "optimizer" not in saved_sched
    fresh_opt = optimizer_pair(case.optimizer)[0]
    fresh = case.build(OURS, fresh_opt)  # schedulers are built before the optimizer loads
    fresh_opt.load_state_dict(saved_opt)
    fresh.load_state_dict(saved_sched)
    before = _history(opt, sched, EPOCHS - 41)
    after = _history(fresh_opt, fresh, EPOCHS - 41)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])


def test_cyclic_saves_a_callable_object_but_not_a_function():
    state = OURS.CyclicLR(optimizer_pair("SGD")[0], 0.01, 0.1, scale_fn=Factor(0.5)).state_dict()
    assert state["_scale_fn_custom"] == {"value": 0.5}
    other = Factor(0.9)
    OURS.CyclicLR(optimizer_pair("SGD")[0], 0.01, 0.1, scale_fn=other).load_state_dict(state)
    assert other.value == 0.5
    plain = OURS.CyclicLR(optimizer_pair("SGD")[0], 0.01, 0.1, scale_fn=lambda x: 1.0)
    assert plain.state_dict()["_scale_fn_custom"] is None


def test_warm_restarts_with_a_fractional_epoch_match_torch():
    """``step(epoch + batch / batches)``: torch's documented per-batch use."""
    opt, torch_opt = optimizer_pair("SGD")
    sched = OURS.CosineAnnealingWarmRestarts(opt, T_0=3, T_mult=2, eta_min=0.001)
    torch_sched = THEIRS.CosineAnnealingWarmRestarts(torch_opt, T_0=3, T_mult=2, eta_min=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch deprecates step(epoch)
        for epoch in np.arange(0, 30, 0.25):
            opt.step()
            torch_opt.step()
            sched.step(float(epoch))
            torch_sched.step(float(epoch))
            c = compare_arrays(
                "lr", sched.get_last_lr(), torch_sched.get_last_lr(), tolerance(np.float64)
            )
            assert c.ok, f"epoch {epoch}: {c}"
            assert (sched.T_i, sched.last_epoch) == (torch_sched.T_i, torch_sched.last_epoch)
    with pytest.raises(ValueError, match="non-negative epoch"):
        sched.step(-1.0)


def test_polynomial_and_constant_recursions_agree_with_their_closed_forms():
    for build in [_simple("PolynomialLR", total_iters=30, power=1.5), _simple("ConstantLR")]:
        opt = optimizer_pair("SGD")[0]
        sched = build(OURS, opt)
        for _ in range(40):
            opt.step()
            sched.step()
            c = compare_arrays(
                "lr", sched.get_last_lr(), sched.closed_form_lr(), tolerance(np.float64)
            )
            assert c.ok, f"{type(sched).__name__} epoch {sched.last_epoch}: {c}"


def _other_optimizer_scheduler(m: Any, opt: Any) -> Any:
    other = ropt.SGD([Parameter(np.zeros(1))]) if m is OURS else torch.optim.SGD([torch.zeros(1)])
    return m.SequentialLR(opt, [m.ConstantLR(opt), m.ExponentialLR(other, 0.9)], milestones=[3])


INVALID = [
    ("ConstantLR", _simple("ConstantLR", factor=1.5), ValueError, "between 0 and 1"),
    (
        "MultiplicativeLR",
        _simple("MultiplicativeLR", lr_lambda=[_shrink]),
        ValueError,
        "Expected 2",
    ),
    ("MultiplicativeLR-call", _simple("MultiplicativeLR", lr_lambda=0.9), TypeError, "function"),
    ("T_0", _simple("CosineAnnealingWarmRestarts", T_0=0), ValueError, "positive integer T_0"),
    ("T_mult", _simple("CosineAnnealingWarmRestarts", T_0=2, T_mult=0), ValueError, "T_mult"),
    ("eta_min", _simple("CosineAnnealingWarmRestarts", T_0=2, eta_min="0"), ValueError, "eta_min"),
    ("cyclic-mode", _simple("CyclicLR", base_lr=0.1, max_lr=1.0, mode="sine"), ValueError, "mode"),
    (
        "cyclic-lengths",
        _simple("CyclicLR", base_lr=[0.1, 0.2, 0.3], max_lr=1.0),
        ValueError,
        "same length",
    ),
    (
        "sequential-milestones",
        lambda m, opt: m.SequentialLR(opt, [m.ConstantLR(opt)], milestones=[3]),
        ValueError,
        "one more",
    ),
    ("sequential-empty", lambda m, opt: m.SequentialLR(opt, [], []), ValueError, "at least one"),
    (
        "sequential-plateau",
        lambda m, opt: m.SequentialLR(opt, [m.ReduceLROnPlateau(opt)], []),
        ValueError,
        "ReduceLROnPlateau",
    ),
    ("sequential-optimizer", _other_optimizer_scheduler, ValueError, "same optimizer"),
    ("chained-empty", lambda m, opt: m.ChainedScheduler([], opt), ValueError, "at least one"),
]


@pytest.mark.parametrize(("name", "build", "error", "match"), INVALID, ids=[i[0] for i in INVALID])
def test_invalid_arguments_raise_like_torch(name, build, error, match):
    with pytest.raises(error, match=match):
        build(OURS, optimizer_pair("SGD")[0])
    with pytest.raises(error):
        build(THEIRS, optimizer_pair("SGD")[1])


def test_cyclic_momentum_needs_an_optimizer_with_momentum():
    opt = ropt.Adagrad([Parameter(np.zeros(2))])
    with pytest.raises(ValueError, match="momentum or beta1"):
        OURS.CyclicLR(opt, base_lr=0.01, max_lr=0.1)
    OURS.CyclicLR(opt, base_lr=0.01, max_lr=0.1, cycle_momentum=False)  # fine without
