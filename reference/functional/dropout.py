r"""Dropout: zero a random subset of the input and rescale the rest, forward and backward.

In training,

.. math:: y = x \odot \frac{M}{1 - p}, \qquad
          \frac{\partial L}{\partial x} = g \odot \frac{M}{1 - p}

with a *keep-mask* :math:`M \in \{0, 1\}` drawn with :math:`P(M = 1) = 1 - p`, so that
:math:`E[y] = x`. ``p = 1`` drops everything: the output is zero (a scale of 0, never
a division by zero). In evaluation, or when ``training=False``, dropout is the
identity.

``dropout`` draws one keep bit per element. ``dropout1d/2d/3d`` draw one per
*channel* and broadcast it over the spatial positions: the mask has shape
``(N, C, 1, ...)`` (``(C, 1, ...)`` for unbatched input).

The mask is data, not hidden state: pass ``mask=`` (a bool array broadcastable to
the mask shape above) to impose one, e.g. the mask torch drew (see
``harness/dropout_masks.py``); otherwise it is drawn from ``rng``. To differentiate,
draw it first with :func:`dropout_mask` and hand the same mask to the forward and
to :func:`dropout_backward`. Torch draws from its own generator, so the masks of the
two libraries differ unless one is imposed.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validate import as_float_array

__all__ = [
    "dropout", "dropout1d", "dropout2d", "dropout3d", "dropout_backward",
    "dropout_mask", "dropout_mask_shape",
]  # fmt: skip

KINDS = ("dropout", "dropout1d", "dropout2d", "dropout3d")


def check_p(p: Any, name: str) -> float:
    """``p`` as a float in [0, 1] (torch's check and message)."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: p must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"{name}: dropout probability has to be between 0 and 1, but got {p}")
    return float(p)


def dropout_mask_shape(input_shape: tuple[int, ...], kind: str = "dropout") -> tuple[int, ...]:
    """The shape of the keep-mask that ``kind`` draws for an input of ``input_shape``.

    ``"dropout"``: the input's shape. The channel-wise kinds keep the batch and channel
    dimensions and put 1 in the spatial ones, following torch's handling of each rank:

    - ``dropout1d``: ``(N, C, L) -> (N, C, 1)``; unbatched ``(C, L) -> (C, 1)``; other
      ranks raise.
    - ``dropout2d``: ``(N, C, H, W) -> (N, C, 1, 1)``; a 3-D input is taken as
      ``(N, C, L)`` (torch warns; it is *not* an unbatched ``(C, H, W)``); other ranks
      >= 2 keep their first two dimensions (torch warns: deprecated); below 2 raise.
    - ``dropout3d``: ``(N, C, D, H, W) -> (N, C, 1, 1, 1)``; every other rank >= 1 is
      taken as unbatched, keeping only its first dimension (torch warns unless 4-D).
    """
    if kind not in KINDS:
        raise ValueError(f"dropout_mask_shape: kind must be one of {KINDS}, got {kind!r}")
    ndim = len(input_shape)
    if kind == "dropout":
        return tuple(input_shape)
    if kind == "dropout1d":
        if ndim not in (2, 3):
            raise ValueError(
                f"dropout1d: expected 2-D (C, L) or 3-D (N, C, L) input, got shape "
                f"{tuple(input_shape)}; dropout1d drops whole channels of a 1-d signal "
                "(use dropout2d for (N, C, H, W), dropout for anything else)"
            )
        kept = ndim - 1
    elif kind == "dropout2d":
        if ndim < 2:
            raise ValueError(
                f"dropout2d: expected at least 2 dimensions (N, C, *), got shape "
                f"{tuple(input_shape)}; dropout2d drops whole channels"
            )
        kept = 2
    else:
        if ndim < 1:
            raise ValueError("dropout3d: expected at least 1 dimension, got a 0-d input")
        kept = 2 if ndim == 5 else 1
    return tuple(input_shape[:kept]) + (1,) * (ndim - kept)


def _warn_like_torch(kind: str, ndim: int) -> None:
    """The deprecation warnings torch's dropout2d/dropout3d give for ranks they may drop."""
    expected = {"dropout2d": (3, 4), "dropout3d": (4, 5)}.get(kind)
    if expected is not None and ndim not in expected:
        warnings.warn(
            f"{kind}: received a {ndim}-D input, which torch deprecates (it will raise in a "
            f"future release); {kind} expects {expected[0]}-D or {expected[1]}-D input. For "
            "elementwise dropout use dropout",
            UserWarning,
            stacklevel=3,
        )
    if kind == "dropout2d" and ndim == 3:
        warnings.warn(
            "dropout2d: received a 3D input; as torch does, it is interpreted as (N, C, L) "
            "(channel-wise 1D dropout), not as an unbatched (C, H, W). Use dropout1d for "
            "(N, C, L) input",
            UserWarning,
            stacklevel=3,
        )


def dropout_mask(
    shape: tuple[int, ...], p: float = 0.5, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """A bool keep-mask of ``shape``, each entry ``True`` with probability ``1 - p``.

    ``rng``: a Generator or a seed (``None``: fresh entropy). ``p = 0`` draws nothing
    and keeps everything (torch's dropout does not touch its generator then either).
    """
    p = check_p(p, "dropout_mask")
    if p == 0:
        return np.ones(shape, dtype=bool)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)  # a seed or None (the same rule as nn.init.resolve_rng)
    return rng.random(shape) >= p  # U[0, 1) >= p with probability 1 - p


def _check_mask(mask: Any, mask_shape: tuple[int, ...], name: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name}: mask must be a bool array (True = keep), got dtype {mask.dtype}")
    try:
        fits = np.broadcast_shapes(mask.shape, mask_shape) == tuple(mask_shape)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(
            f"{name}: mask of shape {mask.shape} does not broadcast to the keep-mask shape "
            f"{tuple(mask_shape)} for this input (channel-wise dropout takes one bit per "
            "channel: size 1 in the spatial dimensions)"
        )
    return mask


def _scale(p: float) -> float:
    # p = 1 keeps nothing: the scale is irrelevant, and 0 avoids dividing by zero
    return 0.0 if p == 1 else 1.0 / (1.0 - p)


def _dropout(input: Any, p: float, training: bool, mask: Any, rng: Any, kind: str) -> np.ndarray:
    input = as_float_array(input, kind)
    p = check_p(p, kind)
    mask_shape = dropout_mask_shape(input.shape, kind)
    _warn_like_torch(kind, input.ndim)
    if not training:
        return input.copy()  # torch returns the input itself; we never alias
    mask = dropout_mask(mask_shape, p, rng) if mask is None else _check_mask(mask, mask_shape, kind)
    # the scale in the input's dtype, as torch multiplies by it in that dtype
    return input * (mask * input.dtype.type(_scale(p)))


def dropout(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Elementwise dropout: :math:`y = x \odot M / (1 - p)` in training, else :math:`y = x`.

    ``mask``: the bool keep-mask, broadcastable to the input's shape; ``None`` draws
    one from ``rng`` (module docstring). ``inplace`` is accepted for torch's
    signature; the result is always a new array. ``p`` outside [0, 1] raises
    ``ValueError``. Torch: ``torch.nn.functional.dropout``.
    """
    return _dropout(input, p, training, mask, rng, "dropout")


def dropout1d(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Channel dropout for ``(N, C, L)`` or ``(C, L)``: one keep bit per channel.

    :math:`y_{nc\ell} = x_{nc\ell} M_{nc} / (1 - p)`; ``mask`` of shape ``(N, C, 1)``
    (``(C, 1)`` unbatched) or broadcastable to it. Torch: ``torch.nn.functional.dropout1d``.
    """
    return _dropout(input, p, training, mask, rng, "dropout1d")


def dropout2d(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Channel dropout for ``(N, C, H, W)``: one keep bit per channel, mask ``(N, C, 1, 1)``.

    As in torch, a 3-D input is ``(N, C, L)`` (with a warning), and other ranks keep
    their first two dimensions (with a deprecation warning); see
    :func:`dropout_mask_shape`. Torch: ``torch.nn.functional.dropout2d``.
    """
    return _dropout(input, p, training, mask, rng, "dropout2d")


def dropout3d(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = True,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Channel dropout for ``(N, C, D, H, W)`` or ``(C, D, H, W)``: one keep bit per channel.

    Torch: ``torch.nn.functional.dropout3d``; see :func:`dropout_mask_shape` for other ranks.
    """
    return _dropout(input, p, training, mask, rng, "dropout3d")


def dropout_backward(
    grad_output: np.ndarray, mask: np.ndarray | None, p: float = 0.5
) -> np.ndarray:
    r"""Gradient of every dropout kind: :math:`g \odot M / (1 - p)`.

    ``mask`` is the keep-mask the forward used (broadcastable to ``grad_output``);
    ``None`` means the forward was the identity (evaluation), so the gradient is ``g``.
    Dropout is linear in its input, so this is exact, including ``p = 1`` (zero).
    """
    grad_output = as_float_array(grad_output, "dropout_backward", "grad_output")
    p = check_p(p, "dropout_backward")
    if mask is None:
        return grad_output.copy()
    mask = _check_mask(mask, grad_output.shape, "dropout_backward")
    return grad_output * (mask * grad_output.dtype.type(_scale(p)))
