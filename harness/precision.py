"""What the float comparison cannot hold either side to: the scale floors and the near-tie rule.

``harness.compare`` measures an element's error against the scale of its tensor. Two
effects make that scale the wrong yardstick, and this module corrects for each
without touching a tolerance number:

- **propagated error** (:func:`backward_scales`, :func:`forward_scales`). An error
  travels through a layer multiplied by the layer's Jacobian. When a layer keeps only
  a small part of its input (a ReLU masking every element but one that came out of a
  cancellation), the tensor it produces is small while the error it inherited is still
  the size allowed *above* it: measured at its own scale, a correct result fails. So
  the floor a tensor is compared at is propagated: ``floor_i = max(own_i, floor_above
  * gain_i)``, where ``gain_i`` bounds how much layer ``i`` can amplify an error.

  * For an *elementwise* layer (:data:`ELEMENTWISE_TYPES`: each input element affects
    only its own output element) the Jacobian is ``diag(f'(x))`` and its gain is exactly
    ``max_k |f'(x_k)|``, read off the backward as ``|g_in,k / g_out,k|`` over the elements
    with ``g_out,k != 0`` (elements with ``g_out,k == 0`` say nothing about ``f'`` and are
    left out, which can only lower the estimate).
  * For any other layer (Linear, convolutions, normalization in training) the gain is
    the observed ``||g_in||_inf / ||g_out||_inf``: the Jacobian applied to *one* vector,
    which is at most its operator norm, i.e. it under-estimates how much an arbitrary
    error can grow. The floor it gives is never looser than the true propagation, so
    the approximation errs toward reporting, never toward hiding.

  The gain is estimated on both traces and the smaller is used: a bug in one side's
  backward (a shifted or scaled gradient) inflates that side's ratios only.

- **near-ties in a max** (:func:`near_tie_in_max`): two elements of a pooling window
  equal in exact math (an upsampled-then-averaged tensor) can round differently in
  each backend; each side's max then picks a different element and the input
  gradients differ by the whole routed gradient, though both are right.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from reference.nn.activation import __all__ as _ACTIVATIONS

from .backends import Trace
from .compare import compare_arrays_at_scale
from .spec import DROPOUT_TYPES, LayerSpec

__all__ = [
    "KINK_NOTE",
    "KINK_TYPES",
    "ELEMENTWISE_TYPES",
    "MAX_TYPES",
    "NEAR_TIE_NOTE",
    "backward_scales",
    "forward_scales",
    "grad_input_floors",
    "layer_gains",
    "near_kink",
    "near_tie_in_max",
    "normalization_floor",
    "only_noise_elements_differ",
    "propagated_step_floor",
    "step_floor",
]

# Softmax and LogSoftmax mix their dim: not elementwise though listed with the activations.
ELEMENTWISE_TYPES = frozenset(
    {t for t in _ACTIVATIONS if t not in ("Softmax", "LogSoftmax")}
    | set(DROPOUT_TYPES)
    | {"Identity"}
)
MAX_TYPES = ("MaxPool1d", "MaxPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d")
NEAR_TIE_NOTE = "near-tie in a max: equal within rounding, each side picked a different element"


def _max_abs(x: Any) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.max(np.abs(np.where(np.isfinite(x), x, 0.0)))) if x.size else 0.0


# -- propagated scale floors --------------------------------------------------------
def _gain_of(g_in: Any, g_out: Any, elementwise: bool) -> float:
    """How much the layer mapping ``g_out`` to ``g_in`` amplifies an error (module doc)."""
    if g_in is None or g_out is None:
        return 0.0
    g_in, g_out = np.asarray(g_in, np.float64), np.asarray(g_out, np.float64)
    if elementwise and g_in.shape == g_out.shape:
        live = (g_out != 0) & np.isfinite(g_out) & np.isfinite(g_in)
        if not live.any():
            return 0.0
        return float(np.max(np.abs(g_in[live] / g_out[live])))
    top = _max_abs(g_out)
    return _max_abs(g_in) / top if top > 0 else 0.0


def layer_gains(traces: Sequence[Trace], types: Sequence[str] | None) -> list[float]:
    """Per layer, its error gain (module doc), the smallest over ``traces``; 1 without ``types``."""
    n = len(traces[0].grad_outputs)
    if types is None:
        return [1.0] * n
    gains = []
    for i in range(n):
        each = [
            _gain_of(t.grad_wrt_input_of(i), t.grad_outputs[i], types[i] in ELEMENTWISE_TYPES)
            for t in traces
        ]
        gains.append(min(each))
    return gains


def backward_scales(
    trace: Trace, tol: Any, types: Sequence[str] | None = None, other: Trace | None = None
) -> list[float]:
    """Per layer ``i``, the scale of the gradient flowing into it (wrt its output): the
    floor for comparing the gradients it produces (``compare_arrays_at_scale``).

    Walking from the loss: a gradient's scale is its own max, or the scale above it times
    the gain of the layer in between (module doc), whichever is larger; and when all of
    it is below the tolerance of the gradient it came from (the math makes it exactly 0
    and both sides return rounding noise), it is zero at this precision and inherits the
    scale above unchanged. Without ``types`` no gain is known and only that noise rule
    applies. ``other`` (the torch trace) takes part in estimating the gains.
    """
    n = len(trace.grad_outputs)
    gains = layer_gains([trace] + ([other] if other is not None else []), types)
    scales = [0.0] * n
    for i in range(n - 1, -1, -1):
        own = _max_abs(trace.grad_outputs[i])
        if i == n - 1:
            scales[i] = own
        elif own <= tol.atol * scales[i + 1]:
            scales[i] = scales[i + 1]
        else:
            scales[i] = max(own, scales[i + 1] * gains[i + 1] if types is not None else 0.0)
    return scales


def grad_input_floors(
    trace: Trace, tol: Any, types: Sequence[str] | None = None, other: Trace | None = None
) -> list[float]:
    """Per layer ``i``, the floor for comparing the gradient wrt its input: the scale of
    the gradient flowing into it (the harness's standing convention) or, when larger,
    that scale carried through the layer itself (the next :func:`backward_scales` entry;
    for layer 0 the same rule applied to the network input's gradient)."""
    scales = backward_scales(trace, tol, types, other)
    if types is None:
        return scales
    floors = [max(scales[i], scales[i - 1]) for i in range(1, len(scales))]
    gain0 = layer_gains([trace] + ([other] if other is not None else []), types)[0]
    return [max(scales[0], scales[0] * gain0)] + floors if scales else []


def forward_scales(
    trace: Trace, tol: Any, types: Sequence[str] | None = None, other: Trace | None = None
) -> list[float]:
    """Per layer, the scale floor for comparing its output.

    0 (the output's own scale), unless the whole output is below the tolerance of its
    input's scale, i.e. rounding noise of a result that is 0 in the math (the mean of a
    normalized tensor); then the input's scale, the size of the terms that cancelled.
    For an elementwise layer, also the input's scale times the layer's gain: a ReLU that
    keeps only an element made by cancellation passes on that element's error, which was
    allowed at the scale of the tensor it came from. (Only elementwise layers: for them
    the backward's ``g_in / g_out`` is ``f'``, the forward's gain too; an affine layer's
    forward ratio says nothing about its Jacobian.)
    """
    gains = layer_gains([trace] + ([other] if other is not None else []), types)
    floors: list[float] = []
    above = 0.0
    for i, out in enumerate(trace.outputs):
        own = _max_abs(out)
        floor = above if own <= tol.atol * above else 0.0
        if types is not None and types[i] in ELEMENTWISE_TYPES:
            floor = max(floor, above * gains[i])
        floors.append(floor)
        above = max(own, floor)
    return floors


# -- near-ties in a max ---------------------------------------------------------------
def _pair(value: Any, nd: int) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * nd


def _windows_1d(layer: LayerSpec, dim: int, nd: int, size_in: int, size_out: int) -> list:
    """For each output position along one spatial dim, the input positions it pools."""
    kw = layer.kwargs
    if layer.type.startswith("Adaptive"):
        return [
            list(range((o * size_in) // size_out, -((-(o + 1) * size_in) // size_out)))
            for o in range(size_out)
        ]
    kernel = _pair(kw["kernel_size"], nd)[dim]
    stride = kw.get("stride")
    stride = _pair(stride if stride is not None else kw["kernel_size"], nd)[dim]
    padding = _pair(kw.get("padding", 0), nd)[dim]
    dilation = _pair(kw.get("dilation", 1), nd)[dim]
    return [
        [p for k in range(kernel) if 0 <= (p := o * stride - padding + k * dilation) < size_in]
        for o in range(size_out)
    ]


def near_tie_in_max(
    layer: LayerSpec, x: Any, g_out_ref: Any, g_ref: Any, g_got: Any, tol: Any, scale: float
) -> bool:
    """Whether the input gradients ``g_ref`` and ``g_got`` of max-type ``layer`` (input
    ``x``, from the reference's trace) differ only by a near-tie choice.

    A *near-tie*: a pooling window in which two or more elements are within the tolerance
    of the window's max (``|v - max| <= atol * scale(x) + rtol * |v|``). The mismatch is
    put down to rounding when

    1. every element whose gradient differs (beyond the tolerance, at floor ``scale``)
       is a near-max of some window that contains it and holds another near-max: the
       gradient moved between rival candidates, never to a clearly smaller element (a
       backward that routes to a non-max element or shifts the gradient still fails);
    2. per (batch, channel) plane the gradients sum to the same total: re-routing moves
       gradient, never creates or loses it (a wrong constant in the backward still fails).

    Exact ties (first max wins, like torch) are equal in exact math *and* in the stored
    values, so this rule would accept either choice there; the tie rule is held exactly
    by tests/reference/test_pooling.py, not by this comparison, so it is not lost.
    A limitation: the gradients below the tie differ by the re-routed gradient, so the
    layers under it are not compared in that run (``localize`` stops there as for any
    backward mismatch; the warning keeps the case visible).
    The caller checks that the layer's outputs and output gradients agree (``localize``
    only gets here after the forward and the gradients above have passed).
    """
    nd = 1 if layer.type.endswith("1d") else 2
    x = np.asarray(x, np.float64)
    g_ref, g_got = np.asarray(g_ref, np.float64), np.asarray(g_got, np.float64)
    g_out = np.asarray(g_out_ref, np.float64)
    if x.shape != g_ref.shape or g_ref.shape != g_got.shape or x.ndim < nd + 1:
        return False
    allowed = tol.atol * max(_max_abs(g_ref), scale) + tol.rtol * np.abs(g_ref)
    differs = np.abs(g_got - g_ref) > allowed
    if not differs.any():
        return False
    spatial_in, spatial_out = x.shape[-nd:], g_out.shape[-nd:]
    per_dim = [_windows_1d(layer, d, nd, spatial_in[d], spatial_out[d]) for d in range(nd)]
    planes_x = x.reshape(-1, *spatial_in)
    planes_d = differs.reshape(-1, *spatial_in)
    near = tol.atol * _max_abs(x)
    for plane, bad in zip(planes_x, planes_d):
        if not bad.any():
            continue
        explained = np.zeros_like(bad)
        for out_pos in itertools.product(*(range(s) for s in spatial_out)):
            idx = np.ix_(*(per_dim[d][out_pos[d]] for d in range(nd)))
            window = plane[idx]
            if window.size < 2 or not np.isfinite(window).all():
                continue
            top = window.max()
            rivals = np.abs(window - top) <= near + tol.rtol * np.abs(window)
            if rivals.sum() >= 2:
                sub = explained[idx]
                explained[idx] = sub | rivals
        if (bad & ~explained).any():
            return False
    # conservation per plane: the gradient totals agree
    sums_ref = g_ref.reshape(-1, int(np.prod(spatial_in))).sum(axis=1)
    sums_got = g_got.reshape(-1, int(np.prod(spatial_in))).sum(axis=1)
    return compare_arrays_at_scale(
        "plane sums", sums_got, sums_ref, tol, max(_max_abs(g_out), scale)
    ).ok


# -- optimizer steps ------------------------------------------------------------------
def step_floor(stepped: Any, initial: Any, grad: Any, grad_floor: float, tol: Any) -> float:
    """The floor for comparing a parameter after the optimizer's steps.

    Its update is a function of its gradient, which was compared at ``grad_floor``
    (:func:`backward_scales`): when that floor exceeds the gradient's own scale (it
    inherited a larger error through a mask or a cancellation), the gradient is known
    only to ``atol * grad_floor``, a fraction ``grad_floor / max|g|`` of itself, and an
    update linear in it (SGD) carries the same fraction: ``max|update| * grad_floor /
    max|g|``. 0 (no floor) when the gradient was compared at its own scale, the usual
    case, and when it is rounding noise (``check``'s noise-gradient rule covers that).
    """
    top = _max_abs(grad)
    if top <= tol.atol * grad_floor or grad_floor <= top:
        return 0.0
    update = np.asarray(stepped, np.float64) - np.asarray(initial, np.float64)
    return _max_abs(update) * grad_floor / top


def propagated_step_floor(
    optimizer: LayerSpec, initial: Any, grad: Any, grad_floor: float, tol: Any
) -> np.ndarray:
    """Per element, the floor for comparing a parameter after step 1: the gradient's own
    tolerance pushed through the optimizer.

    Both sides' gradients were accepted to ``allowed(g) = atol * max(max|g|, grad_floor)
    + rtol * |g|`` apiece; the step is a function of ``g``, so the stepped parameters may
    differ by what that much of ``g`` changes in it. For SGD that is ``lr * allowed``; an
    adaptive step ``g / (sqrt(v) + eps)`` is flat for large ``|g|`` and steep where
    ``|g|`` is near ``eps``, which a fixed tolerance cannot know. The reference optimizer
    is stepped from ``initial`` with ``g`` and with ``g +- allowed`` (the optimizers the
    generator draws are elementwise and monotone in ``g`` at step 1), and the larger
    change per element, divided by ``atol``, is the floor (so ``atol * floor`` is it).
    """
    import reference.optim as ropt
    from reference.nn import Parameter

    g = np.asarray(grad, np.float64)
    p0 = np.asarray(initial, np.float64)
    allowed = tol.atol * max(_max_abs(g), grad_floor) + tol.rtol * np.abs(g)
    stepped = []
    for shift in (0.0, 1.0, -1.0):
        param = Parameter(p0.copy())
        param.grad = g + shift * allowed
        getattr(ropt, optimizer.type)([param], **optimizer.kwargs).step()
        stepped.append(param.data)
    spread = np.maximum(np.abs(stepped[1] - stepped[0]), np.abs(stepped[2] - stepped[0]))
    return spread / tol.atol


def only_noise_elements_differ(
    got: Any, ref: Any, grad_ref: Any, grad_got: Any, tol: Any, noise: float
) -> bool:
    """Whether the stepped parameters agree once the elements whose gradient is rounding
    noise on both sides (``|g| <= noise``) are set aside."""
    if grad_got is None:
        return False
    quiet = (np.abs(np.asarray(grad_ref, np.float64)) <= noise) & (
        np.abs(np.asarray(grad_got, np.float64)) <= noise
    )
    if not quiet.any():
        return False
    ref_arr = np.asarray(ref, np.float64)
    loud = ~quiet
    return compare_arrays_at_scale(
        "loud", np.asarray(got, np.float64)[loud], ref_arr[loud], tol, _max_abs(ref_arr)
    ).ok


# -- normalization with the input's own statistics --------------------------------------
def normalization_floor(
    layer: LayerSpec, input: np.ndarray, weight: np.ndarray | None, train: bool
) -> np.ndarray | float:
    r"""Per channel (per group, per row), the size of the terms that cancel in a
    normalization layer's output (batch, instance, group and layer norm).

    :math:`y = (x - \mu)\,\mathrm{invstd}\,\gamma + \beta` subtracts two numbers of size
    :math:`|x|` and then multiplies by :math:`\mathrm{invstd}\,|\gamma|`, which is up to
    :math:`1/\sqrt{\epsilon} \approx 316` for a channel of (nearly) constant values (a
    unit killed by a ReLU upstream): an ulp of the mean becomes
    :math:`316\,|x|` ulps of the output. So each channel is compared at the scale
    :math:`\max|x_c|\,\mathrm{invstd}_c\,|\gamma_c|`; for an ordinary channel this is the
    output's own scale, and a planted error in another channel is judged at that
    channel's scale (broadcast shape ``(1, C, 1, ...)`` or ``(N, C, 1, ...)``).
    Returns 0.0 when the layer does not normalize with the input's own statistics.
    """
    kwargs = layer.kwargs
    x = np.asarray(input, np.float64)
    eps = kwargs.get("eps", 1e-5)
    if layer.type in ("GroupNorm", "LayerNorm") and x.size:
        if layer.type == "GroupNorm":  # statistics per (sample, group)
            rows = x.reshape(x.shape[0], kwargs["num_groups"], -1)  # (N, G, C/G * space)
            gamma_shape = [1, -1] + [1] * (x.ndim - 2)
        else:  # statistics over the normalized (last) dims
            shape = kwargs["normalized_shape"]
            k = 1 if isinstance(shape, int) else len(shape)
            rows = x.reshape(-1, 1, int(np.prod(x.shape[x.ndim - k :])))  # (rows, 1, norm)
            gamma_shape = list(x.shape[x.ndim - k :])
        invstd = 1 / np.sqrt(rows.var(axis=2, keepdims=True) + eps)
        per_row = np.max(np.abs(rows), axis=2, keepdims=True) * invstd
        floor = np.broadcast_to(per_row, rows.shape).reshape(x.shape)
        if weight is not None:
            floor = floor * np.abs(np.asarray(weight, np.float64)).reshape(gamma_shape)
        return floor
    if layer.type.startswith("BatchNorm"):
        if not (train or not kwargs.get("track_running_stats", True)):
            return 0.0
        axes = (0,) + tuple(range(2, input.ndim))
    elif layer.type.startswith("InstanceNorm"):
        if not (train or not kwargs.get("track_running_stats", False)):
            return 0.0
        axes = tuple(range(2, input.ndim)) if input.ndim > 2 else (input.ndim - 1,)
    else:
        return 0.0
    if x.size == 0:
        return 0.0
    invstd = 1 / np.sqrt(x.var(axis=axes, keepdims=True) + eps)
    floor = np.max(np.abs(x), axis=axes, keepdims=True) * invstd
    if weight is not None:
        channel_axis = 1 if input.ndim > 2 or layer.type.startswith("BatchNorm") else 0
        shape = [1] * x.ndim
        shape[channel_axis] = -1
        floor = floor * np.abs(np.asarray(weight, np.float64)).reshape(shape)
    return floor


# -- inputs within rounding of a kink -------------------------------------------------
KINK_NOTE = "input within rounding of a kink: each side took a different one-sided derivative"


def _kinks(layer: LayerSpec) -> list[tuple[float, float, float]]:
    """``(kink, derivative left of it, derivative right of it)`` of a piecewise layer."""
    kw = layer.kwargs
    if layer.type == "ReLU":
        return [(0.0, 0.0, 1.0)]
    if layer.type == "LeakyReLU":
        return [(0.0, kw.get("negative_slope", 0.01), 1.0)]
    if layer.type == "ReLU6":
        return [(0.0, 0.0, 1.0), (6.0, 1.0, 0.0)]
    if layer.type == "Hardtanh":
        return [(kw.get("min_val", -1.0), 0.0, 1.0), (kw.get("max_val", 1.0), 1.0, 0.0)]
    if layer.type == "Hardsigmoid":
        return [(-3.0, 0.0, 1 / 6), (3.0, 1 / 6, 0.0)]
    if layer.type == "Hardswish":  # d/dx x(x+3)/6 = (2x+3)/6: -1/2 at -3, 3/2 at 3
        return [(-3.0, 0.0, -0.5), (3.0, 1.5, 1.0)]
    if layer.type == "ELU":
        return [(0.0, kw.get("alpha", 1.0), 1.0)]
    return []


KINK_TYPES = frozenset(
    {"ReLU", "LeakyReLU", "ReLU6", "Hardtanh", "Hardsigmoid", "Hardswish", "ELU"}
)


def near_kink(
    layer: LayerSpec, x: Any, g_out: Any, g_ref: Any, g_got: Any, tol: Any, scale: float
) -> bool:
    r"""Whether the input gradients of piecewise ``layer`` differ only where its input is
    within rounding of a kink, each side having taken one of the one-sided derivatives.

    Two correct backends whose inputs agree to the tolerance can put an element that is
    a kink in exact math (a ReLU after a cancellation that gives 0) on opposite sides
    of it. Then one passes :math:`f'_-(k)\,g` and the other :math:`f'_+(k)\,g`. Every
    element whose gradient differs must have ``|x - k| <= atol * scale(x) + rtol * |k|``
    for a kink ``k`` of the layer, and *both* sides' gradients there must equal
    :math:`f'_\pm(k)` times the upstream gradient (to the tolerance): a wrong constant,
    or a wrong gradient away from a kink, still fails. The caller has checked that the
    layer's output gradient agrees.
    """
    kinks = _kinks(layer)
    x = np.asarray(x, np.float64)
    g_out, g_ref, g_got = (np.asarray(a, np.float64) for a in (g_out, g_ref, g_got))
    if not kinks or not (x.shape == g_out.shape == g_ref.shape == g_got.shape):
        return False
    allowed = tol.atol * max(_max_abs(g_ref), scale) + tol.rtol * np.abs(g_ref)
    differs = np.abs(g_got - g_ref) > allowed
    if not differs.any():
        return False
    explained = np.zeros_like(differs)
    reach = tol.atol * _max_abs(x)
    for kink, left, right in kinks:
        close = np.abs(x - kink) <= reach + tol.rtol * abs(kink)
        one_sided = np.ones_like(differs)
        for g in (g_ref, g_got):
            as_left = np.abs(g - left * g_out) <= allowed
            as_right = np.abs(g - right * g_out) <= allowed
            one_sided &= as_left | as_right
        explained |= close & one_sided
    return bool(np.all(explained[differs]))
