"""``Adagrad``: per-coordinate steps scaled by the root of the summed squared gradients."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, check_lr, check_nonnegative, decay_weight

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    r"""Adagrad (``torch.optim.Adagrad``, Duchi et al., 2011).

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        g &\leftarrow g + \lambda \theta \\
        \tilde\gamma &= \frac{\gamma}{1 + (t - 1)\, \eta} \quad \text{(lr\_decay } \eta\text{)} \\
        s &\leftarrow s + g^2 \\
        \theta &\leftarrow \theta - \tilde\gamma \frac{g}{\sqrt s + \epsilon}

    :math:`s` starts at ``initial_accumulator_value``. As in torch, the state of
    every parameter (``step`` = 0, ``sum`` = :math:`s_0`) is created by the
    constructor, not at the first step. State: ``step``, ``sum``.

    One deliberate difference: a parameter group's own
    ``initial_accumulator_value`` is honoured here, like every other group
    option; torch fills every ``sum`` from the constructor's argument and
    ignores the group's value.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        *,
        maximize: bool = False,
    ):
        check_lr(lr, "Adagrad")
        check_nonnegative(lr_decay, "lr_decay", "Adagrad")
        check_nonnegative(weight_decay, "weight_decay", "Adagrad")
        check_nonnegative(initial_accumulator_value, "initial_accumulator_value", "Adagrad")
        check_nonnegative(eps, "epsilon", "Adagrad")
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            eps=eps,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            maximize=maximize,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for param in group["params"]:
                self._init_state(self.state[param], param, group)

    @staticmethod
    def _init_state(state: dict[str, Any], param: Parameter, group: dict[str, Any]) -> None:
        state["step"] = 0.0
        state["sum"] = np.full_like(param.data, group["initial_accumulator_value"])

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        if not state:  # a group added after construction
            self._init_state(state, param, group)
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        grad = decay_weight(param, grad, group["lr"], group["weight_decay"], decoupled=False)
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        std = np.sqrt(state["sum"]) + group["eps"]
        param.data -= clr * grad / std
