"""More schedulers (import them from ``reference.optim.lr_scheduler``).

``MultiplicativeLR``, ``ConstantLR`` and ``PolynomialLR`` recurse on the current
lr as torch does (see ``lr_scheduler``'s module doc); ``CosineAnnealingWarmRestarts``
and ``CyclicLR`` compute each lr from fixed anchors. The schedulers that combine
schedulers (``SequentialLR``, ``ChainedScheduler``) are in ``lr_scheduler_composite``.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any, Literal

from .lr_scheduler import LambdaLR, LRScheduler, _lrs
from .lr_scheduler_adaptive import _per_group
from .optimizer import Optimizer

__all__ = [
    "MultiplicativeLR",
    "ConstantLR",
    "PolynomialLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
]


class MultiplicativeLR(LambdaLR):
    r""":math:`\gamma_e = \gamma_{e-1} \cdot \lambda(e)` for :math:`e \ge 1` (``MultiplicativeLR``).

    ``lr_lambda`` is one function of the epoch or a list with one per group;
    unlike ``LambdaLR``'s factor (relative to the base lr) this one multiplies
    into the *current* lr, so the factors compound. Lambdas and their
    checkpointing are ``LambdaLR``'s; a non-callable raises ``TypeError``.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        lr_lambda: Callable[[int], float] | list[Callable[[int], float]],
        last_epoch: int = -1,
    ):
        for fn in lr_lambda if isinstance(lr_lambda, (list, tuple)) else [lr_lambda]:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        super().__init__(optimizer, lr_lambda, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return _lrs(self.optimizer)
        return [lr * fn(self.last_epoch) for fn, lr in zip(self.lr_lambdas, _lrs(self.optimizer))]


class ConstantLR(LRScheduler):
    r"""The lr times ``factor`` for epochs :math:`e < T` (``total_iters``), then the lr itself.

    Closed form :math:`\gamma_0 (f + [e \ge T](1 - f))`; torch multiplies by
    :math:`f` at epoch 0 and by :math:`1/f` at epoch :math:`T` (so ``factor=0``
    divides by zero there, in torch as here).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        factor: float = 1.0 / 3,
        total_iters: int = 5,
        last_epoch: int = -1,
    ):
        if factor > 1.0 or factor < 0:
            raise ValueError(
                f"Constant multiplicative factor expected to be between 0 and 1, got {factor}"
            )
        self.factor = factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0:
            return [lr * self.factor for lr in _lrs(self.optimizer)]
        if self.last_epoch != self.total_iters:
            return _lrs(self.optimizer)
        return [lr * (1.0 / self.factor) for lr in _lrs(self.optimizer)]

    def closed_form_lr(self) -> list[float]:
        """The lr straight from the formula (torch's ``_get_closed_form_lr``)."""
        after = self.last_epoch >= self.total_iters
        return [base * (self.factor + after * (1 - self.factor)) for base in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to 0 over ``total_iters`` epochs (``PolynomialLR``).

    Closed form :math:`\gamma_e = \gamma_0 (1 - \min(e, T)/T)^p`; torch steps the
    ratio :math:`\left(\frac{1 - e/T}{1 - (e-1)/T}\right)^p` for
    :math:`1 \le e \le T` and leaves the lr (0) alone after.
    """

    def __init__(
        self, optimizer: Optimizer, total_iters: int = 5, power: float = 1.0, last_epoch: int = -1
    ):
        self.total_iters = total_iters
        self.power = power
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, T = self.last_epoch, self.total_iters
        if self._is_initial or e > T:
            return _lrs(self.optimizer)
        factor = ((1.0 - e / T) / (1.0 - (e - 1) / T)) ** self.power
        return [lr * factor for lr in _lrs(self.optimizer)]

    def closed_form_lr(self) -> list[float]:
        """The lr straight from the formula (torch's ``_get_closed_form_lr``)."""
        e, T = self.last_epoch, self.total_iters
        return [base * (1.0 - min(T, e) / T) ** self.power for base in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""SGDR: cosine annealing that restarts every :math:`T_i` epochs (Loshchilov & Hutter 2017).

    .. math::

        \gamma = \eta_{min} + \tfrac12 (\gamma_0 - \eta_{min})
                 \left(1 + \cos\frac{\pi T_{cur}}{T_i}\right)

    :math:`T_{cur}` counts epochs since the last restart; at :math:`T_{cur} = T_i`
    it wraps to 0 and :math:`T_i \leftarrow T_i \cdot` ``T_mult`` (:math:`T_0`
    first). Computed from :math:`T_{cur}`, not recursively. ``step(epoch)``
    accepts a fractional epoch (``epoch + batch / batches``), as torch does, and
    derives :math:`T_{cur}, T_i` from it. Torch's override of ``step`` never
    counts ``_step_count``; neither does this one.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        T_0: int,
        T_mult: int = 1,
        eta_min: float = 0.0,
        last_epoch: int = -1,
    ):
        if not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        if not isinstance(eta_min, (float, int)):
            raise ValueError(f"Expected float or int eta_min, but got {eta_min!r}")
        self.T_0, self.T_i, self.T_mult, self.eta_min = T_0, T_0, T_mult, eta_min
        self.T_cur: float = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
        return [self.eta_min + (base - self.eta_min) * cosine for base in self.base_lrs]

    def step(self, epoch: float | None = None) -> None:
        """The next epoch, or the given (possibly fractional) one."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur += 1
            if self.T_cur >= self.T_i:
                self.T_cur %= self.T_i
                self.T_i *= self.T_mult
        elif epoch < 0:
            raise ValueError(f"Expected non-negative epoch, but got {epoch}")
        elif epoch >= self.T_0 and self.T_mult == 1:
            self.T_cur = epoch % self.T_0
        elif epoch >= self.T_0:
            # restarts so far: T_0 (1 + m + ... + m^(n-1)) <= epoch
            n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
            self.T_cur = epoch - self.T_0 * (self.T_mult**n - 1) / (self.T_mult - 1)
            self.T_i = self.T_0 * self.T_mult**n
        else:
            self.T_i, self.T_cur = self.T_0, epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = _lrs(self.optimizer)


def _set_momentum(group: dict[str, Any], value: float, use_beta1: bool) -> None:
    if use_beta1:
        group["betas"] = (value, *group["betas"][1:])
    else:
        group["momentum"] = value


class CyclicLR(LRScheduler):
    r"""The cyclical learning-rate policy (``CyclicLR``, Smith 2017), stepped per batch.

    The lr climbs from ``base_lr`` to ``max_lr`` over ``step_size_up`` steps and
    back over ``step_size_down`` (default: the same). With cycle length
    :math:`L`, :math:`c = \lfloor 1 + e/L \rfloor`, :math:`x = 1 + e/L - c` and
    :math:`r` = ``step_size_up`` / :math:`L`, the height is
    :math:`h = x/r` rising, :math:`(x-1)/(r-1)` falling, and

    .. math::

        \gamma = b + (M - b)\, h\, s(k), \qquad
        m = m_{max} - (m_{max} - m_{base})\, h\, s(k)

    with :math:`k = c` (``scale_mode='cycle'``) or :math:`e` (``'iterations'``).
    ``triangular``: :math:`s = 1`; ``triangular2``: :math:`s(c) = 2^{1-c}`
    (halved each cycle); ``exp_range``: :math:`s(e) = \text{gamma}^e`. A custom
    ``scale_fn`` replaces the mode and keeps the given ``scale_mode``. With
    ``cycle_momentum`` the momentum (SGD's ``momentum`` or Adam's ``beta1``)
    moves opposite to the lr. The constructor sets each group's lr to
    ``base_lr``. Only callable *objects* as ``scale_fn`` are checkpointed.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        base_lr: float | list[float],
        max_lr: float | list[float],
        step_size_up: int = 2000,
        step_size_down: int | None = None,
        mode: Literal["triangular", "triangular2", "exp_range"] = "triangular",
        gamma: float = 1.0,
        scale_fn: Callable[[float], float] | None = None,
        scale_mode: Literal["cycle", "iterations"] = "cycle",
        cycle_momentum: bool = True,
        base_momentum: float | list[float] = 0.8,
        max_momentum: float | list[float] = 0.9,
        last_epoch: int = -1,
    ):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        base_lrs = _per_group("base_lr", optimizer, base_lr)
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                group["lr"] = lr
        self.max_lrs = _per_group("max_lr", optimizer, max_lr)
        up = float(step_size_up)
        down = float(step_size_down) if step_size_down is not None else up
        self.total_size = up + down
        self.step_ratio = up / self.total_size
        if mode not in ("triangular", "triangular2", "exp_range") and scale_fn is None:
            raise ValueError(f"mode {mode!r} is invalid and scale_fn is None")
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_mode()
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            self._init_momentum(optimizer, base_momentum, max_momentum, last_epoch)
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_momentum(self, optimizer: Optimizer, base: Any, top: Any, last_epoch: int) -> None:
        if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
            raise ValueError(
                "optimizer must support momentum or beta1 with `cycle_momentum` option enabled; "
                f"{type(optimizer).__name__} has neither"
            )
        self.use_beta1 = "betas" in optimizer.defaults
        self.base_momentums = _per_group("base_momentum", optimizer, base)
        self.max_momentums = _per_group("max_momentum", optimizer, top)
        if last_epoch == -1:
            for m_top, m_base, group in zip(
                self.max_momentums, self.base_momentums, optimizer.param_groups
            ):
                _set_momentum(group, m_top, self.use_beta1)
                group["max_momentum"] = m_top
                group["base_momentum"] = m_base

    def _init_scale_mode(self) -> None:
        if self._scale_fn_custom is None:
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x: float) -> float:
        """The amplitude factor :math:`s`: the custom function, or the mode's."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma**x

    def get_lr(self) -> list[float]:
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            height = x / self.step_ratio
        else:
            height = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [b + (top - b) * height * scale for b, top in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            momenta = zip(self.base_momentums, self.max_momentums, self.optimizer.param_groups)
            for m_base, m_top, group in momenta:
                _set_momentum(group, m_top - (m_top - m_base) * height * scale, self.use_beta1)
        return lrs

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        fn = state.pop("_scale_fn_custom")
        keep = fn is not None and not isinstance(fn, types.FunctionType)
        state["_scale_fn_custom"] = fn.__dict__.copy() if keep else None
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        saved_fn = state.pop("_scale_fn_custom")
        super().load_state_dict(state)
        if saved_fn is not None and self._scale_fn_custom is not None:
            self._scale_fn_custom.__dict__.update(saved_fn)
        self._init_scale_mode()
