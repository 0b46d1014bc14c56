"""``Upsample``, ``UpsamplingNearest2d``, ``UpsamplingBilinear2d``: resampling modules.

Thin wrappers around :func:`reference.functional.interpolate.interpolate` and its
backward. No parameters; the output follows the input's dtype. As in torch, the
arguments are checked by the first forward, not by the constructor, and the two
``Upsampling*2d`` classes are ``Upsample`` with a fixed mode (they do not check the rank
either: a 3-D input to ``UpsamplingNearest2d`` is resampled along its one spatial dim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.interpolate import _backward, _forward
from .module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d"]


class Upsample(Module):
    r"""``torch.nn.Upsample``: :func:`~reference.functional.interpolate.interpolate` with
    the arguments given here (``antialias`` is always off, as torch's module has it).

    A tuple ``scale_factor`` is kept as floats, a number as a float, and a falsy one
    (``0``) as ``None``, as torch does.
    """

    def __init__(
        self,
        size: int | tuple[int, ...] | None = None,
        scale_factor: float | tuple[float, ...] | None = None,
        mode: str = "nearest",
        align_corners: bool | None = None,
        recompute_scale_factor: bool | None = None,
    ):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor: Any = tuple(float(factor) for factor in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor
        self._input: np.ndarray | None = None

    def _arguments(self) -> tuple:
        return (self.size, self.scale_factor, self.mode, self.align_corners,
                self.recompute_scale_factor, False)  # fmt: skip

    def forward(self, input: Any) -> np.ndarray:
        output = _forward(repr(self), input, *self._arguments())
        self._input = np.asarray(input)  # after the checks: a refused input leaves no cache
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        input = self._require_cache(self._input)
        return _backward(f"{self!r}.backward", grad_output, input, *self._arguments())

    def extra_repr(self) -> str:
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """``torch.nn.UpsamplingNearest2d``: :class:`Upsample` with ``mode='nearest'``."""

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale_factor: float | tuple[float, float] | None = None,
    ):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """``torch.nn.UpsamplingBilinear2d``: :class:`Upsample` with ``mode='bilinear'`` and
    ``align_corners=True``."""

    def __init__(
        self,
        size: int | tuple[int, int] | None = None,
        scale_factor: float | tuple[float, float] | None = None,
    ):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)
