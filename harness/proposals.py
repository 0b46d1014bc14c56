"""The generator's shape-changing extras: padding, pixel and channel shuffles, the
normalizations that follow a shape (RMSNorm, LocalResponseNorm; not CrossMapLRN2d, whose
backward in torch is wrong: harness.known_bugs), and the
resamplings (LPPool, Upsample, Unfold and Fold).

Each proposal returns a :class:`LayerSpec` that fits ``shape`` or None; the generator
still runs it on zeros before it keeps it.
"""

from __future__ import annotations

from .chooser import Chooser, _spec, available
from .spec import LayerSpec

__all__ = ["propose_norm_extra", "propose_padding", "propose_resample", "propose_shuffle"]


def propose_padding(ch: Chooser, shape: tuple[int, ...]) -> LayerSpec | None:
    """A padding layer over the spatial dims of ``(N, C, *spatial)`` (1 to 3 of them)."""
    d = len(shape) - 2
    if d not in (1, 2, 3):
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


# -- resampling: (N, C, *spatial) with 1 to 3 spatial dims ---------------------
_UPSAMPLE_MODES = {
    1: ["nearest", "nearest-exact", "linear", "area"],
    2: ["nearest", "nearest-exact", "bilinear", "bicubic", "area"],
    3: ["nearest", "nearest-exact", "trilinear", "area"],
}


def propose_resample(ch: Chooser, shape: tuple[int, ...]) -> LayerSpec | None:
    """LPPool, Upsample (by a scale or to a size), or Unfold/Fold between images and
    columns, where the spatial dims allow them."""
    d = len(shape) - 2
    if d not in (1, 2, 3):
        return None
    kind = ch.choice(["lp_pool", "upsample", "unfold", "fold", "fractional"])
    if kind == "lp_pool":
        kernel = ch.integer(1, max(1, min(3, *shape[2:])))
        return _spec(
            ch,
            f"LPPool{d}d",
            # torch takes the 1/p-th power of the window's sum of x^p: for an odd p > 1
            # or a fractional one a negative sum makes that nan (in the math too)
            norm_type=ch.choice([2, 1]),
            kernel_size=kernel,
            stride=ch.choice([None, 1, 2]),
            ceil_mode=ch.boolean(0.3),
        )
    if kind == "upsample":
        return _upsample(ch, shape, d)
    if kind == "fractional" and d in (2, 3):
        # its windows come from torch.rand, imposed on the reference (harness.dropout_masks)
        return _spec(
            ch,
            f"FractionalMaxPool{d}d",
            kernel_size=ch.integer(1, 2),
            output_ratio=ch.choice([0.5, ch.real(0.3, 0.9)]),
        )
    if kind == "unfold" and d == 2:
        kernel = ch.integer(1, max(1, min(2, *shape[2:])))
        return _spec(
            ch, "Unfold", kernel_size=kernel, stride=ch.integer(1, 2), padding=ch.integer(0, 1)
        )
    if kind == "fold" and d == 1:
        # (N, C k^2, L) -> (N, C, L + k - 1, k): L blocks down a column k wide
        ks = [k for k in (1, 2) if shape[1] % (k * k) == 0]
        k = ch.choice(ks)
        return _spec(ch, "Fold", output_size=(shape[2] + k - 1, k), kernel_size=k)
    return None


def _upsample(ch: Chooser, shape: tuple[int, ...], d: int) -> LayerSpec | None:
    mode = ch.choice(_UPSAMPLE_MODES[d])
    options: dict = {"mode": mode}
    if ch.boolean(0.5):
        options["scale_factor"] = ch.choice([2.0, ch.real(0.5, 2.5)])
        options["recompute_scale_factor"] = ch.choice([None, True])
    else:
        options["size"] = tuple(ch.integer(1, 2 * n) for n in shape[2:])
    if mode in ("linear", "bilinear", "bicubic", "trilinear"):
        options["align_corners"] = ch.boolean(0.5)
    return _spec(ch, "Upsample", **options) if available("Upsample") else None
