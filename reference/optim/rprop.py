"""``Rprop``: resilient backpropagation, a per-element step size driven by gradient signs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, check_lr, check_option, init_state

__all__ = ["Rprop"]


class Rprop(Optimizer):
    r"""Resilient backpropagation (``torch.optim.Rprop``, Riedmiller & Braun 1993; iRprop-).

    Each element has its own step size :math:`s` (starting at ``lr``); only
    the *sign* of the gradient is used. At each step, in torch's order, with
    :math:`p` the previous (possibly zeroed) gradient, starting at 0:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        f &= \eta_+ \text{ where } g p > 0,\ \ \eta_- \text{ where } g p < 0,
            \ \ 1 \text{ where } g p = 0 \\
        s &\leftarrow \operatorname{clamp}(s f,\ s_{min},\ s_{max}) \\
        g &\leftarrow 0 \text{ where } g p < 0 \\
        \theta &\leftarrow \theta - \operatorname{sign}(g)\, s \\
        p &\leftarrow g

    A sign change shrinks the step and skips the move for that element (its
    gradient is zeroed, so the next step sees :math:`g p = 0` and keeps the
    step size); agreement grows it. There is no weight decay. State: ``step``,
    ``prev`` (:math:`p`), ``step_size`` (:math:`s`).

    ``capturable``, ``foreach`` and ``differentiable`` are accepted and
    ignored: they choose among torch's implementations of this same update,
    and a NumPy reference has one implementation path; the harness runs
    torch's paths against it.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        *,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ):
        check_lr(lr, "Rprop")
        check_option(
            0.0 < etas[0] < 1.0 < etas[1],
            "Rprop",
            f"Invalid eta values: {etas[0]}, {etas[1]} (need 0 < etaminus < 1 < etaplus)",
        )
        defaults = dict(lr=lr, etas=tuple(etas), step_sizes=tuple(step_sizes), maximize=maximize)
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        (etaminus, etaplus), (size_min, size_max) = group["etas"], group["step_sizes"]
        if not state:
            init_state(state, param, "prev")
            state["step_size"] = np.full_like(param.data, group["lr"])
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        prev, step_size = state["prev"], state["step_size"]
        agreement = grad * prev
        # NaN (a NaN gradient) matches none of the three and stays NaN, as in torch
        factor = np.select(
            [agreement > 0, agreement < 0, agreement == 0], [etaplus, etaminus, 1.0], np.nan
        ).astype(step_size.dtype)
        step_size *= factor
        np.clip(step_size, size_min, size_max, out=step_size)
        grad = np.where(agreement < 0, 0, grad).astype(param.data.dtype)
        param.data -= np.sign(grad) * step_size
        prev[...] = grad
