r"""The adaptive softmax (Grave et al., 2017) as pure functions: the target's
log-probability and its gradient, the full distribution, the argmax.

The classes are split by ``cutoffs`` :math:`c_0 < c_1 < \dots < c_K = n` into a
shortlist :math:`[0, c_0)` and clusters :math:`[c_{i-1}, c_i)`. The *head*, one
linear layer with :math:`c_0 + K` outputs, scores the shortlist's classes and one
token per cluster; cluster :math:`i` has its own *tail*, a low-rank projection
:math:`x P_i^\top O_i^\top` over its classes. For a class :math:`y` in cluster
:math:`i`,

.. math::
    \log p(y \mid x) = \log\operatorname{softmax}(h(x))_{c_0 + i - 1}
                     + \log\operatorname{softmax}(x P_i^\top O_i^\top)_{y - c_{i-1}}

and for a shortlist class just the head's term. Each row only needs the tail of its
own target's cluster: the functions loop over clusters (a handful), never over rows.

``tail_weights`` is a sequence of ``(P_i, O_i)`` pairs, ``P_i (h_i, in_features)`` and
``O_i (c_i - c_{i-1}, h_i)``; ``cutoffs`` is the full list *ending with n_classes*
(``AdaptiveLogSoftmaxWithLoss.cutoffs``, torch's attribute). Torch has these only as
``torch.nn.AdaptiveLogSoftmaxWithLoss`` and its ``log_prob``/``predict`` methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validate import as_float_array
from .linear import linear, linear_backward
from .softmax import log_softmax, log_softmax_backward

__all__ = [
    "adaptive_log_softmax_with_loss", "adaptive_log_softmax_with_loss_backward",
    "adaptive_log_prob", "adaptive_predict",
]  # fmt: skip

_NAME = "AdaptiveLogSoftmaxWithLoss"
TailWeights = Sequence[tuple[np.ndarray, np.ndarray]]


class _ASMoutput(NamedTuple):
    """torch's result type: the target log-probabilities ``(N,)`` (``()`` unbatched) and the
    loss, their negated mean (0-d)."""

    output: np.ndarray
    loss: np.ndarray


def _check_target(input: Any, target: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(N, in)`` with ``(N,)`` targets or ``(in,)`` with a 0-d one, torch's rules and words."""
    input, target = as_float_array(input, _NAME), np.asarray(target)
    if target.dtype not in (np.int32, np.int64):
        raise TypeError(
            f"{_NAME}: target must be int64 (or int32) class indices, got dtype {target.dtype}"
        )
    if target.ndim == 1:
        if input.ndim == 0 or input.shape[0] != target.shape[0]:
            raise RuntimeError(
                f"{_NAME}: Input and target should have the same size in the batch dimension "
                f"(input {input.shape}, target {target.shape})"
            )
        if input.ndim != 2:
            raise RuntimeError(
                f"{_NAME}: 1D target tensor expects 2D input tensors, but found inputs with "
                f"size {input.shape}"
            )
    elif target.ndim == 0:
        if input.ndim != 1:
            raise RuntimeError(
                f"{_NAME}: 0D target tensor expects 1D input tensors, but found inputs with "
                f"size {input.shape}"
            )
    else:
        raise RuntimeError(
            f"{_NAME}: 0D or 1D target tensor expected, multi-target not supported (got target "
            f"shape {target.shape})"
        )
    return input, target.astype(np.int64)


def _check_weights(input, head_weight, tail_weights, cutoffs) -> None:
    """Shapes of the head and tails against ``cutoffs`` and the input's features."""
    shortlist, clusters = cutoffs[0], len(cutoffs) - 1
    if head_weight.shape != (shortlist + clusters, input.shape[-1]):
        raise ValueError(
            f"{_NAME}: expected input with in_features = {head_weight.shape[1]} and a head of "
            f"shape ({shortlist + clusters}, in_features); got input {input.shape}, head "
            f"{head_weight.shape}"
        )
    if len(tail_weights) != clusters:
        raise ValueError(
            f"{_NAME}: {clusters} clusters need {clusters} tails, got {len(tail_weights)}"
        )


def _clusters(target: np.ndarray, cutoffs: Sequence[int]):
    """For each cluster ``i``: the rows whose target is in it, and their class within it."""
    bounds = list(cutoffs)
    for i in range(1, len(bounds)):
        rows = np.flatnonzero((target >= bounds[i - 1]) & (target < bounds[i]))
        yield i, rows, target[rows] - bounds[i - 1]


def _forward_parts(input, target, head_weight, tail_weights, cutoffs, head_bias):
    """The head's logits and log-softmax ``(N, c_0 + K)``, the head column each row reads,
    and per cluster ``(rows, classes, hidden, logits, log_softmax)`` of its tail."""
    if ((target < 0) | (target >= cutoffs[-1])).any():
        raise RuntimeError(
            f"{_NAME}: Target values should be in [0, {cutoffs[-1] - 1}], but values in range "
            f"[{target.min()}, {target.max()}] were found"
        )
    logits = linear(input, head_weight, head_bias)
    column = target.copy()  # a shortlist target reads its own column, others their cluster's
    tails = []
    for i, rows, classes in _clusters(target, cutoffs):  # a cluster without rows: 0 rows
        column[rows] = cutoffs[0] + i - 1
        projection, out = tail_weights[i - 1]
        hidden = linear(input[rows], projection)  # (rows, in) -> (rows, h_i)
        tail_logits = linear(hidden, out)  # (rows, h_i) -> (rows, c_i - c_{i-1})
        tails.append((rows, classes, hidden, tail_logits, log_softmax(tail_logits, 1)))
    return (logits, log_softmax(logits, 1)), column, tails


def adaptive_log_softmax_with_loss(
    input: np.ndarray,
    target: np.ndarray,
    head_weight: np.ndarray,
    tail_weights: TailWeights,
    cutoffs: Sequence[int],
    head_bias: np.ndarray | None = None,
) -> _ASMoutput:
    r"""The target's log-probability under the adaptive softmax, and the loss.

    .. math::
        o_r = \log p(y_r \mid x_r), \qquad L = -\frac{1}{N} \sum_r o_r

    with :math:`\log p` as in this module's docstring. Returns ``_ASMoutput(output,
    loss)``. Shapes: input ``(N, in)`` and target ``(N,)``, or unbatched ``(in,)`` and
    ``()``; targets in ``[0, n_classes)``. Torch: ``AdaptiveLogSoftmaxWithLoss.forward``.
    """
    input, target = _check_target(input, target)
    batched = target.ndim == 1
    x, y = (input, target) if batched else (input[None], target[None])  # (in,) -> (1, in)
    _check_weights(x, head_weight, tail_weights, cutoffs)
    (_, head), column, tails = _forward_parts(x, y, head_weight, tail_weights, cutoffs, head_bias)
    output = np.take_along_axis(head, column[:, None], axis=1)[:, 0]  # (N, c_0 + K) -> (N,)
    for rows, classes, _, _, tail in tails:
        output[rows] += np.take_along_axis(tail, classes[:, None], axis=1)[:, 0]
    loss = np.asarray(-output.mean() if output.size else np.nan, dtype=output.dtype)
    return _ASMoutput(output if batched else output.reshape(()), loss)


def adaptive_log_softmax_with_loss_backward(
    grad: _ASMoutput | tuple[Any, Any],
    input: np.ndarray,
    target: np.ndarray,
    head_weight: np.ndarray,
    tail_weights: TailWeights,
    cutoffs: Sequence[int],
    head_bias: np.ndarray | None = None,
):
    r"""``(grad_input, grad_head_weight, grad_head_bias, grad_tail_weights)``.

    ``grad`` is the upstream gradient of both results, ``(grad_output, grad_loss)``
    (either may be ``None``). The loss passes :math:`-g_L / N` to every :math:`o_r`; then,
    with :math:`g_r` the total, the head's logits get :math:`g_r ([k = k_r] - p_{rk})`
    (log-softmax's backward), and a tail row's logits the same within its cluster;
    the linear layers pass these on (:math:`\partial x = g W`, :math:`\partial W = g^\top x`),
    through :math:`O_i` then :math:`P_i` for a tail. ``grad_head_bias`` is ``None`` without
    a bias; ``grad_tail_weights`` is a list of ``(grad_P_i, grad_O_i)``.
    """
    input, target = _check_target(input, target)
    batched = target.ndim == 1
    x, y = (input, target) if batched else (input[None], target[None])  # (in,) -> (1, in)
    _check_weights(x, head_weight, tail_weights, cutoffs)
    (logits, head), column, tails = _forward_parts(
        x, y, head_weight, tail_weights, cutoffs, head_bias
    )
    grad_rows = _grad_rows(grad, len(y), x.dtype)
    grad_head = np.zeros_like(head)  # only the column each row reads has a gradient
    np.put_along_axis(grad_head, column[:, None], grad_rows[:, None], axis=1)
    grad_logits = log_softmax_backward(grad_head, logits, 1, output=head)
    grad_x, grad_hw, grad_hb = linear_backward(grad_logits, x, head_weight, head_bias)
    grad_tails = []
    for (rows, classes, hidden, tail_logits, tail), (projection, out) in zip(tails, tail_weights):
        if projection.shape[0] == 0:  # a rank-0 tail: constant logits, no gradient
            grad_tails.append((np.zeros_like(projection), np.zeros_like(out)))
            continue
        grad_tail = np.zeros_like(tail)
        np.put_along_axis(grad_tail, classes[:, None], grad_rows[rows, None], axis=1)
        grad_z = log_softmax_backward(grad_tail, tail_logits, 1, output=tail)
        grad_hidden, grad_out, _ = linear_backward(grad_z, hidden, out)
        grad_in, grad_projection, _ = linear_backward(grad_hidden, x[rows], projection)
        grad_x[rows] += grad_in
        grad_tails.append((grad_projection, grad_out))
    return (grad_x if batched else grad_x[0]), grad_hw, grad_hb, grad_tails


def _grad_rows(grad: Any, batch: int, dtype: np.dtype) -> np.ndarray:
    """The upstream gradient of each :math:`o_r` ``(N,)``: its own plus the loss's
    :math:`-g_L / N`."""
    grad_output, grad_loss = grad
    rows = np.zeros(batch, dtype=dtype)
    if grad_output is not None:
        grad_output = np.asarray(grad_output, dtype=dtype)
        if grad_output.size != batch:
            raise ValueError(
                f"{_NAME}: grad of output must have one value per row ({batch}), got shape "
                f"{grad_output.shape}"
            )
        rows = rows + grad_output.reshape(batch)
    if grad_loss is not None:
        grad_loss = np.asarray(grad_loss, dtype=dtype)
        if grad_loss.size != 1:
            raise ValueError(f"{_NAME}: grad of loss must be a scalar, got shape {grad_loss.shape}")
        rows = rows - grad_loss.reshape(()) / dtype.type(batch)
    return rows


def adaptive_log_prob(
    input: np.ndarray,
    head_weight: np.ndarray,
    tail_weights: TailWeights,
    cutoffs: Sequence[int],
    head_bias: np.ndarray | None = None,
) -> np.ndarray:
    r"""Log-probabilities of all classes ``(N, n_classes)``: the shortlist's head terms, then
    each cluster's tail log-softmax plus its head token. Torch:
    ``AdaptiveLogSoftmaxWithLoss.log_prob``."""
    input = as_float_array(input, _NAME)
    if input.ndim != 2:  # torch fails with an IndexError on (in,)
        raise ValueError(f"{_NAME}.log_prob: input must be (N, in_features), got {input.shape}")
    _check_weights(input, head_weight, tail_weights, cutoffs)
    head = log_softmax(linear(input, head_weight, head_bias), 1)
    parts = [head[:, : cutoffs[0]]]
    for i, (projection, out) in enumerate(tail_weights):
        tail = log_softmax(linear(linear(input, projection), out), 1)
        parts.append(tail + head[:, cutoffs[0] + i, None])  # (N, size_i) + (N, 1)
    return np.concatenate(parts, axis=1)


def adaptive_predict(
    input: np.ndarray,
    head_weight: np.ndarray,
    tail_weights: TailWeights,
    cutoffs: Sequence[int],
    head_bias: np.ndarray | None = None,
) -> np.ndarray:
    """The most likely class of each row ``(N,)`` int64, as torch finds it: the head's
    argmax where that is a shortlist class (its probability beats every cluster's
    classes), else the argmax of the full distribution. Ties go to the first index.
    Torch: ``AdaptiveLogSoftmaxWithLoss.predict``."""
    input = as_float_array(input, _NAME)
    if input.ndim != 2:
        raise ValueError(f"{_NAME}.predict: input must be (N, in_features), got {input.shape}")
    _check_weights(input, head_weight, tail_weights, cutoffs)
    output = np.argmax(linear(input, head_weight, head_bias), axis=1)
    rest = output >= cutoffs[0]
    if rest.any():
        full = adaptive_log_prob(input[rest], head_weight, tail_weights, cutoffs, head_bias)
        output[rest] = np.argmax(full, axis=1)
    return output.astype(np.int64)
