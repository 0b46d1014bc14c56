"""``CosineSimilarity`` and ``PairwiseDistance``: the modules around
:mod:`reference.functional.distance`.

No parameters. Attribute names are torch's (``PairwiseDistance`` keeps ``p`` as
``norm``); ``forward(x1, x2)`` broadcasts the two inputs and ``backward(grad_output)``
returns ``(grad_x1, grad_x2)``, each of its input's shape.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..functional.distance import (
    cosine_similarity,
    cosine_similarity_backward,
    pairwise_distance,
    pairwise_distance_backward,
)
from .module import Module

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    r"""``torch.nn.CosineSimilarity``: :math:`\sum_{\text{dim}} \frac{x_1}{\max(\lVert
    x_1\rVert, \epsilon)} \frac{x_2}{\max(\lVert x_2\rVert, \epsilon)}`; see
    :func:`~reference.functional.cosine_similarity`."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim, self.eps = dim, eps
        self._inputs: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x1: Any, x2: Any) -> np.ndarray:
        output = cosine_similarity(x1, x2, self.dim, self.eps)
        self._inputs = (np.asarray(x1), np.asarray(x2))
        return output

    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
        x1, x2 = self._require_cache(self._inputs)
        return cosine_similarity_backward(grad_output, x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    r"""``torch.nn.PairwiseDistance``: :math:`\lVert x_1 - x_2 + \epsilon\rVert_p` over the
    last dim; see :func:`~reference.functional.pairwise_distance`. ``p`` is stored as
    ``norm``, as in torch."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm, self.eps, self.keepdim = p, eps, keepdim
        self._inputs: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, x1: Any, x2: Any) -> np.ndarray:
        output = pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
        self._inputs = (np.asarray(x1), np.asarray(x2))
        return output

    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
        x1, x2 = self._require_cache(self._inputs)
        return pairwise_distance_backward(grad_output, x1, x2, self.norm, self.eps, self.keepdim)
