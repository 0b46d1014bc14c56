"""The choices a spec generator makes, and the limits it keeps to.

:class:`Chooser` is the one interface every proposal draws through: ``RngChooser``
wraps a ``numpy.random.Generator``; ``harness.strategies.DataChooser`` wraps
hypothesis's ``draw``, so the same code yields specs that shrink.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .spec import LayerSpec, _accepts

__all__ = ["Chooser", "RngChooser", "Limits", "available"]


class Chooser:
    """Where the random choices come from. Every choice shrinks toward its first/lowest value."""

    def integer(self, lo: int, hi: int) -> int:  # inclusive
        raise NotImplementedError

    def choice(self, options: Sequence[Any]) -> Any:
        raise NotImplementedError

    def boolean(self, p: float = 0.5) -> bool:
        raise NotImplementedError

    def real(self, lo: float, hi: float) -> float:
        raise NotImplementedError


class RngChooser(Chooser):
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def integer(self, lo: int, hi: int) -> int:
        return int(self.rng.integers(lo, hi + 1))

    def choice(self, options: Sequence[Any]) -> Any:
        return options[int(self.rng.integers(len(options)))]

    def boolean(self, p: float = 0.5) -> bool:
        return bool(self.rng.random() < p)

    def real(self, lo: float, hi: float) -> float:
        # 4 significant digits: readable in a spec, exact in JSON
        return float(np.clip(float(f"{self.rng.uniform(lo, hi):.4g}"), lo, hi))


@dataclass
class Limits:
    """Size limits: the defaults keep a case to milliseconds."""

    max_layers: int = 6
    max_width: int = 16
    max_batch: int = 4
    max_spatial: int = 8
    max_channels: int = 6
    max_features: int = 512  # elements per sample after any layer
    families: tuple[str, ...] | None = None
    losses: tuple[str, ...] | None = None
    optimizers: tuple[str, ...] | None = None
    max_steps: int = 3
    dropout: bool = True
    exclude: tuple[str, ...] = ()  # layer/optimizer types never proposed (known torch deviations)
    graphs: bool = True  # whether a default draw may be a graph (harness.graph_generate)
    extra: dict[str, Any] = field(default_factory=dict)


def _ref_class(name: str) -> Any:
    import reference.nn as rnn

    return getattr(rnn, name, None)


def available(name: str) -> bool:
    """Whether ``reference.nn`` has the class ``name`` (checked at call time, cached)."""
    import reference.nn as rnn

    return getattr(rnn, name, None) is not None


def _dropout_supported() -> bool:
    """Training-mode dropout needs torch's masks (harness.dropout_masks) on the reference."""
    try:
        from . import dropout_masks  # noqa: F401
    except ImportError:
        return False
    return True


def _spec(ch: Chooser, type_: str, **options: Any) -> LayerSpec | None:
    """A LayerSpec keeping only the kwargs the reference constructor takes."""
    cls = _ref_class(type_)
    if cls is None:
        return None
    return LayerSpec(type_, {k: v for k, v in options.items() if _accepts(cls, k)})
