"""``PixelShuffle``, ``PixelUnshuffle``, ``ChannelShuffle``: permutations of the input.

Thin wrappers around :mod:`reference.functional.shuffle`. No parameters; like torch's,
they take any dtype (a permutation needs no arithmetic) and the output follows it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_positive_int
from ..functional.shuffle import (
    channel_shuffle,
    channel_shuffle_backward,
    pixel_shuffle,
    pixel_shuffle_backward,
    pixel_unshuffle,
    pixel_unshuffle_backward,
)
from .module import Module

__all__ = ["PixelShuffle", "PixelUnshuffle", "ChannelShuffle"]


class PixelShuffle(Module):
    r"""``torch.nn.PixelShuffle``: ``(*, C r^2, H, W)`` -> ``(*, C, H r, W r)``, ``r`` =
    ``upscale_factor``."""

    def __init__(self, upscale_factor: int):
        super().__init__()
        self.upscale_factor = check_positive_int(upscale_factor, "PixelShuffle", "upscale_factor")
        self._input: np.ndarray | None = None

    def forward(self, input: Any) -> np.ndarray:
        output = pixel_shuffle(input, self.upscale_factor)
        self._input = np.asarray(input)
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        input = self._require_cache(self._input)
        return pixel_shuffle_backward(grad_output, input, self.upscale_factor)

    def extra_repr(self) -> str:
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    r"""``torch.nn.PixelUnshuffle``: ``(*, C, H r, W r)`` -> ``(*, C r^2, H, W)``, ``r`` =
    ``downscale_factor``; the inverse of :class:`PixelShuffle`."""

    def __init__(self, downscale_factor: int):
        super().__init__()
        self.downscale_factor = check_positive_int(
            downscale_factor, "PixelUnshuffle", "downscale_factor"
        )
        self._input: np.ndarray | None = None

    def forward(self, input: Any) -> np.ndarray:
        output = pixel_unshuffle(input, self.downscale_factor)
        self._input = np.asarray(input)
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        input = self._require_cache(self._input)
        return pixel_unshuffle_backward(grad_output, input, self.downscale_factor)

    def extra_repr(self) -> str:
        return f"downscale_factor={self.downscale_factor}"


class ChannelShuffle(Module):
    r"""``torch.nn.ChannelShuffle``: interleave the channels (dim 1) of ``groups`` groups,
    input ``(N, C, *)`` with at least 3 dimensions."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = check_positive_int(groups, "ChannelShuffle", "groups")
        self._input: np.ndarray | None = None

    def forward(self, input: Any) -> np.ndarray:
        output = channel_shuffle(input, self.groups)
        self._input = np.asarray(input)
        return output

    def backward(self, grad_output: Any) -> np.ndarray:
        input = self._require_cache(self._input)
        return channel_shuffle_backward(grad_output, input, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
