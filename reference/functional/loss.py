"""Elementwise losses as forward/backward pairs (``torch.nn.functional``).

Regression (MSE, L1, smooth L1, Huber: in ``regression_loss.py``, re-exported here),
the KL divergence and the binary cross entropies: every loss whose target has the
input's shape.

Every loss takes ``reduction`` in ``'none' | 'mean' | 'sum'`` (``kl_div`` also
``'batchmean'``). The forward returns a 0-d array for a reduced loss; the backward
takes ``grad_output`` (a scalar or, for ``'none'``, an array of the unreduced
shape) and returns :math:`\\partial L/\\partial \\text{input}`; the target backward
takes the same arguments and returns :math:`\\partial L/\\partial \\text{target}`
(torch's ``target.grad`` when the target requires grad; torch differentiates every
target here).

Input and target must have the same shape: torch broadcasts a mismatched target
with a warning ("this will likely lead to incorrect results"); the reference
refuses it. The multi-class losses are in ``classification_loss.py``.
"""

from __future__ import annotations

import numpy as np

from .._validate import as_float_array, check_reduction, check_same_shape
from .activation_smooth import _log1p_exp, _sigmoid
from .regression_loss import (  # the regression family lives there; re-exported
    _check_pair,
    _reduce,
    _reduce_backward,
    huber_loss,
    huber_loss_backward,
    huber_loss_target_backward,
    l1_loss,
    l1_loss_backward,
    l1_loss_target_backward,
    mse_loss,
    mse_loss_backward,
    mse_loss_target_backward,
    smooth_l1_loss,
    smooth_l1_loss_backward,
    smooth_l1_loss_target_backward,
)

__all__ = [
    "mse_loss", "mse_loss_backward", "mse_loss_target_backward",
    "l1_loss", "l1_loss_backward", "l1_loss_target_backward",
    "smooth_l1_loss", "smooth_l1_loss_backward", "smooth_l1_loss_target_backward",
    "huber_loss", "huber_loss_backward", "huber_loss_target_backward",
    "kl_div", "kl_div_backward", "kl_div_target_backward",
    "binary_cross_entropy", "binary_cross_entropy_backward",
    "binary_cross_entropy_target_backward",
    "binary_cross_entropy_with_logits", "binary_cross_entropy_with_logits_backward",
    "binary_cross_entropy_with_logits_target_backward",
]  # fmt: skip


def _xlogx(p: np.ndarray) -> np.ndarray:
    """:math:`p \\log p` with :math:`0 \\log 0 = 0` (torch's ``xlogy(p, p)``); nan for p < 0."""
    positive = p > 0
    log_p = np.log(p, out=np.zeros_like(p), where=positive)  # log only where it is defined
    return np.where(positive, p * log_p, np.where(p == 0, 0, np.nan)).astype(p.dtype, copy=False)


def kl_div(
    input: np.ndarray, target: np.ndarray, reduction: str = "mean", log_target: bool = False
) -> np.ndarray:
    r"""Kullback-Leibler divergence, pointwise, with ``input`` given as log-probabilities.

    .. math::
        \ell_i = y_i (\log y_i - x_i) \quad (\text{with } 0 \log 0 = 0), \qquad
        \ell_i = e^{y_i} (y_i - x_i) \ \text{ if log\_target}

    ``'batchmean'`` divides the sum by ``input.shape[0]`` (the true KL divergence
    per sample); ``'mean'`` divides by every element, which torch warns about (the
    reference does not warn). A negative target with ``log_target=False`` gives nan,
    as in torch. Torch: ``torch.nn.functional.kl_div``.
    """
    input, target = _check_pair(
        input, target, reduction, "kl_div", ("none", "mean", "sum", "batchmean"), False
    )
    if log_target:
        pointwise = np.exp(target) * (target - input)
    else:
        pointwise = _xlogx(target) - target * input
    if reduction != "batchmean":
        return _reduce(pointwise, reduction)
    # torch: the sum over everything, divided by the batch size (a 0-d input has none)
    batch = input.shape[0] if input.ndim > 0 else 1
    return np.asarray(_reduce(pointwise, "sum") / batch, dtype=input.dtype)


def kl_div_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    log_target: bool = False,
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = -y_i` (or :math:`-e^{y_i}` if ``log_target``).

    The loss is linear in the input; ``'batchmean'`` scales the gradient by ``1/N``.
    """
    grad_loss = _kl_reduce_backward(grad_output, input, reduction)
    slope = -np.exp(target) if log_target else -target
    return (slope * grad_loss).astype(input.dtype, copy=False)


def _kl_reduce_backward(grad_output: np.ndarray, input: np.ndarray, reduction: str) -> np.ndarray:
    """:func:`_reduce_backward`, with ``'batchmean'``: the sum's gradient over ``N``."""
    if reduction != "batchmean":
        return _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    batch = input.shape[0] if input.ndim > 0 else 1
    return _reduce_backward(grad_output, input.shape, "sum", input.dtype) / batch


def kl_div_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    reduction: str = "mean",
    log_target: bool = False,
) -> np.ndarray:
    r"""The gradient wrt the target :math:`y`, times the reduction's gradient :math:`g_i`:

    .. math::
        \frac{\partial \ell_i}{\partial y_i} = \log y_i + 1 - x_i, \qquad
        \frac{\partial \ell_i}{\partial y_i} = e^{y_i} (y_i - x_i + 1) \ \text{ if log\_target}

    At :math:`y_i \le 0` (log_target False) it is nan, as torch's: the derivative of
    ``xlogy(y, y)`` wrt its second argument is :math:`y/y`, 0/0 at :math:`y = 0`
    (the one-sided limit of :math:`\log y + 1` is :math:`-\infty`), and the log of a
    negative number is nan. Torch: ``target.grad`` of ``torch.nn.functional.kl_div``.
    """
    grad_loss = _kl_reduce_backward(grad_output, input, reduction)
    if log_target:
        slope = np.exp(target) * (target - input + 1)
    else:
        positive = target > 0
        log_y = np.log(target, out=np.zeros_like(target), where=positive)  # log where defined
        slope = np.where(positive, log_y + 1 - input, np.nan)
    return (slope * grad_loss).astype(input.dtype, copy=False)


# -- binary classification ------------------------------------------------------------


# torch's BCE backward divides by max(x (1 - x), EPSILON) where EPSILON is a C++ *float*
# constant: 1e-12 rounded to float32 (9.99999996e-13), used as such in float64 too.
_BCE_EPS = float(np.float32(1e-12))


def _check_broadcasts_to(
    array: np.ndarray | None, shape: tuple[int, ...], name: str, what: str, dtype: np.dtype
) -> np.ndarray | None:
    """``array`` (a weight) as ``dtype``, if it broadcasts to ``shape`` without enlarging it."""
    if array is None:
        return None
    array = as_float_array(array, name, what)
    try:
        ok = np.broadcast_shapes(array.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: {what} of shape {array.shape} must broadcast to the input's shape {shape}"
        )
    return array.astype(dtype, copy=False)


def _log_clamped(x: np.ndarray) -> np.ndarray:
    """:math:`\\max(\\log x, -100)` with :math:`\\log 0 = -\\infty` (no divide-by-zero)."""
    log_x = np.log(x, out=np.full_like(x, -np.inf), where=x > 0)
    return np.maximum(log_x, -100)


def _log1m_clamped(x: np.ndarray) -> np.ndarray:
    """:math:`\\max(\\log(1 - x), -100)`, as torch computes it: ``log1p(-x)``."""
    log_1mx = np.log1p(-x, out=np.full_like(x, -np.inf), where=x < 1)
    return np.maximum(log_1mx, -100)


def binary_cross_entropy(
    input: np.ndarray, target: np.ndarray, weight: np.ndarray | None = None, reduction: str = "mean"
) -> np.ndarray:
    r"""Binary cross entropy on probabilities :math:`x \in [0, 1]`.

    .. math:: \ell_i = -w_i \left[ y_i \max(\log x_i, -100)
                                  + (1 - y_i) \max(\log(1 - x_i), -100) \right]

    Torch clamps each log at -100 so that :math:`x = 0` or :math:`1` gives a finite
    loss (100 per unit of target) instead of inf. Input and target must lie in
    :math:`[0, 1]` (torch raises otherwise); ``weight`` broadcasts to the input.
    Shapes: input and target ``(*)``, the same. Torch: ``torch.nn.functional.binary_cross_entropy``.
    """
    name = "binary_cross_entropy"
    check_reduction(reduction, name)
    input = as_float_array(input, name)
    target = as_float_array(target, name, "target")
    check_same_shape(input, target, name)
    weight = _check_broadcasts_to(weight, input.shape, name, "weight", input.dtype)
    for array, what in ((input, "input"), (target, "target")):
        # written so that nan fails too: nan compares False
        inside = (array >= 0) & (array <= 1)
        if not inside.all():
            bad = array[~inside].reshape(-1)[0].item()
            raise ValueError(
                f"{name}: every element of {what} must be a probability in [0, 1], got {bad!r} "
                f"(shape {array.shape}); apply a sigmoid first or use "
                "binary_cross_entropy_with_logits"
            )
    loss = (target - 1) * _log1m_clamped(input) - target * _log_clamped(input)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Torch's BCE gradient :math:`w_i\,(x_i - y_i) / \max(x_i (1 - x_i), \epsilon)`.

    Without the clamps this is the exact derivative of the loss. Inside a clamp
    (:math:`\log x < -100`, i.e. :math:`x < e^{-100}`, or the same for :math:`1 - x`)
    the clamped forward is flat, but torch still returns this formula, with
    :math:`\epsilon = 10^{-12}` as a float32 constant bounding it; we do the same.
    The operations run in torch's order (``g (x - y) / d``, then ``w``, then ``/n``)
    so that the large values near the clamp agree to the last bit.
    """
    summed = "sum" if reduction == "mean" else reduction
    grad = _reduce_backward(grad_output, input.shape, summed, input.dtype)
    eps = np.asarray(_BCE_EPS, dtype=input.dtype)
    grad = grad * (input - target) / np.maximum((1 - input) * input, eps)
    if weight is not None:
        grad = grad * np.asarray(weight, dtype=input.dtype)
    if reduction == "mean":
        grad = grad / max(input.size, 1)
    return grad.astype(input.dtype, copy=False)


def binary_cross_entropy_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    r"""Torch's gradient wrt the target: :math:`-w_i \operatorname{logit}(x_i)\, g_i`.

    .. math::
        \frac{\partial \ell_i}{\partial y_i} = -w_i \left[\log x_i - \log(1 - x_i)\right]
        = -w_i \log\frac{x_i}{1 - x_i}

    is the derivative of the *unclamped* loss, and torch does not clamp it: at
    :math:`x = 0` it is :math:`+\infty \cdot g`, at :math:`x = 1` :math:`-\infty \cdot g`
    (nan where :math:`g = 0`), and below :math:`e^{-100}` it keeps growing although the
    clamped forward's slope there is 100 (``x = 1e-50``: 115.13; measured). We return
    torch's values, computed in its order: ``log(x / (1 - x))``, ``* g``, ``* w``, ``/ n``.
    """
    summed = "sum" if reduction == "mean" else reduction
    grad = _reduce_backward(grad_output, input.shape, summed, input.dtype)
    with np.errstate(divide="ignore", invalid="ignore"):  # x = 0 or 1: torch's inf, inf * 0
        grad = -np.log(input / (1 - input)) * grad
    if weight is not None:
        grad = grad * np.asarray(weight, dtype=input.dtype)
    if reduction == "mean":
        grad = grad / max(input.size, 1)
    return grad.astype(input.dtype, copy=False)


def binary_cross_entropy_with_logits(
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    pos_weight: np.ndarray | None = None,
) -> np.ndarray:
    r"""Sigmoid + binary cross entropy in one stable formula, on logits :math:`x`.

    .. math::
        \ell_i = w_i \left[ (1 - y_i) x_i + l_i \operatorname{softplus}(-x_i) \right],
        \qquad l_i = 1 + (p_c - 1) y_i

    which is :math:`-w_i [p_c y_i \log\sigma(x_i) + (1 - y_i)\log(1 - \sigma(x_i))]`.
    :math:`\operatorname{softplus}(-x) = \max(-x, 0) + \log(1 + e^{-|x|})` never
    overflows. ``pos_weight`` :math:`p` (one per class, broadcast along the last
    dim) weighs the positive term; ``weight`` broadcasts to the input.
    Torch: ``torch.nn.functional.binary_cross_entropy_with_logits``.
    """
    name = "binary_cross_entropy_with_logits"
    check_reduction(reduction, name)
    input = as_float_array(input, name)
    target = as_float_array(target, name, "target")
    check_same_shape(input, target, name)
    weight = _check_broadcasts_to(weight, input.shape, name, "weight", input.dtype)
    pos_weight = _check_broadcasts_to(pos_weight, input.shape, name, "pos_weight", input.dtype)
    softplus_neg = np.maximum(-input, 0) + np.log1p(np.exp(-np.abs(input)))
    log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * target
    loss = (1 - target) * input + log_weight * softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss.astype(input.dtype, copy=False), reduction)


def binary_cross_entropy_with_logits_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    pos_weight: np.ndarray | None = None,
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial x_i = w_i [\, l_i \sigma(x_i) - p_c y_i \,]`.

    Without ``pos_weight`` (:math:`p = 1`, :math:`l = 1`) this is :math:`w_i(\sigma(x_i) - y_i)`.
    """
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    if pos_weight is None:
        slope = _sigmoid(input) - target
    else:
        pos_weight = np.asarray(pos_weight, dtype=input.dtype)
        slope = (1 + (pos_weight - 1) * target) * _sigmoid(input) - pos_weight * target
    if weight is not None:
        slope = slope * np.asarray(weight, dtype=input.dtype)
    return (slope * grad_loss).astype(input.dtype, copy=False)


def binary_cross_entropy_with_logits_target_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    reduction: str = "mean",
    pos_weight: np.ndarray | None = None,
) -> np.ndarray:
    r""":math:`\partial \ell_i/\partial y_i = w_i [\log\sigma(-x_i) - p_c \log\sigma(x_i)]`.

    From :math:`\ell = w[(1 - y) x + (1 + (p - 1) y) \operatorname{softplus}(-x)]`:
    :math:`-x + (p - 1)\operatorname{softplus}(-x)`, which is the same value, written as
    torch writes it (two stable log-sigmoids). Without ``pos_weight`` it is :math:`-w_i x_i`.
    """
    grad_loss = _reduce_backward(grad_output, input.shape, reduction, input.dtype)
    if pos_weight is None:
        slope = -input
    else:
        pos_weight = np.asarray(pos_weight, dtype=input.dtype)
        # log sigma(-x) - p log sigma(x), with log sigma(z) = -log(1 + e^-z)
        slope = _log1p_exp(-input) * pos_weight - _log1p_exp(input)
    if weight is not None:
        slope = slope * np.asarray(weight, dtype=input.dtype)
    return (slope * grad_loss).astype(input.dtype, copy=False)
