"""Whether a proposed layer fits where the generator would put it.

A proposal is run on zeros of the shape it follows (the reference's own layer); a
normalization over fewer than three values is refused (one normalizes to rounding
noise, two to +-1 whatever they are); an optimizer needs parameters to step.
"""

from __future__ import annotations

import numpy as np

from .chooser import _ref_class
from .spec import (
    DROPOUT_TYPES,
    LayerSpec,
    NetworkSpec,
    _accepts,
    build_reference_layers,
    layer_kwargs,
    split_output,
)

__all__ = ["_has_parameters", "_next_shape", "_norm_group_size"]


def _next_shape(
    layer: LayerSpec, shape: tuple[int, ...], train: bool, index_input: bool = False
) -> tuple[int, ...] | None:
    """Run the reference layer on zeros of ``shape``; None when it does not fit."""
    cls = _ref_class(layer.type)
    if cls is None:
        return None
    kwargs = layer_kwargs(layer, np.float64)
    if _accepts(cls, "rng"):
        kwargs["rng"] = 0
    if _accepts(cls, "dtype"):
        kwargs["dtype"] = np.float64
    x = np.zeros(shape, dtype=np.int64 if index_input else np.float64)
    try:
        module = cls(**kwargs)
        module.train(train and layer.type not in DROPOUT_TYPES)
        with np.errstate(all="ignore"):
            out, _ = split_output(module(x))
    except Exception:  # noqa: BLE001 - does not fit: propose something else
        return None
    return tuple(np.shape(out))


def _norm_group_size(layer: LayerSpec, shape: tuple[int, ...]) -> int:
    """How many values each normalization statistic is taken over (large for other layers)."""
    spatial = int(np.prod(shape[2:]))
    if layer.type in ("LayerNorm", "RMSNorm"):
        normalized = layer.kwargs["normalized_shape"]
        return int(np.prod(normalized if isinstance(normalized, tuple) else (normalized,)))
    if layer.type == "GroupNorm":
        return shape[1] // layer.kwargs["num_groups"] * spatial
    if layer.type.startswith("InstanceNorm"):
        return spatial
    if layer.type.startswith("BatchNorm"):
        return shape[0] * spatial
    if layer.type == "CosineSimilarity":
        # each vector normalized over dim: over one value it is +-1 whatever it is, and the
        # gradient is 0 in the math (rounding noise), as a norm's over two values
        dim = layer.kwargs.get("dim", 1)
        return shape[dim] if -len(shape) <= dim < len(shape) else 2**31
    return 2**31


def _has_parameters(layers: list[LayerSpec]) -> bool:
    probe = NetworkSpec((1, 1), layers, LayerSpec("MSELoss"))
    return any(True for m in build_reference_layers(probe) for _ in m.parameters())
