"""Multi-class losses as forward/backward pairs (``torch.nn.functional``).

``nll_loss`` (on log-probabilities) and ``cross_entropy`` (on logits, with
class weights, ``ignore_index``, label smoothing and probability targets): the
losses over a class dim. Each backward returns :math:`\\partial L/\\partial
\\text{input}`; ``cross_entropy_target_backward`` the gradient wrt a probability
target (torch's ``target.grad``; class indices and ``nll_loss``'s target have none).
The binary cross entropies, whose target has the input's shape, are with the other
elementwise losses in ``loss.py``.

Shapes: input ``(C,)`` (one unbatched sample), ``(N, C)`` or
``(N, C, d1, ...)``; class-index targets ``()``, ``(N,)`` or ``(N, d1, ...)``,
int64 (or uint8), as torch requires.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_float_array, check_reduction
from .loss import _reduce, _reduce_backward
from .rounding import difference
from .softmax import softmax

__all__ = [
    "nll_loss", "nll_loss_backward",
    "cross_entropy", "cross_entropy_backward", "cross_entropy_target_backward",
]  # fmt: skip


def _check_class_input(input: np.ndarray, name: str) -> tuple[np.ndarray, int, int]:
    """The input, its class dim (0 unbatched, else 1) and the number of classes."""
    input = as_float_array(input, name)
    if input.ndim == 0 or input.shape[0 if input.ndim == 1 else 1] == 0:
        raise ValueError(
            f"{name}: input must be (C,), (N, C) or (N, C, d1, ...) with C >= 1 classes, "
            f"got shape {input.shape}"
        )
    class_dim = 0 if input.ndim == 1 else 1
    return input, class_dim, input.shape[class_dim]


def _check_class_weight(
    weight: np.ndarray | None, num_classes: int, name: str, dtype: np.dtype
) -> np.ndarray | None:
    if weight is None:
        return None
    weight = as_float_array(weight, name, "weight")
    if weight.shape != (num_classes,):
        raise ValueError(
            f"{name}: weight must hold one value per class, shape ({num_classes},), "
            f"got shape {weight.shape}"
        )
    return weight.astype(dtype, copy=False)


def _check_class_target(
    target: np.ndarray, input: np.ndarray, ignore_index: int, name: str
) -> np.ndarray:
    """Class indices: int64/uint8 (torch's rule), one per sample, in range or ignored."""
    target = np.asarray(target)
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
    if target.dtype not in (np.int64, np.uint8):
        raise TypeError(
            f"{name}: class-index targets must be int64 (or uint8), got dtype {target.dtype}; "
            "cast with .astype(np.int64)"
        )
    if target.shape != expected:
        raise ValueError(
            f"{name}: for input of shape {input.shape} the class-index target must have "
            f"shape {expected} (the input without its class dim), got {target.shape}"
        )
    num_classes = input.shape[0 if input.ndim == 1 else 1]
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bad.any():
        raise ValueError(
            f"{name}: class indices must lie in [0, {num_classes}) or equal ignore_index="
            f"{ignore_index}, got {target[bad].reshape(-1)[0].item()} (target shape {target.shape})"
        )
    return target


def _along_class_dim(vector: np.ndarray, ndim: int, class_dim: int) -> np.ndarray:
    """A ``(C,)`` vector shaped to broadcast along the class dim of an ``ndim`` array."""
    return vector.reshape((-1,) + (1,) * (ndim - class_dim - 1))  # (C,) -> (C, 1, ..., 1)


def _class_reduce(loss: np.ndarray, denominator: float, reduction: str) -> np.ndarray:
    """'none', 'sum', or the sum over ``denominator`` (nan for 0/0, like torch)."""
    if reduction != "mean":
        return _reduce(loss, reduction)
    if denominator == 0:  # all targets ignored (or weighted 0): torch's 0/0
        return np.asarray(np.nan, dtype=loss.dtype)
    return np.asarray(loss.sum() / denominator, dtype=loss.dtype)


def _class_reduce_backward(
    grad_output: np.ndarray,
    counted: np.ndarray,
    denominator: float,
    reduction: str,
    dtype: np.dtype,
) -> np.ndarray:
    """Gradient of :func:`_class_reduce` wrt the per-sample losses (shape of ``counted``).

    With a zero denominator torch's ``g / 0`` turns into nan on every counted sample
    and 0 on ignored ones (their gradient is never written); we state that directly.
    """
    if reduction != "mean":
        return _reduce_backward(grad_output, counted.shape, reduction, dtype)
    if denominator == 0:
        return np.where(counted, np.nan, 0).astype(dtype)
    return _reduce_backward(grad_output, counted.shape, "sum", dtype) / np.asarray(
        denominator, dtype=dtype
    )


def _nll_parts(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    ignore_index: int,
    class_dim: int,
):
    """Gather index ``(N, 1, d...)``, per-sample weights :math:`w_{y_i}` (0 if ignored), mask."""
    counted = target != ignore_index
    safe = np.where(counted, target, 0).astype(np.int64)  # ignored samples point at class 0
    index = np.expand_dims(safe, class_dim)  # (N, d...) -> (N, 1, d...)
    sample_weight = weight[safe] if weight is not None else np.ones(safe.shape, input.dtype)
    return index, np.where(counted, sample_weight, 0).astype(input.dtype), counted


def nll_loss(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Negative log-likelihood of the target class, given log-probabilities :math:`x`.

    .. math::
        \ell_i = -w_{y_i} x_{i, y_i} \ (0 \text{ if } y_i = \text{ignore\_index}), \qquad
        L_{\text{mean}} = \frac{\sum_i \ell_i}{\sum_{i \text{ not ignored}} w_{y_i}}

    The mean is weighted: it divides by the summed weights of the counted targets,
    not by N; when every target is ignored that is 0/0 and the loss is nan (torch).
    Torch: ``torch.nn.functional.nll_loss``.
    """
    name = "nll_loss"
    check_reduction(reduction, name)
    input, class_dim, num_classes = _check_class_input(input, name)
    weight = _check_class_weight(weight, num_classes, name, input.dtype)
    target = _check_class_target(target, input, ignore_index, name)
    index, sample_weight, _ = _nll_parts(input, target, weight, ignore_index, class_dim)
    picked = np.take_along_axis(input, index, axis=class_dim).squeeze(class_dim)  # (N, d...)
    return _class_reduce(-sample_weight * picked, sample_weight.sum(), reduction)


def nll_loss_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> np.ndarray:
    r""":math:`\partial L/\partial x_{ic} = -s_i w_{y_i} [c = y_i]`, where :math:`s_i` is the
    upstream gradient of sample ``i`` (divided by :math:`\sum w_{y_i}` for 'mean')."""
    class_dim = 0 if input.ndim == 1 else 1
    weight = None if weight is None else np.asarray(weight, dtype=input.dtype)
    index, sample_weight, counted = _nll_parts(input, target, weight, ignore_index, class_dim)
    scale = _class_reduce_backward(
        grad_output, counted, sample_weight.sum(), reduction, input.dtype
    )
    grad = np.zeros_like(input)
    picked_grad = np.expand_dims(-sample_weight * scale, class_dim)  # (N, d...) -> (N, 1, d...)
    np.put_along_axis(grad, index, picked_grad, axis=class_dim)
    return grad


def _log_softmax(input: np.ndarray, axis: int) -> np.ndarray:
    """:math:`x - \\max x - \\log\\sum e^{x - \\max x}`: no exp can overflow."""
    shifted = input - input.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _cross_entropy_parts(input, target, weight, ignore_index, label_smoothing, class_dim):
    r"""The weighted target distribution :math:`q_{ic}`, the counted mask and the mean's divisor.

    Every case of ``cross_entropy`` is :math:`\ell_i = -\sum_c q_{ic} \log p_{ic}`:

    * class indices: :math:`q_{ic} = (1 - \varepsilon) w_c [c = y_i] + \frac{\varepsilon}{C} w_c`,
      zero for an ignored sample; the mean divides by :math:`\sum_{\text{counted}} w_{y_i}`
      (torch divides its smoothing term by the same sum);
    * probabilities :math:`t`:
      :math:`q_{ic} = w_c ((1 - \varepsilon) t_{ic} + \frac{\varepsilon}{C})`;
      the mean divides by the number of samples :math:`N d_1 \cdots`, ignoring the weights.
    """
    num_classes = input.shape[class_dim]
    w = np.ones(num_classes, input.dtype) if weight is None else weight.astype(input.dtype)
    w_c = _along_class_dim(w, input.ndim, class_dim)  # (C,) -> (C, 1, ..., 1)
    smooth = label_smoothing / num_classes
    if target.dtype.kind == "f":
        q = w_c * ((1 - label_smoothing) * target + smooth)
        counted = np.ones(input.shape[:class_dim] + input.shape[class_dim + 1 :], dtype=bool)
        return q.astype(input.dtype, copy=False), counted, counted.size
    counted = target != ignore_index
    safe = np.where(counted, target, 0)
    classes = _along_class_dim(np.arange(num_classes), input.ndim, class_dim)
    # (N, d...) -> (N, 1, d...), compared with (C, 1, ...) -> (N, C, d...)
    one_hot = (np.expand_dims(safe, class_dim) == classes).astype(input.dtype)
    keep = np.expand_dims(counted, class_dim).astype(input.dtype)  # (N, d...) -> (N, 1, d...)
    q = w_c * ((1 - label_smoothing) * one_hot + smooth) * keep
    denominator = np.where(counted, w[safe], 0).sum()
    return q.astype(input.dtype, copy=False), counted, denominator


def _check_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing):
    name = "cross_entropy"
    check_reduction(reduction, name)
    input, class_dim, num_classes = _check_class_input(input, name)
    weight = _check_class_weight(weight, num_classes, name, input.dtype)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{name}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    target = np.asarray(target)
    if target.dtype.kind == "f":
        if target.shape != input.shape:
            expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else ()
            raise ValueError(
                f"{name}: a floating target is read as class probabilities and must have the "
                f"input's shape {input.shape}, got {target.shape}; class indices must be int64 "
                f"of shape {expected}"
            )
        if ignore_index >= 0:
            raise ValueError(
                f"{name}: ignore_index={ignore_index} applies to class indices only; with "
                "probability targets leave it at its default -100"
            )
        target = target.astype(input.dtype, copy=False)
    else:
        target = _check_class_target(target, input, ignore_index, name)
    return input, target, weight, class_dim


def cross_entropy(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> np.ndarray:
    r"""Softmax cross entropy of logits :math:`x` against class indices or probabilities.

    .. math::
        \ell_i = -\sum_c q_{ic} \log \operatorname{softmax}(x_i)_c

    with the weighted, smoothed target distribution :math:`q` of
    :func:`_cross_entropy_parts`. Unsmoothed and unweighted with class indices this
    is :math:`-\log p_{i, y_i}`. 'mean' divides by the summed weights of the counted
    targets (class indices; nan if there are none, as in torch) or by the number of
    samples (probabilities). A float target of the input's shape means
    probabilities; an int64 target of the input's shape without the class dim
    means class indices. Torch: ``torch.nn.functional.cross_entropy``.
    """
    input, target, weight, class_dim = _check_cross_entropy(
        input, target, weight, ignore_index, reduction, label_smoothing
    )
    q, _, denominator = _cross_entropy_parts(
        input, target, weight, ignore_index, label_smoothing, class_dim
    )
    loss = -(q * _log_softmax(input, class_dim)).sum(axis=class_dim)  # (N, C, d...) -> (N, d...)
    return _class_reduce(loss, denominator, reduction)


def cross_entropy_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> np.ndarray:
    r""":math:`\partial L/\partial x_{ic} = s_i \left(p_{ic} \sum_k q_{ik} - q_{ic}\right)`.

    From :math:`\partial(-\log p_{ik})/\partial x_{ic} = p_{ic} - [c = k]`; :math:`s_i` is the
    upstream gradient of sample ``i`` (over the mean's divisor for 'mean'). For one-hot
    :math:`q` this is the familiar :math:`p - \text{onehot}(y)`.
    """
    input, target, weight, class_dim = _check_cross_entropy(
        input, target, weight, ignore_index, reduction, label_smoothing
    )
    q, counted, denominator = _cross_entropy_parts(
        input, target, weight, ignore_index, label_smoothing, class_dim
    )
    scale = _class_reduce_backward(grad_output, counted, denominator, reduction, input.dtype)
    # softmax directly, not exp(log_softmax): the latter turns log_softmax's absolute
    # rounding into a relative error of a small probability (27 float32 ulps, seen)
    prob = softmax(input, class_dim)
    mass = q.sum(axis=class_dim, keepdims=True)  # (N, C, d...) -> (N, 1, d...)
    # p sum(q) meets q where the prediction matches the (smoothed) target: a cancellation
    # whose rounding is at the terms' size (rounding.difference)
    grad = np.expand_dims(scale, class_dim) * difference(prob * mass, q)  # scale: (N, 1, d...)
    return grad.astype(input.dtype, copy=False)


def cross_entropy_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> np.ndarray:
    r"""The gradient wrt a probability target :math:`t` (class indices have none):

    .. math::
        \frac{\partial L}{\partial t_{ic}} = -s_i (1 - \varepsilon)\, w_c
        \log \operatorname{softmax}(x_i)_c

    since :math:`q_{ic} = w_c((1 - \varepsilon) t_{ic} + \varepsilon / C)` enters the loss
    linearly; :math:`s_i` is the upstream gradient of sample ``i`` (over the number of
    samples for 'mean'). ``label_smoothing = 1`` gives zeros, as in torch.
    """
    input, target, weight, class_dim = _check_cross_entropy(
        input, target, weight, ignore_index, reduction, label_smoothing
    )
    if target.dtype.kind != "f":
        raise TypeError(
            "cross_entropy_target_backward: class-index targets (int64) have no gradient; "
            "only a floating target of class probabilities does"
        )
    _, counted, denominator = _cross_entropy_parts(
        input, target, weight, ignore_index, label_smoothing, class_dim
    )
    scale = _class_reduce_backward(grad_output, counted, denominator, reduction, input.dtype)
    w = np.ones(input.shape[class_dim], input.dtype) if weight is None else weight
    w_c = _along_class_dim(w, input.ndim, class_dim)  # (C,) -> (C, 1, ..., 1)
    s = np.expand_dims(scale, class_dim)  # (N, d...) -> (N, 1, d...)
    grad = -(1 - label_smoothing) * w_c * _log_softmax(input, class_dim) * s
    return grad.astype(input.dtype, copy=False)
