"""The JAX backend's optimizers: torch.optim's single-tensor rules in ``jax.numpy``.

:data:`OPTIMIZERS` maps an optimizer class name to ``(defaults, state, coefficients,
update)``: torch's default hyperparameters; ``state(h)``, the state arrays' names and
initial values; ``coefficients(h, step)``, the step's scalars, which torch computes in
Python floats (bias corrections, NAdam's momentum products) and so does this; and
``update(h, p, g, state, c) -> (p, state)``, the rule for one tensor, ``h`` the
hyperparameters and ``c`` the coefficients. :func:`compiled_update` is one ``jax.jit``
program stepping every parameter of a network at once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["OPTIMIZERS", "compiled_update"]


def _lerp(start: Any, end: Any, weight: float) -> Any:
    """``torch.lerp``'s rounding: from the nearer end."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def _prepare(h: dict, p: Any, g: Any, decoupled: bool = False) -> tuple[Any, Any]:
    """Maximize, then the weight decay: L2 into the gradient, or decoupled into ``p``."""
    g = -g if h["maximize"] else g
    if h["weight_decay"]:
        if decoupled:
            return p * (1 - h["lr"] * h["weight_decay"]), g
        g = g + h["weight_decay"] * p
    return p, g


def _square_avg(avg: Any, g: Any, beta: float) -> Any:
    return avg * beta + (1 - beta) * g * g


def _sgd(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g)
    momentum = h["momentum"]
    if momentum:  # the first step copies the gradient into the buffer, undamped
        buf = momentum * s["momentum_buffer"] + (1 - h["dampening"]) * g
        buf = jnp.where(c["first"] > 0, g, buf)
        s = {"momentum_buffer": buf}
        g = g + momentum * buf if h["nesterov"] else buf
    return p - h["lr"] * g, s


def _adam(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g, h["decoupled_weight_decay"])
    beta1, beta2 = h["betas"]
    out = {"exp_avg": _lerp(s["exp_avg"], g, 1 - beta1),
           "exp_avg_sq": _square_avg(s["exp_avg_sq"], g, beta2)}  # fmt: skip
    second = out["exp_avg_sq"]
    if h["amsgrad"]:  # the running maximum of the raw second moment, bias-corrected
        second = out["max_exp_avg_sq"] = jnp.maximum(s["max_exp_avg_sq"], second)
    denom = jnp.sqrt(second) / c["bc2_sqrt"] + h["eps"]
    return p - c["step_size"] * (out["exp_avg"] / denom), out


def _rmsprop(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g)
    out = {"square_avg": _square_avg(s["square_avg"], g, h["alpha"])}
    if h["centered"]:
        out["grad_avg"] = _lerp(s["grad_avg"], g, 1 - h["alpha"])
        avg = jnp.sqrt(out["square_avg"] - out["grad_avg"] * out["grad_avg"]) + h["eps"]
    else:
        avg = jnp.sqrt(out["square_avg"]) + h["eps"]
    if h["momentum"] > 0:
        out["momentum_buffer"] = s["momentum_buffer"] * h["momentum"] + g / avg
        return p - h["lr"] * out["momentum_buffer"], out
    return p - h["lr"] * (g / avg), out


def _adagrad(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g)
    total = s["sum"] + g * g
    return p - c["clr"] * (g / (jnp.sqrt(total) + h["eps"])), {"sum": total}


def _adadelta(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g)
    rho, eps = h["rho"], h["eps"]
    square_avg = _square_avg(s["square_avg"], g, rho)
    delta = jnp.sqrt(s["acc_delta"] + eps) / jnp.sqrt(square_avg + eps) * g
    out = {"square_avg": square_avg, "acc_delta": _square_avg(s["acc_delta"], delta, rho)}
    return p - h["lr"] * delta, out


def _adamax(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g)
    beta1, beta2 = h["betas"]
    exp_avg = _lerp(s["exp_avg"], g, 1 - beta1)
    exp_inf = jnp.maximum(s["exp_inf"] * beta2, jnp.abs(g) + h["eps"])
    return p - c["clr"] * (exp_avg / exp_inf), {"exp_avg": exp_avg, "exp_inf": exp_inf}


def _nadam(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g, h["decoupled_weight_decay"])
    beta1, beta2 = h["betas"]
    out = {"exp_avg": _lerp(s["exp_avg"], g, 1 - beta1),
           "exp_avg_sq": _square_avg(s["exp_avg_sq"], g, beta2)}  # fmt: skip
    denom = jnp.sqrt(out["exp_avg_sq"] / c["bc2"]) + h["eps"]
    p = p - c["grad_scale"] * (g / denom)
    return p - c["avg_scale"] * (out["exp_avg"] / denom), out


def _radam(h: dict, p: Any, g: Any, s: dict, c: dict) -> tuple[Any, dict]:
    p, g = _prepare(h, p, g, h["decoupled_weight_decay"])
    beta1, beta2 = h["betas"]
    out = {"exp_avg": _lerp(s["exp_avg"], g, 1 - beta1),
           "exp_avg_sq": _square_avg(s["exp_avg_sq"], g, beta2)}  # fmt: skip
    corrected = out["exp_avg"] / c["bc1"]
    adaptive = c["bc2_sqrt"] / (jnp.sqrt(out["exp_avg_sq"]) + h["eps"])
    rectified = p - corrected * h["lr"] * adaptive * c["rect"]
    return jnp.where(c["rectify"] > 0, rectified, p - corrected * h["lr"]), out


def _adam_coefficients(h: dict, step: int) -> dict:
    beta1, beta2 = h["betas"]
    return {"step_size": h["lr"] / (1 - beta1**step), "bc2_sqrt": (1 - beta2**step) ** 0.5}


def _nadam_coefficients(h: dict, step: int) -> dict:
    beta1, beta2 = h["betas"]

    def mu(t: int) -> float:
        return beta1 * (1.0 - 0.5 * 0.96 ** (t * h["momentum_decay"]))

    product = float(np.prod([mu(t) for t in range(1, step + 1)]))  # torch's mu_product
    return {
        "bc2": 1 - beta2**step,
        "grad_scale": h["lr"] * (1.0 - mu(step)) / (1.0 - product),
        "avg_scale": h["lr"] * mu(step + 1) / (1.0 - product * mu(step + 1)),
    }


def _radam_coefficients(h: dict, step: int) -> dict:
    beta1, beta2 = h["betas"]
    bc2 = 1 - beta2**step
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * step * beta2**step / bc2
    rect = 0.0
    if rho_t > 5.0:  # the variance is tractable: rectify (else plain momentum)
        rect = (
            (rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)
        ) ** 0.5
    return {"bc1": 1 - beta1**step, "bc2_sqrt": bc2**0.5, "rect": rect,
            "rectify": float(rho_t > 5.0)}  # fmt: skip


def _defaults(**kwargs: Any) -> dict:
    return {"weight_decay": 0, "maximize": False, **kwargs}


def _moments(h: dict) -> dict:
    return {
        "exp_avg": 0.0,
        "exp_avg_sq": 0.0,
        **({"max_exp_avg_sq": 0.0} if h.get("amsgrad") else {}),
    }


def _rmsprop_state(h: dict) -> dict:
    return {"square_avg": 0.0, **({"momentum_buffer": 0.0} if h["momentum"] > 0 else {}),
            **({"grad_avg": 0.0} if h["centered"] else {})}  # fmt: skip


def _no_coefficients(h: dict, step: int) -> dict:
    return {}


_BETAS = _defaults(lr=2e-3, betas=(0.9, 0.999), eps=1e-8)
_ADAM = {**_BETAS, "lr": 1e-3, "amsgrad": False, "decoupled_weight_decay": False}

# name -> (defaults, state(h): name -> initial value, coefficients(h, step), update)
OPTIMIZERS: dict[str, tuple[dict, Callable, Callable, Callable]] = {
    "SGD": (
        _defaults(lr=1e-3, momentum=0, dampening=0, nesterov=False),
        lambda h: {"momentum_buffer": 0.0} if h["momentum"] else {},
        lambda h, step: {"first": float(step == 1)},
        _sgd,
    ),
    "Adam": (_ADAM, _moments, _adam_coefficients, _adam),
    "AdamW": (
        {**_ADAM, "weight_decay": 1e-2, "decoupled_weight_decay": True},
        _moments,
        _adam_coefficients,
        _adam,
    ),
    "RMSprop": (
        _defaults(lr=1e-2, alpha=0.99, eps=1e-8, momentum=0, centered=False),
        _rmsprop_state,
        _no_coefficients,
        _rmsprop,
    ),
    "Adagrad": (
        _defaults(lr=1e-2, lr_decay=0, initial_accumulator_value=0, eps=1e-10),
        lambda h: {"sum": float(h["initial_accumulator_value"])},
        lambda h, step: {"clr": h["lr"] / (1 + (step - 1) * h["lr_decay"])},
        _adagrad,
    ),
    "Adadelta": (
        _defaults(lr=1.0, rho=0.9, eps=1e-6),
        lambda h: {"square_avg": 0.0, "acc_delta": 0.0},
        _no_coefficients,
        _adadelta,
    ),
    "Adamax": (
        _BETAS,
        lambda h: {"exp_avg": 0.0, "exp_inf": 0.0},
        lambda h, step: {"clr": h["lr"] / (1 - h["betas"][0] ** step)},
        _adamax,
    ),
    "NAdam": (
        {**_BETAS, "momentum_decay": 4e-3, "decoupled_weight_decay": False},
        _moments,
        _nadam_coefficients,
        _nadam,
    ),
    "RAdam": (
        {**_BETAS, "lr": 1e-3, "decoupled_weight_decay": False},
        _moments,
        _radam_coefficients,
        _radam,
    ),
}


@functools.lru_cache(maxsize=256)
def compiled_update(type_: str, hyper: tuple) -> Callable:
    """Every parameter's update at once: ``(params, grads, states, c) -> (params, states)``,
    each a list over layers of dicts by parameter name."""
    rule = functools.partial(OPTIMIZERS[type_][3], dict(hyper))

    def update(params, grads, states, c):
        stepped = [
            {n: rule(p[n], g[n], s[n], c) for n in p} for p, g, s in zip(params, grads, states)
        ]
        return ([{n: v[0] for n, v in layer.items()} for layer in stepped],
                [{n: v[1] for n, v in layer.items()} for layer in stepped])  # fmt: skip

    return jax.jit(update)
