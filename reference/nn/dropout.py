"""``Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``: modules around
:mod:`reference.functional.dropout`; ``AlphaDropout``, ``FeatureAlphaDropout`` around
:mod:`reference.functional.alpha_dropout`, with the same ``mask`` mechanism.

Each training forward draws a keep-mask from the module's own generator (``rng``,
keyword-only: a Generator or a seed) unless one was imposed: set ``module.mask``
to a bool array (the input's shape for ``Dropout``, ``(N, C, 1, ...)`` for the
channel-wise kinds, or anything broadcastable to it) and the next training forward
uses it instead of drawing, then clears ``mask`` back to ``None``. ``last_mask``
keeps the mask the last forward used (``None`` after an evaluation forward). That
is how a differential run makes both libraries drop the same units: the harness
reads torch's mask (``harness/dropout_masks.py``) and imposes it here.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from ..functional.dropout import check_p, dropout_mask, dropout_mask_shape
from .init import resolve_rng
from .module import Module

__all__ = [
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
]  # fmt: skip


class _DropoutNd(Module):
    _kind = "dropout"

    def __init__(
        self, p: float = 0.5, inplace: bool = False, *, rng: np.random.Generator | int | None = None
    ):
        super().__init__()
        self.p = check_p(p, type(self).__name__)
        self.inplace = inplace
        self.rng = resolve_rng(rng)
        self.mask: np.ndarray | None = None
        self.last_mask: np.ndarray | None = None
        self._cache: tuple | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        functional = getattr(F, self._kind)
        if self.p == 0 and self.mask is None and self._kind == "dropout":
            # p = 0 keeps everything: torch returns the input itself, without a draw
            self.last_mask, self._cache = None, (input.shape, None)
            return input
        if not self.training:
            self.last_mask = None
            output = functional(input, self.p, training=False)
        else:
            mask = self.mask
            if mask is None:
                mask = dropout_mask(dropout_mask_shape(input.shape, self._kind), self.p, self.rng)
            output = functional(input, self.p, training=True, mask=mask)
            self.mask, self.last_mask = None, np.asarray(mask)
        self._cache = (input.shape, self.last_mask)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        shape, mask = self._require_cache(self._cache)
        grad_output = as_float_array(grad_output, repr(self), "grad_output")
        if grad_output.shape != shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape "
                f"{shape}, got {grad_output.shape}"
            )
        if mask is None and self.p == 0:
            return grad_output  # the identity's gradient, as the forward returned its input
        return F.dropout_backward(grad_output, mask, self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """``torch.nn.Dropout``: zero each element with probability ``p``, scale the rest by
    ``1/(1-p)`` in training; the identity in evaluation. Any input shape."""

    _kind = "dropout"


class Dropout1d(_DropoutNd):
    """``torch.nn.Dropout1d``: zero whole channels of ``(N, C, L)`` or ``(C, L)`` input."""

    _kind = "dropout1d"


class Dropout2d(_DropoutNd):
    """``torch.nn.Dropout2d``: zero whole channels of ``(N, C, H, W)`` input.

    As torch does, a 3-D input is taken as ``(N, C, L)`` with a warning (not as an
    unbatched ``(C, H, W)``), and other ranks are deprecated (also a warning).
    """

    _kind = "dropout2d"


class Dropout3d(_DropoutNd):
    """``torch.nn.Dropout3d``: zero whole channels of ``(N, C, D, H, W)`` or ``(C, D, H, W)``."""

    _kind = "dropout3d"


class _AlphaDropoutNd(_DropoutNd):
    """Alpha dropout's plumbing: ``mask``/``last_mask`` as above; torch draws no mask for
    ``p = 0``, ``p = 1``, an empty input or evaluation, and neither do we (``last_mask``
    is then ``None``; an imposed mask is still cleared by a training forward)."""

    _feature = False

    def _functionals(self):
        if self._feature:
            return F.feature_alpha_dropout, F.feature_alpha_dropout_backward
        return F.alpha_dropout, F.alpha_dropout_backward

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        functional = self._functionals()[0]
        mask = None
        if self.training and 0 < self.p < 1 and input.size > 0:
            mask = self.mask
            if mask is None:
                shape = F.alpha_dropout_mask_shape(input.shape, self._feature)
                mask = dropout_mask(shape, self.p, self.rng)
            mask = np.asarray(mask)
        output = functional(input, self.p, self.training, mask=mask)
        if self.training:
            self.mask = None
        self.last_mask = mask
        self._cache = (input, self.training, mask)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, training, mask = self._require_cache(self._cache)
        grad_output = as_float_array(grad_output, repr(self), "grad_output")
        if grad_output.shape != input.shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape "
                f"{input.shape}, got {grad_output.shape}"
            )
        return self._functionals()[1](grad_output, input, self.p, training, mask=mask)


class AlphaDropout(_AlphaDropoutNd):
    """``torch.nn.AlphaDropout``: a dropped element becomes SELU's saturation value, then
    an affine map keeps mean 0 and variance 1 (:func:`~reference.functional.alpha_dropout`);
    the identity in evaluation. Any input shape."""

    _feature = False


class FeatureAlphaDropout(_AlphaDropoutNd):
    """``torch.nn.FeatureAlphaDropout``: alpha dropout of whole channels, one keep bit per
    ``(dim 0, dim 1)`` pair (torch takes dim 0 as the batch at every rank; at least 2-D)."""

    _feature = True
