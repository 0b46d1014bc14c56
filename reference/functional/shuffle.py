r"""Permutations of elements: ``pixel_shuffle``, ``pixel_unshuffle``, ``channel_shuffle``.

Each moves every input element to exactly one output position, so its backward is the
inverse permutation applied to the gradient: :math:`\partial L/\partial x = P^{-1} g`.
``pixel_shuffle`` and ``pixel_unshuffle`` are each other's inverse (and so each other's
backward); the inverse of ``channel_shuffle`` with ``g`` groups is ``channel_shuffle``
with ``C / g`` groups.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import check_positive_int

__all__ = [
    "pixel_shuffle",
    "pixel_shuffle_backward",
    "pixel_unshuffle",
    "pixel_unshuffle_backward",
    "channel_shuffle",
    "channel_shuffle_backward",
]


def _check_grad(grad_output: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    grad_output = np.asarray(grad_output)
    if grad_output.shape != shape:
        raise ValueError(
            f"{name}: grad_output must have the output's shape {shape}, got {grad_output.shape}"
        )
    return grad_output


def _check_image(input: Any, factor: Any, name: str, what: str) -> tuple[np.ndarray, int]:
    input = np.asarray(input)
    factor = check_positive_int(factor, name, what)
    if input.ndim < 3:
        raise ValueError(
            f"{name}: expected input of shape (*, C, H, W) with at least 3 dimensions, got "
            f"{input.shape}"
        )
    return input, factor


def _shuffled_shape(shape: tuple[int, ...], r: int) -> tuple[int, ...]:
    *lead, c, h, w = shape
    return (*lead, c // (r * r), h * r, w * r)


def _check_pixel_shuffle(input: Any, upscale_factor: Any, name: str) -> tuple[np.ndarray, int]:
    input, r = _check_image(input, upscale_factor, name, "upscale_factor")
    if input.shape[-3] % (r * r):
        raise ValueError(
            f"{name}: the channel dim (-3) of the input {input.shape} must be divisible by "
            f"upscale_factor**2 = {r * r}, got {input.shape[-3]} channels"
        )
    return input, r


def _check_pixel_unshuffle(input: Any, downscale_factor: Any, name: str) -> tuple[np.ndarray, int]:
    input, r = _check_image(input, downscale_factor, name, "downscale_factor")
    h, w = input.shape[-2:]
    if h % r or w % r:
        raise ValueError(
            f"{name}: height and width (dims -2, -1) of the input {input.shape} must be "
            f"divisible by downscale_factor = {r}, got {h} x {w}"
        )
    return input, r


def _shuffle(x: np.ndarray, r: int) -> np.ndarray:
    *lead, c, h, w = x.shape
    n = len(lead)
    x = x.reshape(*lead, c // (r * r), r, r, h, w)  # (*, C*r*r, H, W) -> (*, C, r, r, H, W)
    x = x.transpose(*range(n), n, n + 3, n + 1, n + 4, n + 2)  # -> (*, C, H, r, W, r)
    return x.reshape(*lead, c // (r * r), h * r, w * r)  # -> (*, C, H*r, W*r)


def _unshuffle(x: np.ndarray, r: int) -> np.ndarray:
    *lead, c, hr, wr = x.shape
    n = len(lead)
    x = x.reshape(*lead, c, hr // r, r, wr // r, r)  # (*, C, H*r, W*r) -> (*, C, H, r, W, r)
    x = x.transpose(*range(n), n, n + 2, n + 4, n + 1, n + 3)  # -> (*, C, r, r, H, W)
    return x.reshape(*lead, c * r * r, hr // r, wr // r)  # -> (*, C*r*r, H, W)


def pixel_shuffle(input: np.ndarray, upscale_factor: int) -> np.ndarray:
    r"""Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)``.

    .. math:: y_{c,\; h r + i,\; w r + j} = x_{c r^2 + i r + j,\; h,\; w}

    Torch: ``torch.nn.functional.pixel_shuffle`` (any number of leading dims, so
    unbatched ``(C r^2, H, W)`` too).
    """
    input, r = _check_pixel_shuffle(input, upscale_factor, "pixel_shuffle")
    return _shuffle(input, r)


def pixel_shuffle_backward(
    grad_output: np.ndarray, input: np.ndarray, upscale_factor: int
) -> np.ndarray:
    r"""Gradient of :func:`pixel_shuffle`: the inverse permutation, :func:`pixel_unshuffle`."""
    input, r = _check_pixel_shuffle(input, upscale_factor, "pixel_shuffle_backward")
    grad_output = _check_grad(
        grad_output, _shuffled_shape(input.shape, r), "pixel_shuffle_backward"
    )
    return _unshuffle(grad_output, r)


def pixel_unshuffle(input: np.ndarray, downscale_factor: int) -> np.ndarray:
    r"""Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)``, undoing :func:`pixel_shuffle`.

    .. math:: y_{c r^2 + i r + j,\; h,\; w} = x_{c,\; h r + i,\; w r + j}

    Torch: ``torch.nn.functional.pixel_unshuffle``.
    """
    input, r = _check_pixel_unshuffle(input, downscale_factor, "pixel_unshuffle")
    return _unshuffle(input, r)


def pixel_unshuffle_backward(
    grad_output: np.ndarray, input: np.ndarray, downscale_factor: int
) -> np.ndarray:
    r"""Gradient of :func:`pixel_unshuffle`: the inverse permutation, :func:`pixel_shuffle`."""
    input, r = _check_pixel_unshuffle(input, downscale_factor, "pixel_unshuffle_backward")
    *lead, c, h, w = input.shape
    grad_output = _check_grad(
        grad_output, (*lead, c * r * r, h // r, w // r), "pixel_unshuffle_backward"
    )
    return _shuffle(grad_output, r)


def _check_channel_shuffle(input: Any, groups: Any, name: str) -> tuple[np.ndarray, int]:
    input = np.asarray(input)
    groups = check_positive_int(groups, name, "groups")
    if input.ndim <= 2:
        raise ValueError(
            f"{name}: expected input of shape (N, C, *) with more than 2 dimensions, got "
            f"{input.shape}"
        )
    if input.shape[1] % groups:
        raise ValueError(
            f"{name}: the number of channels ({input.shape[1]}, dim 1 of input "
            f"{input.shape}) must be divisible by groups ({groups})"
        )
    return input, groups


def _swap_channel_blocks(x: np.ndarray, rows: int) -> np.ndarray:
    """Channels read as a ``(rows, C / rows)`` matrix, transposed, read out again."""
    n, c, *rest = x.shape
    x = x.reshape(n, rows, c // rows, *rest)  # (N, C, *) -> (N, rows, C/rows, *)
    x = x.swapaxes(1, 2)  # -> (N, C/rows, rows, *)
    return x.reshape(n, c, *rest)  # -> (N, C, *)


def channel_shuffle(input: np.ndarray, groups: int) -> np.ndarray:
    r"""Interleave the channels of ``groups`` groups: channel :math:`g (C/G) + i` of the input
    becomes channel :math:`i G + g` of the output.

    Shapes: ``(N, C, *)`` with at least one trailing dim -> the same. Torch:
    ``torch.nn.functional.channel_shuffle``.
    """
    input, groups = _check_channel_shuffle(input, groups, "channel_shuffle")
    return _swap_channel_blocks(input, groups)


def channel_shuffle_backward(grad_output: np.ndarray, input: np.ndarray, groups: int) -> np.ndarray:
    r"""Gradient of :func:`channel_shuffle`: the inverse interleaving (``C / groups`` groups)."""
    input, groups = _check_channel_shuffle(input, groups, "channel_shuffle_backward")
    grad_output = _check_grad(grad_output, input.shape, "channel_shuffle_backward")
    return _swap_channel_blocks(grad_output, input.shape[1] // groups)
