"""Shape-only ops: values move, none change, so the gradient moves back."""

from __future__ import annotations

import numpy as np

from .._validate import normalize_dim

__all__ = ["flatten", "flatten_backward"]


def flatten(input: np.ndarray, start_dim: int = 1, end_dim: int = -1) -> np.ndarray:
    """Merge dims ``start_dim..end_dim`` into one (``torch.flatten``)."""
    if input.ndim == 0:
        return input.reshape(1)
    start = normalize_dim(start_dim, input.ndim, "Flatten")
    end = normalize_dim(end_dim, input.ndim, "Flatten")
    if start > end:
        raise ValueError(
            f"Flatten: start_dim ({start_dim}) comes after end_dim ({end_dim}) "
            f"for an input of shape {input.shape}"
        )
    merged = int(np.prod(input.shape[start : end + 1]))  # explicit, so 0-size dims work
    return input.reshape(input.shape[:start] + (merged,) + input.shape[end + 1 :])


def flatten_backward(grad_output: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """A reshape moves no values: the gradient is reshaped back to the input's shape."""
    return grad_output.reshape(input_shape)
