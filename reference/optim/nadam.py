"""``NAdam``: Adam with Nesterov momentum and a momentum-decay schedule."""

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
    update_moments,
)

__all__ = ["NAdam"]


class NAdam(Optimizer):
    r"""NAdam (``torch.optim.NAdam``): Nesterov-accelerated Adam (Dozat, 2016).

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        \theta &\leftarrow \theta (1 - \gamma \lambda) \ \text{ if decoupled, else }\
            g \leftarrow g + \lambda \theta \\
        \mu_t &= \beta_1 \left(1 - \tfrac12\, 0.96^{\,t \psi}\right), \quad
        \mu_{t+1} = \beta_1 \left(1 - \tfrac12\, 0.96^{\,(t+1) \psi}\right) \\
        \Pi_t &= \textstyle\prod_{i \le t} \mu_i \quad \text{(mu\_product)} \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        d &= \sqrt{v / (1 - \beta_2^t)} + \epsilon \\
        \theta &\leftarrow \theta - \gamma \frac{1 - \mu_t}{1 - \Pi_t} \frac{g}{d}
                              - \gamma \frac{\mu_{t+1}}{1 - \Pi_t \mu_{t+1}} \frac{m}{d}

    :math:`\psi` is ``momentum_decay``. Note :math:`m` enters the update *without*
    a :math:`1 - \beta_1^t` correction: the :math:`\mu` products play that role.
    State: ``step``, ``mu_product`` (:math:`\Pi_t`), ``exp_avg``, ``exp_avg_sq``.

    Torch keeps ``mu_product`` in a 0-d tensor of ``torch.get_default_dtype()``
    (float32 unless changed), so for float64 parameters torch rounds
    :math:`\Pi_t` to float32 every step; here it is a Python float (float64).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ):
        check_lr(lr, "NAdam")
        check_nonnegative(eps, "epsilon", "NAdam")
        check_betas(betas, "NAdam")
        check_nonnegative(weight_decay, "weight_decay", "NAdam")
        check_nonnegative(momentum_decay, "momentum_decay", "NAdam")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            momentum_decay=momentum_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay, momentum_decay = group["weight_decay"], group["momentum_decay"]
        if not state:
            init_state(state, param, "exp_avg", "exp_avg_sq", mu_product=1.0)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        bias_correction2 = 1 - beta2**step
        grad = decay_weight(param, grad, lr, weight_decay, group["decoupled_weight_decay"])
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (step * momentum_decay))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((step + 1) * momentum_decay))
        state["mu_product"] *= mu
        mu_product = state["mu_product"]
        exp_avg, exp_avg_sq = update_moments(state, grad, beta1, beta2)
        denom = np.sqrt(exp_avg_sq / bias_correction2) + eps
        mu_product_next = mu_product * mu_next
        param.data -= lr * (1.0 - mu) / (1.0 - mu_product) * grad / denom
        param.data -= lr * mu_next / (1.0 - mu_product_next) * exp_avg / denom
