"""Activation modules: thin wrappers that save the input for the functional backward."""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from .module import Module

__all__ = ["ReLU"]


class ReLU(Module):
    """``torch.nn.ReLU``: :math:`\\max(x, 0)`; gradient 0 at x = 0, as torch."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace  # accepted for torch compatibility; we never write in place
        self._input: np.ndarray | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._input = as_float_array(input, "ReLU")
        return F.relu(self._input)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return F.relu_backward(grad_output, self._require_cache(self._input))
