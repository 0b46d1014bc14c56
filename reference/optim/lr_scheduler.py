"""Learning-rate schedulers with ``torch.optim.lr_scheduler``'s names and defaults.

A scheduler rewrites ``group["lr"]`` of its optimizer's parameter groups; call
``scheduler.step()`` once per epoch (or per batch for ``OneCycleLR``) *after*
``optimizer.step()``. The constructor performs the first step (epoch 0), which
sets the starting rate and records ``initial_lr`` in every group.

Torch computes most schedules *recursively*, from the group's current lr
(``get_lr``: "chainable", so two schedulers can act on one optimizer), not from
the closed form in its docs (``_get_closed_form_lr``). The two agree in exact
arithmetic, not in rounding, and not at all once something else (a second
scheduler, a hand edit) has changed the lr. This module follows the recursive
forms, so a sequence of ``step()`` calls yields torch's lr sequence.
``OneCycleLR`` and ``ReduceLROnPlateau`` live in ``lr_scheduler_adaptive.py``
and are re-exported here.
"""

from __future__ import annotations

import math
import types
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from .optimizer import Optimizer

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "StepLR",
    "MultiStepLR",
    "ExponentialLR",
    "CosineAnnealingLR",
    "LinearLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "MultiplicativeLR",
    "ConstantLR",
    "PolynomialLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "SequentialLR",
    "ChainedScheduler",
]


def _lrs(optimizer: Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


class LRScheduler:
    """Base class (``torch.optim.lr_scheduler.LRScheduler``).

    Subclasses implement ``get_lr()``: the lrs for epoch ``self.last_epoch``,
    computed from the current ``group["lr"]`` (torch's chainable form).
    ``last_epoch=-1`` starts a schedule; another value resumes one, which
    requires ``initial_lr`` in every group (saved by the first scheduler).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(
                        f"param 'initial_lr' is not specified in param_groups[{i}] when resuming "
                        f"a scheduler with last_epoch={last_epoch}; load the optimizer's "
                        "state_dict first, or start with last_epoch=-1"
                    )
        self.base_lrs: list[float] = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True  # get_lr() may treat the constructor's step specially
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr()")

    def step(self) -> None:
        """Advance one epoch and write the new lrs into the optimizer's groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = _lrs(self.optimizer)

    def get_last_lr(self) -> list[float]:
        """The lrs the last ``step()`` (or the constructor) set, one per group."""
        return self._last_lr

    def state_dict(self) -> dict[str, Any]:
        """Every attribute except the optimizer (torch's choice: counters, base_lrs, options)."""
        return {key: value for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(state_dict)


class LambdaLR(LRScheduler):
    r""":math:`\gamma_e = \gamma_0 \cdot \lambda(e)` (``torch.optim.lr_scheduler.LambdaLR``).

    ``lr_lambda`` is one function of the epoch, or a list with one per group.
    Only the state of callable *objects* is saved; plain functions and lambdas
    are saved as ``None`` (they cannot be pickled), as in torch.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ):
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != len(optimizer.param_groups):
                raise ValueError(
                    f"Expected {len(optimizer.param_groups)} lr_lambdas (one per parameter "
                    f"group), but got {len(lr_lambda)}"
                )
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * len(optimizer.param_groups)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [base * fn(self.last_epoch) for fn, base in zip(self.lr_lambdas, self.base_lrs)]

    def state_dict(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [
            None if isinstance(fn, types.FunctionType) else fn.__dict__.copy()
            for fn in self.lr_lambdas
        ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved_lambdas = state.pop("lr_lambdas")
        self.__dict__.update(state)
        for fn, saved in zip(self.lr_lambdas, saved_lambdas):
            if saved is not None:
                fn.__dict__.update(saved)


class StepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every ``step_size`` epochs (``StepLR``).

    Closed form :math:`\gamma_e = \gamma_0\, \text{gamma}^{\lfloor e / \text{step\_size} \rfloor}`;
    computed as torch does, by multiplying the current lr at each boundary.
    """

    def __init__(
        self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1
    ):
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]


class MultiStepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` at each epoch in ``milestones`` (``MultiStepLR``).

    A milestone listed twice multiplies by ``gamma**2`` (torch counts them).
    Closed form :math:`\gamma_0\, \text{gamma}^{\#\{m \le e\}}`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        milestones: Iterable[int],
        gamma: float = 0.1,
        last_epoch: int = -1,
    ):
        self.milestones = Counter(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch not in self.milestones:
            return _lrs(self.optimizer)
        factor = self.gamma ** self.milestones[self.last_epoch]
        return [lr * factor for lr in _lrs(self.optimizer)]

    def closed_form_lr(self) -> list[float]:
        """The lr straight from the formula (torch's ``_get_closed_form_lr``), for reading."""
        passed = bisect_right(sorted(self.milestones.elements()), self.last_epoch)
        return [base * self.gamma**passed for base in self.base_lrs]


class ExponentialLR(LRScheduler):
    r""":math:`\gamma_e = \gamma_{e-1} \cdot \text{gamma}` (``ExponentialLR``)."""

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _lrs(self.optimizer)
        return [lr * self.gamma for lr in _lrs(self.optimizer)]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from the base lr to ``eta_min`` over ``T_max`` epochs.

    The documented closed form is

    .. math::

        \gamma_e = \eta_{min} + \tfrac12 (\gamma_0 - \eta_{min})
                   \left(1 + \cos\frac{\pi e}{T_{max}}\right),

    but torch (and this class) steps the *recursion*

    .. math::

        \gamma_e = \eta_{min} + (\gamma_{e-1} - \eta_{min})
            \frac{1 + \cos(\pi e / T_{max})}{1 + \cos(\pi (e - 1) / T_{max})},

    except at :math:`e - 1 - T_{max} \equiv 0 \pmod{2 T_{max}}`, where the
    denominator is 0 and it adds :math:`(\gamma_0 - \eta_{min})(1 - \cos(\pi/T_{max}))/2`
    instead. Both forms agree in exact arithmetic; past ``T_max`` both rise
    again (a period of :math:`2 T_{max}`), the lr does not stay at ``eta_min``.
    Only the recursion sees an lr changed by anything else.
    """

    def __init__(
        self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1
    ):
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return _lrs(self.optimizer)
        if self._step_count == 1 and e > 0:  # resumed at epoch e: no previous lr to recurse from
            return [
                eta_min + (base - eta_min) * (1 + math.cos(e * math.pi / T)) / 2
                for base in self.base_lrs
            ]
        if (e - 1 - T) % (2 * T) == 0:
            return [
                lr + (base - eta_min) * (1 - math.cos(math.pi / T)) / 2
                for base, lr in zip(self.base_lrs, _lrs(self.optimizer))
            ]
        return [
            (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lr - eta_min)
            + eta_min
            for lr in _lrs(self.optimizer)
        ]

    def closed_form_lr(self) -> list[float]:
        """The documented formula (torch's ``_get_closed_form_lr``), for comparison."""
        e, T, eta_min = self.last_epoch, self.T_max, self.eta_min
        return [
            eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / T)) / 2
            for base in self.base_lrs
        ]


class LinearLR(LRScheduler):
    r"""Scale the lr linearly from ``start_factor`` to ``end_factor`` over ``total_iters``.

    Closed form :math:`\gamma_e = \gamma_0 (s + (f - s) \min(e, T) / T)`; torch
    multiplies the current lr by the ratio of consecutive factors,
    :math:`1 + (f - s) / (T s + (e - 1)(f - s))`, for :math:`1 \le e \le T`.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        if start_factor > 1.0 or start_factor <= 0:
            raise ValueError(
                "LinearLR: Starting multiplicative factor expected to be greater than 0 and less "
                f"or equal to 1, got start_factor={start_factor}"
            )
        if end_factor > 1.0 or end_factor < 0:
            raise ValueError(
                "LinearLR: Ending multiplicative factor expected to be between 0 and 1, got "
                f"end_factor={end_factor}"
            )
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        s, f, T, e = self.start_factor, self.end_factor, self.total_iters, self.last_epoch
        if e == 0:
            return [lr * s for lr in _lrs(self.optimizer)]
        if self._is_initial or e > T:
            return _lrs(self.optimizer)
        ratio = 1.0 + (f - s) / (T * s + (e - 1) * (f - s))
        return [lr * ratio for lr in _lrs(self.optimizer)]


from .lr_scheduler_adaptive import OneCycleLR, ReduceLROnPlateau  # noqa: E402
from .lr_scheduler_composite import ChainedScheduler, SequentialLR  # noqa: E402
from .lr_scheduler_more import (  # noqa: E402
    ConstantLR,
    CosineAnnealingWarmRestarts,
    CyclicLR,
    MultiplicativeLR,
    PolynomialLR,
)
