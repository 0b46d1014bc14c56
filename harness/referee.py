"""A referee for float64 disagreements: recompute the diverging layer in long double.

When torch in float64 and the reference in float64 part by more than rounding allows,
neither side is the truth: the float64 reference is what the harness compares against,
but it is only a second opinion. This module recomputes the *one* layer (or the loss)
where the two first diverge in ``np.longdouble`` (80-bit extended on x86: 11 more bits
than float64), on that layer's input as the float64 reference run saw it, and blames the
side that lies farther from the higher-precision result. A wrong constant in torch (a
float32 ``1/6`` in a float64 kernel) or in the reference then shows as an error many
times the other side's, both measured against a value that float64 rounding alone
cannot reach.

The recomputation runs the reference's own formulas, only in a wider dtype, so it
catches rounding and constant bugs, not a formula that is wrong in any precision (the
gradcheck of ``harness.gradcheck_sides`` is for that). A transcendental function
(``exp``, ``tanh``, ``log1p``, ``erf``...) in long double is only as good as the C
library's long double version of it (``expl``, ``tanhl``...), which NumPy calls: where
the platform's libm is sloppier in long double than in double, the referee's truth is
too, and a verdict can come out ``undecided``. Where ``np.longdouble`` is no wider than
float64 (MSVC, most ARM builds), :func:`referee` declines (returns ``None``).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np

from .backends import CaseData, Trace
from .graph import input_nodes
from .spec import (
    RANDOM_TYPES,
    NetworkSpec,
    build_reference_layers,
    extra_output_names,
    layer_kwargs,
    reference_class,
    split_output,
)
from .verdict import EDGE_TENSOR, Blame, Kind, Mismatch, tensor_of

__all__ = [
    "MATH_LEVEL",
    "RATIO",
    "ROUNDING_ULPS",
    "has_wider_longdouble",
    "high_precision",
    "referee",
]

LD = np.longdouble
RATIO = 4.0  # the blamed side's error must be at least this many times the other's
ROUNDING_ULPS = 64  # ... and above this many float64 units in the last place (of max |hp|)
# Above this relative difference (of the tensor's scale) a float64 disagreement is not
# rounding: the recomputation, which runs the reference's formulas, cannot referee it.
# The largest precision slip seen in torch's float64 kernels is a float32 constant:
# 6e-8 relative; 1e-6 leaves room for it to propagate through a few layers.
MATH_LEVEL = 1e-6
_F64_UNIT = 2.0**-53  # float64's unit roundoff

_LAYER_KINDS = (Kind.FORWARD, Kind.GRAD_INPUT, Kind.GRAD_PARAM)
_LOSS_KINDS = (Kind.LOSS, Kind.GRAD_OUTPUT)


def has_wider_longdouble() -> bool:
    """Whether ``np.longdouble`` carries more precision than float64 on this platform."""
    with warnings.catch_warnings():  # finfo warns on some exotic long double layouts
        warnings.simplefilter("ignore")
        return bool(np.finfo(LD).eps < np.finfo(np.float64).eps)


def referee(
    spec: NetworkSpec, data: CaseData, m: Mismatch, ref64: Trace, torch64: Trace
) -> tuple[Blame, str] | None:
    """Who is farther from the long double recomputation of ``m``'s tensor.

    Returns ``(Blame.TORCH or Blame.REFERENCE, note)`` when that side's error is at least
    :data:`RATIO` times the other's and above :data:`ROUNDING_ULPS` float64 ulps of the
    tensor's scale, ``(Blame.PRECISION, note)`` when both are within that rounding level,
    ``(Blame.UNDECIDED, note)`` otherwise, and ``None`` where there is
    nothing to referee: a buffer or step mismatch, a dropout layer, a layer that cannot
    run in long double, or a platform whose long double is float64. Never raises.
    """
    if Kind(m.kind) not in _LAYER_KINDS + _LOSS_KINDS or not has_wider_longdouble():
        return None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            hp = high_precision(spec, data, m, ref64)
    except Exception:  # noqa: BLE001 - any failure means: no verdict from here
        return None
    ref, tor = tensor_of(ref64, m), tensor_of(torch64, m)
    if hp is None or ref is None or tor is None:
        return None
    hp = np.asarray(hp, dtype=LD)
    ref, tor = np.asarray(ref), np.asarray(tor)
    if not (hp.shape == ref.shape == tor.shape) or hp.size == 0 or not np.isfinite(hp).all():
        return None
    return _judge(hp, ref, tor)


def _judge(hp: np.ndarray, ref: np.ndarray, tor: np.ndarray) -> tuple[Blame, str]:
    """The blame and its note, from the three arrays (``hp`` in long double)."""
    d_ref, d_tor = _distance(ref, hp), _distance(tor, hp)
    err_ref, err_tor = float(d_ref.max()), float(d_tor.max())
    floor = ROUNDING_ULPS * _F64_UNIT * float(np.abs(hp).max())
    gap = np.abs(tor.astype(np.float64) - ref.astype(np.float64))
    at = np.unravel_index(int(np.argmax(np.where(np.isnan(gap), np.inf, gap))), gap.shape)
    note = (
        f"higher precision (long double) referee: torch off by {err_tor:.2g}, "
        f"reference by {err_ref:.2g} (rounding level {floor:.2g}); at {list(map(int, at))} "
        f"torch {float(tor[at]):.17g}, reference {float(ref[at]):.17g}, "
        f"long double {float(hp[at]):.17g}"
    )
    if err_tor <= floor and err_ref <= floor:
        # both within float64 rounding of the higher-precision result: the allowance
        # the disagreement exceeded was too tight for this spot, and nobody is wrong
        return Blame.PRECISION, note + "; both within float64 rounding of it"
    if err_tor >= RATIO * err_ref and err_tor > floor:
        return Blame.TORCH, note
    if err_ref >= RATIO * err_tor and err_ref > floor:
        return Blame.REFERENCE, note
    return Blame.UNDECIDED, note


def _distance(side: np.ndarray, hp: np.ndarray) -> np.ndarray:
    """``|side - hp|`` in long double, a NaN or infinity in ``side`` counted as infinite."""
    d = np.abs(side.astype(LD) - hp)
    return np.where(np.isfinite(d), d, np.inf)


def high_precision(spec: NetworkSpec, data: CaseData, m: Mismatch, ref64: Trace) -> Any:
    """``m``'s tensor recomputed in long double from ``ref64``'s float64 inputs to it.

    ``None`` for a kind this cannot recompute or a dropout layer; raises whatever the
    reference raises when a layer cannot run in long double.
    """
    kind = Kind(m.kind)
    if kind in _LOSS_KINDS:
        loss = reference_class(spec.loss.type)(**layer_kwargs(spec.loss, LD))
        value = loss(_wide(ref64.outputs[-1]), _wide(data.target))
        return value if kind is Kind.LOSS else loss.backward(_wide(data.upstream))
    if kind not in _LAYER_KINDS:
        return None
    index = m.layer if m.layer is not None else int(m.tensor.split(".", 1)[0])
    if spec.layers[index].type in RANDOM_TYPES:
        return None  # its output comes from torch's draw, not arithmetic to redo
    module = _layer(spec, data, index)
    xs = [data.input if j < 0 else ref64.outputs[j] for j in input_nodes(spec, index)]
    out, extras = split_output(module(*(_wide(x) for x in xs)))
    if kind is Kind.FORWARD and m.tensor not in (None, "output"):
        names = extra_output_names(spec.layers[index].type)
        return extras[names.index(m.tensor)] if m.tensor in names else None
    if kind is Kind.FORWARD:
        return out
    grad_input = module.backward(_wide(ref64.grad_outputs[index]))
    if kind is Kind.GRAD_INPUT and m.tensor.startswith(EDGE_TENSOR):  # a graph's edge
        edge = int(m.tensor[len(EDGE_TENSOR) :])
        return grad_input[edge] if len(xs) > 1 else grad_input
    if kind is Kind.GRAD_INPUT:
        return grad_input
    param = dict(module.named_parameters())[m.tensor[len(f"{index}.") :]]
    return param.grad if param.grad is not None else np.zeros_like(param.data)


def _layer(spec: NetworkSpec, data: CaseData, index: int) -> Any:
    """Reference layer ``index`` alone, built in long double, with the case's weights."""
    alone = dataclasses.replace(spec, layers=[spec.layers[index]])
    module = build_reference_layers(alone, np.random.default_rng(0), LD)[0]
    prefix = f"{index}."
    weights = {k[len(prefix) :]: v for k, v in data.weights.items() if k.startswith(prefix)}
    module.load_state_dict({k: _wide(v) for k, v in weights.items()})
    # a layer that ignored the dtype it was built with still computes in long double
    for _, sub in module.named_modules():
        for param in sub._parameters.values():
            if param is not None and param.data.dtype.kind == "f":
                param.data = param.data.astype(LD)
        for name, buf in list(sub._buffers.items()):
            if buf is not None and buf.dtype.kind == "f":
                sub._buffers[name] = buf.astype(LD)
    module.train(spec.train)
    return module


def _wide(array: Any) -> np.ndarray:
    """A float array in long double; an integer one (indices, class targets) as it is."""
    array = np.asarray(array)
    return array.astype(LD) if array.dtype.kind == "f" else array
