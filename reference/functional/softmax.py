r"""Softmax and log-softmax along one dimension (``torch.nn.functional``), re-exported by
:mod:`.activation`.

``dim=None`` follows torch's legacy implicit choice (``_get_softmax_dim`` in
``torch/nn/functional.py``): dim 0 for 0-, 1- and 3-D input, dim 1 otherwise, with the
same deprecation warning torch gives. Pass ``dim`` explicitly.

Stability: :math:`\mathrm{softmax}(x) = \mathrm{softmax}(x - \max x)`, so every
exponential sees a non-positive argument and cannot overflow.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validate import as_float_array, normalize_dim
from .rounding import difference, summed

__all__ = ["softmax", "softmax_backward", "log_softmax", "log_softmax_backward"]


def _resolve_dim(dim: int | None, ndim: int, name: str, warn: bool) -> int:
    """``dim`` as an index into the input's axes; ``None`` picks torch's legacy default."""
    if dim is None:
        if warn:
            warnings.warn(
                f"Implicit dimension choice for {name} has been deprecated (as in torch). "
                "Change the call to include dim=X as an argument.",
                UserWarning,
                stacklevel=3,
            )
        dim = 0 if ndim in (0, 1, 3) else 1
    return normalize_dim(dim, ndim, name)


def _prepare(
    input: Any, dim: int | None, dtype: Any, name: str, warn: bool
) -> tuple[np.ndarray, int]:
    """Validated input, cast to ``dtype`` if given (torch casts before the op), and its dim.

    A 0-d input is treated as 1-D of length 1 (torch allows dim 0 or -1 there).
    """
    input = as_float_array(input, name)
    axis = _resolve_dim(dim, input.ndim, name, warn)
    if dtype is not None:
        if np.dtype(dtype).kind != "f":
            raise TypeError(f"{name}: dtype must be a floating dtype, got {np.dtype(dtype)}")
        input = input.astype(dtype, copy=False)
    return input.reshape(input.shape or (1,)), axis  # () -> (1,); other shapes unchanged


def softmax(input: np.ndarray, dim: int | None = None, dtype: Any = None) -> np.ndarray:
    r""":math:`y_i = e^{x_i - m} / \sum_j e^{x_j - m}` along ``dim``, :math:`m = \max_j x_j`.

    Shapes: any; the output has the input's shape. ``dtype``: cast the input first.
    Torch: ``torch.nn.functional.softmax``.
    """
    x, axis = _prepare(input, dim, dtype, "softmax", warn=True)
    if x.size == 0:
        return x.reshape(np.shape(input)).copy()
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return (e / e.sum(axis=axis, keepdims=True)).reshape(np.shape(input))


def softmax_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    dim: int | None = None,
    dtype: Any = None,
    *,
    output: np.ndarray | None = None,
) -> np.ndarray:
    r"""Vector-Jacobian product of :func:`softmax` along ``dim``.

    .. math:: \frac{\partial y_i}{\partial x_k} = y_i(\delta_{ik} - y_k)
              \quad\Rightarrow\quad
              \frac{\partial L}{\partial x_k} = y_k \Bigl(g_k - \sum_i g_i y_i\Bigr)

    ``output``: the forward's result, to skip recomputing it. ``dim=None`` resolves
    as in the forward (which already warned). The gradient has the input's dtype.
    """
    x, axis = _prepare(input, dim, dtype, "softmax_backward", warn=False)
    g = _grad_like(grad_output, x, np.shape(input), "softmax_backward")
    y = softmax(x, axis) if output is None else np.asarray(output).reshape(x.shape)
    # the sum and the subtraction cancel where one probability is near 1: their rounding
    # is sampled at the size of the terms (reference.functional.rounding)
    grad = y * difference(g, summed(g * y, (axis,)))
    return grad.reshape(np.shape(input)).astype(np.asarray(input).dtype, copy=False)


def log_softmax(input: np.ndarray, dim: int | None = None, dtype: Any = None) -> np.ndarray:
    r""":math:`y_i = x_i - m - \log \sum_j e^{x_j - m}` along ``dim``, :math:`m = \max_j x_j`.

    Computed directly rather than as ``log(softmax(x))``, which would give
    :math:`\log 0 = -\infty` wherever a probability underflows. Torch:
    ``torch.nn.functional.log_softmax``.
    """
    x, axis = _prepare(input, dim, dtype, "log_softmax", warn=True)
    if x.size == 0:
        return x.reshape(np.shape(input)).copy()
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))  # >= log 1: no log 0
    return (shifted - log_sum).reshape(np.shape(input))


def log_softmax_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    dim: int | None = None,
    dtype: Any = None,
    *,
    output: np.ndarray | None = None,
) -> np.ndarray:
    r"""Vector-Jacobian product of :func:`log_softmax` along ``dim``.

    .. math:: \frac{\partial y_i}{\partial x_k} = \delta_{ik} - \mathrm{softmax}(x)_k
              \quad\Rightarrow\quad
              \frac{\partial L}{\partial x_k} = g_k - e^{y_k} \sum_i g_i

    ``output``: the forward's result (then :math:`e^{y} = \mathrm{softmax}(x)`, and
    :math:`y \le 0`, so the exponential cannot overflow).
    """
    x, axis = _prepare(input, dim, dtype, "log_softmax_backward", warn=False)
    g = _grad_like(grad_output, x, np.shape(input), "log_softmax_backward")
    y = log_softmax(x, axis) if output is None else np.asarray(output).reshape(x.shape)
    grad = g - np.exp(y) * g.sum(axis=axis, keepdims=True)
    return grad.reshape(np.shape(input)).astype(np.asarray(input).dtype, copy=False)


def _grad_like(grad_output: Any, x: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``grad_output`` checked against the input's shape, reshaped like ``x``, in x's dtype."""
    g = as_float_array(grad_output, name, "grad_output")
    if g.shape != shape:
        raise ValueError(
            f"{name}: grad_output must have the output's shape {shape} (the input's), got {g.shape}"
        )
    return g.reshape(x.shape).astype(x.dtype, copy=False)  # () -> (1,) for a 0-d input
