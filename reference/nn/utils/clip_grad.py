r"""Gradient clipping and flat parameter vectors (``torch.nn.utils``).

``clip_grad_norm_`` treats the gradients as one vector: with :math:`\|g_i\|_p` the norm
of each gradient,

.. math:: N = \big\|(\|g_1\|_p, \dots, \|g_n\|_p)\big\|_p, \qquad
          g_i \leftarrow g_i \cdot \min\Big(\frac{\text{max\_norm}}{N + 10^{-6}}, 1\Big),

which for :math:`p \ne 0` is the norm of all gradients concatenated. For :math:`p = 0`
it is not: the "0-norm" of the per-gradient counts of nonzeros is the number of
gradients with any nonzero entry (torch's definition, kept). Every update is in place,
on the arrays ``Parameter.grad`` holds; the ``foreach`` argument only picks torch's
kernels and changes no value here. Torch: ``torch.nn.utils.clip_grad``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from types import GeneratorType
from typing import Any

import numpy as np

from ..module import Parameter

__all__ = [
    "get_total_norm",
    "clip_grads_with_norm_",
    "clip_grad_norm_",
    "clip_grad_value_",
    "parameters_to_vector",
    "vector_to_parameters",
]


def _as_list(parameters: Any, name: str) -> list[Parameter]:
    """A Parameter, or an iterable of them, as a list (each checked)."""
    items = [parameters] if isinstance(parameters, Parameter) else list(parameters)
    for i, p in enumerate(items):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"{name}: parameters must be Parameters (e.g. module.parameters()); item {i} "
                f"is a {type(p).__name__}"
            )
    return items


def _vector_norm(x: np.ndarray, p: float) -> np.ndarray:
    r"""``torch.linalg.vector_norm(x, p)``: :math:`(\sum |x|^p)^{1/p}`, the max (min) of
    :math:`|x|` for :math:`p = \infty` (:math:`-\infty`), the count of nonzeros for 0.

    Summed in float64 and rounded once to ``x``'s dtype. Zeros under a negative ``p``
    give :math:`\infty` terms and a 0 norm, as torch's.
    """
    a = np.abs(x.astype(np.float64)).reshape(-1)
    if math.isinf(p) and a.size == 0:
        raise ValueError(
            f"the {p} norm of an empty gradient has no identity (torch refuses it too)"
        )
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        if p == math.inf:
            norm = a.max()
        elif p == -math.inf:
            norm = a.min()
        elif p == 0:
            norm = np.count_nonzero(a)
        elif p == 1:
            norm = a.sum()
        elif p == 2:
            norm = np.sqrt(np.dot(a, a))
        else:
            norm = np.sum(a**p) ** (1 / p)
    return np.asarray(norm, dtype=x.dtype)


def get_total_norm(
    tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: Any = None
) -> np.ndarray:
    r"""The ``norm_type`` norm of the per-array norms of ``tensors`` (arrays: gradients),
    a 0-d array in their common dtype; ``0.0`` (float32) for none.

    Torch: ``torch.nn.utils.get_total_norm``.
    """
    arrays = [tensors] if isinstance(tensors, np.ndarray) else [np.asarray(t) for t in tensors]
    p = float(norm_type)
    if not arrays:
        return np.asarray(0.0, dtype=np.float32)
    dtype = np.result_type(*arrays)
    norms = np.stack([_vector_norm(a, p).astype(dtype) for a in arrays])
    total = _vector_norm(norms, p)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {p} for gradients from `parameters` is non-finite, so it "
            "cannot be clipped. To disable this error and scale the gradients by the "
            "non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grads_with_norm_(
    parameters: Any, max_norm: float, total_norm: Any, foreach: Any = None
) -> None:
    r"""Scale every gradient in place by :math:`\min(\text{max\_norm} / (N + 10^{-6}), 1)`.

    The factor is computed in ``total_norm``'s dtype and rounded to each gradient's, as
    torch's in-place multiply does. Torch: ``torch.nn.utils.clip_grads_with_norm_``.
    """
    grads = [p.grad for p in _as_list(parameters, "clip_grads_with_norm_") if p.grad is not None]
    if not grads:
        return
    total_norm = np.asarray(total_norm)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        coef = np.minimum(float(max_norm) / (total_norm + total_norm.dtype.type(1e-6)), 1.0)
        coef = coef.astype(total_norm.dtype)
        for grad in grads:
            np.multiply(grad, coef.astype(grad.dtype), out=grad)  # inf * 0 -> nan, as torch


def clip_grad_norm_(
    parameters: Any,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: Any = None,
) -> np.ndarray:
    r"""Clip the gradients of ``parameters`` in place so that their total norm is at most
    ``max_norm``; returns the total norm before clipping (a 0-d array).

    .. math:: g_i \leftarrow g_i \min\Big(\frac{\text{max\_norm}}{N + 10^{-6}}, 1\Big)

    :math:`N` as in the module docstring (:func:`get_total_norm`); ``norm_type`` any
    float, ``inf`` and ``-inf`` included. Parameters without a gradient are skipped.
    With ``error_if_nonfinite``, a nan or infinite :math:`N` raises ``RuntimeError``
    before any gradient is touched. Torch: ``torch.nn.utils.clip_grad_norm_``.
    """
    generator = isinstance(parameters, GeneratorType)
    params = _as_list(parameters, "clip_grad_norm_")
    if generator and not params:
        warnings.warn(
            "`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2
        )
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(params, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_value_(parameters: Any, clip_value: float, foreach: Any = None) -> None:
    r"""Clamp every gradient in place to :math:`[-c, c]`, ``c = clip_value``.

    A negative ``c`` sets every entry to ``c`` (the upper bound wins), and nan stays
    nan, as in torch's ``clamp``. Torch: ``torch.nn.utils.clip_grad_value_``.
    """
    c = float(clip_value)
    for p in _as_list(parameters, "clip_grad_value_"):
        if p.grad is not None:
            np.minimum(np.maximum(p.grad, -c, out=p.grad), c, out=p.grad)


def parameters_to_vector(parameters: Iterable[Parameter]) -> np.ndarray:
    """All parameters flattened and concatenated, in order, as one new 1-d array (their
    common dtype). Torch: ``torch.nn.utils.parameters_to_vector``."""
    params = _as_list(parameters, "parameters_to_vector")
    if not params:
        raise ValueError("parameters_to_vector: expected at least one parameter, got none")
    return np.concatenate([p.data.reshape(-1) for p in params])  # (sum of sizes,)


def vector_to_parameters(vec: np.ndarray, parameters: Iterable[Parameter]) -> None:
    """Replace each parameter's data with the next slice of ``vec``, reshaped.

    As torch's (``param.data = vec[i:j].view_as(param)``), each parameter then holds a
    *view* of ``vec``, in ``vec``'s dtype; entries left over at the end are ignored. A
    ``vec`` too short raises before any parameter changes (torch's raises part way).
    Torch: ``torch.nn.utils.vector_to_parameters``.
    """
    if not isinstance(vec, np.ndarray):
        raise TypeError(f"vector_to_parameters: expected np.ndarray, but got: {type(vec).__name__}")
    if vec.ndim != 1:
        raise ValueError(f"vector_to_parameters: expected a 1-d vector, got shape {vec.shape}")
    params = _as_list(parameters, "vector_to_parameters")
    needed = sum(p.data.size for p in params)
    if vec.size < needed:
        raise ValueError(
            f"vector_to_parameters: the parameters hold {needed} values, the vector only {vec.size}"
        )
    pointer = 0
    for p in params:
        p.data = vec[pointer : pointer + p.data.size].reshape(p.shape)  # a view of vec
        pointer += p.data.size
