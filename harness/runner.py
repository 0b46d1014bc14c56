"""The traces and allowances of one case for one backend under test, run once and cached.

``harness.check`` asks a :class:`Runner` for the backend's trace per (device, dtype), the
reference's per dtype, the float64 truth and its allowances (``harness.bounds``); the
attribution (``harness.attribute``) reads the same cache.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .backends import CaseData, Trace
from .backends.protocol import Backend
from .backends.reference import ReferenceBackend
from .bounds import SAMPLES, Allowance, Sampler
from .dtypes import REFERENCE_DTYPES
from .graph import node_inputs
from .known import extra_sites, overflow_of
from .spec import NetworkSpec, draws_random
from .verdict import Kind

__all__ = ["Runner"]

# the formats the reference's samples compute in: its own, and float16, which NumPy has
# (its layers follow the input's dtype); bfloat16 samples compute in float64
_SAMPLED_IN = (*REFERENCE_DTYPES, "float16")


class Runner:
    """Runs and caches every trace of a case: the backend's per (device, dtype), the
    reference's per dtype, the truth and its allowances per dtype (per device too when
    training-mode dropout makes the backend's masks device-specific)."""

    def __init__(self, spec: NetworkSpec, data: CaseData, backend: Backend):
        self.spec, self.data, self.backend = spec, data, backend
        self.cache: dict[str, Trace] = {}
        self.allowances: dict[str, Allowance] = {}
        self.masks: dict[str, dict] = {}
        self.samplers: dict[str, Sampler] = {}
        self.dropout = any(draws_random(layer.type, spec.train) for layer in spec.layers)
        self.known_deviations = backend.capabilities.known_deviations

    def _suffix(self, device: str) -> str:
        return f"-{device}" if self.dropout else ""

    def _masks(self, device: str, dtype: str) -> Any:
        """The backend's dropout masks, drawn once per (layer, shape, call) and reused by
        every run of the reference (the sampled ones too)."""
        if not self.dropout:
            return None
        backend: Any = self.backend  # has Capabilities.dropout_masks (check skips others)
        drawn = self.masks.setdefault(f"{device}-{dtype}", {})

        def mask(i: int, shape: tuple[int, ...], call: int) -> np.ndarray:
            if (i, shape, call) not in drawn:
                drawn[(i, shape, call)] = backend.mask(self.spec, i, shape, call, device, dtype)
            return drawn[(i, shape, call)]

        return mask

    def reference(self, dtype: str, device: str) -> Trace:
        key = f"reference-{dtype}" + self._suffix(device)
        if key not in self.cache:
            masks = self._masks(device, dtype)
            self.cache[key] = ReferenceBackend().run(self.spec, dtype, self.data, masks)
        return self.cache[key]

    def tested(self, dtype: str, device: str) -> Trace:
        """The trace of the backend under test (torch, unless ``check`` was given others)."""
        key = f"{self.backend.name}-{device}-{dtype}"
        if key not in self.cache:
            self.cache[key] = self.backend.run(self.spec, self.data, device, dtype)
        return self.cache[key]

    def _run64(self, dtype: str, device: str, perturb: Any = None, steps: int = -1) -> Trace:
        """The float64 reference on the data rounded to ``dtype``, with ``dtype``'s masks
        (``steps``: that many optimizer steps; the spec's when negative)."""
        spec = self.spec if steps < 0 else dataclasses.replace(self.spec, steps=steps)
        data = self.data.rounded_to(dtype)
        masks = self._masks(device, dtype)
        return ReferenceBackend().run(spec, np.float64, data, masks, perturb)

    def _sample(self, dtype: str, device: str, perturb: Any, steps: int) -> Trace:
        """One perturbed run (``steps`` optimizer steps): the reference computing *in*
        ``dtype`` where it can, so the rounding inside its layers (a formula whose terms
        cancel) is sampled too."""
        if dtype not in _SAMPLED_IN:
            return self._run64(dtype, device, perturb, steps)
        spec = dataclasses.replace(self.spec, steps=steps)
        masks = self._masks(device, dtype)
        return ReferenceBackend().run(spec, dtype, self.data, masks, perturb)

    def truth(self, dtype: str, device: str, steps: int = -1) -> Trace:
        """The float64 reference on the data rounded to ``dtype`` (``steps`` as in
        :meth:`_run64`)."""
        if dtype == "float64":
            return self.reference("float64", device)
        key = f"truth-{dtype}" + self._suffix(device) + (f"-{steps}" if steps >= 0 else "")
        if key not in self.cache:
            self.cache[key] = self._run64(dtype, device, steps=steps)
        return self.cache[key]

    def allowance(
        self, dtype: str, device: str, samples: int, known: bool = False, steps: int = 0
    ) -> Allowance:
        """The allowance in ``dtype`` on ``samples`` perturbed runs of the first ``steps``
        optimizer steps; ``known``: the spread torch's known deviations add."""
        key = f"{dtype}{self._suffix(device)}-{steps}" + ("-known" if known else "")
        if key not in self.samplers:
            judged = dtype in REFERENCE_DTYPES and dtype != "float64" and not known
            self.samplers[key] = Sampler(
                lambda perturb: self._sample(dtype, device, perturb, steps),
                self.truth(dtype, device, steps),
                dtype,
                seed=[self.spec.seed, steps, sum(map(ord, dtype)), int(known)],
                reference=self.reference(dtype, device) if judged else None,
                extra=extra_sites(self.spec, dtype) if known else None,
                plain=not known,
                overflow=overflow_of(self.spec, dtype) if known else None,
            )
        self.allowances[key] = self.samplers[key].allowance(samples)
        return self.allowances[key]

    def local_allowance(
        self, dtype: str, device: str, local: tuple[Kind, int | None], steps: int
    ) -> Allowance:
        """The allowance of :data:`SAMPLES` histories that round only where the ``local``
        (kind, layer) tensor is made (``harness.bounds.local_sites``): exact up to it,
        as torch may well be."""
        kind, layer = local
        key = f"{dtype}{self._suffix(device)}-{steps}-local-{kind.value}-{layer}"
        if key not in self.samplers:
            judged = dtype in REFERENCE_DTYPES and dtype != "float64"
            self.samplers[key] = Sampler(
                lambda perturb: self._sample(dtype, device, perturb, steps),
                self.truth(dtype, device, steps),
                dtype,
                seed=[
                    self.spec.seed,
                    steps,
                    sum(map(ord, dtype)),
                    2 + len(kind.value),
                    len(self.spec.layers) if layer is None else layer,
                ],
                reference=self.reference(dtype, device) if judged else None,
                local=local,
                n_layers=len(self.spec.layers),
                graph=node_inputs(self.spec),
            )
        return self.samplers[key].allowance(SAMPLES)
