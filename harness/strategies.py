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

from .fitted import fitted_limits
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
def network_specs(draw: Any, backends: Sequence[Any] | None = None, **limits: Any) -> NetworkSpec:
    """Valid network specs, shrinking toward small ones.

    ``backends``: only specs that every one of these can run whole (its
    ``Capabilities``; ``harness.fitted``). ``limits`` (all optional):

    - ``max_layers`` (6), ``max_width`` (16: Linear features, Embedding sizes),
      ``max_batch`` (4), ``max_spatial`` (8: each spatial size), ``max_channels`` (6),
      ``max_features`` (512: elements per sample after any layer);
    - ``families``: a tuple of ``"dense"``, ``"conv"``, ``"embedding"``, ``"sequence"``,
      ``"graph"`` (default: every chain family, and now and then a graph:
      ``harness.generate.GRAPH_ODDS``);
    - ``losses``, ``optimizers``: tuples of ``torch.nn`` / ``torch.optim`` class names to
      draw from (default: every one the reference has);
    - ``max_steps`` (3): optimizer steps; 0 for none;
    - ``dropout`` (True): whether dropout layers are drawn. In training mode they need
      their masks shared (``Capabilities.dropout_masks``; torch has them);
    - ``exclude``: layer, loss or optimizer class names never drawn.
    """
    if backends:
        limits = fitted_limits([b.capabilities for b in backends], **limits)
    return build_spec(DataChooser(draw), Limits(**limits))
