"""``Adafactor``: Adam-like steps with a factored (row x column) second moment."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..nn.module import Parameter
from .optimizer import Optimizer, check_option, init_state, lerp_

__all__ = ["Adafactor"]


def _rms(x: np.ndarray) -> float:
    r""":math:`\lVert x \rVert_2 / \sqrt{n}`, the root mean square of all elements."""
    return float(np.sqrt(np.sum(x * x)) / x.size**0.5)


class Adafactor(Optimizer):
    r"""Adafactor (``torch.optim.Adafactor``, Shazeer & Stern 2018, as torch varies it).

    For each parameter at step :math:`t = 1, 2, \dots`, in torch's order, with
    :math:`\tau` = ``beta2_decay``, :math:`\epsilon_1` = ``eps[0]`` (``None``:
    the machine epsilon of the parameter's dtype), :math:`\epsilon_2` = ``eps[1]``:

    .. math::

        g &\leftarrow -g \quad \text{if maximize} \\
        \beta_t &= 1 - t^{\tau}, \quad \rho_t = \min(\gamma, 1/\sqrt t), \quad
            \alpha_t = \max(\epsilon_2, \text{RMS}(\theta))\, \rho_t \\
        \theta &\leftarrow \theta (1 - \gamma \lambda) \quad \text{(decoupled weight decay)} \\
        R &\leftarrow \beta_t R + (1 - \beta_t)\, \text{mean}_{-1}(g^2), \quad
        C \leftarrow \beta_t C + (1 - \beta_t)\, \text{mean}_{-2}(g^2) \\
        \hat V &= R\, C / \max(\text{mean}_{-2}(R), \epsilon_1)
            \quad \text{(ndim} \ge 2\text{; else } \hat V \leftarrow
            \beta_t \hat V + (1 - \beta_t) g^2\text{)} \\
        U &= g / \sqrt{\max(\hat V, \epsilon_1^2)}, \quad
        \theta \leftarrow \theta - \frac{\alpha_t}{\max(1, \text{RMS}(U) / d)}\, U

    For a parameter of two or more dimensions only the row means :math:`R`
    (last axis reduced, kept as size 1) and column means :math:`C` (the
    second-to-last axis reduced) are stored, and :math:`\hat V` is their outer
    product over each trailing matrix, normalised by the mean of :math:`R`:
    memory :math:`O(n + m)` instead of :math:`O(nm)`. There is no first moment.
    :math:`\alpha_t` is computed from the parameter *before* the weight decay.
    :math:`\beta_t` is 0 at :math:`t = 1` (the first step takes the new
    statistics whole). ``lr`` only caps :math:`\rho_t` and scales the weight
    decay (torch's choice, not the paper's). State: ``step``, then ``row_var``
    (:math:`R`) and ``col_var`` (:math:`C`) for ndim >= 2, else ``variance``.

    Torch resolves ``eps[0] = None`` from the dtype of the first parameter of the
    group it steps and reuses it for the group's other parameters; here each
    parameter uses its own dtype's epsilon (they differ only in a group that
    mixes dtypes). ``foreach`` is accepted and ignored: a NumPy reference has
    one implementation path; the harness runs torch's paths against it.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
    ):
        def check(ok: bool, message: str) -> None:
            check_option(ok, "Adafactor", message)

        check(0.0 <= lr, f"Learning rate should be >= 0 but is: {lr}")
        check(beta2_decay <= 0.0, f"beta2_decay should be <= 0 but is: {beta2_decay}")
        check(eps[0] is None or 0.0 <= eps[0], f"epsilon1 should be >= 0 but is: {eps[0]}")
        check(0.0 <= eps[1], f"epsilon2 should be >= 0 but is: {eps[1]}")
        check(1.0 <= d, f"Clipping threshold d should be >= 1 but is: {d}")
        check(0.0 <= weight_decay, f"weight_decay should be >= 0 but is: {weight_decay}")
        defaults = dict(
            lr=lr,
            beta2_decay=beta2_decay,
            eps=tuple(eps),
            d=d,
            weight_decay=weight_decay,
            maximize=maximize,
        )
        super().__init__(params, defaults)

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, weight_decay = group["lr"], group["weight_decay"]
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(param.data.dtype).eps)
        if not state:
            init_state(state, param)
            if grad.ndim > 1:
                state["row_var"] = np.zeros_like(grad, shape=(*grad.shape[:-1], 1))
                state["col_var"] = np.zeros_like(grad, shape=(*grad.shape[:-2], 1, grad.shape[-1]))
            else:
                state["variance"] = np.zeros_like(grad)
        if group["maximize"]:
            grad = -grad
        state["step"] += 1
        step = state["step"]
        one_minus_beta2 = step ** group["beta2_decay"]
        rho = min(lr, 1 / step**0.5)
        alpha = max(eps2, _rms(param.data)) * rho
        if weight_decay != 0:
            param.data *= 1 - lr * weight_decay
        square = grad * grad
        if grad.ndim > 1:
            row_var, col_var = state["row_var"], state["col_var"]
            lerp_(row_var, np.mean(square, axis=-1, keepdims=True), one_minus_beta2)
            lerp_(col_var, np.mean(square, axis=-2, keepdims=True), one_minus_beta2)
            # (..., n, 1) @ (..., 1, m): a matmul over an inner size 1 is the broadcast product
            row_scale = np.maximum(np.mean(row_var, axis=-2, keepdims=True), eps1)
            var_estimate = row_var * col_var / row_scale
        else:
            lerp_(state["variance"], square, one_minus_beta2)
            var_estimate = state["variance"]
        update = grad / np.sqrt(np.maximum(var_estimate, eps1 * eps1))
        denom = max(1.0, _rms(update) / group["d"])
        param.data -= (alpha / denom) * update
