"""``Dropout``, ``Dropout1d``, ``Dropout2d``, ``Dropout3d``: modules around
:mod:`reference.functional.dropout`.

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

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


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
