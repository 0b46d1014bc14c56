"""``ASGD``: averaged stochastic gradient descent (Polyak-Ruppert averaging)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, check_lr, check_nonnegative, decay_weight, init_state

__all__ = ["ASGD"]


class ASGD(Optimizer):
    r"""Averaged SGD (``torch.optim.ASGD``, Polyak & Juditsky 1992).

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order, with
    :math:`\eta_0 = \gamma` and :math:`\mu_0 = 1`:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        g &\leftarrow g + w \theta \quad \text{(weight\_decay } w\text{)} \\
        \theta &\leftarrow \theta (1 - \lambda \eta_{t-1}) - \eta_{t-1} g \\
        \bar\theta &\leftarrow \bar\theta + \mu_{t-1} (\theta - \bar\theta)
            \ \text{ (a copy of } \theta \text{ when } \mu_{t-1} = 1\text{)} \\
        \eta_t &= \gamma / (1 + \lambda \gamma t)^{\alpha} \\
        \mu_t &= 1 / \max(1, t - t_0)

    The step uses the step size and averaging weight computed at the *previous*
    step (the new ones are computed last). :math:`\bar\theta` is only tracked:
    the parameter itself follows plain decayed SGD; with the default
    ``t0 = 1e6`` the average is just a copy of :math:`\theta` for the first
    million steps. State: ``step``, ``eta`` (:math:`\eta`), ``mu``
    (:math:`\mu`), ``ax`` (:math:`\bar\theta`); torch keeps ``step``, ``eta``,
    ``mu`` as 0-d tensors in the default dtype (float32 unless changed), here
    they are Python floats.

    ``foreach``, ``differentiable`` and ``capturable`` are accepted and ignored:
    they choose among torch's implementations of this same update, and a NumPy
    reference has one implementation path; the harness runs torch's paths
    against it.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ):
        check_lr(lr, "ASGD")
        check_nonnegative(weight_decay, "weight_decay", "ASGD")
        defaults = dict(
            lr=lr, lambd=lambd, alpha=alpha, t0=t0, weight_decay=weight_decay, maximize=maximize
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, lambd = group["lr"], group["lambd"]
        if not state:
            init_state(state, param, "ax", eta=float(lr), mu=1.0)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        grad = decay_weight(param, grad, lr, group["weight_decay"], decoupled=False)
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        param.data *= 1 - lambd * eta
        param.data -= eta * grad
        if mu != 1:
            ax += (param.data - ax) * mu
        else:
            ax[...] = param.data
        state["eta"] = lr / (1 + lambd * lr * step) ** group["alpha"]
        state["mu"] = 1 / max(1.0, step - group["t0"])
