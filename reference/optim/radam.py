"""``RAdam``: Adam with a rectified (variance-aware) adaptive learning rate."""

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

__all__ = ["RAdam"]


class RAdam(Optimizer):
    r"""RAdam (``torch.optim.RAdam``, Liu et al., 2019).

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        \theta &\leftarrow \theta (1 - \gamma \lambda) \ \text{ if decoupled, else }\
            g \leftarrow g + \lambda \theta \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g, \quad
        v \leftarrow \beta_2 v + (1 - \beta_2) g^2, \quad
        \hat m = m / (1 - \beta_1^t) \\
        \rho_\infty &= \frac{2}{1 - \beta_2} - 1, \quad
        \rho_t = \rho_\infty - \frac{2 t \beta_2^t}{1 - \beta_2^t} \\
        \theta &\leftarrow \theta - \gamma\, \hat m\, r_t\,
            \frac{\sqrt{1 - \beta_2^t}}{\sqrt v + \epsilon}
            \quad \text{if } \rho_t > 5, \qquad
        r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\rho_\infty}
                          {(\rho_\infty - 4)(\rho_\infty - 2)\rho_t}} \\
        \theta &\leftarrow \theta - \gamma\, \hat m \quad \text{otherwise}

    While the variance of the adaptive rate is not yet tractable
    (:math:`\rho_t \le 5`, the first few steps) RAdam takes plain momentum SGD
    steps. Here :math:`\epsilon` is added to :math:`\sqrt v` *before* the bias
    correction (unlike Adam). State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        maximize: bool = False,
    ):
        check_lr(lr, "RAdam")
        check_nonnegative(eps, "epsilon", "RAdam")
        check_betas(betas, "RAdam")
        check_nonnegative(weight_decay, "weight_decay", "RAdam")
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            decoupled_weight_decay=decoupled_weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay = group["weight_decay"]
        if not state:
            init_state(state, param, "exp_avg", "exp_avg_sq")
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        grad = decay_weight(param, grad, lr, weight_decay, group["decoupled_weight_decay"])
        exp_avg, exp_avg_sq = update_moments(state, grad, beta1, beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        bias_corrected_exp_avg = exp_avg / bias_correction1
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * step * beta2**step / bias_correction2
        if rho_t > 5.0:
            rect = (
                (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
            ) ** 0.5
            adaptive_lr = bias_correction2**0.5 / (np.sqrt(exp_avg_sq) + eps)
            param.data -= bias_corrected_exp_avg * lr * adaptive_lr * rect
        else:
            param.data -= bias_corrected_exp_avg * lr
