"""Schedulers made of schedulers (import them from ``reference.optim.lr_scheduler``).

``SequentialLR`` hands the schedule from one scheduler to the next at given
milestones; ``ChainedScheduler`` steps all of its schedulers at every epoch, so
their effects compose. Both checkpoint each inner scheduler's own state_dict.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from .lr_scheduler import ExponentialLR, LinearLR, LRScheduler, StepLR, _lrs
from .lr_scheduler_adaptive import ReduceLROnPlateau
from .optimizer import Optimizer

__all__ = ["SequentialLR", "ChainedScheduler"]


def _closed_form_lr(scheduler: LRScheduler) -> list[float]:
    """Torch's ``_get_closed_form_lr`` where torch's class has one, else ``get_lr()``."""
    e, bases = scheduler.last_epoch, scheduler.base_lrs
    closed_form = getattr(scheduler, "closed_form_lr", None)
    if closed_form is not None:
        return closed_form()
    if isinstance(scheduler, StepLR):
        return [base * scheduler.gamma ** (e // scheduler.step_size) for base in bases]
    if isinstance(scheduler, ExponentialLR):
        return [base * scheduler.gamma**e for base in bases]
    if isinstance(scheduler, LinearLR):
        s, f, T = scheduler.start_factor, scheduler.end_factor, scheduler.total_iters
        return [base * (s + (f - s) * min(T, e) / T) for base in bases]
    return scheduler.get_lr()


def _check_schedulers(
    kind: str, optimizer: Optimizer | None, schedulers: Sequence[LRScheduler]
) -> Optimizer:
    """Torch's checks on a combinator's schedulers; the optimizer (default: the first's)."""
    if len(schedulers) < 1:
        raise ValueError(f"{kind} expects at least one scheduler, but got no scheduler.")
    optimizer = optimizer or schedulers[0].optimizer
    for i, scheduler in enumerate(schedulers):
        if not hasattr(scheduler, "optimizer"):
            raise TypeError(f"{kind} at index {i} should have `optimizer` as its attribute.")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(
                f"{kind} does not support `ReduceLROnPlateau` scheduler as it requires "
                f"additional kwargs to be specified when calling `step`, but got one at index {i}"
            )
        if scheduler.optimizer is not optimizer:
            raise ValueError(
                f"{kind} expects all schedulers to belong to the same optimizer, but got "
                f"scheduler {type(scheduler).__name__} at index {i} with another optimizer"
            )
    return optimizer


class _Combinator(LRScheduler):
    """Checkpoints of a scheduler made of schedulers: each one's own state_dict, nested."""

    _schedulers: Sequence[LRScheduler]

    def state_dict(self) -> dict[str, Any]:
        skip = ("optimizer", "_schedulers")
        state = {key: value for key, value in self.__dict__.items() if key not in skip}
        state["_schedulers"] = [s.state_dict() for s in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved = state.pop("_schedulers")
        self.__dict__.update(state)
        for scheduler, one in zip(self._schedulers, saved):
            scheduler.load_state_dict(one)


class SequentialLR(_Combinator):
    r"""Run ``schedulers[i]`` from epoch ``milestones[i-1]`` (``SequentialLR``).

    The constructor resets every lr to ``initial_lr``, moves every scheduler
    back one epoch (undoing its constructor's step) and redoes the first one's.
    At a milestone the next scheduler restarts at its epoch 0 from its *closed
    form* (torch's ``_get_closed_form_lr``) where torch's class has one
    (StepLR, MultiStepLR, ConstantLR, LinearLR, ExponentialLR, PolynomialLR,
    CosineAnnealingLR), else from ``get_lr()``; between milestones it steps.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedulers: list[LRScheduler],
        milestones: list[int],
        last_epoch: int = -1,
    ):
        _check_schedulers("SequentialLR", optimizer, schedulers)
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(
                "SequentialLR expects one more scheduler than milestones, got "
                f"{len(schedulers)} schedulers and {len(milestones)} milestones"
            )
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = last_epoch + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:  # nested combinators: their schedulers, recursively
            _undo_one_epoch(scheduler)
        first = schedulers[bisect_right(milestones, 0)]
        first._step_count, first._is_initial = 0, True
        try:
            first.step()
        finally:
            first._is_initial = False
        self._last_lr = first.get_last_lr()

    def step(self) -> None:
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler.last_epoch = 0
            for group, lr in zip(self.optimizer.param_groups, _closed_form_lr(scheduler)):
                group["lr"] = lr
            scheduler._last_lr = _lrs(self.optimizer)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


def _undo_one_epoch(scheduler: LRScheduler) -> None:
    if hasattr(scheduler, "_schedulers"):
        for inner in scheduler._schedulers:
            _undo_one_epoch(inner)
    elif hasattr(scheduler, "last_epoch"):
        scheduler.last_epoch -= 1


class ChainedScheduler(_Combinator):
    """Step every scheduler in order at each ``step()`` (``ChainedScheduler``).

    Their effects compose because each recursive scheduler multiplies into the
    lr the previous one left (a closed-form one, such as ``CyclicLR``, overrides
    it instead). No step at construction: the lrs are those the schedulers set.
    """

    def __init__(self, schedulers: Sequence[LRScheduler], optimizer: Optimizer | None = None):
        self.optimizer = _check_schedulers("ChainedScheduler", optimizer, schedulers)
        self._schedulers = schedulers
        self._last_lr = _lrs(schedulers[-1].optimizer)

    def step(self) -> None:
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _lrs(self._schedulers[-1].optimizer)
