"""``FractionalMaxPool2d``, ``FractionalMaxPool3d``: modules around
:mod:`reference.functional.fractional_pooling`.

Fractional max pooling is random in training *and* in evaluation (torch draws new
samples on every forward, whatever the mode). The samples a forward uses are, in order:

1. ``module.random_samples``, if set (an ``(N, C, nd)`` array in the input's dtype, e.g.
   the one torch drew, read with ``harness.dropout_masks.torch_fractional_samples``):
   used by the next forward, then cleared back to ``None``, as ``Dropout.mask``;
2. the ``_random_samples`` buffer given to the constructor (torch's argument and
   buffer, in ``state_dict`` when set): used by every forward, as torch does;
3. otherwise fresh samples from the module's own generator (``rng``, keyword-only).

``last_random_samples`` keeps the samples the last forward used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from ..functional.conv import _positive, _tuple
from ..functional.fractional_pooling import draw_samples
from .init import resolve_rng
from .module import Module

__all__ = ["FractionalMaxPool2d", "FractionalMaxPool3d"]


def _ratio(value: Any, nd: int, layer: str) -> tuple[float, ...]:
    """torch's ``_pair``/``_triple`` of ``output_ratio``, each strictly inside (0, 1)."""
    ratio = tuple(value) if isinstance(value, Sequence) else (value,) * nd
    if len(ratio) != nd or not all(
        isinstance(r, (int, float, np.number)) and not isinstance(r, bool) and 0 < r < 1
        for r in ratio
    ):
        raise ValueError(
            f"{layer}: output_ratio must be between 0 and 1 (got {value!r}); give a number or "
            f"{nd} numbers in (0, 1), or an output_size instead"
        )
    return ratio


class _FractionalMaxPoolNd(Module):
    _nd = 2

    def __init__(
        self,
        kernel_size: Any,
        output_size: Any = None,
        output_ratio: Any = None,
        return_indices: bool = False,
        _random_samples: np.ndarray | None = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.kernel_size = _positive(kernel_size, nd, "kernel_size", name)
        self.return_indices = return_indices
        self.register_buffer("_random_samples", _random_samples)
        if output_size is None and output_ratio is None:
            raise ValueError(
                f"{name} requires specifying either an output size, or a pooling ratio "
                "(output_size= or output_ratio=)"
            )
        if output_size is not None and output_ratio is not None:
            raise ValueError(f"{name}: only one of output_size and output_ratio may be specified")
        self.output_size = None if output_size is None else _tuple(output_size, nd,
                                                                  "output_size", name)  # fmt: skip
        self.output_ratio = None if output_ratio is None else _ratio(output_ratio, nd, name)
        self.rng = resolve_rng(rng)
        self.random_samples: np.ndarray | None = None
        self.last_random_samples: np.ndarray | None = None
        self._cache: tuple | None = None

    def _functionals(self):
        if self._nd == 2:
            return F.fractional_max_pool2d, F.fractional_max_pool2d_backward
        return F.fractional_max_pool3d, F.fractional_max_pool3d_backward

    def _samples(self, input: np.ndarray) -> np.ndarray:
        if self.random_samples is not None:
            return np.asarray(self.random_samples)
        if self._random_samples is not None:
            return self._random_samples
        batch = 1 if input.ndim == self._nd + 1 else input.shape[0]
        channels = input.shape[-self._nd - 1] if input.ndim > self._nd else 0
        return draw_samples((batch, channels), self._nd, input.dtype, self.rng)

    def forward(self, input: np.ndarray) -> Any:
        input = as_float_array(input, repr(self))
        samples = self._samples(input)
        output, indices = self._functionals()[0](
            input, self.kernel_size, self.output_size, self.output_ratio, True, samples
        )
        self.random_samples, self.last_random_samples = None, samples
        self._cache = (input, indices)
        return (output, indices) if self.return_indices else output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, indices = self._require_cache(self._cache)
        return self._functionals()[1](
            grad_output, input, self.kernel_size, self.output_size, self.output_ratio,
            indices=indices,
        )  # fmt: skip


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """``torch.nn.FractionalMaxPool2d``: :func:`~reference.functional.fractional_max_pool2d`
    on ``(N, C, H, W)`` or ``(C, H, W)``; samples ``(N, C, 2)`` (``(1, C, 2)`` unbatched).

    torch's 2-d module refuses a non-positive ``kernel_size`` only at the first forward;
    we refuse it at once. Its ``repr`` shows no arguments, as torch's.
    """

    _nd = 2


class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """``torch.nn.FractionalMaxPool3d``: :func:`~reference.functional.fractional_max_pool3d`
    on ``(N, C, T, H, W)`` or ``(C, T, H, W)``; samples ``(N, C, 3)``."""

    _nd = 3
