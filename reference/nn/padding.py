"""Padding modules: thin wrappers that save their input for the functional ``pad_backward``.

Names, constructor arguments, attributes and ``repr`` are torch's (``torch.nn.ZeroPad2d``
... ``torch.nn.CircularPad3d``). ``padding`` is an int (the same on every side) or a
tuple, kept as given, as torch keeps it: torch does not check its length, so a tuple
pads as many trailing dims as it has pairs (``ConstantPad1d((1, 1, 2, 2), 0.0)`` pads
two), under :func:`~reference.functional.pad`'s rules for ranks and sizes. Only the
circular ones check the input's rank themselves, as torch's do. None has parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .._validate import as_float_array, check_ndim
from ..functional.padding import _pad, _pad_backward
from .module import Module

__all__ = [
    "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
    "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d",
    "CircularPad1d", "CircularPad2d", "CircularPad3d",
]  # fmt: skip


def _padding(padding: Any, n: int, layer: str) -> tuple:
    """torch's ``_ntuple(n)``: an int repeated ``n`` times, an iterable as a tuple; ints only."""
    values = tuple(padding) if isinstance(padding, Iterable) else (padding,) * n
    if any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) for p in values):
        raise TypeError(f"{layer}: padding must be an int or a tuple of ints, got {padding!r}")
    return values


class _PadNd(Module):
    """Shared plumbing: ``forward`` validates and caches the input, ``backward`` folds
    ``grad_output`` back with the functional backward. A subclass sets ``_nd`` (the
    dims an int ``padding`` pads) and ``_mode``."""

    _nd = 1
    _mode = "constant"

    def __init__(self, padding: Any) -> None:
        super().__init__()
        self.padding = _padding(padding, 2 * self._nd, type(self).__name__)
        self._cache: np.ndarray | None = None

    def _value(self) -> float | None:
        return None

    def _check_input_dim(self, input: np.ndarray) -> None:
        """Only the circular modules check the rank themselves (torch's ``_check_input_dim``)."""

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        self._check_input_dim(input)
        output = _pad(input, self.padding, self._mode, self._value(), repr(self))
        self._cache = input
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._cache)
        layer = f"{self!r}.backward"
        return _pad_backward(grad_output, input, self.padding, self._mode, self._value(), layer)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    """``value`` everywhere in the border; negative padding crops."""

    def __init__(self, padding: Any, value: float) -> None:
        super().__init__(padding)
        if not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{type(self).__name__}: value must be a number, got {value!r}")
        self.value = value

    def _value(self) -> float | None:
        return self.value

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """``torch.nn.ConstantPad1d(padding, value)``: pads the last dim with ``value``."""

    _nd = 1


class ConstantPad2d(_ConstantPadNd):
    """``torch.nn.ConstantPad2d(padding, value)``: pads the last two dims with ``value``."""

    _nd = 2


class ConstantPad3d(_ConstantPadNd):
    """``torch.nn.ConstantPad3d(padding, value)``: pads the last three dims with ``value``."""

    _nd = 3


class ZeroPad1d(ConstantPad1d):
    """``torch.nn.ZeroPad1d(padding)``: ``ConstantPad1d(padding, 0.0)``, printed as padding."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """``torch.nn.ZeroPad2d(padding)``: ``ConstantPad2d(padding, 0.0)``, printed as padding."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad3d(ConstantPad3d):
    """``torch.nn.ZeroPad3d(padding)``: ``ConstantPad3d(padding, 0.0)``, printed as padding."""

    def __init__(self, padding: Any) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """``torch.nn.ReflectionPad1d``: mirror about the edge, (C, W) or (N, C, W); pad < W."""

    _nd, _mode = 1, "reflect"


class ReflectionPad2d(_PadNd):
    """``torch.nn.ReflectionPad2d``: (C, H, W) or (N, C, H, W); each pad < its dim."""

    _nd, _mode = 2, "reflect"


class ReflectionPad3d(_PadNd):
    """``torch.nn.ReflectionPad3d``: (C, D, H, W) or (N, C, D, H, W); each pad < its dim."""

    _nd, _mode = 3, "reflect"


class ReplicationPad1d(_PadNd):
    """``torch.nn.ReplicationPad1d``: repeat the edge, (C, W) or (N, C, W)."""

    _nd, _mode = 1, "replicate"


class ReplicationPad2d(_PadNd):
    """``torch.nn.ReplicationPad2d``: repeat the edges, (C, H, W) or (N, C, H, W)."""

    _nd, _mode = 2, "replicate"


class ReplicationPad3d(_PadNd):
    """``torch.nn.ReplicationPad3d``: repeat the edges, (C, D, H, W) or (N, C, D, H, W)."""

    _nd, _mode = 3, "replicate"


class _CircularPadNd(_PadNd):
    """Wrap around; the rank is checked first, with the module's own rule (torch's)."""

    _mode = "circular"

    def _check_input_dim(self, input: np.ndarray) -> None:
        check_ndim(input, (self._nd + 1, self._nd + 2), repr(self))


class CircularPad1d(_CircularPadNd):
    """``torch.nn.CircularPad1d``: (C, W) or (N, C, W); each pad at most W."""

    _nd = 1


class CircularPad2d(_CircularPadNd):
    """``torch.nn.CircularPad2d``: (C, H, W) or (N, C, H, W); each pad at most its dim."""

    _nd = 2


class CircularPad3d(_CircularPadNd):
    """``torch.nn.CircularPad3d``: (C, D, H, W) or (N, C, D, H, W); each pad at most its dim."""

    _nd = 3
