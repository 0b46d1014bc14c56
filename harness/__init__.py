"""backprop-oracle's differential harness: generate networks, run them through the
reference and through torch (or any :class:`~harness.backends.protocol.Backend`) on
every device, compare, localize, save a repro.

The public API for builders (``docs/builders.md``):

- :func:`check` (defined in ``harness.checking``): judge one spec on any backends;
- :func:`harness.strategies.network_specs`: hypothesis strategies of valid specs;
- :func:`assert_twin` (``harness.twin``): one module against its reference twin;
- :class:`Backend`, :class:`Capabilities`, :class:`Trace`, :class:`CaseData`: the
  protocol a framework implements to be checked;
- :class:`NetworkSpec`, :class:`LayerSpec`, :class:`Report`, :class:`Mismatch`.

Importing ``harness`` does not import torch; the torch backend does, when used.
"""

from .backends import CaseData, Trace, case_data
from .backends.protocol import Backend, Capabilities
from .checking import check
from .spec import LayerSpec, NetworkSpec, SpecError
from .twin import assert_twin, run_twin
from .verdict import Blame, Kind, Mismatch, Report

__all__ = [
    "Backend",
    "Blame",
    "Capabilities",
    "CaseData",
    "Kind",
    "LayerSpec",
    "Mismatch",
    "NetworkSpec",
    "Report",
    "SpecError",
    "Trace",
    "assert_twin",
    "case_data",
    "check",
    "run_twin",
]
