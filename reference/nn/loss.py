"""Loss modules: ``forward(input, target)`` returns the loss, ``backward()`` dL/dinput."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_reduction, check_same_shape
from .module import Module

__all__ = ["MSELoss"]


class _Loss(Module):
    """Shared plumbing: ``reduction`` and the default upstream gradient of 1 for a scalar."""

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction, type(self).__name__)
        self._cache: tuple | None = None

    def _upstream(self, grad_output: np.ndarray | float | None, dtype: np.dtype) -> np.ndarray:
        """``loss.backward()`` in torch implies a gradient of 1 for a scalar loss only."""
        if grad_output is None:
            if self.reduction == "none":
                raise ValueError(
                    f"{type(self).__name__}(reduction='none').backward() needs a grad_output "
                    "of the loss's shape: a non-scalar loss has no implied gradient"
                )
            return np.ones((), dtype=dtype)
        return np.asarray(grad_output, dtype=dtype)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """``torch.nn.MSELoss``: :math:`(x - y)^2`, reduced."""

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input = as_float_array(input, "MSELoss")
        target = as_float_array(target, "MSELoss", "target")
        check_same_shape(input, target, "MSELoss")
        self._cache = (input, target)
        return F.mse_loss(input, target, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.mse_loss_backward(grad_output, input, target, self.reduction)
