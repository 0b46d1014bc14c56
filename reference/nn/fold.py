"""``Fold`` and ``Unfold``: the modules around :mod:`reference.functional.fold`.

No parameters. The constructor arguments are kept as given (an int or a pair), as torch
keeps them, so ``repr`` matches torch's; they are checked at construction, not first at
the forward as in torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.fold import (
    _geometry,
    _pair,
    fold,
    fold_backward,
    unfold,
    unfold_backward,
)
from .module import Module

__all__ = ["Fold", "Unfold"]


class Fold(Module):
    r"""``torch.nn.Fold``: sum sliding blocks ``(N, C*kh*kw, L)`` (or unbatched
    ``(C*kh*kw, L)``) into an image ``(N, C, *output_size)``; see
    :func:`~reference.functional.fold`. ``backward`` unfolds the gradient."""

    def __init__(
        self,
        output_size: Any,
        kernel_size: Any,
        dilation: Any = 1,
        padding: Any = 0,
        stride: Any = 1,
    ) -> None:
        super().__init__()
        _pair(output_size, "output_size", "Fold")
        _geometry(kernel_size, dilation, padding, stride, "Fold")
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride
        self._input: np.ndarray | None = None

    def _geometry(self) -> tuple[Any, ...]:
        return (self.output_size, self.kernel_size, self.dilation, self.padding, self.stride)

    def forward(self, input: Any) -> np.ndarray:
        output = fold(input, *self._geometry())
        self._input = np.asarray(input)
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        input = self._require_cache(self._input)
        return fold_backward(grad_output, input, *self._geometry())

    def extra_repr(self) -> str:
        return (
            f"output_size={self.output_size}, kernel_size={self.kernel_size}, "
            f"dilation={self.dilation}, padding={self.padding}, stride={self.stride}"
        )


class Unfold(Module):
    r"""``torch.nn.Unfold``: every sliding ``kh x kw`` block of ``(N, C, H, W)`` (or
    unbatched ``(C, H, W)``) as a column of ``(N, C*kh*kw, L)``; see
    :func:`~reference.functional.unfold`. ``backward`` folds the gradient."""

    def __init__(
        self, kernel_size: Any, dilation: Any = 1, padding: Any = 0, stride: Any = 1
    ) -> None:
        super().__init__()
        _geometry(kernel_size, dilation, padding, stride, "Unfold")
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride
        self._input: np.ndarray | None = None

    def _geometry(self) -> tuple[Any, ...]:
        return (self.kernel_size, self.dilation, self.padding, self.stride)

    def forward(self, input: Any) -> np.ndarray:
        output = unfold(input, *self._geometry())
        self._input = np.asarray(input)
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        input = self._require_cache(self._input)
        return unfold_backward(grad_output, input, *self._geometry())

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, dilation={self.dilation}, "
            f"padding={self.padding}, stride={self.stride}"
        )
