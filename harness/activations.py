"""The generator's activations: which ones follow a shape, and the arguments they draw.

Shape-preserving layers with no parameters (and PReLU, with one per channel or one in
all); each entry draws its constructor's arguments through the :class:`Chooser`, so
hypothesis shrinks them toward the first option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .chooser import Chooser, _spec, available
from .spec import LayerSpec

__all__ = ["propose_activation"]


# -- elementwise activations (any float shape) ------------------------------
def propose_activation(ch: Chooser, shape: tuple[int, ...]) -> LayerSpec | None:
    """One activation that can follow ``shape`` (every float shape takes most)."""
    ndim = len(shape)
    table: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("ReLU", dict),
        ("Tanh", dict),
        ("Sigmoid", dict),
        ("Identity", dict),
        ("LeakyReLU", lambda: {"negative_slope": ch.real(0.01, 0.5)}),
        ("ReLU6", dict),
        ("SELU", dict),
        ("SiLU", dict),
        ("Mish", dict),
        ("ELU", lambda: {"alpha": ch.real(0.1, 2.0)}),
        ("CELU", lambda: {"alpha": ch.real(0.1, 2.0)}),
        ("GELU", lambda: {"approximate": ch.choice(["none", "tanh"])}),
        ("Softplus", lambda: {"beta": ch.real(0.5, 3.0), "threshold": ch.real(1.0, 20.0)}),
        ("Softsign", dict),
        ("Hardsigmoid", dict),
        ("Hardswish", dict),
        ("LogSigmoid", dict),
        ("Hardtanh", lambda: {"min_val": ch.real(-2.0, -0.5), "max_val": ch.real(0.5, 2.0)}),
        ("Softmax", lambda: {"dim": ch.choice([-1] + list(range(1, ndim)))}),
        ("LogSoftmax", lambda: {"dim": ch.choice([-1] + list(range(1, ndim)))}),
        ("PReLU", lambda: {"num_parameters": ch.choice(_channels(shape)),
                           "init": ch.real(0.05, 0.5)}),
        ("Threshold", lambda: {"threshold": ch.real(-1.0, 1.0), "value": ch.real(-2.0, 2.0)}),
        ("Hardshrink", lambda: {"lambd": ch.real(0.1, 1.0)}),
        ("Softshrink", lambda: {"lambd": ch.real(0.1, 1.0)}),
        ("Tanhshrink", dict),
        ("Softmin", lambda: {"dim": ch.choice([-1] + list(range(1, ndim)))}),
        ("RReLU", lambda: {"lower": ch.real(0.05, 0.2), "upper": ch.real(0.25, 0.5)}),
    ]  # fmt: skip
    halves = [d for d in range(1, ndim) if shape[d] % 2 == 0]
    if halves:  # GLU halves a dim of even size
        table.append(("GLU", lambda: {"dim": ch.choice(halves)}))
    if ndim in (3, 4):  # a softmax over the channels of (N, C, H, W) or (C, H, W)
        table.append(("Softmax2d", dict))
    table = [t for t in table if available(t[0])]
    if not table:
        return None
    name, make = ch.choice(table)
    return _spec(ch, name, **make())


def _channels(shape: tuple[int, ...]) -> list[int]:
    """PReLU's ``num_parameters``: one slope for all, or one per channel (dim 1)."""
    return [1, shape[1]] if len(shape) >= 2 and shape[1] > 1 else [1]
