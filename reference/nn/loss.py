"""Loss modules: ``forward(input, target)`` returns the loss, ``backward()`` dL/dinput,
and then ``target_grad`` dL/dtarget (see :class:`_Loss`).

Each is a thin wrapper around a pair in :mod:`reference.functional`: the forward
saves ``(input, target)``, the backward hands them to the functional backward, and
``target_grad`` to the functional target backward. Class weights (``weight``,
``pos_weight``) are buffers, as in torch, so they appear in ``state_dict`` when given.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, as_target_array, check_dtypes, check_reduction
from .module import Module

__all__ = [
    "MSELoss", "L1Loss", "SmoothL1Loss", "HuberLoss", "KLDivLoss",
    "BCELoss", "BCEWithLogitsLoss", "NLLLoss", "CrossEntropyLoss",
]  # fmt: skip


class _Loss(Module):
    """Shared plumbing: ``reduction``, the default upstream gradient of 1 for a scalar, and
    the gradient wrt the target.

    ``target_grad``: after ``backward(grad_output)``, the gradient of the loss wrt the
    target of the last forward, what torch leaves in ``target.grad`` when the target
    requires grad. ``backward`` itself still returns the input's gradient (nothing
    changes for callers that never read it). It is computed *lazily*: ``backward``
    keeps its upstream gradient, and each read of ``target_grad`` evaluates the
    functional ``<name>_target_backward`` on that and the forward's cache, so a
    backward costs no more than before (a copy of its upstream gradient) and the
    harness, which never reads it, computes nothing for it. It is not accumulated over
    several backwards (a target is no ``Parameter``): the last backward's. Its value:

    - an array of the target's shape, in the input's dtype, where torch differentiates
      the target (regression, KL, both binary cross entropies, cross entropy with
      class probabilities, the multilabel soft margin, Poisson, Gaussian, ranking);
    - ``None`` where torch leaves ``target.grad`` None: class-index (integer) targets,
      ±1 labels that only select a branch (hinge and cosine embedding), no target
      (triplet);
    - a ``RuntimeError`` with torch's message where torch refuses a target that
      requires grad (``SoftMarginLoss``), read at any time;
    - a ``RuntimeError`` if read before the backward of the last forward.

    A subclass says which by overriding :meth:`_target_backward` (default: None) or by
    naming the functional torch refuses in ``_refuses_target``.
    """

    _reductions: tuple[str, ...] = ("none", "mean", "sum")
    # the torch functional that refuses to differentiate this loss's target, if any
    _refuses_target: str | None = None

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        self.reduction = check_reduction(reduction, type(self).__name__, self._reductions)
        self._cache: tuple | None = None
        # (the cache, the upstream gradient) of the last backward, for target_grad
        self._last_backward: tuple[tuple | None, np.ndarray] | None = None

    def _upstream(self, grad_output: np.ndarray | float | None, dtype: np.dtype) -> np.ndarray:
        """``loss.backward()`` in torch implies a gradient of 1 for a scalar loss only.

        Every backward passes its upstream gradient through here, so this is also where
        it is kept for :attr:`target_grad` (a copy: the caller may reuse its array), with
        the cache it goes with: a forward that replaces the cache retires it.
        """
        if grad_output is None:
            if self.reduction == "none":
                raise ValueError(
                    f"{type(self).__name__}(reduction='none').backward() needs a grad_output "
                    "of the loss's shape: a non-scalar loss has no implied gradient"
                )
            grad_output = np.ones((), dtype=dtype)
        grad_output = np.array(grad_output, dtype=dtype)
        self._last_backward = (self._cache, grad_output.copy())
        return grad_output

    # torch refuses an integer target for this loss (BCE, KL divergence); others promote it
    _refuses_integer_target = False

    def _save(self, input: Any, target: Any, float_target: bool = True) -> tuple:
        """Refuse non-floating inputs (named after this module), then cache the pair.

        A floating target's integer or bool values are promoted to the input's dtype, as
        torch promotes them, unless the loss refuses them as torch does."""
        name = type(self).__name__
        input = as_float_array(input, name)
        if not float_target:
            target = np.asarray(target)
        elif self._refuses_integer_target:
            target = as_float_array(target, name, "target")
        else:
            target = as_target_array(target, input, name)
        self._cache = (input, target)
        return self._cache

    @property
    def target_grad(self) -> np.ndarray | None:
        """The gradient wrt the last forward's target (see the class docstring)."""
        name = type(self).__name__
        if self._refuses_target is not None:
            raise RuntimeError(
                f"The function '{self._refuses_target}' is not differentiable with respect to "
                f"argument 'target'. This input cannot have requires_grad True. ({name} has no "
                "target gradient; use the input's, which backward() returns)"
            )
        cache, grad_output = self._last_backward or (None, None)
        if cache is None or grad_output is None or cache is not self._cache:
            raise RuntimeError(
                f"{name}.target_grad read before backward(): run forward, then backward, "
                "then read it (a new forward clears it)"
            )
        return self._target_backward(grad_output.copy(), *cache)

    def _target_backward(self, grad_output: np.ndarray, *cache: Any) -> np.ndarray | None:
        """The gradient wrt the target from the upstream gradient and the cache; None here
        (no gradient in torch), overridden by the losses whose target torch differentiates."""
        return None

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    """A loss with an optional ``weight`` buffer (torch's ``_WeightedLoss``)."""

    def __init__(self, weight: np.ndarray | None = None, reduction: str = "mean"):
        super().__init__(reduction)
        name = type(self).__name__
        self.register_buffer(
            "weight", None if weight is None else as_float_array(weight, name, "weight")
        )

    def _check_weight_dtype(self, input: np.ndarray, target: np.ndarray) -> None:
        """torch's ``nll_loss`` refuses a class ``weight`` whose dtype is not the input's.

        NLLLoss and CrossEntropyLoss with class-index targets only: a probability target
        takes another path, and BCELoss's weight is a plain product; both promote.
        """
        if target.dtype.kind in "iu":
            check_dtypes(input, {"weight": self.weight}, type(self).__name__, "scalar type")


class MSELoss(_Loss):
    """``torch.nn.MSELoss``: :math:`(x - y)^2`, reduced."""

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.mse_loss(input, target, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.mse_loss_backward(grad_output, input, target, self.reduction)

    def _target_backward(self, grad_output, input, target):
        return F.mse_loss_target_backward(grad_output, input, target, self.reduction)


class L1Loss(_Loss):
    """``torch.nn.L1Loss``: :math:`|x - y|`, reduced; gradient 0 where :math:`x = y`."""

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.l1_loss(input, target, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.l1_loss_backward(grad_output, input, target, self.reduction)

    def _target_backward(self, grad_output, input, target):
        return F.l1_loss_target_backward(grad_output, input, target, self.reduction)


class SmoothL1Loss(_Loss):
    """``torch.nn.SmoothL1Loss``: quadratic within ``beta``, linear outside (``beta=0``: L1)."""

    def __init__(self, reduction: str = "mean", beta: float = 1.0):
        super().__init__(reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be >= 0, got {beta!r}")
        self.beta = beta

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.smooth_l1_loss(input, target, self.reduction, self.beta)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.smooth_l1_loss_backward(grad_output, input, target, self.reduction, self.beta)

    def _target_backward(self, grad_output, input, target):
        return F.smooth_l1_loss_target_backward(
            grad_output, input, target, self.reduction, self.beta
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, beta={self.beta}"


class HuberLoss(_Loss):
    """``torch.nn.HuberLoss``: quadratic within ``delta``, slope ``delta`` outside."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0):
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta!r}")
        self.delta = delta

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.huber_loss(input, target, self.reduction, self.delta)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.huber_loss_backward(grad_output, input, target, self.reduction, self.delta)

    def _target_backward(self, grad_output, input, target):
        return F.huber_loss_target_backward(grad_output, input, target, self.reduction, self.delta)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, delta={self.delta}"


class KLDivLoss(_Loss):
    """``torch.nn.KLDivLoss``: input log-probabilities, target probabilities (or log).

    Use ``reduction='batchmean'`` for the KL divergence per sample; torch warns
    that ``'mean'`` divides by every element (the reference does not warn).
    """

    _refuses_integer_target = True

    _reductions = ("none", "mean", "sum", "batchmean")

    def __init__(self, reduction: str = "mean", log_target: bool = False):
        super().__init__(reduction)
        self.log_target = log_target

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.kl_div(input, target, self.reduction, self.log_target)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.kl_div_backward(grad_output, input, target, self.reduction, self.log_target)

    def _target_backward(self, grad_output, input, target):
        return F.kl_div_target_backward(grad_output, input, target, self.reduction, self.log_target)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, log_target={self.log_target}"


class BCELoss(_WeightedLoss):
    """``torch.nn.BCELoss``: binary cross entropy on probabilities, each log clamped at -100."""

    _refuses_integer_target = True

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.binary_cross_entropy_backward(
            grad_output, input, target, self.weight, self.reduction
        )

    def _target_backward(self, grad_output, input, target):
        return F.binary_cross_entropy_target_backward(
            grad_output, input, target, self.weight, self.reduction
        )


class BCEWithLogitsLoss(_Loss):
    """``torch.nn.BCEWithLogitsLoss``: sigmoid + BCE in one stable formula, on logits.

    ``weight`` broadcasts to the input; ``pos_weight`` (typically ``(C,)``) weighs
    the positive term per class along the last dim. Both are buffers.
    """

    _refuses_integer_target = True

    def __init__(
        self,
        weight: np.ndarray | None = None,
        reduction: str = "mean",
        pos_weight: np.ndarray | None = None,
    ):
        super().__init__(reduction)
        name = type(self).__name__
        self.register_buffer(
            "weight", None if weight is None else as_float_array(weight, name, "weight")
        )
        self.register_buffer(
            "pos_weight",
            None if pos_weight is None else as_float_array(pos_weight, name, "pos_weight"),
        )

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target)
        return F.binary_cross_entropy_with_logits(
            input, target, self.weight, self.reduction, self.pos_weight
        )

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.binary_cross_entropy_with_logits_backward(
            grad_output, input, target, self.weight, self.reduction, self.pos_weight
        )

    def _target_backward(self, grad_output, input, target):
        return F.binary_cross_entropy_with_logits_target_backward(
            grad_output, input, target, self.weight, self.reduction, self.pos_weight
        )


class NLLLoss(_WeightedLoss):
    """``torch.nn.NLLLoss``: :math:`-w_{y} x_{y}` on log-probabilities; weighted mean."""

    def __init__(
        self, weight: np.ndarray | None = None, ignore_index: int = -100, reduction: str = "mean"
    ):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target, float_target=False)
        self._check_weight_dtype(input, target)
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.nll_loss_backward(
            grad_output, input, target, self.weight, self.ignore_index, self.reduction
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, ignore_index={self.ignore_index}"


class CrossEntropyLoss(_WeightedLoss):
    """``torch.nn.CrossEntropyLoss``: log-softmax + NLL, with label smoothing and soft targets.

    ``target`` is either class indices (int64, the input's shape without the class
    dim; ``ignore_index`` skips a sample) or class probabilities (floating, the
    input's shape). ``mean`` with class indices divides by the summed weights of
    the counted targets; with probabilities by the number of samples.
    """

    def __init__(
        self,
        weight: np.ndarray | None = None,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ):
        super().__init__(weight, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing!r}"
            )
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input: np.ndarray, target: np.ndarray) -> np.ndarray:
        input, target = self._save(input, target, float_target=False)
        self._check_weight_dtype(input, target)
        return F.cross_entropy(input, target, *self._options())

    def _options(self) -> tuple:
        return self.weight, self.ignore_index, self.reduction, self.label_smoothing

    def backward(self, grad_output: np.ndarray | float | None = None) -> np.ndarray:
        input, target = self._require_cache(self._cache)
        grad_output = self._upstream(grad_output, input.dtype)
        return F.cross_entropy_backward(grad_output, input, target, *self._options())

    def _target_backward(self, grad_output, input, target):
        if target.dtype.kind != "f":
            return None  # class indices: torch's target cannot require grad
        return F.cross_entropy_target_backward(grad_output, input, target, *self._options())

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, ignore_index={self.ignore_index}, "
            f"label_smoothing={self.label_smoothing}"
        )
