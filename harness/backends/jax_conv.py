"""The JAX backend's convolution and pooling layers, and the helpers every layer shares.

:data:`CONV_BUILDERS` maps ``Conv``, ``ConvTranspose``, ``MaxPool``, ``AvgPool``,
``AdaptiveAvgPool`` and ``AdaptiveMaxPool`` (1d and 2d) to their builders ``(kwargs,
train) -> forward``, as :data:`harness.backends.jax_layers.BUILDERS` describes (which
holds them too): ``lax.conv_general_dilated`` for the convolutions, explicit windows for
the pools, so that max pooling's gradient reaches the element torch picks. The helpers
above them (:data:`Forward`, :func:`as_tuple`, :func:`stateless`, :func:`channel`,
:data:`HIGHEST`) are the other layers' too.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["CONV_BUILDERS", "HIGHEST", "Forward", "as_tuple", "channel", "stateless"]

# (x, params, buffers) -> (y, buffers)
Forward = Callable[[Any, dict, dict], tuple[Any, dict]]

HIGHEST = lax.Precision.HIGHEST  # no reduced-precision passes (TF32, bf16x3) anywhere


def as_tuple(value: Any, nd: int) -> tuple[int, ...]:
    """An int or a sequence of ints (a kernel size, a stride) as ``nd`` ints."""
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * nd


def stateless(fn: Callable[[Any], Any]) -> Forward:
    """The forward of a layer that is ``fn`` of its input alone."""
    return lambda x, p, b: (fn(x), b)


def channel(v: Any, ndim: int) -> Any:
    """A per-channel ``(C,)`` vector shaped to broadcast along dim 1 of an ``ndim`` array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# -- convolution -------------------------------------------------------------------------------
_DIMENSIONS = {1: ("NCH", "OIH", "NCH"), 2: ("NCHW", "OIHW", "NCHW")}
_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _conv_padding(padding: Any, kernel: tuple, dilation: tuple, nd: int) -> list[tuple[int, int]]:
    """``(before, after)`` per spatial dim; ``'same'`` puts an odd total's extra one after."""
    if padding == "valid":
        return [(0, 0)] * nd
    if padding == "same":
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return [(t // 2, t - t // 2) for t in totals]
    return [(p, p) for p in as_tuple(padding, nd)]


def _conv(kw: dict, train: bool, nd: int) -> Forward:
    kernel = as_tuple(kw["kernel_size"], nd)
    stride, dilation = as_tuple(kw.get("stride", 1), nd), as_tuple(kw.get("dilation", 1), nd)
    pads = _conv_padding(kw.get("padding", 0), kernel, dilation, nd)
    mode, groups = kw.get("padding_mode", "zeros"), kw.get("groups", 1)

    def f(x, p, b):
        conv_pads = pads
        if mode != "zeros":  # torch: pad in that mode, then convolve without padding
            x = jnp.pad(x, [(0, 0), (0, 0), *pads], mode=_PAD_MODES[mode])
            conv_pads = [(0, 0)] * nd
        y = lax.conv_general_dilated(
            x, p["weight"], stride, conv_pads, rhs_dilation=dilation,
            feature_group_count=groups, dimension_numbers=_DIMENSIONS[nd], precision=HIGHEST,
        )  # fmt: skip
        return (y + channel(p["bias"], y.ndim) if "bias" in p else y), b

    return f


def _conv_transpose(kw: dict, train: bool, nd: int) -> Forward:
    """The transposed convolution as the convolution it is the input gradient of: the
    input dilated by ``stride``, padded ``dilation * (k - 1) - padding`` (plus
    ``output_padding`` after), convolved with the flipped kernel, in and out swapped
    within each group (weight ``(in, out / groups, *k)``)."""
    kernel = as_tuple(kw["kernel_size"], nd)
    stride, dilation = as_tuple(kw.get("stride", 1), nd), as_tuple(kw.get("dilation", 1), nd)
    padding, extra = as_tuple(kw.get("padding", 0), nd), as_tuple(kw.get("output_padding", 0), nd)
    groups = kw.get("groups", 1)
    pads = [(d * (k - 1) - p, d * (k - 1) - p + e)
            for k, d, p, e in zip(kernel, dilation, padding, extra)]  # fmt: skip

    def f(x, p, b):
        w = p["weight"]
        cin, cout = w.shape[0], w.shape[1] * groups
        w = w.reshape(groups, cin // groups, cout // groups, *kernel).swapaxes(1, 2)
        w = jnp.flip(w.reshape(cout, cin // groups, *kernel), axis=tuple(range(2, 2 + nd)))
        y = lax.conv_general_dilated(
            x, w, (1,) * nd, pads, lhs_dilation=stride, rhs_dilation=dilation,
            feature_group_count=groups, dimension_numbers=_DIMENSIONS[nd], precision=HIGHEST,
        )  # fmt: skip
        return (y + channel(p["bias"], y.ndim) if "bias" in p else y), b

    return f


# -- pooling -------------------------------------------------------------------------------------
def _pool_geometry(kw: dict, nd: int, dilated: bool) -> tuple[tuple[int, ...], ...]:
    kernel = as_tuple(kw["kernel_size"], nd)
    stride = kernel if kw.get("stride") is None else as_tuple(kw["stride"], nd)
    padding = as_tuple(kw.get("padding", 0), nd)
    dilation = as_tuple(kw.get("dilation", 1), nd) if dilated else (1,) * nd
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(f"pad should be at most half of effective kernel size, got {kw}")
    return kernel, stride, padding, dilation


def _pool_out(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Torch's ``pooling_output_shape``: with ``ceil_mode`` the last window must start
    inside the input or the left padding."""
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    return out - 1 if ceil_mode and (out - 1) * s >= size + p else out


def _windows(x: Any, geometry: tuple, out: tuple[int, ...], fill: float) -> Any:
    """Every window as a trailing axis ``(N, C, *out, prod(kernel))`` in scan order (row
    by row), from the input padded with ``fill`` far enough for every window."""
    kernel, stride, padding, dilation = geometry
    widths = [(0, 0), (0, 0)]
    for a, size in enumerate(x.shape[2:]):
        needed = (out[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 - size - padding[a]
        widths.append((padding[a], max(padding[a], needed)))
    x = jnp.pad(x, widths, constant_values=fill)
    slices = []
    for offset in itertools.product(*(range(k) for k in kernel)):
        start = (0, 0, *(o * d for o, d in zip(offset, dilation)))
        limit = (*x.shape[:2], *(s0 + s * (n - 1) + 1 for s0, s, n in zip(start[2:], stride, out)))
        slices.append(lax.slice(x, start, limit, (1, 1, *stride)))
    return jnp.stack(slices, axis=-1)


def _pick_max(windows: Any) -> Any:
    """Each window's maximum, torch's pick: the first maximum in scan order, or the last
    NaN; through ``take_along_axis`` the gradient reaches that one element."""
    nan = jnp.isnan(windows)
    last_nan = windows.shape[-1] - 1 - jnp.argmax(nan[..., ::-1], axis=-1)
    index = jnp.where(nan.any(axis=-1), last_nan, jnp.argmax(windows, axis=-1))
    return jnp.take_along_axis(windows, index[..., None], axis=-1)[..., 0]


def _max_pool(kw: dict, train: bool, nd: int) -> Forward:
    if kw.get("return_indices", False):
        raise ValueError("the jax backend's max pooling returns no indices")
    geometry = _pool_geometry(kw, nd, dilated=True)
    ceil_mode = kw.get("ceil_mode", False)

    def f(x):
        out = tuple(_pool_out(n, *g, ceil_mode) for n, *g in zip(x.shape[2:], *geometry))
        return _pick_max(_windows(x, geometry, out, -jnp.inf))

    return stateless(f)


def _avg_divisor(size: tuple, geometry: tuple, out: tuple, include_pad: bool) -> np.ndarray:
    """Torch's divisor per output position: the window clipped to the padded input (with
    ``count_include_pad``) or to the input; the ceil-mode overhang never counts."""
    kernel, stride, padding, _ = geometry
    counts: list[np.ndarray] = []
    for a in range(len(size)):
        start = np.arange(out[a]) * stride[a] - padding[a]
        end = np.minimum(start + kernel[a], size[a] + padding[a])
        if not include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size[a])
        counts.append(end - start)
    return np.asarray(functools.reduce(np.multiply.outer, counts))  # (out_1, ..., out_nd)


def _avg_pool(kw: dict, train: bool, nd: int) -> Forward:
    geometry = _pool_geometry(kw, nd, dilated=False)
    ceil_mode, include_pad = kw.get("ceil_mode", False), kw.get("count_include_pad", True)
    override = kw.get("divisor_override")

    def f(x):
        out = tuple(_pool_out(n, *g, ceil_mode) for n, *g in zip(x.shape[2:], *geometry))
        sums = _windows(x, geometry, out, 0.0).sum(axis=-1)
        divisor = _avg_divisor(x.shape[2:], geometry, out, include_pad)
        if override is not None:
            divisor = np.full(out, override)
        return sums / jnp.asarray(divisor, dtype=x.dtype)

    return stateless(f)


def _adaptive_bounds(size: int, out: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(out)
    return (i * size) // out, -((-(i + 1) * size) // out)  # floor and ceil


def _adaptive_sizes(kw: dict, x: Any, nd: int) -> tuple[int, ...]:
    sizes = kw["output_size"]
    sizes = tuple(sizes) if isinstance(sizes, (tuple, list)) else (sizes,) * nd
    return tuple(x.shape[2 + a] if s is None else int(s) for a, s in enumerate(sizes))


def _adaptive_avg_pool(kw: dict, train: bool, nd: int) -> Forward:
    """Linear and separable: ``P_H x P_W^T`` with ``P`` averaging each window."""

    def f(x):
        y = x
        for a, out in enumerate(_adaptive_sizes(kw, x, nd)):
            size = x.shape[2 + a]
            start, end = _adaptive_bounds(size, out)
            inside = (np.arange(size) >= start[:, None]) & (np.arange(size) < end[:, None])
            averaging = jnp.asarray(inside / (end - start)[:, None], dtype=x.dtype)
            axis = 2 + a  # contract that axis with P (out, size), then put it back in place
            y = jnp.moveaxis(jnp.tensordot(y, averaging, ((axis,), (1,)), precision=HIGHEST),
                             -1, axis)  # fmt: skip
        return y

    return stateless(f)


def _adaptive_max_pool(kw: dict, train: bool, nd: int) -> Forward:
    """Each window gathered (short ones repeat their last element, which neither changes
    the maximum nor which element wins), then torch's pick."""
    if kw.get("return_indices", False):
        raise ValueError("the jax backend's max pooling returns no indices")

    def f(x):
        out = _adaptive_sizes(kw, x, nd)
        windows = x
        for a, n in enumerate(out):
            start, end = _adaptive_bounds(x.shape[2 + a], n)
            longest = int((end - start).max())
            index = np.minimum(start[:, None] + np.arange(longest), end[:, None] - 1)
            windows = jnp.take(windows, index, axis=2 + 2 * a)  # (.., out, longest, ..)
        # (N, C, o1, k1[, o2, k2]) -> (N, C, o1[, o2], k1[, k2]) -> windows last
        order = (0, 1, *range(2, 2 + 2 * nd, 2), *range(3, 3 + 2 * nd, 2))
        windows = windows.transpose(order).reshape(*x.shape[:2], *out, -1)
        return _pick_max(windows)

    return stateless(f)


CONV_BUILDERS: dict[str, Callable[[dict, bool], Forward]] = {
    f"{name}{nd}d": functools.partial(builder, nd=nd)
    for nd in (1, 2)
    for name, builder in (
        ("Conv", _conv),
        ("ConvTranspose", _conv_transpose),
        ("MaxPool", _max_pool),
        ("AvgPool", _avg_pool),
        ("AdaptiveAvgPool", _adaptive_avg_pool),
        ("AdaptiveMaxPool", _adaptive_max_pool),
    )
}
