"""``RMSNorm``, ``LocalResponseNorm``, ``CrossMapLRN2d``: normalization by a root mean square.

Thin wrappers around :func:`reference.functional.rms_norm.rms_norm`,
:func:`reference.functional.rms_norm.local_response_norm` and
:func:`reference.functional.rms_norm.cross_map_lrn2d`; all behave the same in training
and evaluation and keep no running statistics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import as_float_array, check_positive_int
from ..functional.rms_norm import (
    cross_map_lrn2d,
    cross_map_lrn2d_backward,
    local_response_norm,
    local_response_norm_backward,
    rms_norm,
    rms_norm_backward,
)
from .init import resolve_dtype
from .module import Module, Parameter
from .normalization import _check_grad, _check_trailing, _normalized_shape

__all__ = ["RMSNorm", "LocalResponseNorm", "CrossMapLRN2d"]


class RMSNorm(Module):
    r"""``torch.nn.RMSNorm``: divide by the root mean square of the trailing dimensions.

    .. math:: y = \frac{x}{\sqrt{\overline{x^2} + \epsilon}}\,\gamma

    With ``elementwise_affine``, ``weight`` (ones) of shape ``normalized_shape``; there is
    no bias. ``eps=None`` (the default) is the machine epsilon of the computation type:
    float32's for float16 and float32 inputs, float64's for float64.

    torch does not refuse a weight whose dtype differs from the input's (it warns and
    takes the unfused path, whose output has the input's dtype), so neither does this:
    the weight is cast to the input's dtype for the computation and its gradient
    accumulates in the weight's own dtype.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape, "RMSNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=resolve_dtype(dtype)))
        else:
            self.register_parameter("weight", None)
        self._input: np.ndarray | None = None

    def _weight(self) -> np.ndarray | None:
        return None if self.weight is None else self.weight.data

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        _check_trailing(self, input, self.normalized_shape)
        self._input = input
        return rms_norm(input, self.normalized_shape, self._weight(), self.eps)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._input)
        grad_output = _check_grad(self, grad_output, input)
        grad_input, grad_weight = rms_norm_backward(
            grad_output, input, self.normalized_shape, self._weight(), self.eps
        )
        if self.weight is not None and grad_weight is not None:
            self.weight.accumulate_grad(grad_weight)
        return grad_input

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )


class LocalResponseNorm(Module):
    r"""``torch.nn.LocalResponseNorm``: divide by a power of the mean square of a channel window.

    .. math:: y_c = x_c \Big(k + \frac{\alpha}{n} \sum_{j \in W(c)} x_j^2\Big)^{-\beta}

    over ``size`` = :math:`n` channels around :math:`c`, zero-padded at the edges. Input
    ``(N, C, *)`` with at least 3 dimensions; no parameters, so the output follows the
    input's dtype.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0):
        super().__init__()
        self.size = check_positive_int(size, "LocalResponseNorm", "size")
        self.alpha, self.beta, self.k = alpha, beta, k
        self._input: np.ndarray | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        output = local_response_norm(input, self.size, self.alpha, self.beta, self.k)
        self._input = input  # after the checks: a refused input leaves no cache
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._input)
        grad_output = _check_grad(self, grad_output, input)
        return local_response_norm_backward(
            grad_output, input, self.size, self.alpha, self.beta, self.k
        )

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class CrossMapLRN2d(Module):
    r"""``torch.nn.CrossMapLRN2d``: Lua torch's cross-channel LRN, on ``(N, C, H, W)`` only.

    .. math:: y_c = x_c \Big(k + \frac{\alpha}{n}\, \textstyle\sum_{j \in W(c)} x_j^2\Big)^{-\beta}

    with torch's window (:func:`reference.functional.rms_norm.cross_map_lrn2d`): for an
    even ``size`` it spans ``size - 1`` channels, and channel 0 stays in every window
    from :math:`c = \lfloor (n-1)/2 \rfloor + 1` on. The backward is the gradient of that
    forward; torch's hand-written backward is not (one channel off; see
    :func:`~reference.functional.rms_norm.cross_map_lrn2d_backward`), so the input
    gradients of the two differ.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1):
        super().__init__()
        self.size = check_positive_int(size, "CrossMapLRN2d", "size")
        self.alpha, self.beta, self.k = alpha, beta, k
        self._input: np.ndarray | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        if input.ndim != 4:
            raise ValueError(
                f"{self!r}: expected a 4-D input (N, C, H, W), got shape {input.shape}; add a "
                "batch dimension with input[None]"
            )
        output = cross_map_lrn2d(input, self.size, self.alpha, self.beta, self.k)
        self._input = input  # after the checks: a refused input leaves no cache
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._input)
        grad_output = _check_grad(self, grad_output, input)
        return cross_map_lrn2d_backward(
            grad_output, input, self.size, self.alpha, self.beta, self.k
        )

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
