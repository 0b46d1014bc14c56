"""LP pooling and max unpooling modules with torch's names, arguments, defaults and ``repr``.

Thin wrappers around :mod:`reference.functional.lp_pooling` and
:mod:`reference.functional.unpooling`. ``MaxUnpool*`` take max pooling's output
and indices (``forward(input, indices, output_size=None)``); their backward
returns the gradient wrt ``input`` only (indices are integers).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from .module import Module

__all__ = [
    "LPPool1d", "LPPool2d", "LPPool3d", "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
]  # fmt: skip


class _LPPoolNd(Module):
    _nd = 2

    def __init__(
        self,
        norm_type: float,
        kernel_size: Any,
        stride: Any = None,
        ceil_mode: bool = False,
    ):
        super().__init__()
        self.norm_type = norm_type
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = ceil_mode
        self._input: np.ndarray | None = None

    def _args(self) -> tuple:
        # torch's modules pass float(norm_type) to the functional
        return float(self.norm_type), self.kernel_size, self.stride, self.ceil_mode

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._input = as_float_array(input, repr(self))
        return getattr(F, f"lp_pool{self._nd}d")(self._input, *self._args())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        backward = getattr(F, f"lp_pool{self._nd}d_backward")
        return backward(grad_output, self._require_cache(self._input), *self._args())

    def extra_repr(self) -> str:
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, ceil_mode={self.ceil_mode}")  # fmt: skip


class LPPool1d(_LPPoolNd):
    """``torch.nn.LPPool1d``: :func:`~reference.functional.lp_pool1d`,
    :math:`(\\sum_{\\text{window}} x^p)^{1/p}` (``norm_type`` :math:`p`; ``inf`` is max
    pooling of :math:`|x|`)."""

    _nd = 1


class LPPool2d(_LPPoolNd):
    """``torch.nn.LPPool2d``: :func:`~reference.functional.lp_pool2d`."""

    _nd = 2


class LPPool3d(_LPPoolNd):
    """``torch.nn.LPPool3d``: :func:`~reference.functional.lp_pool3d`."""

    _nd = 3


def _ntuple(value: Any, n: int) -> tuple:
    """torch's ``_single``/``_pair``/``_triple``: an int repeated, a sequence as a tuple."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


class _MaxUnpoolNd(Module):
    _nd = 2

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0):
        super().__init__()
        # torch stores them as n-tuples
        self.kernel_size = _ntuple(kernel_size, self._nd)
        self.stride = _ntuple(stride if stride is not None else kernel_size, self._nd)
        self.padding = _ntuple(padding, self._nd)
        self._cache: tuple | None = None

    def _args(self) -> tuple:
        return self.kernel_size, self.stride, self.padding

    def forward(
        self, input: np.ndarray, indices: np.ndarray, output_size: Any = None
    ) -> np.ndarray:
        input = as_float_array(input, repr(self))
        output = getattr(F, f"max_unpool{self._nd}d")(input, indices, *self._args(), output_size)
        self._cache = (input, np.asarray(indices), output_size)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, indices, output_size = self._require_cache(self._cache)
        backward = getattr(F, f"max_unpool{self._nd}d_backward")
        return backward(grad_output, input, indices, *self._args(), output_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool1d``: :func:`~reference.functional.max_unpool1d`, the partial
    inverse of ``MaxPool1d(..., return_indices=True)``."""

    _nd = 1


class MaxUnpool2d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool2d``: :func:`~reference.functional.max_unpool2d`."""

    _nd = 2


class MaxUnpool3d(_MaxUnpoolNd):
    """``torch.nn.MaxUnpool3d``: :func:`~reference.functional.max_unpool3d`."""

    _nd = 3
