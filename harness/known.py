"""Where torch itself departs from the math: found by this harness, verified by hand.

``python -m harness fuzz`` and the property tests leave these out by default (so a
run reports what is new); ``fuzz --include-known`` puts them back, and
tests/differential/test_networks.py pins each one with a minimal case.
"""

from __future__ import annotations

from .spec import LayerSpec

__all__ = ["KNOWN_TORCH_DEVIATIONS", "KNOWN_TORCH_OPTIMIZER_DEVIATIONS", "KNOWN_EXCLUDE"]

# layer type -> a minimal layer showing it (run on (2, 3) float64 with MSELoss)
KNOWN_TORCH_DEVIATIONS = {
    # float64 hardsigmoid backward multiplies by the float32 constant 1/6
    # (0.1666666716337204): relative error 3e-8, over float64's 1e-9 tolerance
    "Hardsigmoid": [LayerSpec("Hardsigmoid")],
    # float64 CELU backward: exp(x/alpha) off by ~2e-8 relative (x=-0.3, alpha=1.137:
    # torch 0.7680870392508108, exact 0.7680870217032493), as if 1/alpha were float32
    "CELU": [LayerSpec("CELU", {"alpha": 1.137})],
}

# NAdam keeps its mu_product (and step) state in float32 unless torch's *default* dtype
# is float64 (torch.optim.optimizer._get_scalar_dtype), so float64 parameters take
# steps off by ~1e-8 relative
KNOWN_TORCH_OPTIMIZER_DEVIATIONS = ("NAdam",)

KNOWN_EXCLUDE = tuple(KNOWN_TORCH_DEVIATIONS) + KNOWN_TORCH_OPTIMIZER_DEVIATIONS
