r"""``Muon``: momentum, then the update orthogonalised by a Newton-Schulz iteration.

Muon (``torch.optim.Muon``, torch/optim/_muon.py) is for 2-d weight matrices. It
keeps SGD-style momentum, and instead of the momentum itself applies its
*orthogonalisation*: the matrix with the same singular vectors and every singular
value near 1, :math:`U V^\top` for :math:`U \Sigma V^\top` the SVD, approximated by a
few steps of a quintic Newton-Schulz iteration (:func:`_zeropower_via_newtonschulz`).

Precision: torch runs the iteration in **bfloat16** (``grad.bfloat16()``, 8 bits of
mantissa), whatever the parameter's dtype, and adds the bfloat16 result to the
parameter. NumPy has no bfloat16, and the reference follows its dtype rule: the
iteration runs in the parameter's dtype (float32 or float64). Each update therefore
differs from torch's by bfloat16 rounding (measured on random matrices up to 8x8: a
median 2e-2, at worst 0.15-0.2, of the update's largest entry), and a float64
comparison needs an allowance of its own for it; held tight,
the reference equals torch's algorithm run in the parameter's dtype (the tests swap
torch's iteration for the same code without the cast).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import numpy as np

from ..functional.embedding import SparseRows
from ..nn.module import Parameter
from .optimizer import Optimizer, check_option, grad_of, lerp_

__all__ = ["Muon"]

# torch's constants (from Keller Jordan's Muon)
EPS = 1e-7
DEFAULT_A, DEFAULT_B, DEFAULT_C = 3.4445, -4.7750, 2.0315
DEFAULT_NS_STEPS = 5


class AdjustLR(Enum):
    """The names ``adjust_lr_fn`` takes (``None`` means ``ORIGINAL``)."""

    ORIGINAL = "original"  # Keller Jordan's: sqrt(max(1, A / B))
    MATCH_RMS_ADAMW = "match_rms_adamw"  # Moonshot's: 0.2 sqrt(max(A, B))


def _zeropower_via_newtonschulz(
    grad: np.ndarray, ns_coefficients: tuple[float, float, float], ns_steps: int, eps: float
) -> np.ndarray:
    r"""Approximately orthogonalise ``grad`` (2-d): torch's ``_zeropower_via_newtonschulz``.

    With :math:`X_0 = G / \max(\lVert G\rVert_F, \epsilon)` (singular values in
    :math:`[0, 1]`), taken transposed when :math:`G` is tall so that the Gram matrix is
    the smaller one, ``ns_steps`` times:

    .. math::

        A = X X^\top, \qquad B = b A + c A^2, \qquad X \leftarrow a X + B X

    i.e. each singular value :math:`\sigma` becomes :math:`a\sigma + b\sigma^3 + c\sigma^5`.
    The default :math:`(a, b, c)` push every :math:`\sigma` into roughly
    :math:`[0.7, 1.2]` rather than exactly to 1: the result is :math:`U S' V^\top`, not
    :math:`U V^\top`. Computed in ``grad``'s dtype (torch: bfloat16, see the module
    docstring). ``ns_steps >= 100``, a non-2-d ``grad`` or not three coefficients
    raise ``ValueError``, as in torch.
    """
    if ns_steps >= 100:
        raise ValueError("Number of steps must be less than 100 for computational efficiency")
    if grad.ndim != 2:
        raise ValueError(f"Input tensor gradient must be a 2D matrix, got shape {grad.shape}")
    if len(ns_coefficients) != 3:
        raise ValueError(
            f"Coefficients must be a tuple of exactly 3 values, got {tuple(ns_coefficients)}"
        )
    a, b, c = ns_coefficients
    tall = grad.shape[0] > grad.shape[1]
    ortho = grad.T if tall else grad  # (A, B) -> (B, A) when tall
    # ensure the spectral norm is at most 1 (the Frobenius norm bounds it)
    norm = np.maximum(np.linalg.norm(ortho), np.asarray(eps, dtype=grad.dtype))
    ortho = ortho / norm
    for _ in range(ns_steps):
        gram = ortho @ ortho.T  # (m, m), m = min(A, B)
        gram_update = b * gram + c * (gram @ gram)  # torch: addmm(gram, gram, gram, b, c)
        ortho = a * ortho + gram_update @ ortho  # torch: addmm(ortho, gram_update, ortho, a)
    return ortho.T if tall else ortho  # back to (A, B)


def _adjust_lr(lr: float, adjust_lr_fn: str | None, param_shape: tuple[int, ...]) -> float:
    r"""The learning rate for a parameter of shape :math:`(A, B)`: torch's ``_adjust_lr``.

    ``None`` or ``"original"``: :math:`\gamma\sqrt{\max(1, A/B)}`;
    ``"match_rms_adamw"``: :math:`0.2\,\gamma\sqrt{\max(A, B)}` (the update's RMS then
    matches AdamW's); any other name (only reachable by editing a group after
    construction) leaves :math:`\gamma`, as torch's fallback does.
    """
    rows, cols = param_shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == AdjustLR.ORIGINAL.value:
        ratio = math.sqrt(max(1, rows / cols))
    elif adjust_lr_fn == AdjustLR.MATCH_RMS_ADAMW.value:
        ratio = 0.2 * math.sqrt(max(rows, cols))
    else:
        ratio = 1.0
    return lr * ratio


class Muon(Optimizer):
    r"""Muon (``torch.optim.Muon``) for 2-d parameters.

    For each parameter, every step, in torch's order (:math:`\mu` momentum,
    :math:`\gamma` lr, :math:`\lambda` weight decay):

    .. math::

        B &\leftarrow B + (1 - \mu)(g - B) \\
        U &\leftarrow g + \mu (B - g) \ \text{ if nesterov, else }\ U = B \\
        O &\leftarrow \mathrm{NS}^{(a,b,c)}_{k}(U; \epsilon) \\
        \theta &\leftarrow \theta (1 - \gamma\lambda) \\
        \theta &\leftarrow \theta - \mathrm{adjust}(\gamma, A, B)\, O

    Torch's docstring writes :math:`B \leftarrow \mu B + g` and :math:`g + \mu B`; its
    code uses the ``lerp`` forms above, which are those times :math:`1 - \mu`, a factor
    the normalisation inside NS removes (up to the :math:`\epsilon` clamp): the code is
    followed. The weight decay is decoupled and uses the unadjusted :math:`\gamma`.
    State: ``momentum_buffer`` (:math:`B`) only, no ``step``. NS runs in the
    parameter's dtype where torch uses bfloat16 (module docstring).

    Only 2-d parameters (``ValueError`` at construction, as torch); a sparse gradient
    or a complex parameter raises ``RuntimeError`` at ``step()``.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (DEFAULT_A, DEFAULT_B, DEFAULT_C),
        eps: float = EPS,
        ns_steps: int = DEFAULT_NS_STEPS,
        adjust_lr_fn: str | None = None,
    ):
        name = type(self).__name__
        check_option(0.0 <= lr, name, f"Learning rate should be >= 0 but is: {lr}")
        check_option(0.0 <= momentum, name, f"momentum should be >= 0 but is: {momentum}")
        check_option(
            0.0 <= weight_decay, name, f"weight decay should be >= 0 but is: {weight_decay}"
        )
        check_option(
            adjust_lr_fn is None or adjust_lr_fn in [m.value for m in AdjustLR],
            name,
            f"Adjust learning rate function {adjust_lr_fn} is not supported (use None, "
            "'original' or 'match_rms_adamw')",
        )
        defaults = dict(
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            nesterov=nesterov,
            ns_coefficients=ns_coefficients,
            eps=eps,
            ns_steps=ns_steps,
            adjust_lr_fn=adjust_lr_fn,
        )
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                check_option(
                    p.data.ndim == 2,
                    name,
                    "Muon only supports 2D parameters whereas we found a parameter with size: "
                    f"{p.shape} (optimize biases and embeddings with e.g. AdamW)",
                )

    def _init_group(self, group: dict[str, Any]) -> list[Parameter]:
        """The group's parameters with a gradient, checked, their buffers made (torch's)."""
        params = []
        for p in group["params"]:
            if p.grad is None:
                continue
            if np.iscomplexobj(p.data):
                raise RuntimeError("Muon does not support complex parameters")
            if isinstance(grad_of(p), SparseRows):
                raise RuntimeError("Muon does not support sparse gradients")
            params.append(p)
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = np.zeros_like(grad_of(p))
        return params

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Per group: check every gradient and make the buffers, then update each."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in self._init_group(group):
                self._update(param, grad_of(param), self.state[param], group)
        return loss

    def _update(
        self, param: Parameter, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]
    ) -> None:
        lr, weight_decay, momentum = group["lr"], group["weight_decay"], group["momentum"]
        if grad.ndim != 2:
            raise ValueError(f"Param gradient must be a 2D matrix, got shape {grad.shape}")
        buf = state["momentum_buffer"]
        lerp_(buf, grad, 1 - momentum)
        if group["nesterov"]:
            update = np.array(grad)  # grad.lerp(buf, momentum): a new array
            lerp_(update, buf, momentum)
        else:
            update = buf
        update = _zeropower_via_newtonschulz(
            update, group["ns_coefficients"], group["ns_steps"], group["eps"]
        )
        adjusted_lr = _adjust_lr(lr, group["adjust_lr_fn"], param.shape)
        param.data *= 1 - lr * weight_decay
        param.data += -adjusted_lr * update
