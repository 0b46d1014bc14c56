r"""A seam for rounding *inside* a reduction, which an error model may sample.

A mean over :math:`m` terms computed in floating point carries an error that no
rounding of its terms or of its result shows: each addition of a sequential sum
rounds the partial sum :math:`S_k = \sum_{i \le k} a_i`, so

.. math::
    \mathrm{fl}\Big(\sum_i a_i\Big) - \sum_i a_i = \sum_k \delta_k S_k, \qquad |\delta_k| \le u,

which for a constant row of 256 values is some 10 :math:`u` of the mean, while the
mean itself is exactly one of the values. Where a layer subtracts such a statistic
from the data it came from (a normalization's :math:`x - \mu`), that error is the
layer's whole output over a constant channel.

The reference's own runs leave every statistic alone: :func:`statistic` returns its
argument. A harness that samples rounding histories (``harness.bounds``) installs a
sampler with :func:`sampling` for the length of one run, and each statistic then
gets one draw of the sum above.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

__all__ = ["statistic", "summed", "difference", "sampling", "partial_sum_magnitude"]

# (mean, terms, axes) -> the mean with one sampled rounding history of its sum
Sampler = Callable[[np.ndarray, np.ndarray, tuple[int, ...]], np.ndarray]

_sampler: ContextVar[Sampler | None] = ContextVar("reduction_rounding", default=None)


def statistic(mean: np.ndarray, terms: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``mean`` (of ``terms`` over ``axes``, kept as size-1 dims), as the installed sampler
    rounds it; unchanged when none is installed (every plain run)."""
    sampler = _sampler.get()
    return mean if sampler is None else sampler(mean, terms, axes)


def summed(terms: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The sum of ``terms`` over ``axes`` (kept as size-1 dims), through :func:`statistic`:
    for a loss or a gradient that adds many terms (a hinge over every pair of classes)."""
    axes = tuple(a % terms.ndim for a in axes)
    count = int(np.prod([terms.shape[a] for a in axes]))
    if count == 0 or _sampler.get() is None:  # a plain run, or an empty sum (0)
        return terms.sum(axis=axes, keepdims=True)
    return statistic(terms.mean(axis=axes, keepdims=True), terms, axes) * count


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a - b`` as a two-term sum (:func:`summed`; exactly ``a - b`` in a plain run): where
    the terms cancel (a Poisson rate meeting its count, a probability meeting its smoothed
    target), an error model samples the rounding at the size of the terms, not of the
    small result."""
    if _sampler.get() is None:
        return a - b
    a, b = np.broadcast_arrays(a, b)
    return summed(np.stack([a, -b], axis=-1), (-1,))[..., 0]


@contextmanager
def sampling(sampler: Sampler) -> Iterator[None]:
    """Within the block, every :func:`statistic` passes through ``sampler``."""
    token = _sampler.set(sampler)
    try:
        yield
    finally:
        _sampler.reset(token)


def partial_sum_magnitude(terms: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    r""":math:`\sqrt{\sum_k S_k^2} / m` over ``axes`` (kept as size-1 dims): the size of a
    sequential mean's rounding error in units of :math:`u` (its standard deviation is
    :math:`u / \sqrt 3` times this, for independent :math:`\delta_k`)."""
    kept = [a for a in range(terms.ndim) if a not in axes]
    m = int(np.prod([terms.shape[a] for a in axes]))
    moved = np.transpose(terms, (*kept, *axes)).astype(np.float64)  # (kept..., reduced...)
    rows = moved.reshape(*[terms.shape[a] for a in kept], m)  # (kept..., m)
    partial = np.cumsum(rows, axis=-1)
    size = np.sqrt(np.sum(partial * partial, axis=-1)) / max(m, 1)  # (kept...)
    shape = [1 if a in axes else terms.shape[a] for a in range(terms.ndim)]
    return size.reshape(shape)
