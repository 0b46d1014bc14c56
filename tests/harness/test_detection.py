"""Detection thresholds: how small an error planted in torch ``check`` must still report.

``benchmarks/detection_thresholds.py`` measures the full table; these pin a few of its
rows, so a looser error model (a wider allowance or pre-filter) fails here. Each planted
error scales torch's output (``forward``) or the gradient through it (``backward``) by
``1 + eps`` in every instance of a class, on the first six generated specs (seeds from
0, ``max_layers=4``) that hold it (and, for a backward plant, send it a gradient that is
not identically zero); every one of them must be caught at that layer.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.detection_thresholds import cases_with, caught, plant
from harness import check

CASES = 6


def _scaled(spec, type_name: str, direction: str) -> bool:
    """Whether the plant changes anything: a backward plant scales the gradient flowing into
    the layer, which some cases have identically zero (a hinge loss with no active term)."""
    if direction != "backward":
        return True
    trace = check(spec, devices=["cpu"], dtypes=["float64"], attribute=False).traces
    ref = next(t for name, t in trace.items() if name.startswith("reference"))
    planted = [i for i, layer in enumerate(spec.layers) if layer.type == type_name]
    return any(np.any(ref.grad_outputs[i] != 0) for i in planted)


@pytest.mark.parametrize(
    ("type_name", "dtype", "direction", "eps"),
    [
        ("Tanh", "float32", "backward", 1e-4),
        ("Linear", "float64", "forward", 1e-9),
        ("Linear", "float32", "forward", 1e-5),
    ],
)
def test_planted_torch_error_is_caught_in_every_case(type_name, dtype, direction, eps):
    cases = [c for c in cases_with(type_name, 2 * CASES) if _scaled(c[1], type_name, direction)]
    cases = cases[:CASES]
    assert len(cases) == CASES
    missed = [seed for seed, spec in cases if not caught(spec, type_name, dtype, eps, direction)]
    assert not missed, f"{type_name} {direction} x(1+{eps:g}) in {dtype} missed: seeds {missed}"


def test_plant_scales_the_value_or_the_gradient_and_restores_forward():
    layer = torch.nn.Linear(3, 2).double()
    x = torch.randn(4, 3, dtype=torch.float64)
    original = torch.nn.Linear.forward

    def run():
        layer.zero_grad()
        y = layer(x)
        y.sum().backward()
        return y.detach().clone(), layer.weight.grad.clone()

    y0, g0 = run()
    with plant("Linear", 1e-3, "forward"):
        y1, g1 = run()
    with plant("Linear", 1e-3, "backward"):
        y2, g2 = run()
    torch.testing.assert_close(y1, y0 * (1 + 1e-3), rtol=1e-12, atol=0)
    torch.testing.assert_close(g1, g0, rtol=0, atol=0)
    torch.testing.assert_close(y2, y0, rtol=0, atol=0)
    torch.testing.assert_close(g2, g0 * (1 + 1e-3), rtol=1e-12, atol=0)
    assert torch.nn.Linear.forward is original
    # an inherited forward (BatchNorm1d's is _BatchNorm's) is deleted again, not copied in
    with plant("BatchNorm1d", 1e-3, "forward"):
        assert "forward" in torch.nn.BatchNorm1d.__dict__
    assert "forward" not in torch.nn.BatchNorm1d.__dict__


def test_plant_leaves_a_subclass_that_inherits_the_forward_alone():
    x = torch.linspace(-2, 8, 11, dtype=torch.float64)
    relu6, hardtanh = torch.nn.ReLU6(), torch.nn.Hardtanh()  # ReLU6 is a Hardtanh
    with plant("Hardtanh", 1e-3, "forward"):
        torch.testing.assert_close(relu6(x), x.clamp(0, 6), rtol=0, atol=0)
        torch.testing.assert_close(hardtanh(x), x.clamp(-1, 1) * (1 + 1e-3), rtol=1e-12, atol=0)
