"""Where torch itself departs from the math: found by this harness, verified by hand.

A mismatch that one of these explains is moved from ``Report.mismatches`` to
``Report.known``: printed, counted apart, not a failure, so a fuzz run reports what
is new. The explanation is narrow: the listed dtype only, never when the reference
is blamed, and only up to an error (``max_scaled_err``, relative to the tensor's
scale) a little above the one the bug produces, so a real regression on top of it
still fails.
tests/differential/test_networks.py pins each one with its minimal case.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .spec import LayerSpec, NetworkSpec

if TYPE_CHECKING:
    from .check import Mismatch

__all__ = [
    "KnownDeviation",
    "KNOWN_TORCH_DEVIATIONS",
    "KNOWN_TORCH_OPTIMIZER_DEVIATIONS",
    "explain",
]


@dataclass(frozen=True)
class KnownDeviation:
    why: str
    example: LayerSpec  # a minimal layer (or optimizer) showing it
    dtypes: tuple[str, ...] = ("float64",)
    # the error as a fraction of the tensor's scale (Comparison.scaled_err): observed
    # <= 3e-8; 30x headroom for propagation through layers and steps
    max_scaled_err: float = 1e-6


KNOWN_TORCH_DEVIATIONS = {
    "Hardsigmoid": KnownDeviation(
        "torch's float64 hardsigmoid backward multiplies by the float32 constant 1.0f/6.0f "
        "(0.1666666716337204): 3e-8 relative (aten/src/ATen/native/cpu/Activation.cpp)",
        LayerSpec("Hardsigmoid"),
    ),
    "CELU": KnownDeviation(
        "torch's celu backward is elu_backward(grad, alpha, 1, 1.0/alpha.toFloat(), ...): "
        "alpha is rounded to float32 before inverting (tools/autograd/derivatives.yaml); "
        "~2e-8 relative for an alpha that float32 cannot represent",
        LayerSpec("CELU", {"alpha": 1.137}),
    ),
}

KNOWN_TORCH_OPTIMIZER_DEVIATIONS = {
    "NAdam": KnownDeviation(
        "torch keeps NAdam's mu_product (and step) in torch's *default* dtype, float32, "
        "even for float64 parameters (torch/optim/optimizer.py _get_scalar_dtype): "
        "float64 steps off by ~1e-8 relative",
        LayerSpec("NAdam", {"lr": 0.03}),
    ),
}


def explain(spec: NetworkSpec, m: Mismatch) -> str | None:
    """The known torch deviation that explains mismatch ``m``, or ``None``."""
    if m.blame == "reference":
        return None
    candidates: list[KnownDeviation] = []
    if m.kind == "step" and spec.optimizer is not None:
        known = KNOWN_TORCH_OPTIMIZER_DEVIATIONS.get(spec.optimizer.type)
        candidates += [known] if known else []
    if m.kind in ("forward", "grad_input", "grad_param", "step") and m.layer is not None:
        # a backward deviation at layer j shows in every gradient below it
        later = spec.layers[m.layer :] if m.kind != "forward" else [spec.layers[m.layer]]
        candidates += [
            KNOWN_TORCH_DEVIATIONS[t]
            for t in {x.type for x in later}
            if t in KNOWN_TORCH_DEVIATIONS
        ]
    for known in candidates:
        if m.dtype in known.dtypes and m.comparison.scaled_err <= known.max_scaled_err:
            return known.why
    return None
