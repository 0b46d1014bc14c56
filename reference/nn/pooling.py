"""Pooling modules with torch's names, arguments, defaults and ``repr``, 1-d to 3-d.

Thin wrappers around :mod:`reference.functional.pooling`,
:mod:`reference.functional.avg_pooling` and :mod:`reference.functional.adaptive_pooling`.
Max pooling saves the forward's indices, so the backward sends each gradient to
exactly the element the forward picked (torch's tie rule); ``return_indices=True``
also returns them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from .module import Module

__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
]  # fmt: skip


class _MaxPoolNd(Module):
    _nd = 2

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        dilation: Any = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode
        self._cache: tuple | None = None

    def _functional(self):
        name = f"max_pool{self._nd}d"
        return getattr(F, name), getattr(F, f"{name}_backward")

    def _args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode

    def forward(self, input: np.ndarray) -> Any:
        input = as_float_array(input, repr(self))
        forward, _ = self._functional()
        output, indices = forward(input, *self._args(), return_indices=True)
        self._cache = (input, indices)
        return (output, indices) if self.return_indices else output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, indices = self._require_cache(self._cache)
        _, backward = self._functional()
        return backward(grad_output, input, *self._args(), indices=indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")  # fmt: skip


class MaxPool1d(_MaxPoolNd):
    """``torch.nn.MaxPool1d``: :func:`~reference.functional.max_pool1d` (stride defaults to
    ``kernel_size``; padding is -inf and may be at most half the kernel)."""

    _nd = 1


class MaxPool2d(_MaxPoolNd):
    """``torch.nn.MaxPool2d``: :func:`~reference.functional.max_pool2d` (stride defaults to
    ``kernel_size``; padding is -inf and may be at most half the kernel)."""

    _nd = 2


class MaxPool3d(_MaxPoolNd):
    """``torch.nn.MaxPool3d``: :func:`~reference.functional.max_pool3d` (stride defaults to
    ``kernel_size``; padding is -inf and may be at most half the kernel)."""

    _nd = 3


class AvgPool1d(Module):
    """``torch.nn.AvgPool1d``: :func:`~reference.functional.avg_pool1d`.

    Like torch, stores ``kernel_size``, ``stride`` and ``padding`` as 1-tuples.
    """

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ):
        super().__init__()
        self.kernel_size = _single(kernel_size)
        self.stride = _single(stride if stride is not None else kernel_size)
        self.padding = _single(padding)
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self._input: np.ndarray | None = None

    def _args(self) -> tuple:
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad)  # fmt: skip

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._input = as_float_array(input, repr(self))
        return F.avg_pool1d(self._input, *self._args())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return F.avg_pool1d_backward(grad_output, self._require_cache(self._input), *self._args())

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AvgPoolNd(Module):
    """2-d and 3-d average pooling: the same arguments, stored as given (as torch does)."""

    _nd = 2

    def __init__(
        self,
        kernel_size: Any,
        stride: Any = None,
        padding: Any = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad
        self.divisor_override = divisor_override
        self._input: np.ndarray | None = None

    def _args(self) -> tuple:
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)  # fmt: skip

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._input = as_float_array(input, repr(self))
        return getattr(F, f"avg_pool{self._nd}d")(self._input, *self._args())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        backward = getattr(F, f"avg_pool{self._nd}d_backward")
        return backward(grad_output, self._require_cache(self._input), *self._args())

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(_AvgPoolNd):
    """``torch.nn.AvgPool2d``: :func:`~reference.functional.avg_pool2d`, with torch's
    divisor rule for ``ceil_mode``, ``count_include_pad`` and ``divisor_override``."""

    _nd = 2


class AvgPool3d(_AvgPoolNd):
    """``torch.nn.AvgPool3d``: :func:`~reference.functional.avg_pool3d`, with torch's
    divisor rule for ``ceil_mode``, ``count_include_pad`` and ``divisor_override``."""

    _nd = 3


class _AdaptiveAvgPoolNd(Module):
    _nd = 2

    def __init__(self, output_size: Any):
        super().__init__()
        self.output_size = output_size
        self._input: np.ndarray | None = None

    def _functional(self):
        name = f"adaptive_avg_pool{self._nd}d"
        return getattr(F, name), getattr(F, f"{name}_backward")

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._input = as_float_array(input, repr(self))
        return self._functional()[0](self._input, self.output_size)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._input)
        return self._functional()[1](grad_output, input, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool1d``: :func:`~reference.functional.adaptive_avg_pool1d`."""

    _nd = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool2d``: :func:`~reference.functional.adaptive_avg_pool2d`
    (``output_size`` an int or a pair; ``None`` keeps that input size)."""

    _nd = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """``torch.nn.AdaptiveAvgPool3d``: :func:`~reference.functional.adaptive_avg_pool3d`
    (``output_size`` an int or a triple; ``None`` keeps that input size)."""

    _nd = 3


class _AdaptiveMaxPoolNd(Module):
    _nd = 2

    def __init__(self, output_size: Any, return_indices: bool = False):
        super().__init__()
        self.output_size = output_size
        self.return_indices = return_indices
        self._cache: tuple | None = None

    def _functional(self):
        name = f"adaptive_max_pool{self._nd}d"
        return getattr(F, name), getattr(F, f"{name}_backward")

    def forward(self, input: np.ndarray) -> Any:
        input = as_float_array(input, repr(self))
        output, indices = self._functional()[0](input, self.output_size, return_indices=True)
        self._cache = (input, indices)
        return (output, indices) if self.return_indices else output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, indices = self._require_cache(self._cache)
        return self._functional()[1](grad_output, input, self.output_size, indices=indices)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """``torch.nn.AdaptiveMaxPool1d``: :func:`~reference.functional.adaptive_max_pool1d`."""

    _nd = 1


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """``torch.nn.AdaptiveMaxPool2d``: :func:`~reference.functional.adaptive_max_pool2d`."""

    _nd = 2


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """``torch.nn.AdaptiveMaxPool3d``: :func:`~reference.functional.adaptive_max_pool3d`
    (``output_size`` an int or a triple; ``None`` keeps that input size)."""

    _nd = 3


def _single(value: Any) -> tuple:
    """torch's ``_single``: an int becomes a 1-tuple, a sequence a tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)
