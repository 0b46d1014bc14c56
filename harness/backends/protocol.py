"""The ``Backend`` protocol: what ``harness.check`` needs of a framework under test.

A backend runs a :class:`~harness.spec.NetworkSpec` on the case data every backend
shares (:func:`harness.backends.case_data`: float64 weights by ``state_dict`` key, the
input, the target, the loss's upstream gradient) and returns a
:class:`~harness.backends.Trace`: every layer's output, the loss, the gradient wrt
every layer's output and the input, every parameter's gradient, the buffers after the
first forward, and the full ``state_dict`` after each optimizer step, all as NumPy
arrays. ``check`` judges that trace against the float64 truth exactly as it judges
torch's.

A backend declares what it can run in :class:`Capabilities`. What a spec needs beyond
them is skipped and said so in the report (``Report.skipped``): a dtype or device it
lacks, optimizer steps it cannot take (its forward and backward are still judged), a
layer or loss it lacks, or training-mode dropout without its masks (the whole case).

Torch is one implementation (:class:`harness.backends.torch.Torch`); JAX is another
(:class:`harness.backends.jax.Jax`). A minimal one::

    class Mine:
        name = "mine"
        capabilities = Capabilities(dtypes=("float32", "float64"), layers={"Linear", "ReLU"},
                                    losses={"MSELoss"}, optimizers=set())

        def run(self, spec, data, device, dtype):
            ...  # build spec.layers, load data.weights, forward, backward
            return Trace(outputs, loss, grad_outputs, grad_input, grad_params, buffers)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from ..dtypes import DTYPES, parse_dtype
from ..spec import DROPOUT_TYPES, NetworkSpec
from . import CaseData, Trace

__all__ = ["BACKEND_NAMES", "Backend", "Capabilities", "DropoutMasks", "backend_named"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can run; ``None`` for a set means every one.

    - ``dtypes``: formats by :func:`harness.dtypes.parse_dtype` name;
    - ``devices``: device names it runs on now (``"cpu"``, ``"cuda"``, ``"cuda:1"``);
      a device whose kind is listed counts (``"cuda"`` admits ``"cuda:1"``);
    - ``layers``, ``losses``, ``optimizers``: ``torch.nn`` / ``torch.optim`` class names;
    - ``dropout_masks``: its dropout layers' keep-masks can be read (``Backend.mask``),
      so the reference drops the same units; without it a training-mode dropout case
      is skipped;
    - ``known_deviations``: ``harness.known``'s table (torch's documented deviations)
      applies to it;
    - ``graphs``: it runs graph-shaped networks (``harness.graph``: layers that name
      their inputs, and the ops that join them); without it such a case is skipped.
    """

    dtypes: Collection[str] = DTYPES
    devices: Collection[str] = ("cpu",)
    layers: Collection[str] | None = None
    losses: Collection[str] | None = None
    optimizers: Collection[str] | None = None
    dropout_masks: bool = False
    known_deviations: bool = False
    graphs: bool = False

    def runs_on(self, device: str) -> bool:
        return device in self.devices or device.split(":")[0] in self.devices

    def runs_in(self, dtype: str) -> bool:
        return parse_dtype(dtype) in {parse_dtype(d) for d in self.dtypes}

    def missing(self, spec: NetworkSpec) -> list[str]:
        """What of ``spec``'s network this backend cannot run at all (the case is skipped)."""
        from ..graph import is_graph

        out = []
        if not self.graphs and is_graph(spec):
            out.append("no graph-shaped networks (layers that name their inputs)")
        if self.layers is not None:
            lacking = sorted({la.type for la in spec.layers} - set(self.layers))
            out += [f"no {name} layer" for name in lacking]
        if self.losses is not None and spec.loss.type not in self.losses:
            out.append(f"no {spec.loss.type}")
        if (
            not self.dropout_masks
            and spec.train
            and any(la.type in DROPOUT_TYPES for la in spec.layers)
        ):
            out.append("no dropout masks to share (training-mode dropout)")
        return out

    def steps(self, spec: NetworkSpec) -> bool:
        """Whether it takes ``spec``'s optimizer steps."""
        if spec.optimizer is None or spec.steps == 0:
            return True
        return self.optimizers is None or spec.optimizer.type in self.optimizers


@runtime_checkable
class Backend(Protocol):
    """A framework under test (module doc). ``run`` must not write into ``data``."""

    name: str
    capabilities: Capabilities

    def run(self, spec: NetworkSpec, data: CaseData, device: str, dtype: str) -> Trace:
        """Forward, backward (the loss's gradient seeded with ``data.upstream``) and
        ``spec.steps`` optimizer steps, in ``dtype`` on ``device``; arrays in the trace
        are NumPy (float32 for the half formats)."""
        ...


class DropoutMasks(Protocol):
    """A backend with ``Capabilities.dropout_masks``: the keep-mask (1 kept, 0 dropped,
    before the 1/(1-p) scale) its dropout layer ``index`` draws in forward ``call``
    (0: the first pass; k: step k's) for an input of ``shape``."""

    def mask(
        self,
        spec: NetworkSpec,
        index: int,
        shape: tuple[int, ...],
        call: int,
        device: str,
        dtype: str,
    ) -> np.ndarray: ...


# the backends this package ships, by the name ``--backend`` and ``Backend.name`` use
BACKEND_NAMES = ("torch", "jax")


def backend_named(name: str) -> Backend:
    """The shipped backend ``name`` (:data:`BACKEND_NAMES`); ``ImportError`` with the
    install line when its framework is absent, ``ValueError`` for an unknown name."""
    if name == "torch":
        from .torch import Torch

        return Torch()
    if name == "jax":
        from .jax import Jax

        return Jax()
    raise ValueError(f"unknown backend {name!r}: use one of {', '.join(BACKEND_NAMES)}")
