r"""``SparseAdam``: Adam on the rows a sparse gradient touches, and on no other.

Torch's ``SparseAdam`` (``torch.optim._functional.sparse_adam``) takes a sparse
gradient, such as ``Embedding(sparse=True)``'s weight gradient
(:class:`reference.functional.embedding.SparseRows`), sums its repeated rows
(``coalesce``: the update is not linear in the gradient, so a row must appear once),
and runs Adam's update on those rows only: the moments and the parameter of every
other row stay as they are, a row's moments do not decay while it is not looked up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..functional.embedding import SparseRows
from ..nn.module import Parameter
from .optimizer import Optimizer, check_betas, check_option

__all__ = ["SparseAdam"]


class SparseAdam(Optimizer):
    r"""Adam for sparse gradients (``torch.optim.SparseAdam``).

    For each parameter at step :math:`t = 1, 2, \dots`, with :math:`R` the rows of
    the coalesced gradient and :math:`g_r` their summed values:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        m_R &\leftarrow m_R + (1 - \beta_1)(g_R - m_R) \\
        v_R &\leftarrow v_R + (1 - \beta_2)(g_R^2 - v_R) \\
        \theta_R &\leftarrow \theta_R - \gamma\,\frac{\sqrt{1 - \beta_2^t}}{1 - \beta_1^t}\,
            \frac{m_R}{\sqrt{v_R} + \epsilon}

    Rows outside :math:`R` keep :math:`\theta, m, v`. Note where :math:`\epsilon` sits:
    added to the *uncorrected* :math:`\sqrt{v}`, the bias corrections folded into the
    step size (Adam adds it to :math:`\sqrt{v / (1 - \beta_2^t)}`). :math:`t` counts
    this parameter's steps, one per ``step()`` in which it had a gradient, an empty
    one (every position ``padding_idx``) included, though an empty gradient moves
    nothing. State: ``step`` (an int, as torch's), ``exp_avg`` (:math:`m`),
    ``exp_avg_sq`` (:math:`v`). No weight decay: torch's has none.

    A dense gradient raises ``RuntimeError`` at ``step()``, as in torch.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
    ):
        name = type(self).__name__
        # torch: both strictly positive, unlike Adam's checks
        check_option(0.0 < lr, name, f"Invalid learning rate: {lr} (lr must be > 0)")
        check_option(0.0 < eps, name, f"Invalid epsilon value: {eps} (eps must be > 0)")
        check_betas(betas, name)
        defaults = dict(lr=lr, betas=betas, eps=eps, maximize=maximize)
        super().__init__(params, defaults)
        complex_params = [
            [i, j]
            for i, group in enumerate(self.param_groups)
            for j, p in enumerate(group["params"])
            if np.iscomplexobj(p.data)
        ]
        check_option(
            not complex_params,
            name,
            f"Complex params at indices {complex_params}: SparseAdam does not support "
            "complex parameters",
        )

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Torch's order: per group, check each gradient and count its step, then update."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            for param in params:
                if not isinstance(param.grad, SparseRows):
                    raise RuntimeError(
                        "SparseAdam does not support dense gradients, please consider Adam "
                        f"instead (a parameter of shape {param.shape} has a dense gradient; "
                        "Embedding(sparse=True) gives a sparse one)"
                    )
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = np.zeros_like(param.data)
                    state["exp_avg_sq"] = np.zeros_like(param.data)
                state["step"] += 1
            for param in params:
                self._update(param, param.grad, self.state[param], group)
        return loss

    def _update(
        self, param: Parameter, grad: SparseRows, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if grad.shape != param.shape:
            raise ValueError(
                f"SparseAdam: a sparse gradient of shape {grad.shape} for a parameter of "
                f"shape {param.shape}"
            )
        if group["maximize"]:
            grad = -grad
        grad = grad.coalesce()  # the update is not linear: each row once
        if grad.nnz() == 0:
            return  # nothing looked up; the step was counted all the same
        rows, values = grad.indices, grad.values  # (u,), (u, *row)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        old_exp_avg = exp_avg[rows]
        exp_avg_update = (values - old_exp_avg) * (1 - beta1)
        exp_avg[rows] += exp_avg_update
        old_exp_avg_sq = exp_avg_sq[rows]
        with np.errstate(over="ignore"):  # a gradient past sqrt(max) squares to inf, as in torch
            exp_avg_sq_update = (values * values - old_exp_avg_sq) * (1 - beta2)
        exp_avg_sq[rows] += exp_avg_sq_update
        # torch rebuilds the new moments from update + old, as here
        numer = exp_avg_update + old_exp_avg
        denom = np.sqrt(exp_avg_sq_update + old_exp_avg_sq) + eps
        step = state["step"]
        bias_correction1 = 1 - beta1**step
        bias_correction2 = 1 - beta2**step
        step_size = lr * math.sqrt(bias_correction2) / bias_correction1
        param.data[rows] += -step_size * (numer / denom)
