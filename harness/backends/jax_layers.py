"""The JAX backend's layers: each ``torch.nn`` class as a pure function of JAX arrays.

:data:`BUILDERS` maps a class name to a builder ``(kwargs, train) -> forward``, where
``forward(x, params, buffers) -> (y, buffers)`` is written in ``jax.numpy`` and
``jax.lax`` with torch's semantics (and torch's defaults for absent kwargs). ``params``
and ``buffers`` hold the layer's ``state_dict`` entries by their torch names (an absent
``bias`` is simply not there); ``buffers`` come back updated (running statistics). The
gradients are JAX's own: :mod:`harness.backends.jax` differentiates these functions
with ``jax.vjp``, so nothing here writes a backward. This module holds the activations,
the dense, shape and normalization layers; the convolutions and pools are
:mod:`harness.backends.jax_conv`'s, registered here too.

Where JAX's autodiff would pick a different value than torch at a kink (``maximum``
splits a tie's gradient in half), the forward is written with ``jnp.where`` so that
the branch torch differentiates is the one taken; a branch that is not taken sees a
safe argument, so its (masked) gradient cannot be 0 * inf.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from .jax_conv import CONV_BUILDERS, HIGHEST, Forward, as_tuple, channel, stateless

__all__ = ["ACTIVATIONS", "BUILDERS", "BUFFER_NAMES", "Forward"]

BUFFER_NAMES = ("running_mean", "running_var", "num_batches_tracked")
_DROPOUT = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d")


# -- elementwise activations -------------------------------------------------------------
def _safe(cond: Any, x: Any, fill: float = 0.0) -> Any:
    """``x`` where ``cond``, else ``fill``: the argument of a branch used only where ``cond``."""
    return jnp.where(cond, x, fill)


def _hardtanh(lo: float, hi: float) -> Callable[[Any], Any]:
    # torch passes the gradient only strictly inside (lo, hi)
    return lambda x: jnp.where(x <= lo, lo, jnp.where(x >= hi, hi, x)).astype(x.dtype)


def _elu(alpha: float, scale: float = 1.0, inner: float = 1.0) -> Callable[[Any], Any]:
    """``scale * (x if x > 0 else alpha * expm1(x / inner))``: ELU (inner 1), CELU (inner
    alpha), SELU (scale); at x = 0 the negative branch's slope, as torch."""

    def f(x):
        negative = alpha * jnp.expm1(_safe(x <= 0, x) / inner)
        return scale * jnp.where(x > 0, x, negative)

    return f


def _softplus(beta: float, threshold: float) -> Callable[[Any], Any]:
    def f(x):
        z = x * beta
        smooth = jnp.log1p(jnp.exp(_safe(z <= threshold, z))) / beta
        return jnp.where(z > threshold, x, smooth)  # at z == threshold torch takes the log

    return f


def _logsigmoid(x: Any) -> Any:
    """``-log(1 + e^-x)``, each branch on the side where its exponential cannot overflow."""
    neg, pos = _safe(x < 0, x), _safe(x >= 0, x)
    return jnp.where(x < 0, neg - jnp.log1p(jnp.exp(neg)), -jnp.log1p(jnp.exp(-pos)))


def _gelu(approximate: str) -> Callable[[Any], Any]:
    if approximate == "tanh":
        # 0.5 x (1 + tanh u) = x sigmoid(2u): the same function, without 1 + tanh's
        # cancellation for x < 0
        c = math.sqrt(2 / math.pi)
        return lambda x: x * jax.nn.sigmoid(2 * c * (x + 0.044715 * x * x * x))
    if approximate != "none":
        raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
    # Phi(x) = erfc(-x / sqrt 2) / 2 = (1 + erf(x / sqrt 2)) / 2, accurate for x < 0 too
    return lambda x: x * (0.5 * lax.erfc(-x * (1 / math.sqrt(2))))


def _softmax_dim(dim: Any, ndim: int) -> int:
    return (0 if ndim in (0, 1, 3) else 1) if dim is None else dim  # torch's legacy default


def _activation(kw: dict, name: str) -> Callable[[Any], Any]:
    """The elementwise function of activation ``name`` with torch's kwargs and defaults."""
    alpha = kw.get("alpha", 1.0)
    table: dict[str, Callable[[], Callable[[Any], Any]]] = {
        "ReLU": lambda: lambda x: jnp.where(x > 0, x, 0).astype(x.dtype),
        "ReLU6": lambda: _hardtanh(0.0, 6.0),
        "Hardtanh": lambda: _hardtanh(kw.get("min_val", -1.0), kw.get("max_val", 1.0)),
        "LeakyReLU": lambda: lambda x: jnp.where(x > 0, x, x * kw.get("negative_slope", 0.01)),
        "Tanh": lambda: jnp.tanh,
        "Sigmoid": lambda: jax.nn.sigmoid,
        "Identity": lambda: lambda x: x,
        "ELU": lambda: _elu(alpha),
        "CELU": lambda: _elu(alpha, inner=alpha),
        "SELU": lambda: _elu(1.6732632423543772848170429916717, 1.0507009873554804934193349852946),
        "SiLU": lambda: lambda x: x * jax.nn.sigmoid(x),
        "Mish": lambda: lambda x: x * jnp.tanh(jnp.logaddexp(x, 0.0)),
        "GELU": lambda: _gelu(kw.get("approximate", "none")),
        "Softplus": lambda: _softplus(kw.get("beta", 1.0), kw.get("threshold", 20.0)),
        "Softsign": lambda: lambda x: x / (1 + jnp.abs(x)),
        "Hardsigmoid": lambda: lambda x: jnp.where(x <= -3, 0, jnp.where(x >= 3, 1, (x + 3) / 6)),
        "Hardswish": lambda: lambda x: jnp.where(x <= -3, 0, jnp.where(x >= 3, x, x * (x + 3) / 6)),
        "LogSigmoid": lambda: _logsigmoid,
        "Softmax": lambda: lambda x: jax.nn.softmax(x, axis=_softmax_dim(kw.get("dim"), x.ndim)),
        "LogSoftmax": lambda: (
            lambda x: jax.nn.log_softmax(x, axis=_softmax_dim(kw.get("dim"), x.ndim))
        ),
    }
    fn = table[name]()
    return lambda x: fn(x).astype(x.dtype)


ACTIVATIONS = (
    "ReLU ReLU6 Hardtanh LeakyReLU Tanh Sigmoid Identity ELU CELU SELU SiLU Mish GELU "
    "Softplus Softsign Hardsigmoid Hardswish LogSigmoid Softmax LogSoftmax"
).split()


# -- dense and shape -----------------------------------------------------------------------
def _linear(kw: dict, train: bool) -> Forward:
    def f(x, p, b):
        y = jnp.matmul(x, p["weight"].T, precision=HIGHEST)
        return (y + p["bias"] if "bias" in p else y), b

    return f


def _flatten(kw: dict, train: bool) -> Forward:
    start, end = kw.get("start_dim", 1), kw.get("end_dim", -1)

    def f(x):
        s, e = start % x.ndim, end % x.ndim
        return x.reshape(x.shape[:s] + (-1,) + x.shape[e + 1 :])

    return stateless(f)


def _unflatten(kw: dict, train: bool) -> Forward:
    dim, sizes = kw["dim"], tuple(kw["unflattened_size"])

    def f(x):
        d = dim % x.ndim
        return x.reshape(x.shape[:d] + sizes + x.shape[d + 1 :])

    return stateless(f)


def _dropout(kw: dict, train: bool) -> Forward:
    if train:
        raise ValueError(
            "the jax backend runs dropout in eval mode only (it shares no masks with the "
            "reference); training-mode dropout cases are skipped"
        )
    return stateless(lambda x: x)


def _embedding(kw: dict, train: bool) -> Forward:
    if kw.get("max_norm") is not None or kw.get("scale_grad_by_freq", False):
        raise ValueError("the jax backend's Embedding has no max_norm or scale_grad_by_freq")
    pad = kw.get("padding_idx")
    pad = None if pad is None else int(pad) % int(kw["num_embeddings"])

    def f(x, p, b):
        w = p["weight"]
        if pad is not None:  # torch sends no gradient to the padding row
            w = w.at[pad].set(lax.stop_gradient(w[pad]))
        return jnp.take(w, x, axis=0), b

    return f


# -- normalization ---------------------------------------------------------------------------
def _normalize(x: Any, axes: tuple[int, ...], eps: float) -> tuple[Any, Any, Any]:
    """``(x_hat, mean, biased var)`` over ``axes`` (kept as size-1 dims), two passes."""
    mean = x.mean(axis=axes, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axes, keepdims=True)
    return centered * lax.rsqrt(var + eps), mean, var


def _affine(y: Any, p: dict, shape: Callable[[Any], Any]) -> Any:
    if "weight" in p:
        y = y * shape(p["weight"])
    return y + shape(p["bias"]) if "bias" in p else y


def _layer_norm(kw: dict, train: bool) -> Forward:
    normalized = as_tuple(kw["normalized_shape"], 1)
    eps = kw.get("eps", 1e-5)

    def f(x, p, b):
        y, _, _ = _normalize(x, tuple(range(x.ndim - len(normalized), x.ndim)), eps)
        return _affine(y, p, lambda v: v), b

    return f


def _group_norm(kw: dict, train: bool) -> Forward:
    groups, eps = kw["num_groups"], kw.get("eps", 1e-5)

    def f(x, p, b):
        grouped = x.reshape(x.shape[0], groups, -1)
        y = _normalize(grouped, (2,), eps)[0].reshape(x.shape)
        return _affine(y, p, lambda v: channel(v, x.ndim)), b

    return f


def _running(b: dict, factor: Any, mean: Any, unbiased: Any) -> dict:
    """Torch's update ``(1 - factor) * running + factor * batch_value``, both statistics."""
    out = dict(b)
    out["running_mean"] = (1 - factor) * b["running_mean"] + factor * mean
    out["running_var"] = (1 - factor) * b["running_var"] + factor * unbiased
    return out


def _eval_norm(x: Any, b: dict, eps: float) -> Any:
    mean, var = channel(b["running_mean"], x.ndim), channel(b["running_var"], x.ndim)
    return (x - mean) * lax.rsqrt(var + eps)


def _batch_norm(kw: dict, train: bool) -> Forward:
    """BatchNorm1d/2d: batch statistics in training (and without running statistics),
    the running ones in evaluation; a training forward updates them with ``momentum``,
    or ``1 / num_batches_tracked`` for ``momentum=None``, and counts itself."""
    eps, momentum = kw.get("eps", 1e-5), kw.get("momentum", 0.1)

    def f(x, p, b):
        if not train and "running_mean" in b:
            return _affine(_eval_norm(x, b, eps), p, lambda v: channel(v, x.ndim)), b
        axes = (0,) + tuple(range(2, x.ndim))
        y, mean, var = _normalize(x, axes, eps)
        if train and "running_mean" in b:
            count = b["num_batches_tracked"] + 1
            factor = 1.0 / count.astype(x.dtype) if momentum is None else momentum
            m = x.size // x.shape[1]
            b = _running(b, factor, mean.reshape(-1), var.reshape(-1) * (m / (m - 1)))
            b["num_batches_tracked"] = count
        return _affine(y, p, lambda v: channel(v, x.ndim)), b

    return f


def _instance_norm(kw: dict, train: bool) -> Forward:
    """InstanceNorm1d/2d: per-sample statistics, unless evaluating with running ones; a
    training forward updates those with the batch average of the per-sample statistics
    (``momentum=None``: a factor 0) and never counts ``num_batches_tracked`` (torch)."""
    eps, momentum = kw.get("eps", 1e-5), kw.get("momentum", 0.1)

    def f(x, p, b):
        if not train and "running_mean" in b:
            return _affine(_eval_norm(x, b, eps), p, lambda v: channel(v, x.ndim)), b
        y, mean, var = _normalize(x, tuple(range(2, x.ndim)), eps)
        if train and "running_mean" in b:
            m = math.prod(x.shape[2:])
            n, c = x.shape[:2]
            unbiased = var.reshape(n, c) * (m / (m - 1))
            factor = 0.0 if momentum is None else momentum
            b = _running(b, factor, mean.reshape(n, c).mean(0), unbiased.mean(0))
        return _affine(y, p, lambda v: channel(v, x.ndim)), b

    return f


def _activation_layer(kw: dict, train: bool, name: str) -> Forward:
    return stateless(_activation(kw, name))


BUILDERS: dict[str, Callable[[dict, bool], Forward]] = {
    "Linear": _linear,
    "Flatten": _flatten,
    "Unflatten": _unflatten,
    "Embedding": _embedding,
    "LayerNorm": _layer_norm,
    "GroupNorm": _group_norm,
    "BatchNorm1d": _batch_norm,
    "BatchNorm2d": _batch_norm,
    "InstanceNorm1d": _instance_norm,
    "InstanceNorm2d": _instance_norm,
    **{name: _dropout for name in _DROPOUT},
    **CONV_BUILDERS,
    **{name: functools.partial(_activation_layer, name=name) for name in ACTIVATIONS},
}
