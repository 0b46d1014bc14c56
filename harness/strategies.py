"""Hypothesis strategies for ``NetworkSpec``s: the generator's choices, drawn by hypothesis.

``network_specs()`` runs the very same proposal code as ``generate.random_spec``,
but every choice (family, batch, number of layers, each layer's type and
arguments, loss, optimizer, seed) is a separate hypothesis draw. A failing case
therefore shrinks: toward fewer layers, smaller widths and shapes, the first
(simplest) option of each choice, no optimizer steps and seed 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from .generate import Chooser, Limits, build_spec
from .spec import NetworkSpec

__all__ = ["DataChooser", "network_specs"]


class DataChooser(Chooser):
    """A :class:`~harness.generate.Chooser` that asks hypothesis for every choice."""

    def __init__(self, draw: Any):
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[Any]) -> Any:
        # by index: sampled_from shrinks toward the first option too, but an index also
        # works for options hypothesis cannot compare (lambdas in the activation table)
        return options[self.draw(st.integers(0, len(options) - 1))]

    def boolean(self, p: float = 0.5) -> bool:
        return self.draw(st.booleans())

    def real(self, lo: float, hi: float) -> float:
        value = self.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False))
        return min(max(float(f"{value:.4g}"), lo), hi)


@st.composite
def network_specs(draw: Any, **limits: Any) -> NetworkSpec:
    """Valid network specs; ``limits`` as for :func:`harness.generate.random_spec`."""
    return build_spec(DataChooser(draw), Limits(**limits))
