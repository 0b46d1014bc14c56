"""Losses with more than an input and a target: CTC, the triplet loss with any distance,
the adaptive softmax and the cross entropy of a linear layer.

``CTCLoss`` and ``TripletMarginWithDistanceLoss`` wrap pairs of
:mod:`reference.functional`; ``AdaptiveLogSoftmaxWithLoss`` and
``LinearCrossEntropyLoss`` own parameters (torch's submodules and ``state_dict`` keys)
and accumulate their gradients in ``backward``, which returns the input's gradient.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_dtypes
from ..functional import adaptive_softmax as AF
from ..functional import triplet_loss as TF
from .container import Sequential
from .containers import ModuleList
from .linear import Linear
from .loss import _Loss, _WeightedLoss
from .module import Module, Parameter

__all__ = [
    "CTCLoss", "TripletMarginWithDistanceLoss", "AdaptiveLogSoftmaxWithLoss",
    "LinearCrossEntropyLoss",
]  # fmt: skip


class CTCLoss(_Loss):
    """``torch.nn.CTCLoss``: ``forward(log_probs, targets, input_lengths, target_lengths)``;
    ``backward`` returns the gradient wrt ``log_probs``, torch's (see
    :func:`reference.functional.ctc_loss_backward`: exact through a log_softmax, the true
    derivative plus :math:`g\\,e^{y}` wrt the log-probabilities themselves)."""

    def __init__(self, blank: int = 0, reduction: str = "mean", zero_infinity: bool = False):
        super().__init__(reduction)
        self.blank, self.zero_infinity = blank, zero_infinity

    def _options(self) -> tuple:
        return self.blank, self.reduction, self.zero_infinity

    def forward(self, log_probs: Any, targets: Any, input_lengths: Any, target_lengths: Any):
        loss = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, *self._options())
        self._cache = (np.asarray(log_probs), targets, input_lengths, target_lengths)
        return loss

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        log_probs, *rest = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, log_probs.dtype)
        return F.ctc_loss_backward(grad_output, log_probs, *rest, *self._options())

    def extra_repr(self) -> str:
        return f"blank={self.blank}, {super().extra_repr()}, zero_infinity={self.zero_infinity}"


class TripletMarginWithDistanceLoss(_Loss):
    """``torch.nn.TripletMarginWithDistanceLoss``: ``forward(anchor, positive, negative)``;
    ``backward`` returns ``(grad_anchor, grad_positive, grad_negative)``.

    ``distance_function`` ``None`` is torch's default, ``pairwise_distance``; a callable
    ``f(x1, x2) -> d`` needs ``distance_backward`` ``g(grad_d, x1, x2) -> (grad_x1,
    grad_x2)`` (the reference's one addition: it cannot differentiate a callable), else
    ``backward`` raises ``TypeError``.
    """

    def __init__(
        self,
        *,
        distance_function: TF.Distance | None = None,
        distance_backward: TF.DistanceBackward | None = None,
        margin: float = 1.0,
        swap: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        if not margin > 0:
            raise ValueError(
                "TripletMarginWithDistanceLoss: expected margin to be greater than 0, "
                f"got {margin!r} instead"
            )
        self.distance_function, self.distance_backward = distance_function, distance_backward
        self.margin, self.swap = margin, swap

    def _options(self) -> dict[str, Any]:
        return {
            "distance_function": self.distance_function,
            "distance_backward": self.distance_backward,
            "margin": self.margin,
            "swap": self.swap,
            "reduction": self.reduction,
        }

    def forward(self, anchor: Any, positive: Any, negative: Any) -> np.ndarray:
        loss = TF.triplet_margin_with_distance_loss(anchor, positive, negative, **self._options())
        self._cache = (anchor, positive, negative)
        return loss

    def backward(self, grad_output: np.ndarray | float | None = None) -> tuple:
        anchor, positive, negative = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, np.asarray(anchor).dtype)
        return TF.triplet_margin_with_distance_loss_backward(
            grad_output, anchor, positive, negative, **self._options()
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, swap={self.swap}"


def _tail_linear(in_features: int, out_features: int, rng: Any, dtype: Any) -> Linear:
    """``Linear(in, out, bias=False)``, also where torch allows a size of 0 (a cluster whose
    ``in_features // div_value**i`` is 0: its weight is empty, as torch's)."""
    if in_features > 0 and out_features > 0:
        return Linear(in_features, out_features, bias=False, rng=rng, dtype=dtype)
    layer = Linear(1, 1, bias=False, dtype=dtype)  # reference Linear refuses a 0 size
    layer.in_features, layer.out_features = in_features, out_features
    layer.weight = Parameter(np.zeros((out_features, in_features), dtype=layer.weight.dtype))
    return layer


def _check_cutoffs(cutoffs: Sequence[Any], n_classes: int) -> list[int]:
    cutoffs = list(cutoffs)
    if len(cutoffs) == 0:
        raise ValueError("AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of length > 0")
    if (
        cutoffs != sorted(cutoffs)
        or min(cutoffs) <= 0
        or max(cutoffs) > n_classes - 1
        or len(set(cutoffs)) != len(cutoffs)
        or any(int(c) != c for c in cutoffs)
    ):
        raise ValueError(
            "AdaptiveLogSoftmaxWithLoss: cutoffs should be a sequence of unique, positive "
            "integers sorted in an increasing order, where each value is between 1 and "
            f"n_classes-1 = {n_classes - 1}, got {cutoffs}"
        )
    return [int(c) for c in cutoffs]


class AdaptiveLogSoftmaxWithLoss(Module):
    """``torch.nn.AdaptiveLogSoftmaxWithLoss``: ``head`` (a ``Linear`` to the shortlist and
    one token per cluster) and ``tail``, a ``ModuleList`` of ``Sequential(Linear(in, h_i),
    Linear(h_i, size_i))`` with :math:`h_i` = ``in_features // div_value**i``, as torch's
    (see :mod:`reference.functional.adaptive_softmax` for the math).

    ``forward(input, target)`` returns ``_ASMoutput(output, loss)``. ``backward(grad_output)``
    takes the upstream gradient of ``loss`` (a scalar, default 1), or an ``_ASMoutput`` /
    pair ``(grad_output, grad_loss)`` for both results (``None`` for either), accumulates
    the parameters' gradients and returns the input's. ``log_prob`` and ``predict`` as torch.
    """

    def __init__(
        self,
        in_features: int,
        n_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        self.cutoffs = _check_cutoffs(cutoffs, n_classes) + [n_classes]
        self.in_features, self.n_classes = in_features, n_classes
        self.div_value, self.head_bias = div_value, head_bias
        self.shortlist_size, self.n_clusters = self.cutoffs[0], len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        self.head = Linear(in_features, self.head_size, bias=head_bias, rng=rng, dtype=dtype)
        tails = []
        for i in range(self.n_clusters):
            hidden = int(in_features // (div_value ** (i + 1)))  # torch's float floor division
            size = self.cutoffs[i + 1] - self.cutoffs[i]
            tails.append(
                Sequential(
                    _tail_linear(in_features, hidden, rng, dtype),
                    _tail_linear(hidden, size, rng, dtype),
                )
            )
        self.tail = ModuleList(tails)
        self._cache: tuple | None = None

    def _weights(self) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]], Any]:
        bias = self.head.bias.data if self.head.bias is not None else None
        tails = [(seq[0].weight.data, seq[1].weight.data) for seq in cast(Any, self.tail)]
        return self.head.weight.data, tails, bias

    def _check_dtype(self, input: np.ndarray, target: np.ndarray) -> None:
        """torch runs the tails first (mm: "m1"), the head last (addmm with a bias: "mat1")."""
        head_weight, tails, bias = self._weights()
        tensors = {"head.weight": head_weight, "head.bias": bias}
        tensors.update(
            {f"tail.{i}.{j}.weight": w for i, t in enumerate(tails) for j, w in enumerate(t)}
        )
        tails_run = np.any(np.asarray(target) >= self.shortlist_size)
        path = "m1" if tails_run or bias is None else "mat1"
        check_dtypes(as_float_array(input, repr(self)), tensors, repr(self), path)

    def forward(self, input: Any, target: Any) -> AF._ASMoutput:
        self._check_dtype(input, target)
        head_weight, tails, bias = self._weights()
        result = AF.adaptive_log_softmax_with_loss(
            input, target, head_weight, tails, self.cutoffs, bias
        )
        self._cache = (np.asarray(input), np.asarray(target))
        return result

    def backward(self, grad_output: Any = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        if isinstance(grad_output, tuple):  # an _ASMoutput or (grad_output, grad_loss)
            if len(grad_output) != 2:
                raise ValueError(
                    f"{type(self).__name__}.backward: pass the gradient of loss (a scalar) or a "
                    f"pair (grad_output, grad_loss), got {len(grad_output)} values"
                )
            grad = tuple(grad_output)
        else:  # the loss's gradient alone; torch's loss.backward() means 1
            grad = (None, 1.0 if grad_output is None else grad_output)
        head_weight, tails, bias = self._weights()
        grad_input, grad_hw, grad_hb, grad_tails = AF.adaptive_log_softmax_with_loss_backward(
            grad, input, target, head_weight, tails, self.cutoffs, bias
        )
        self.head.weight.accumulate_grad(grad_hw)
        if self.head.bias is not None:
            self.head.bias.accumulate_grad(grad_hb)
        for seq, (grad_projection, grad_out) in zip(cast(Any, self.tail), grad_tails):
            seq[0].weight.accumulate_grad(grad_projection)
            seq[1].weight.accumulate_grad(grad_out)
        return grad_input

    def log_prob(self, input: Any) -> np.ndarray:
        """Log-probabilities of every class ``(N, n_classes)``."""
        head_weight, tails, bias = self._weights()
        return AF.adaptive_log_prob(input, head_weight, tails, self.cutoffs, bias)

    def predict(self, input: Any) -> np.ndarray:
        """The most likely class of each row ``(N,)``, int64."""
        head_weight, tails, bias = self._weights()
        return AF.adaptive_predict(input, head_weight, tails, self.cutoffs, bias)


class LinearCrossEntropyLoss(_WeightedLoss):
    """``torch.nn.LinearCrossEntropyLoss``: ``cross_entropy(linear(input), target)``, the
    logits reshaped to ``(N, C, *out_features)`` for a K-dimensional loss.

    ``linear`` is a ``Linear(in_features, C * prod(out_features), bias)`` (torch stores the
    weight flat, so ``linear.weight``/``linear.bias`` are the ``state_dict`` keys), ``weight``
    the class-weight buffer. ``ignore_index=None`` means -100 for class indices, and must
    stay ``None`` with probability targets (the target's shape is the logits', torch's
    test). ``options`` is accepted and ignored: it picks torch's chunked kernel, the same
    math in another evaluation order (torch also ignores it, with a warning, for
    K-dimensional losses, label smoothing or probability targets).
    ``backward`` accumulates ``linear``'s gradients and returns the input's.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        out_features: tuple[int, ...] = (),
        bias: bool = False,
        device: Any = None,
        dtype: Any = None,
        reduction: str = "mean",
        weight: np.ndarray | None = None,
        ignore_index: int | None = None,
        label_smoothing: float = 0.0,
        options: Any = None,
        rng: np.random.Generator | int | None = None,
    ):
        if weight is not None and np.shape(weight) != (num_classes,):
            raise RuntimeError(
                f"LinearCrossEntropyLoss: expected weight shape to be {(num_classes,)}, got "
                f"{tuple(np.shape(weight))}"
            )
        if not 0.0 <= label_smoothing <= 1.0:
            raise RuntimeError(
                "LinearCrossEntropyLoss: expected label_smoothing to be in range [0, 1], "
                f"got {label_smoothing}"
            )
        super().__init__(weight, reduction)
        self.num_classes, self.out_features = num_classes, tuple(out_features)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing
        self.options = options
        outputs = math.prod(self.out_features, start=num_classes)
        self.linear = Linear(in_features, outputs, bias=bias, rng=rng, dtype=dtype)

    def _logits_shape(self, input: np.ndarray) -> tuple[int, ...]:
        name, in_features = type(self).__name__, self.linear.in_features
        if input.ndim not in (1, 2):
            raise RuntimeError(
                f"{name}: expected input with dimensionality 1 or 2, got {input.ndim}"
            )
        if input.shape[-1] != in_features:
            raise RuntimeError(
                f"{name}: expected equal input and linear_weight last dimensions (in_features), "
                f"got {input.shape[-1]} and {in_features}, respectively"
            )
        if self.out_features and input.ndim == 1:
            raise RuntimeError(
                f"{name}: a K-dimensional loss (out_features={self.out_features}) requires "
                f"batched input (N, {in_features}), got unbatched input of shape {input.shape}"
            )
        return (*input.shape[:-1], self.num_classes, *self.out_features)

    def _check_target(self, input: np.ndarray, target: Any, shape: tuple[int, ...]) -> np.ndarray:
        target = np.asarray(target)
        if target.shape == shape:  # torch's rule: the logits' shape means probabilities
            if self.ignore_index is not None:
                raise RuntimeError(
                    f"{type(self).__name__}: ignore_index cannot be specified when target "
                    "contains probabilities"
                )
            if target.dtype.kind != "f":
                raise RuntimeError(
                    f"{type(self).__name__}: Expected floating point type for target with class "
                    f"probabilities, got {target.dtype}"
                )
        self._check_weight_dtype(input, target)
        return target

    def _ce_options(self) -> tuple:
        ignore = -100 if self.ignore_index is None else self.ignore_index
        return self.weight, ignore, self.reduction, self.label_smoothing

    def forward(self, input: Any, target: Any) -> np.ndarray:
        input = as_float_array(input, type(self).__name__)
        shape = self._logits_shape(input)
        target = self._check_target(input, target, shape)
        weight, bias = self._linear_parameters()
        path = "m1" if bias is None else "mat1"  # torch's mm / addmm words for a dtype mismatch
        check_dtypes(input, {"weight": weight, "bias": bias}, repr(self), path)
        logits = F.linear(input, weight, bias).reshape(shape)  # (*N, C prod(d)) -> (*N, C, *d)
        self._cache = (input, target, logits)
        return F.cross_entropy(logits, target, *self._ce_options())

    def _linear_parameters(self) -> tuple[np.ndarray, np.ndarray | None]:
        bias = None if self.linear.bias is None else self.linear.bias.data
        return self.linear.weight.data, bias

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target, logits = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        grad_logits = F.cross_entropy_backward(grad_output, logits, target, *self._ce_options())
        grad_rows = grad_logits.reshape(*input.shape[:-1], -1)  # (*N, C, *d) -> (*N, C prod(d))
        grad_input, grad_weight, grad_bias = F.linear_backward(
            grad_rows, input, *self._linear_parameters()
        )
        self.linear.weight.accumulate_grad(grad_weight)
        if self.linear.bias is not None and grad_bias is not None:
            self.linear.bias.accumulate_grad(grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        return (
            f"in_features={self.linear.in_features}, num_classes={self.num_classes}, "
            f"out_features={self.out_features}, bias={self.linear.bias is not None}, "
            f"reduction={self.reduction}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}, options={self.options}"
        )
