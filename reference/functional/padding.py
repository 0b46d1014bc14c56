r"""Padding, forward and backward (``torch.nn.functional.pad``).

``pad`` lists ``(before, after)`` pairs starting from the *last* dimension, as
torch's does: ``pad(x, (1, 2))`` pads the last dim with 1 before and 2 after,
``pad(x, (1, 1, 2, 2))`` also pads the dim before it with 2 and 2.

Every mode copies input values into the border, so the gradient of an input
element is the sum of the gradients of every output position it was copied to
(the interior one and its border copies): *scatter-add back*.

===========  ==========================  =====================================
mode         border before ``x[0]``      gradient
===========  ==========================  =====================================
constant     ``value``                   interior only
reflect      ``x[p], ..., x[1]``         interior + mirrored border (no edge)
replicate    ``x[0], ..., x[0]``         edge gets its own + the border's sum
circular     ``x[L-p], ..., x[L-1]``     interior + the border wrapped around
===========  ==========================  =====================================
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from .._validate import as_float_array

__all__ = ["pad", "pad_backward"]

_NumpyMode = Literal["constant", "reflect", "edge", "wrap"]

_NUMPY_MODE: dict[str, _NumpyMode] = {"constant": "constant", "reflect": "reflect",
                                      "replicate": "edge", "circular": "wrap"}  # fmt: skip


def _pad_widths(input: np.ndarray, pad: Sequence[int], mode: str) -> list[tuple[int, int]]:
    """Torch's last-dim-first ``pad`` as NumPy's per-dim ``(before, after)``, validated."""
    if mode not in _NUMPY_MODE:
        raise ValueError(f"pad: mode must be one of {tuple(_NUMPY_MODE)}, got {mode!r}")
    pad = tuple(pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(
            f"pad: pad must hold an even number of ints, at most 2 per dim of the input; got "
            f"{pad} for input of shape {input.shape}"
        )
    if any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0 for p in pad):
        raise ValueError(f"pad: pad must be non-negative ints, got {pad}")
    widths = [(0, 0)] * input.ndim
    for k in range(len(pad) // 2):
        dim = input.ndim - 1 - k
        before, after = int(pad[2 * k]), int(pad[2 * k + 1])
        size = input.shape[dim]
        # torch's limits: a reflection cannot reach past the opposite edge, a wrap
        # cannot go around more than once
        if mode == "reflect" and max(before, after) >= size:
            raise ValueError(
                f"pad: reflect padding must be smaller than the padded dim; got padding "
                f"({before}, {after}) at dim {dim} of input {input.shape}"
            )
        if mode == "circular" and max(before, after) > size:
            raise ValueError(
                f"pad: circular padding must be at most the padded dim (it wraps around once); "
                f"got padding ({before}, {after}) at dim {dim} of input {input.shape}"
            )
        if mode == "replicate" and size == 0 and before + after:
            raise ValueError(f"pad: cannot replicate an empty dim {dim} of input {input.shape}")
        widths[dim] = (before, after)
    return widths


def pad(
    input: np.ndarray, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> np.ndarray:
    r"""Pad the trailing dims of ``input`` (``torch.nn.functional.pad``).

    For one dim of length :math:`L` padded by :math:`(p, q)`, output index
    :math:`t \in [0, L + p + q)` reads input index :math:`u = t - p` when
    :math:`0 \le u < L`, else ``value`` (constant), :math:`|u|` or :math:`2(L-1) - u`
    (reflect), :math:`\operatorname{clip}(u, 0, L-1)` (replicate), :math:`u \bmod L`
    (circular). Torch: ``torch.nn.functional.pad``.
    """
    input = as_float_array(input, "pad")
    widths = _pad_widths(input, pad, mode)
    if mode == "constant":
        return np.pad(input, widths, mode="constant", constant_values=value or 0.0)
    return np.pad(input, widths, mode=_NUMPY_MODE[mode])


def pad_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    pad: Sequence[int],
    mode: str = "constant",
    value: float | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`pad` wrt its input: each border copy's gradient goes home.

    .. math:: \frac{\partial L}{\partial x_u} = \sum_{t \,:\, \text{index}(t) = u} g_t

    Computed one padded dim at a time (the dims are independent), with one
    slice-add per border: no loop over elements.
    """
    input = as_float_array(input, "pad")
    widths = _pad_widths(input, pad, mode)
    expected = tuple(s + b + a for s, (b, a) in zip(input.shape, widths))
    if np.shape(grad_output) != expected:
        raise ValueError(
            f"pad_backward: grad_output must have the padded shape {expected}, got "
            f"{np.shape(grad_output)}"
        )
    grad = np.asarray(grad_output)
    for dim, (before, after) in enumerate(widths):
        if before or after:
            grad = _unpad_axis(grad, dim, before, after, input.shape[dim], mode)
    return grad


def _unpad_axis(
    grad: np.ndarray, dim: int, before: int, after: int, size: int, mode: str
) -> np.ndarray:
    """Fold the gradient of one padded dim of length ``size + before + after`` back to ``size``."""
    g = np.moveaxis(grad, dim, 0)  # the padded dim first: (L + before + after, ...)
    head, body, tail = g[:before], g[before : before + size], g[before + size :]
    out = body.copy()
    if mode == "reflect":
        # head t = 0..before-1 read x[before - t]; tail t read x[size - 2 - t]
        out[1 : before + 1] += head[::-1]
        out[size - 1 - after : size - 1] += tail[::-1]
    elif mode == "replicate":
        out[0] += head.sum(axis=0)
        out[size - 1] += tail.sum(axis=0)
    elif mode == "circular":
        # head t read x[size - before + t]; tail t read x[t]
        out[size - before :] += head
        out[:after] += tail
    return np.moveaxis(out, 0, dim)  # back to the original layout
