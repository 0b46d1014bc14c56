r"""The bilinear map, forward and backward (``torch.nn.functional.bilinear``).

.. math:: y_{\dots o} = x^{(1)\top}_{\dots} A_o\, x^{(2)}_{\dots} + b_o
          = \sum_{i, j} x^{(1)}_{\dots i} A_{oij} x^{(2)}_{\dots j} + b_o

It is linear in each input separately, so each gradient is the other input pushed
through the weight; the weight's gradient is the outer product of the two inputs
weighted by the upstream gradient, summed over the leading dims.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._validate import as_float_array

__all__ = ["bilinear", "bilinear_backward"]

# torch's C++ type names, for its dtype-mismatch message
_TORCH_TYPE = {"float64": "double", "float32": "float", "float16": "c10::Half"}


def _check(
    input1: Any, input2: Any, weight: Any, bias: Any, layer: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Arrays, checked in torch's order (ranks, leading dims, features, bias, dtypes)."""
    x1, x2 = as_float_array(input1, layer, "input1"), as_float_array(input2, layer, "input2")
    w = as_float_array(weight, layer, "weight")
    b = None if bias is None else as_float_array(bias, layer, "bias")
    if x1.ndim != x2.ndim or x1.ndim == 0:
        raise ValueError(
            f"{layer}: input1 {x1.shape} and input2 {x2.shape} must have the same number of "
            "dimensions, at least 1: (*, in1_features) and (*, in2_features)"
        )
    if x1.shape[:-1] != x2.shape[:-1]:
        raise ValueError(
            f"{layer}: input1 {x1.shape} and input2 {x2.shape} must have the same leading "
            "dims (torch does not broadcast them); only the last dim may differ"
        )
    if w.ndim != 3:
        raise ValueError(
            f"{layer}: weight must be 3-D (out_features, in1_features, in2_features), got "
            f"shape {w.shape}"
        )
    for name, x, k in (("input1", x1, 1), ("input2", x2, 2)):
        if x.shape[-1] != w.shape[k]:
            raise ValueError(
                f"{layer}: {name}'s last dim is {x.shape[-1]} but weight {w.shape} expects "
                f"{w.shape[k]} (in{k}_features)"
            )
    if b is not None and b.shape != w.shape[:1]:
        raise ValueError(
            f"{layer}: bias must have shape (out_features,) = {w.shape[:1]}, got {b.shape}"
        )
    _check_dtypes(x1, x2, w, b, layer)
    return x1, x2, w, b


def _check_dtypes(x1, x2, w, b, layer: str) -> None:
    """torch's ``bilinear`` refuses any mix of dtypes, with this message."""
    named = {"input1": x1, "input2": x2, "weight": w, "bias": b}
    dtypes = {name: t.dtype for name, t in named.items() if t is not None}
    if len(set(dtypes.values())) > 1:
        got = ", ".join(f"{k}: {_TORCH_TYPE.get(v.name, v.name)}" for k, v in dtypes.items())
        raise RuntimeError(
            f"All tensors must have the same dtype, got {got}\n{layer}: cast the inputs "
            "(.astype) or the module (.to) so that all of them share one dtype"
        )


def bilinear(
    input1: np.ndarray, input2: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None
) -> np.ndarray:
    r"""Bilinear map :math:`y_o = x_1^\top A_o x_2 + b_o`.

    .. math:: y_{\dots o} = \sum_{i, j} x^{(1)}_{\dots i} A_{oij} x^{(2)}_{\dots j} + b_o

    Shapes: input1 ``(*, in1)``, input2 ``(*, in2)`` with the same ``*`` (no broadcasting,
    as torch; ``*`` may be empty: unbatched), weight ``(out, in1, in2)``, bias ``(out,)``
    -> ``(*, out)``. Every array must have one dtype (torch raises otherwise). Torch:
    ``torch.nn.functional.bilinear``.
    """
    x1, x2, w, b = _check(input1, input2, weight, bias, "bilinear")
    lead, r = x1.shape[:-1], math.prod(x1.shape[:-1])
    rows1 = x1.reshape(r, w.shape[1])  # (*, in1) -> (R, in1)
    rows2 = x2.reshape(r, w.shape[2])  # (*, in2) -> (R, in2)
    # x1^T A_o first, one matmul for every o: (R, in1) . (out, in1, in2) -> (R, out, in2)
    projected = np.tensordot(rows1, w, axes=([1], [1]))
    out = np.einsum("roj,rj->ro", projected, rows2)  # (R, out)
    if b is not None:
        out += b
    return out.reshape(*lead, w.shape[0])  # (R, out) -> (*, out)


def bilinear_backward(
    grad_output: np.ndarray,
    input1: np.ndarray,
    input2: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`bilinear` wrt input1, input2, weight and bias.

    .. math::
        \frac{\partial L}{\partial x^{(1)}_i} = \sum_{o, j} g_o A_{oij} x^{(2)}_j, \qquad
        \frac{\partial L}{\partial x^{(2)}_j} = \sum_{o, i} g_o A_{oij} x^{(1)}_i,

    .. math::
        \frac{\partial L}{\partial A_{oij}} = \sum_{\text{rows}} g_o x^{(1)}_i x^{(2)}_j,
        \qquad \frac{\partial L}{\partial b_o} = \sum_{\text{rows}} g_o

    per row of the leading dims. Returns ``(grad_input1, grad_input2, grad_weight,
    grad_bias)``; ``grad_bias`` is ``None`` when ``bias`` is.
    """
    x1, x2, w, b = _check(input1, input2, weight, bias, "bilinear_backward")
    g = as_float_array(grad_output, "bilinear_backward", "grad_output")
    if g.shape != x1.shape[:-1] + w.shape[:1]:
        raise ValueError(
            f"bilinear_backward: grad_output must have the output's shape "
            f"{x1.shape[:-1] + w.shape[:1]}, got {g.shape}"
        )
    (out_features, in1, in2), r = w.shape, math.prod(x1.shape[:-1])
    rows = g.reshape(r, out_features)  # (*, out) -> (R, out)
    rows1, rows2 = x1.reshape(r, in1), x2.reshape(r, in2)  # (*, in) -> (R, in)
    g_w = np.tensordot(rows, w, axes=([1], [0]))  # sum_o g_o A_o: (R, in1, in2)
    grad1 = np.einsum("rij,rj->ri", g_w, rows2).reshape(x1.shape)  # (R, in1) -> (*, in1)
    grad2 = np.einsum("rij,ri->rj", g_w, rows1).reshape(x2.shape)  # (R, in2) -> (*, in2)
    # sum_r g_ro x1_ri x2_rj, as one matmul: (out, R) @ (R, in1*in2) -> (out, in1*in2)
    outer = (rows1[:, :, None] * rows2[:, None, :]).reshape(r, in1 * in2)  # (R, in1*in2)
    grad_w = (rows.T @ outer).reshape(w.shape)  # (out, in1*in2) -> (out, in1, in2)
    grad_b = rows.sum(axis=0) if b is not None else None  # (out,)
    return grad1, grad2, grad_w, grad_b
