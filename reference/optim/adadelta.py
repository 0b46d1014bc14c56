"""``Adadelta``: steps in the units of the parameter, from two running averages."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import (
    Optimizer,
    check_lr,
    check_nonnegative,
    check_option,
    decay_weight,
    init_state,
    square_avg_,
)

__all__ = ["Adadelta"]


class Adadelta(Optimizer):
    r"""Adadelta (``torch.optim.Adadelta``, Zeiler, 2012).

    For each parameter, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        g &\leftarrow g + \lambda \theta \\
        v &\leftarrow \rho v + (1 - \rho) g^2 \\
        \Delta &= \frac{\sqrt{u + \epsilon}}{\sqrt{v + \epsilon}}\, g \\
        u &\leftarrow \rho u + (1 - \rho) \Delta^2 \\
        \theta &\leftarrow \theta - \gamma \Delta

    :math:`\epsilon` sits *inside* both square roots; the ratio of the two RMS
    values gives :math:`\Delta` the units of :math:`\theta`, so ``lr`` defaults
    to 1. State: ``step``, ``square_avg`` (:math:`v`), ``acc_delta`` (:math:`u`).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ):
        check_lr(lr, "Adadelta")
        check_option(
            0.0 <= rho <= 1.0, "Adadelta", f"Invalid rho value: {rho} (rho must be in [0, 1])"
        )
        check_nonnegative(eps, "epsilon", "Adadelta")
        check_nonnegative(weight_decay, "weight_decay", "Adadelta")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        rho, eps = group["rho"], group["eps"]
        if not state:
            init_state(state, param, "square_avg", "acc_delta")
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        grad = decay_weight(param, grad, group["lr"], group["weight_decay"], decoupled=False)
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg_(square_avg, grad, rho)
        std = np.sqrt(square_avg + eps)
        delta = np.sqrt(acc_delta + eps) / std * grad
        square_avg_(acc_delta, delta, rho)
        param.data -= group["lr"] * delta
