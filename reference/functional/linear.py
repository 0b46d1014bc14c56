"""The affine map, forward and backward (``torch.nn.functional.linear``)."""

from __future__ import annotations

import numpy as np


def linear(input: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    r"""Affine map :math:`y = x W^\top + b`.

    .. math:: y_{\dots j} = \sum_i x_{\dots i} W_{ji} + b_j

    Shapes: input ``(*, in)``, weight ``(out, in)``, bias ``(out,)`` -> ``(*, out)``.
    Torch: ``torch.nn.functional.linear``.
    """
    # as one 2-D product: NumPy's batched 3-D matmul is several times slower
    lead = np.shape(input)[:-1]
    rows = input.reshape(int(np.prod(lead)), weight.shape[1]) @ weight.T  # (rows, in) @ (in, out)
    output = rows.reshape(*lead, weight.shape[0])  # (rows, out) -> (*, out)
    if bias is not None:
        output += bias
    return output


def linear_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`linear` wrt input, weight and bias.

    .. math::
        \frac{\partial L}{\partial x} = g W, \qquad
        \frac{\partial L}{\partial W} = g^\top x, \qquad
        \frac{\partial L}{\partial b} = \textstyle\sum_{\text{rows}} g

    where :math:`g = \partial L/\partial y` and the leading ``*`` dims are
    flattened into rows: every row used the same W and b, so their
    contributions add.

    Returns ``(grad_input, grad_weight, grad_bias)``; ``grad_bias`` is ``None``
    when ``bias`` is.
    """
    out_features, in_features = weight.shape
    count = int(np.prod(np.shape(input)[:-1]))
    grad_rows = grad_output.reshape(count, out_features)  # (*, out) -> (rows, out)
    grad_input = (grad_rows @ weight).reshape(np.shape(input))  # (rows, in) -> (*, in)
    input_rows = input.reshape(count, in_features)  # (*, in) -> (rows, in)
    grad_weight = grad_rows.T @ input_rows  # (out, rows) @ (rows, in) -> (out, in)
    grad_bias = grad_rows.sum(axis=0) if bias is not None else None  # (out,)
    return grad_input, grad_weight, grad_bias
