r"""Alpha dropout: dropout that keeps SELU's zero mean and unit variance, forward and backward.

A dropped unit is set to SELU's negative saturation value
:math:`\alpha' = -\lambda\alpha \approx -1.7581` instead of 0, then an affine map
:math:`a, b` restores mean 0 and variance 1 for an input of mean 0, variance 1
(Klambauer et al., *Self-Normalizing Neural Networks*, 2017):

.. math:: y = a\,\bigl(x M + \alpha'(1 - M)\bigr) + b, \qquad
          a = \bigl((1 - p)(1 + p\,\alpha'^2)\bigr)^{-1/2}, \qquad b = -a\,\alpha' p,

with the keep-mask :math:`M \in \{0, 1\}`, :math:`P(M = 1) = 1 - p`. Torch
(``aten/src/ATen/native/Dropout.cpp``, ``_dropout_impl``) writes it with
:math:`\alpha = -\alpha'` as

.. math:: y = x \cdot (a M) + \bigl((M - 1)\,\alpha a + \alpha a p\bigr),

so a kept unit becomes :math:`a x + \alpha a p` and a dropped one
:math:`-\alpha a (1 - p)` (whatever :math:`x` was). The gradient is
:math:`\partial L / \partial x = g \cdot a M`. ``p = 0``, evaluation
(``training=False``, the functional's default as in torch) and an empty input are the
identity; ``p = 1`` is ``x * 0`` (zeros; NaN where x is inf or NaN), gradient 0. Neither
draws a mask.

``alpha_dropout`` draws one keep bit per element. ``feature_alpha_dropout`` draws one
per ``(dim 0, dim 1)`` pair and broadcasts it over the rest: mask shape
``(N, C, 1, ...)``. As in torch, dim 0 is always taken as the batch, so an unbatched
``(C, D, H, W)`` input gets one bit per ``(c, d)``; fewer than 2 dims raise.

The mask is data, as in :mod:`.dropout`: pass ``mask=`` (bool, broadcastable to the
mask shape) to impose one, e.g. torch's (``harness/dropout_masks.py``); otherwise it is
drawn from ``rng``.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import as_float_array
from .dropout import _check_mask, check_p, dropout_mask

__all__ = [
    "alpha_dropout", "alpha_dropout_backward", "feature_alpha_dropout",
    "feature_alpha_dropout_backward", "alpha_dropout_mask_shape",
]  # fmt: skip

# -alpha' = lambda * alpha of SELU, torch's literal: one ulp below the correctly rounded
# product of SELU's constants (1.7580993408473768), kept so the two match bit for bit
ALPHA = 1.7580993408473766


def alpha_dropout_mask_shape(input_shape: tuple[int, ...], feature: bool = False) -> tuple:
    """The keep-mask's shape: the input's, or ``(N, C, 1, ...)`` for ``feature`` (torch's
    ``make_feature_noise``: the first two dims, whatever the rank; at least 2 dims)."""
    if not feature:
        return tuple(input_shape)
    if len(input_shape) < 2:
        raise RuntimeError(
            f"feature_alpha_dropout: Feature dropout requires at least 2 dimensions in the "
            f"input, got shape {tuple(input_shape)}; use alpha_dropout for elementwise dropout"
        )
    return tuple(input_shape[:2]) + (1,) * (len(input_shape) - 2)


def _draws(p: float, training: bool, input: np.ndarray) -> bool:
    """Whether torch draws (and applies) a mask: training, 0 < p < 1, a non-empty input."""
    return training and 0 < p < 1 and input.size > 0


def _scale(p: float) -> float:
    """torch's ``a``, in double."""
    return 1.0 / math.sqrt((ALPHA * ALPHA * p + 1) * (1 - p))


def _alpha_dropout(input, p, training, mask, rng, feature, name):
    input = as_float_array(input, name)
    p = check_p(p, name)
    if not _draws(p, training, input):
        if training and p == 1:
            with np.errstate(invalid="ignore"):  # inf * 0 is NaN in torch too
                return input * input.dtype.type(0)
        return input.copy()  # torch returns the input itself; we never alias
    mask_shape = alpha_dropout_mask_shape(input.shape, feature)
    mask = dropout_mask(mask_shape, p, rng) if mask is None else _check_mask(mask, mask_shape, name)
    t = input.dtype.type
    a = _scale(p)
    # torch's steps in the input's dtype, each scalar rounded to it: b first, then x * (aM) + b
    keep = mask.astype(input.dtype)
    b = (keep - t(1)) * t(ALPHA * a) + t(ALPHA * a * p)
    with np.errstate(invalid="ignore"):  # a dropped inf: inf * 0 is NaN, as in torch
        return input * (keep * t(a)) + b


def _alpha_dropout_backward(grad_output, input, p, training, mask, feature, name):
    grad_output = as_float_array(grad_output, name, "grad_output")
    input = as_float_array(input, name)
    p = check_p(p, name)
    if grad_output.shape != input.shape:
        raise ValueError(
            f"{name}: grad_output must have the input's shape {input.shape}, got "
            f"{grad_output.shape}"
        )
    if not _draws(p, training, input):
        scale = 0 if training and p == 1 else 1
        with np.errstate(invalid="ignore"):
            return grad_output * grad_output.dtype.type(scale)
    if mask is None:
        raise ValueError(
            f"{name}: training with 0 < p < 1 needs the keep-mask the forward used: pass mask="
        )
    mask = _check_mask(mask, alpha_dropout_mask_shape(input.shape, feature), name)
    t = grad_output.dtype.type
    return grad_output * (mask.astype(grad_output.dtype) * t(_scale(p)))


def alpha_dropout(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Elementwise alpha dropout: :math:`y = x \cdot aM + (M - 1)\alpha a + \alpha a p`.

    ``mask``: the bool keep-mask, broadcastable to the input's shape; ``None`` draws one
    from ``rng`` (a Generator or a seed). ``training`` defaults to ``False``, as torch's
    functional. ``p`` outside [0, 1] raises ``ValueError``. Shapes: any input.
    Torch: ``torch.nn.functional.alpha_dropout``.
    """
    return _alpha_dropout(input, p, training, mask, rng, False, "alpha_dropout")


def alpha_dropout_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`alpha_dropout`: :math:`\partial L/\partial x = g \cdot a M`.

    The shift :math:`b` does not depend on :math:`x`, so only the scale of a kept unit
    passes the gradient; exact, including ``p = 1`` (zero) and evaluation (``g``).
    ``mask`` is the forward's (needed when it drew one).
    """
    return _alpha_dropout_backward(grad_output, input, p, training, mask, False,
                                   "alpha_dropout_backward")  # fmt: skip


def feature_alpha_dropout(
    input: np.ndarray,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    r"""Channel-wise alpha dropout: one keep bit per ``(n, c)``, mask ``(N, C, 1, ...)``.

    :math:`y_{nc\ldots} = x_{nc\ldots}\, a M_{nc} + (M_{nc} - 1)\alpha a + \alpha a p`.
    Dim 0 is the batch whatever the rank, as in torch (module docstring).
    Torch: ``torch.nn.functional.feature_alpha_dropout``.
    """
    return _alpha_dropout(input, p, training, mask, rng, True, "feature_alpha_dropout")


def feature_alpha_dropout_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    p: float = 0.5,
    training: bool = False,
    inplace: bool = False,
    *,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`feature_alpha_dropout`: :math:`g \cdot a M_{nc}`, the channel's bit
    broadcast over its positions."""
    return _alpha_dropout_backward(grad_output, input, p, training, mask, True,
                                   "feature_alpha_dropout_backward")  # fmt: skip
