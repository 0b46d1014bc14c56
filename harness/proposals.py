"""The generator's shape-changing extras: padding, pixel and channel shuffles, and the
normalizations that follow a shape (RMSNorm, LocalResponseNorm).

Each proposal returns a :class:`LayerSpec` that fits ``shape`` or None; the generator
still runs it on zeros before it keeps it.
"""

from __future__ import annotations

from .chooser import Chooser, _spec, available
from .spec import LayerSpec

__all__ = ["propose_norm_extra", "propose_padding", "propose_shuffle"]


def propose_padding(ch: Chooser, shape: tuple[int, ...]) -> LayerSpec | None:
    """A padding layer over the spatial dims of ``(N, C, *spatial)`` (1 or 2 of them)."""
    d = len(shape) - 2
    if d not in (1, 2):
        return None
    kind = ch.choice(["Zero", "Constant", "Reflection", "Replication", "Circular"])
    smallest = min(shape[2:])
    # reflect needs each side smaller than the dim, circular at most the dim
    most = smallest - 1 if kind == "Reflection" else smallest
    if most < 1:
        return None
    sides = tuple(ch.integer(0, min(2, most)) for _ in range(2 * d))
    padding = sides if ch.boolean(0.5) else sides[0]
    options: dict = {"padding": padding}
    if kind == "Constant":
        options["value"] = ch.real(-1.0, 1.0)
    name = f"{kind}Pad{d}d"
    return _spec(ch, name, **options) if available(name) else None


def propose_shuffle(ch: Chooser, shape: tuple[int, ...]) -> LayerSpec | None:
    """PixelShuffle, PixelUnshuffle or ChannelShuffle on ``(N, C, H, W)`` where they fit."""
    if len(shape) != 4:
        return None
    channels, height, width = shape[1], shape[2], shape[3]
    kind = ch.choice(["pixel", "unshuffle", "channel"])
    if kind == "pixel" and channels % 4 == 0:
        return _spec(ch, "PixelShuffle", upscale_factor=2)
    if kind == "unshuffle" and height % 2 == 0 and width % 2 == 0:
        return _spec(ch, "PixelUnshuffle", downscale_factor=2)
    groups = [g for g in (2, 3) if channels % g == 0]
    if kind == "channel" and groups:
        return _spec(ch, "ChannelShuffle", groups=ch.choice(groups))
    return None


def propose_norm_extra(ch: Chooser, shape: tuple[int, ...]) -> LayerSpec | None:
    """RMSNorm over the last dim (or all but the batch), or, on channels,
    LocalResponseNorm."""
    if len(shape) >= 3 and ch.boolean(0.5) and available("LocalResponseNorm"):
        return _spec(
            ch,
            "LocalResponseNorm",
            size=ch.integer(1, max(1, min(5, shape[1]))),
            alpha=ch.choice([1e-4, ch.real(1e-3, 1.0)]),
            beta=ch.choice([0.75, ch.real(0.1, 1.5)]),
            k=ch.choice([1.0, ch.real(0.5, 2.0)]),
        )
    if not available("RMSNorm"):
        return None
    normalized = shape[-1] if ch.boolean(0.7) else tuple(shape[1:])
    eps = ch.choice([None, 1e-6, 1e-5])
    return _spec(
        ch, "RMSNorm", normalized_shape=normalized, eps=eps, elementwise_affine=not ch.boolean(0.2)
    )
