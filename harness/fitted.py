"""The generator's limits fitted to what backends can run (``Capabilities``).

A fuzz run or a hypothesis strategy for a backend that lacks a layer, loss or optimizer
should draw cases it can run, rather than cases ``check`` then skips: the layers it
lacks are excluded, the losses and optimizers limited to its own, a family whose
first layer it lacks left out, and dropout layers too where it cannot share masks.
Several backends: what all of them can run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .backends.protocol import Capabilities

__all__ = ["fitted_limits"]


def _reference_types() -> set[str]:
    import reference.nn as rnn

    return {name for name in dir(rnn) if isinstance(getattr(rnn, name), type)}


def fitted_limits(capabilities: Sequence[Capabilities], **limits: Any) -> dict[str, Any]:
    """``limits`` (as for ``random_spec``) narrowed to what every one of ``capabilities``
    runs. A backend without optimizers gets cases without steps."""
    from .generate import FAMILIES, FAMILY_NEEDS, GRAPH
    from .heads import LOSSES

    out = dict(limits)
    exclude = set(out.get("exclude", ()))
    for caps in capabilities:
        if caps.layers is not None:
            exclude |= _reference_types() - set(caps.layers)
        if caps.losses is not None:
            losses = out.get("losses") or tuple(LOSSES)
            out["losses"] = tuple(n for n in losses if n in caps.losses)
        if caps.optimizers is not None:
            chosen = out.get("optimizers")
            out["optimizers"] = tuple(n for n in caps.optimizers if chosen is None or n in chosen)
            if not out["optimizers"]:
                out["max_steps"] = 0
        if not caps.dropout_masks:
            out["dropout"] = False
    from .graph import OP_TYPES

    given = out.get("families")
    families = given or tuple(FAMILIES)
    out["families"] = tuple(f for f in families if FAMILY_NEEDS[f] not in exclude)
    # a backend that runs no graphs (Capabilities.graphs), or lacks their ops, runs chains
    graphs = all(
        caps.graphs and (caps.layers is None or set(OP_TYPES) <= set(caps.layers))
        for caps in capabilities
    )
    if not graphs:
        out["graphs"] = False
        out["families"] = tuple(f for f in out["families"] if f != GRAPH)
    elif given is None and out["families"] == tuple(FAMILIES):
        out["families"] = None  # every family: a default draw, now and then a graph
    out["exclude"] = tuple(sorted(exclude))
    return out
