r"""The one rule every binary op's backward shares: undo broadcasting.

If :math:`x` of shape ``s`` was broadcast to the output's shape, each element of
:math:`x` fed every output element along the broadcast dims, so its gradient is the sum
of the upstream gradient over them: over the leading dims the broadcast added, and over
every dim where ``s`` has size 1 (kept, with ``keepdims``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["sum_to_shape"]


def sum_to_shape(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` (the broadcast shape) down to ``shape``."""
    grad = np.asarray(grad)
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    summed = grad.sum(axis=tuple(range(lead))) if lead > 0 else grad
    ones = tuple(i for i, n in enumerate(shape) if n == 1 and summed.shape[i] != 1)
    return summed.sum(axis=ones, keepdims=True) if ones else summed
