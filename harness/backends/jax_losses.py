"""The JAX backend's losses: each ``torch.nn`` loss as a pure function of JAX arrays.

:data:`LOSSES` maps a loss class name to a builder ``kwargs -> loss``, where
``loss(output, target)`` is written in ``jax.numpy`` with torch's semantics, defaults
and reductions; :mod:`harness.backends.jax` differentiates it with ``jax.vjp``. Where
JAX's autodiff would take another side than torch at a kink (``|x|'`` at 0), the
forward is written so that it takes torch's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.scipy.special import xlogy

__all__ = ["LOSSES", "Loss"]

# (output, target) -> loss
Loss = Callable[[Any, Any], Any]


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _elementwise(pointwise: Callable[[dict], Loss]) -> Callable[[dict], Loss]:
    """A loss that reduces ``pointwise(kwargs)(x, target)`` by its ``reduction``."""

    def build(kw: dict) -> Loss:
        fn, reduction = pointwise(kw), kw.get("reduction", "mean")
        return lambda x, t: _reduce(fn(x, t), reduction)

    return build


def _l1(kw: dict) -> Loss:
    """``|x - t|`` with torch's gradient ``sign(x - t)``, so 0 where ``x == t`` (JAX's
    ``abs`` has derivative 1 at 0)."""

    def f(x, t):
        d = x - t
        return jnp.where(d > 0, d, jnp.where(d < 0, -d, 0 * d))

    return f


def _smooth_l1(kw: dict) -> Loss:
    beta = kw.get("beta", 1.0)
    if beta == 0:  # torch: exactly the L1 loss
        return _l1(kw)

    def f(x, t):
        d = x - t
        return jnp.where(jnp.abs(d) < beta, 0.5 * d * d / beta, jnp.abs(d) - 0.5 * beta)

    return f


def _huber(kw: dict) -> Loss:
    delta = kw.get("delta", 1.0)

    def f(x, t):
        d = x - t
        return jnp.where(jnp.abs(d) <= delta, 0.5 * d * d, delta * (jnp.abs(d) - 0.5 * delta))

    return f


def _kl_div(kw: dict) -> Loss:
    log_target, reduction = kw.get("log_target", False), kw.get("reduction", "mean")

    def f(x, t):
        pointwise = jnp.exp(t) * (t - x) if log_target else xlogy(t, t) - t * x
        if reduction == "batchmean":
            return pointwise.sum() / (x.shape[0] if x.ndim else 1)
        return _reduce(pointwise, reduction)

    return f


def _weighted(kw: dict, key: str, x: Any) -> Any:
    value = kw.get(key)
    return None if value is None else jnp.asarray(value, dtype=x.dtype)


def _bce(kw: dict) -> Loss:
    """Torch's forward, each log clamped at -100 (log 0 = -inf); the gradient is JAX's
    derivative of it, torch's formula wherever no clamp is active."""

    def f(x, t):
        log_x = jnp.where(x > 0, jnp.log(jnp.where(x > 0, x, 1.0)), -jnp.inf)
        log_1mx = jnp.where(x < 1, jnp.log1p(-jnp.where(x < 1, x, 0.0)), -jnp.inf)
        loss = (t - 1) * jnp.maximum(log_1mx, -100) - t * jnp.maximum(log_x, -100)
        weight = _weighted(kw, "weight", x)
        return loss if weight is None else loss * weight

    return f


def _bce_logits(kw: dict) -> Loss:
    def f(x, t):
        pos_weight, weight = _weighted(kw, "pos_weight", x), _weighted(kw, "weight", x)
        log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * t
        # softplus(-x) by JAX's logaddexp: torch's log1p(exp(-|x|)) + max(-x, 0) would
        # differentiate to -1, not -1/2, at x = 0 under JAX's |x|' = 1 and max's halving
        loss = (1 - t) * x + log_weight * jnp.logaddexp(-x, 0.0)
        return loss if weight is None else loss * weight

    return f


def _class_setup(kw: dict, x: Any) -> tuple[int, int, Any]:
    """Class dim (0 unbatched, else 1), class count, and the class weights ``(C,)``."""
    dim = 0 if x.ndim == 1 else 1
    weight = _weighted(kw, "weight", x)
    return dim, x.shape[dim], jnp.ones(x.shape[dim], x.dtype) if weight is None else weight


def _nll(kw: dict) -> Loss:
    ignore, reduction = kw.get("ignore_index", -100), kw.get("reduction", "mean")

    def f(x, t):
        dim, _, w = _class_setup(kw, x)
        counted = t != ignore
        safe = jnp.where(counted, t, 0)
        picked = jnp.take_along_axis(x, jnp.expand_dims(safe, dim), axis=dim).squeeze(dim)
        sample_weight = jnp.where(counted, w[safe], 0)
        loss = -sample_weight * picked
        return loss.sum() / sample_weight.sum() if reduction == "mean" else _reduce(loss, reduction)

    return f


def _cross_entropy(kw: dict) -> Loss:
    """``-sum_c q_c log_softmax(x)_c`` with torch's target distribution ``q``: the weighted,
    smoothed one-hot of a class index (zero where ignored), or the weighted, smoothed
    probabilities; 'mean' divides by the counted weights, or by the sample count."""
    ignore, reduction = kw.get("ignore_index", -100), kw.get("reduction", "mean")
    smoothing = kw.get("label_smoothing", 0.0)

    def f(x, t):
        dim, classes, w = _class_setup(kw, x)
        w_c = w.reshape((-1,) + (1,) * (x.ndim - dim - 1))  # along the class dim
        if jnp.issubdtype(t.dtype, jnp.floating):
            q = w_c * ((1 - smoothing) * t + smoothing / classes)
            denominator = t.size // classes
        else:
            counted = t != ignore
            safe = jnp.expand_dims(jnp.where(counted, t, 0), dim)
            one_hot = (safe == jnp.arange(classes).reshape(w_c.shape)).astype(x.dtype)
            keep = jnp.expand_dims(counted, dim).astype(x.dtype)
            q = w_c * ((1 - smoothing) * one_hot + smoothing / classes) * keep
            denominator = jnp.where(counted, w[jnp.where(counted, t, 0)], 0).sum()
        loss = -(q * jax.nn.log_softmax(x, axis=dim)).sum(axis=dim)
        return loss.sum() / denominator if reduction == "mean" else _reduce(loss, reduction)

    return f


LOSSES: dict[str, Callable[[dict], Loss]] = {
    "MSELoss": _elementwise(lambda kw: lambda x, t: (x - t) ** 2),
    "L1Loss": _elementwise(_l1),
    "SmoothL1Loss": _elementwise(_smooth_l1),
    "HuberLoss": _elementwise(_huber),
    "KLDivLoss": _kl_div,
    "BCELoss": _elementwise(_bce),
    "BCEWithLogitsLoss": _elementwise(_bce_logits),
    "NLLLoss": _nll,
    "CrossEntropyLoss": _cross_entropy,
}
