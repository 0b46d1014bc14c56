"""More loss modules: margin (hinge) losses and negative log-likelihoods.

Thin wrappers around the pairs in :mod:`reference.functional.margin_loss` and
:mod:`reference.functional.likelihood_loss`. A loss of ``(input, target)`` has
``forward(input, target)`` and ``backward(grad_output=1)`` returning the gradient wrt
the input; one of several inputs has ``forward(input1, input2, target)`` (or
``(anchor, positive, negative)``, ``(input, target, var)``) and a backward returning
a tuple, one gradient per floating input. Class weights are buffers, as in torch.
After a backward, ``target_grad`` is the gradient wrt the target, as torch's
``target.grad`` (see :class:`reference.nn.loss._Loss`): an array where torch
differentiates the target, None where it leaves it None (class indices, the ±1 labels
of the hinge and cosine embeddings, the triplet loss's absent target), torch's
``RuntimeError`` for ``SoftMarginLoss``, whose target torch refuses to differentiate.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array, as_target_array
from ..functional import likelihood_loss as LF
from ..functional import margin_loss as MF
from ..functional import triplet_loss as TF
from .loss import _Loss, _WeightedLoss

__all__ = [
    "SoftMarginLoss", "MultiLabelSoftMarginLoss", "MultiMarginLoss", "MultiLabelMarginLoss",
    "HingeEmbeddingLoss", "PoissonNLLLoss", "GaussianNLLLoss", "MarginRankingLoss",
    "CosineEmbeddingLoss", "TripletMarginLoss",
]  # fmt: skip


class SoftMarginLoss(_Loss):
    """``torch.nn.SoftMarginLoss``: :math:`\\log(1 + e^{-y x})`, reduced."""

    _refuses_target = "soft_margin_loss"  # torch: not differentiable wrt 'target'

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return LF.soft_margin_loss(input, target, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return LF.soft_margin_loss_backward(grad_output, input, target, self.reduction)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """``torch.nn.MultiLabelSoftMarginLoss``: per-class logistic loss, mean over classes."""

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return LF.multilabel_soft_margin_loss(input, target, self.weight, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return LF.multilabel_soft_margin_loss_backward(
            grad_output, input, target, self.weight, self.reduction
        )

    def _target_backward(self, grad_output, input, target):
        return LF.multilabel_soft_margin_loss_target_backward(
            grad_output, input, target, self.weight, self.reduction
        )


class MultiMarginLoss(_WeightedLoss):
    """``torch.nn.MultiMarginLoss``: multi-class hinge (``p`` 1 or 2) against class indices."""

    def __init__(
        self,
        p: int = 1,
        margin: float = 1.0,
        weight: np.ndarray | None = None,
        reduction: str = "mean",
    ):
        if p not in (1, 2):
            raise ValueError(f"MultiMarginLoss: only p == 1 and p == 2 are supported, got {p!r}")
        if weight is not None and np.ndim(weight) != 1:
            raise ValueError("MultiMarginLoss: weight must be one-dimensional")
        super().__init__(weight, reduction)
        self.p, self.margin = p, margin

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target, float_target=False)
        return MF.multi_margin_loss(input, target, self.p, self.margin, self.weight, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return MF.multi_margin_loss_backward(
            grad_output, input, target, self.p, self.margin, self.weight, self.reduction
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, p={self.p}, margin={self.margin}"


class MultiLabelMarginLoss(_Loss):
    """``torch.nn.MultiLabelMarginLoss``: targets (int64, padded with -1) beat the others by 1."""

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target, float_target=False)
        return MF.multilabel_margin_loss(input, target, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return MF.multilabel_margin_loss_backward(grad_output, input, target, self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``torch.nn.HingeEmbeddingLoss``: :math:`x` for :math:`y = 1`, :math:`\\max(0, m - x)`
    for :math:`y = -1`."""

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return MF.hinge_embedding_loss(input, target, self.margin, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return MF.hinge_embedding_loss_backward(
            grad_output, input, target, self.margin, self.reduction
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"


class PoissonNLLLoss(_Loss):
    """``torch.nn.PoissonNLLLoss``: :math:`e^x - y x` (``log_input``), else
    :math:`x - y \\log(x + \\epsilon)`."""

    def __init__(
        self, log_input: bool = True, full: bool = False, eps: float = 1e-8, reduction: str = "mean"
    ):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def _options(self) -> tuple:
        return self.log_input, self.full, self.eps, self.reduction

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return LF.poisson_nll_loss(input, target, *self._options())

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return LF.poisson_nll_loss_backward(grad_output, input, target, *self._options())

    def _target_backward(self, grad_output, input, target):
        return LF.poisson_nll_loss_target_backward(grad_output, input, target, *self._options())

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, log_input={self.log_input}, full={self.full}"


class _MultiInputLoss(_Loss):
    """A loss of three inputs whose backward returns a tuple of gradients."""

    _names: tuple[str, str, str] = ("input1", "input2", "target")

    def _save3(self, a: Any, b: Any, c: Any) -> tuple:
        name = type(self).__name__
        first = as_float_array(a, name, self._names[0])
        self._cache = (first,) + tuple(
            x if isinstance(x, float)
            # a target's integers are promoted to the input's dtype, as torch promotes them
            else as_target_array(x, first, name, n) if n == "target"
            else as_float_array(x, name, n)
            for x, n in zip((b, c), self._names[1:])
        )  # fmt: skip
        return self._cache

    def _upstream3(self, grad_output: np.ndarray | float | None) -> tuple[np.ndarray, tuple]:
        cache = self._require_cache(self._cache)
        return self._upstream(grad_output, cache[0].dtype), cache


class GaussianNLLLoss(_MultiInputLoss):
    """``torch.nn.GaussianNLLLoss``: ``forward(input, target, var)``; backward returns
    ``(grad_input, grad_target, grad_var)`` (``grad_var`` None for a float var)."""

    _names = ("input", "target", "var")

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean"):
        super().__init__(reduction)
        self.full, self.eps = full, eps

    def forward(self, input: np.ndarray, target: np.ndarray, var: Any) -> np.ndarray:
        input, target, var = self._save3(input, target, var)
        return LF.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> tuple:
        grad_output, (input, target, var) = self._upstream3(grad_output)
        return LF.gaussian_nll_loss_backward(
            grad_output, input, target, var, self.full, self.eps, self.reduction
        )

    def _target_backward(self, grad_output, input, target, var):
        return LF.gaussian_nll_loss_target_backward(
            grad_output, input, target, var, self.full, self.eps, self.reduction
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, full={self.full}, eps={self.eps}"


class MarginRankingLoss(_MultiInputLoss):
    """``torch.nn.MarginRankingLoss``: ``forward(input1, input2, target)``; backward returns
    ``(grad_input1, grad_input2)``."""

    def __init__(self, margin: float = 0.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1: np.ndarray, input2: np.ndarray, target: np.ndarray) -> np.ndarray:
        input1, input2, target = self._save3(input1, input2, target)
        return MF.margin_ranking_loss(input1, input2, target, self.margin, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> tuple:
        grad_output, (input1, input2, target) = self._upstream3(grad_output)
        return MF.margin_ranking_loss_backward(
            grad_output, input1, input2, target, self.margin, self.reduction
        )

    def _target_backward(self, grad_output, input1, input2, target):
        return MF.margin_ranking_loss_target_backward(
            grad_output, input1, input2, target, self.margin, self.reduction
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}"


class CosineEmbeddingLoss(MarginRankingLoss):
    """``torch.nn.CosineEmbeddingLoss``: ``forward(input1, input2, target)``; backward returns
    ``(grad_input1, grad_input2)``."""

    def forward(self, input1: np.ndarray, input2: np.ndarray, target: np.ndarray) -> np.ndarray:
        input1, input2, target = self._save3(input1, input2, target)
        return MF.cosine_embedding_loss(input1, input2, target, self.margin, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> tuple:
        grad_output, (input1, input2, target) = self._upstream3(grad_output)
        return MF.cosine_embedding_loss_backward(
            grad_output, input1, input2, target, self.margin, self.reduction
        )

    def _target_backward(self, grad_output, input1, input2, target):
        return None  # the target only selects a branch: torch's target.grad stays None


class TripletMarginLoss(_MultiInputLoss):
    """``torch.nn.TripletMarginLoss``: ``forward(anchor, positive, negative)``; backward
    returns ``(grad_anchor, grad_positive, grad_negative)``."""

    _names = ("anchor", "positive", "negative")

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(reduction)
        if not margin > 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0, got {margin!r}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def _options(self) -> tuple:
        return self.margin, self.p, self.eps, self.swap, self.reduction

    def forward(self, anchor: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> np.ndarray:
        anchor, positive, negative = self._save3(anchor, positive, negative)
        return TF.triplet_margin_loss(anchor, positive, negative, *self._options())

    def backward(self, grad_output: np.ndarray | float | None = None) -> tuple:
        grad_output, (anchor, positive, negative) = self._upstream3(grad_output)
        return TF.triplet_margin_loss_backward(
            grad_output, anchor, positive, negative, *self._options()
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, margin={self.margin}, p={self.p}, swap={self.swap}"
