"""Where torch's backward is not the derivative of its own forward: found while adding
the layers, verified by central differences of torch's own forward in float64.

Unlike ``harness.known``'s deviations (torch's rounding, scoped to a dtype and bounded in
size, which the error model allows for), these are wrong formulas: the error is as large
as the gradient, in every dtype. No allowance could absorb one without blinding the
harness to real findings there, so the generator never draws a layer that meets one
(:func:`torch_bug`), and ``tests/harness/test_known_bugs.py`` pins each: it fails, asking
for the entry to go, on the day torch's backward agrees with its forward again.

The reference's backward is the true derivative of torch's forward in each case (its
gradcheck passes): a learner reads the math, and a tester calling the layers by hand
sees torch's bug.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["KNOWN_TORCH_BUGS", "TorchBug", "torch_bug"]


@dataclass(frozen=True)
class TorchBug:
    why: str
    layer: str  # the torch.nn class
    example: tuple[dict[str, Any], tuple[int, ...]]  # (constructor arguments, input shape)
    meets: Callable[[dict[str, Any], tuple[int, ...]], bool]  # (arguments, input shape)


def _nearest_scale_mismatch(kwargs: dict[str, Any], shape: tuple[int, ...]) -> bool:
    """Nearest modes on 3-d or 5-d input, with a ``scale_factor`` that is not the ratio
    of the output size to the input size (torch's forward maps through 1/scale_factor,
    its backward through in/out)."""
    if kwargs.get("mode", "nearest") not in ("nearest", "nearest-exact") or len(shape) not in (
        3,
        5,
    ):
        return False
    return _scale_is_not_the_ratio(kwargs, shape)


def _bicubic_kept_size(kwargs: dict[str, Any], shape: tuple[int, ...]) -> bool:
    """Bicubic with a ``scale_factor`` that keeps both sizes (its backward is then a copy,
    its forward is not)."""
    if kwargs.get("mode") != "bicubic" or len(shape) != 4 or not _scale_given(kwargs):
        return False
    scales = _scales(kwargs, 2)
    kept = all(int(n * s) == n for n, s in zip(shape[2:], scales))
    return kept and any(s != 1.0 for s in scales)


def _scale_given(kwargs: dict[str, Any]) -> bool:
    return kwargs.get("scale_factor") is not None and not kwargs.get("recompute_scale_factor")


def _scales(kwargs: dict[str, Any], d: int) -> tuple[float, ...]:
    scale = kwargs["scale_factor"]
    return tuple(scale) if isinstance(scale, (tuple, list)) else (float(scale),) * d


def _scale_is_not_the_ratio(kwargs: dict[str, Any], shape: tuple[int, ...]) -> bool:
    if not _scale_given(kwargs):
        return False
    spatial = shape[2:]
    scales = _scales(kwargs, len(spatial))
    return any(int(n * s) / n != s for n, s in zip(spatial, scales))


KNOWN_TORCH_BUGS = (
    TorchBug(
        "torch's CrossMapLRN2d backward (torch/nn/_functions.py) gathers over channels "
        "[i - ceil(n/2), i + floor(n/2) - 1], one off its forward's window, and leaves out "
        "the channel-0 term its forward's running sum never drops (a port of 1-based Lua): "
        "size 3 on 3 channels, torch's gradient is off by 0.35 where it is 1.6",
        "CrossMapLRN2d",
        ({"size": 3, "alpha": 1.0}, (1, 3, 2, 2)),
        lambda kwargs, shape: True,  # every size measured (2 to 17 on 9 channels); 1 raises
    ),
    TorchBug(
        "torch's nearest/nearest-exact upsampling of 3-d and 5-d input indexes its backward "
        "by in/out but its forward by 1/scale_factor: L=3 at scale_factor 1.2 outputs "
        "[x0, x0, x1], and torch's gradient of g is g itself, not [g0 + g1, g2, 0]",
        "Upsample",
        ({"scale_factor": 1.2, "mode": "nearest"}, (1, 1, 3)),
        _nearest_scale_mismatch,
    ),
    TorchBug(
        "torch's bicubic upsampling with a scale_factor that keeps both sizes: its "
        "backward is a copy, its forward interpolates at 1/scale_factor",
        "Upsample",
        ({"scale_factor": 1.1, "mode": "bicubic"}, (1, 1, 4, 4)),
        _bicubic_kept_size,
    ),
)


def torch_bug(layer_type: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> TorchBug | None:
    """The known torch bug a ``layer_type(**kwargs)`` on input of ``shape`` meets, if any."""
    for bug in KNOWN_TORCH_BUGS:
        if bug.layer == layer_type and bug.meets(dict(kwargs), tuple(shape)):
            return bug
    return None
