"""``SGD``: stochastic gradient descent, with momentum, dampening and Nesterov."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, check_lr, check_nonnegative, check_option, decay_weight

__all__ = ["SGD"]


def check_implementation_flags(
    foreach: bool | None, fused: bool | None, differentiable: bool
) -> None:
    """Refuse what torch's constructors refuse among the implementation flags (RuntimeError).

    The flags themselves change nothing here: one NumPy implementation serves them all.
    """
    if fused and differentiable:
        raise RuntimeError("`fused` does not support `differentiable`")
    if fused and foreach:
        raise RuntimeError("`fused` and `foreach` cannot be `True` together.")


class SGD(Optimizer):
    r"""Stochastic gradient descent (``torch.optim.SGD``).

    For each parameter :math:`\theta` with gradient :math:`g`, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        g &\leftarrow g + \lambda \theta \quad \text{(weight\_decay } \lambda\text{)} \\
        b &\leftarrow g \text{ at the first step, else }
              \mu b + (1 - \tau) g \quad \text{(momentum } \mu\text{, dampening } \tau\text{)} \\
        g &\leftarrow g + \mu b \text{ if nesterov, else } b \\
        \theta &\leftarrow \theta - \gamma g

    The momentum lines apply only when :math:`\mu \ne 0`. The first step copies
    the gradient into the buffer undamped (torch's choice: no warm-up from 0).
    State: ``momentum_buffer`` (only with momentum).

    ``foreach``, ``differentiable`` and ``fused`` are accepted and ignored: they
    choose among torch's implementations of this same update (a loop, fused
    multi-tensor kernels, an autograd-tracked step), and a NumPy reference has
    one implementation path; the harness runs torch's paths against it. The
    combinations torch refuses are refused (``check_implementation_flags``).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        check_implementation_flags(foreach, fused, differentiable)
        check_lr(lr, "SGD")
        check_nonnegative(momentum, "momentum", "SGD")
        check_nonnegative(weight_decay, "weight_decay", "SGD")
        check_option(
            not nesterov or (momentum > 0 and dampening == 0),
            "SGD",
            "Nesterov momentum requires a momentum and zero dampening "
            f"(got momentum={momentum}, dampening={dampening})",
        )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        momentum = group["momentum"]
        if group["maximize"]:
            grad = -grad
        grad = decay_weight(param, grad, group["lr"], group["weight_decay"], decoupled=False)
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                # a copy (np.array copies, and keeps a 0-d gradient an array, not a scalar):
                # the buffer must not alias param.grad, which the caller may reuse
                buf = state["momentum_buffer"] = np.array(grad)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param.data -= group["lr"] * grad
