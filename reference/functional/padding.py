r"""Padding, forward and backward (``torch.nn.functional.pad``).

``pad`` lists ``(before, after)`` pairs starting from the *last* dimension, as
torch's does: ``pad(x, (1, 2))`` pads the last dim with 1 before and 2 after,
``pad(x, (1, 1, 2, 2))`` also pads the dim before it with 2 and 2.

Every mode copies input values into the output, so each padded dim is a *gather*:
output index :math:`t` reads input index :math:`s(t)`, and the gradient of an input
element is the sum of the gradients of every output position that read it
(*scatter-add back*). For one dim of length :math:`L` padded by :math:`(p, q)`, with
:math:`u = t - p`:

===========  ========================================  ============================
mode         :math:`s(t)`                              torch's limits
===========  ========================================  ============================
constant     :math:`u` if :math:`0 \le u < L`, else    any rank; negative pads crop,
             ``value`` (its gradient is dropped)       at most :math:`L` in all
reflect      :math:`|u|`, or :math:`2(L-1) - u` past   :math:`p, q < L`
             the end (no edge repeated)
replicate    :math:`\operatorname{clip}(u, 0, L-1)`    none above
circular     crop the negative sides, then wrap the    :math:`p, q \le L`, and every
             :math:`M` kept elements:                  positive pad :math:`\le M`
             :math:`c + (t - p^+) \bmod M`
===========  ========================================  ============================

The non-constant modes pad 1, 2 or 3 trailing dims of an input with one (unbatched)
or two (batched) more dims, need every dim but the batch dim non-empty (reflect,
replicate), and take no ``value`` but 0. Negative padding crops for every mode; an
output dim may not be negative, and for reflect and replicate not all of them empty.

Circular with a negative side is crop-then-wrap, as torch computes it, not the
periodic :math:`u \bmod L` (``(-1, 1)`` on ``[1, 2, 3, 4]`` gives ``[2, 3, 4, 2]``);
where a positive pad exceeds what the crop kept, torch reads its own half-written
output (an overlap error, or uninitialised memory when nothing was kept): we raise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import as_float_array

__all__ = ["pad", "pad_backward"]

MODES = ("constant", "reflect", "replicate", "circular")

# one padded dim: (dim, before, after); torch's pad lists the last dim first
_Pair = tuple[int, int, int]


def _check_arguments(input: np.ndarray, pad: Any, mode: str, value: Any, layer: str) -> tuple:
    """torch's argument rules, before any size is looked at; ``pad`` as a tuple of ints."""
    if mode not in MODES:
        raise ValueError(f"{layer}: mode must be one of {MODES}, got {mode!r}")
    pad = tuple(pad)
    bad = [p for p in pad if isinstance(p, bool) or not isinstance(p, (int, np.integer))]
    if bad:
        raise TypeError(
            f"{layer}: pad must be a sequence of ints, got {pad!r} (an element of type "
            f"{type(bad[0]).__name__})"
        )
    if len(pad) % 2:
        raise ValueError(
            f"{layer}: pad must hold an even number of ints, a (before, after) pair per "
            f"dim, got {pad}"
        )
    if len(pad) > 2 * input.ndim:
        raise ValueError(
            f"{layer}: pad {pad} pads {len(pad) // 2} dims, more than the {input.ndim} of "
            f"the input {input.shape}"
        )
    if mode == "constant":
        return pad
    if value is not None and value != 0:
        raise ValueError(f"{layer}: mode {mode!r} takes no value (None or 0), got {value!r}")
    k = len(pad) // 2
    if not 1 <= k <= 3:
        raise ValueError(
            f"{layer}: {mode} padding pads 1, 2 or 3 trailing dims (a pad of length 2, 4 "
            f"or 6), got pad {pad} for input {input.shape}"
        )
    if input.ndim not in (k + 1, k + 2):
        raise ValueError(
            f"{layer}: {mode} padding of {k} dim(s) (pad {pad}) takes a {k + 1}-D "
            f"(unbatched) or {k + 2}-D (batched) input, got shape {input.shape}"
        )
    return pad


def _check_sizes(shape: tuple[int, ...], pairs: list[_Pair], mode: str, layer: str) -> None:
    """torch's limits on the padding for this input (see the module's table)."""
    batched = len(shape) == len(pairs) + 2
    if mode in ("reflect", "replicate") and 0 in shape[int(batched) :]:
        raise ValueError(
            f"{layer}: {mode} padding needs every dim but the batch dim non-empty, got "
            f"input {shape}"
        )
    out = [shape[dim] + before + after for dim, before, after in pairs]
    for (dim, before, after), size in zip(pairs, out):
        at = f"padding ({before}, {after}) at dim {dim} of input {shape}"
        kept = shape[dim] + min(before, 0) + min(after, 0)
        if mode == "reflect" and max(before, after) >= shape[dim]:
            raise ValueError(
                f"{layer}: reflect padding must be smaller than the padded dim; got {at}"
            )
        if mode == "circular" and max(before, after) > shape[dim]:
            raise ValueError(
                f"{layer}: circular padding must be at most the padded dim (it wraps around "
                f"once); got {at}"
            )
        if size < 0 or (mode == "constant" and kept < 0):
            raise ValueError(
                f"{layer}: negative padding crops more than the dim holds: {at} keeps "
                f"{kept} element(s), for an output of size {size}"
            )
        if mode == "circular" and max(before, after, 0) > kept:
            raise ValueError(
                f"{layer}: circular {at} wraps more than the {kept} element(s) its negative "
                "side keeps (torch reads its own unwritten output there)"
            )
    if mode in ("reflect", "replicate") and max(out) == 0:
        raise ValueError(
            f"{layer}: input {shape} is too small for {mode} padding "
            f"{[p for _, b, a in pairs for p in (b, a)]}: every padded dim would be empty"
        )


def _pairs(input: np.ndarray, pad: Any, mode: str, value: Any, layer: str) -> list[_Pair]:
    """The validated padding as ``(dim, before, after)``, last dim first."""
    pad = _check_arguments(input, pad, mode, value, layer)
    pairs = [
        (input.ndim - 1 - k, int(pad[2 * k]), int(pad[2 * k + 1])) for k in range(len(pad) // 2)
    ]
    _check_sizes(input.shape, pairs, mode, layer)
    return pairs


def _source_index(size: int, before: int, after: int, mode: str) -> np.ndarray:
    """For each output position of one padded dim, the input position it copies
    (the non-constant modes; the sizes are already validated)."""
    out = size + before + after
    u = np.arange(out) - before
    if mode == "reflect":
        u = np.abs(u)
        return np.where(u > size - 1, 2 * (size - 1) - u, u)
    if mode == "replicate":
        return np.clip(u, 0, size - 1)
    # circular: keep [start, start + kept), then wrap it around
    start, kept = max(-before, 0), size + min(before, 0) + min(after, 0)
    if out == 0:
        return np.zeros(0, dtype=np.intp)
    return start + (np.arange(out) - max(before, 0)) % kept


def _kept_slice(size: int, before: int, after: int) -> slice:
    """The input positions a constant pad keeps (its negative sides crop)."""
    return slice(max(-before, 0), size - max(-after, 0))


def _pad(input: Any, pad: Any, mode: str, value: float | None, layer: str) -> np.ndarray:
    """:func:`pad`, its errors naming ``layer``."""
    input = as_float_array(input, layer)
    pairs = _pairs(input, pad, mode, value, layer)
    if mode == "constant" and pairs:
        crop = [slice(None)] * input.ndim
        widths = [(0, 0)] * input.ndim
        for dim, before, after in pairs:
            crop[dim] = _kept_slice(input.shape[dim], before, after)
            widths[dim] = (max(before, 0), max(after, 0))
        fill = 0.0 if value is None else value
        return np.pad(input[tuple(crop)], widths, mode="constant", constant_values=fill)
    output = input.copy()
    for dim, before, after in pairs:
        if before or after:
            output = np.take(output, _source_index(input.shape[dim], before, after, mode), axis=dim)
    return output


def _fold_axis(
    grad: np.ndarray, dim: int, size: int, before: int, after: int, mode: str
) -> np.ndarray:
    """The gradient of one padded dim folded back to its input length ``size``."""
    g = np.moveaxis(grad, dim, 0)  # the padded dim first: (size + before + after, ...)
    if mode == "constant":
        kept = _kept_slice(size, before, after)
        body = g[max(before, 0) : max(before, 0) + len(range(size)[kept])]
        widths = [(kept.start, size - kept.stop)] + [(0, 0)] * (g.ndim - 1)
        out = np.pad(body, widths)  # cropped input positions get 0
    else:
        out = np.zeros((size, *g.shape[1:]), dtype=g.dtype)
        # unbuffered: a border copy and the interior that it copies add, in output order
        np.add.at(out, _source_index(size, before, after, mode), g)
    return np.moveaxis(out, 0, dim)  # back to the original layout


def _pad_backward(
    grad_output: Any, input: Any, pad: Any, mode: str, value: float | None, layer: str
) -> np.ndarray:
    """:func:`pad_backward`, its errors naming ``layer``."""
    input = as_float_array(input, layer)
    pairs = _pairs(input, pad, mode, value, layer)
    grad = as_float_array(grad_output, layer, "grad_output")
    expected = list(input.shape)
    for dim, before, after in pairs:
        expected[dim] += before + after
    if grad.shape != tuple(expected):
        raise ValueError(
            f"{layer}: grad_output must have the padded shape {tuple(expected)}, got "
            f"{grad.shape} (input {input.shape}, pad {tuple(pad)})"
        )
    grad = grad.copy()
    for dim, before, after in pairs:
        if before or after:
            grad = _fold_axis(grad, dim, input.shape[dim], before, after, mode)
    return grad


def pad(
    input: np.ndarray, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> np.ndarray:
    r"""Pad (or, with negative pads, crop) the trailing dims of ``input``.

    Output index :math:`t` of a dim padded by :math:`(p, q)` reads input index
    :math:`s(t)` of the module's table, or ``value`` (constant mode, default 0).
    Shapes: each padded dim :math:`L \to L + p + q`; the others are unchanged.
    Torch: ``torch.nn.functional.pad``.
    """
    return _pad(input, pad, mode, value, "pad")


def pad_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    pad: Sequence[int],
    mode: str = "constant",
    value: float | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`pad` wrt its input: each copy's gradient goes home.

    .. math:: \frac{\partial L}{\partial x_u} = \sum_{t \,:\, s(t) = u} g_t

    one padded dim at a time (the dims are independent): a slice for constant mode
    (the cropped positions get 0, the ``value`` border nothing), an unbuffered
    scatter-add of the gather's index for the others. No loop over elements.
    """
    return _pad_backward(grad_output, input, pad, mode, value, "pad_backward")
