"""``Adamax``: Adam with the infinity norm in place of the second moment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import (
    Optimizer,
    check_betas,
    check_lr,
    check_nonnegative,
    decay_weight,
    init_state,
    lerp_,
)

__all__ = ["Adamax"]


class Adamax(Optimizer):
    r"""Adamax (``torch.optim.Adamax``), the :math:`L^\infty` variant of Adam.

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        g &\leftarrow g + \lambda \theta \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        u &\leftarrow \max(\beta_2 u,\ |g| + \epsilon) \\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t} \frac{m}{u}

    :math:`\epsilon` is added to :math:`|g|` *inside* the maximum, so :math:`u`
    is never 0. State: ``step``, ``exp_avg`` (:math:`m`), ``exp_inf`` (:math:`u`).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        *,
        maximize: bool = False,
    ):
        check_lr(lr, "Adamax")
        check_nonnegative(eps, "epsilon", "Adamax")
        check_betas(betas, "Adamax")
        check_nonnegative(weight_decay, "weight_decay", "Adamax")
        defaults = dict(
            lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, maximize=maximize
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if not state:
            init_state(state, param, "exp_avg", "exp_inf")
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        grad = decay_weight(param, grad, lr, group["weight_decay"], decoupled=False)
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        lerp_(exp_avg, grad, 1 - beta1)
        exp_inf *= beta2
        np.maximum(exp_inf, np.abs(grad) + eps, out=exp_inf)
        clr = lr / (1 - beta1 ** state["step"])
        param.data -= clr * exp_avg / exp_inf
