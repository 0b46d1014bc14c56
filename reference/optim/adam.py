"""``Adam`` and ``AdamW``: bias-corrected first and second moment estimates."""

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
from .sgd import check_implementation_flags

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam (``torch.optim.Adam``), optionally AMSGrad and decoupled weight decay.

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        \theta &\leftarrow \theta (1 - \gamma \lambda) \ \text{ if decoupled, else }\
            g \leftarrow g + \lambda \theta \\
        m &\leftarrow \beta_1 m + (1 - \beta_1) g \\
        v &\leftarrow \beta_2 v + (1 - \beta_2) g^2 \\
        \hat v &\leftarrow \max(\hat v, v) \ \text{ if amsgrad, else }\ \hat v = v \\
        \theta &\leftarrow \theta - \frac{\gamma}{1 - \beta_1^t}\,
            \frac{m}{\sqrt{\hat v} / \sqrt{1 - \beta_2^t} + \epsilon}

    :math:`\epsilon` sits *outside* the square root, added to the bias-corrected
    :math:`\sqrt{\hat v}`; AMSGrad keeps the running maximum of the raw second
    moment and bias-corrects that. State: ``step``, ``exp_avg`` (:math:`m`),
    ``exp_avg_sq`` (:math:`v`), ``max_exp_avg_sq`` (:math:`\hat v`, amsgrad only).

    ``foreach``, ``capturable``, ``differentiable`` and ``fused`` are accepted and
    ignored: they choose among torch's implementations of this same update (a
    loop, multi-tensor or fused kernels, CUDA-graph-safe or autograd-tracked
    steps), and a NumPy reference has one implementation path; the harness runs
    torch's paths against it. The combinations torch refuses are refused.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ):
        check_implementation_flags(foreach, fused, differentiable)
        name = type(self).__name__
        check_lr(lr, name)
        check_nonnegative(eps, "epsilon", name)
        check_betas(betas, name)
        check_nonnegative(weight_decay, "weight_decay", name)
        defaults = dict(
            lr=lr,
            betas=tuple(betas),
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            maximize=maximize,
            decoupled_weight_decay=decoupled_weight_decay,
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        weight_decay = group["weight_decay"]
        if not state:
            init_state(state, param, "exp_avg", "exp_avg_sq")
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        grad = decay_weight(param, grad, lr, weight_decay, group["decoupled_weight_decay"])
        exp_avg, exp_avg_sq = update_moments(state, grad, beta1, beta2)
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr / bias_correction1
        second_moment = exp_avg_sq
        if group["amsgrad"]:
            second_moment = state["max_exp_avg_sq"]
            np.maximum(second_moment, exp_avg_sq, out=second_moment)
        denom = np.sqrt(second_moment) / bias_correction2**0.5 + eps
        param.data -= step_size * exp_avg / denom


class AdamW(Adam):
    r"""AdamW (``torch.optim.AdamW``): Adam with *decoupled* weight decay.

    Identical to ``Adam(..., decoupled_weight_decay=True)``: the weights shrink
    by :math:`\theta \leftarrow \theta (1 - \gamma\lambda)` before the Adam step,
    and the decay never enters :math:`m` or :math:`v`. Default
    ``weight_decay=1e-2`` (Adam's is 0). ``foreach``, ``capturable``,
    ``differentiable`` and ``fused`` are accepted and ignored, as by ``Adam``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ):
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
