"""Activations as forward/backward pairs (``torch.nn.functional``).

Each ``name(x, ...)`` returns the activation and ``name_backward(grad_output, x, ...)``
returns :math:`\\partial L/\\partial x = g \\odot f'(x)`. Kinks follow torch exactly.
"""

from __future__ import annotations

import numpy as np

__all__ = ["relu", "relu_backward"]


def relu(input: np.ndarray) -> np.ndarray:
    r""":math:`\mathrm{relu}(x) = \max(x, 0)` (``torch.nn.functional.relu``)."""
    return np.maximum(input, 0).astype(input.dtype, copy=False)


def relu_backward(grad_output: np.ndarray, input: np.ndarray) -> np.ndarray:
    r""":math:`\partial L/\partial x = g \cdot [x > 0]`; at the kink torch takes relu'(0) = 0."""
    return np.where(input > 0, grad_output, 0).astype(input.dtype, copy=False)
