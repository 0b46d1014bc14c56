"""``RMSprop``: divide by a running root mean square of the gradient."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import (
    Optimizer,
    check_lr,
    check_nonnegative,
    decay_weight,
    init_state,
    lerp_,
    square_avg_,
)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    r"""RMSprop (``torch.optim.RMSprop``, Hinton's lecture 6e), optionally centered.

    For each parameter, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        g &\leftarrow g + \lambda \theta \\
        v &\leftarrow \alpha v + (1 - \alpha) g^2 \\
        \bar g &\leftarrow \alpha \bar g + (1 - \alpha) g \quad \text{(centered only)} \\
        a &= \sqrt{v - \bar g^2} + \epsilon \ \text{ if centered, else }\ \sqrt v + \epsilon \\
        b &\leftarrow \mu b + g / a, \quad \theta \leftarrow \theta - \gamma b
            \quad \text{if momentum } \mu > 0 \\
        \theta &\leftarrow \theta - \gamma\, g / a \quad \text{otherwise}

    :math:`\epsilon` is added *outside* the square root; the centered variant
    divides by an estimate of the gradient's standard deviation rather than its
    root mean square. There is no bias correction. State: ``step``,
    ``square_avg`` (:math:`v`), ``momentum_buffer`` (:math:`b`, momentum > 0),
    ``grad_avg`` (:math:`\bar g`, centered).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        *,
        maximize: bool = False,
    ):
        check_lr(lr, "RMSprop")
        check_nonnegative(eps, "epsilon", "RMSprop")
        check_nonnegative(momentum, "momentum", "RMSprop")
        check_nonnegative(weight_decay, "weight_decay", "RMSprop")
        check_nonnegative(alpha, "alpha", "RMSprop")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            alpha=alpha,
            eps=eps,
            centered=centered,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, alpha, eps, momentum = group["lr"], group["alpha"], group["eps"], group["momentum"]
        if not state:
            init_state(state, param, "square_avg")
            if momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param.data)
        state["step"] += 1
        if group["maximize"]:
            grad = -grad
        grad = decay_weight(param, grad, lr, group["weight_decay"], decoupled=False)
        square_avg = state["square_avg"]
        square_avg_(square_avg, grad, alpha)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            lerp_(grad_avg, grad, 1 - alpha)
            avg = np.sqrt(square_avg - grad_avg * grad_avg) + eps
        else:
            avg = np.sqrt(square_avg) + eps
        if momentum > 0:
            buf = state["momentum_buffer"]
            buf *= momentum
            buf += grad / avg
            param.data -= lr * buf
        else:
            param.data -= lr * grad / avg
