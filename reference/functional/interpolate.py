r"""``interpolate``: resampling by nearest, (bi/tri)linear, bicubic and area weights.

Every mode is separable. Along a spatial axis of length :math:`L` resampled to
:math:`n`, output position :math:`o` reads a few input positions with fixed weights:
an :math:`(n, L)` matrix :math:`W` per axis, and

.. math:: y = x \times_1 W_1 \times_2 W_2 \cdots, \qquad
          \frac{\partial L}{\partial x} = g \times_1 W_1^\top \times_2 W_2^\top \cdots

(:math:`\times_k` contracts spatial axis :math:`k`; the backward is the transpose). The
modes differ only in the rows of :math:`W`, each built from a source coordinate computed
as aten computes it (``UpSample.h``, ``cpu/UpSampleKernel.cpp``), in the kernel's type
(float32 for a float32 input; float16 is computed in float32):

- scale :math:`s`: ``align_corners``: :math:`(L-1)/(n-1)` (0 when :math:`n = 1`);
  otherwise ``1 / scale_factor`` when a scale factor reaches the kernel, else :math:`L/n`.
- source :math:`c(o) = s\,o` (``align_corners``) or :math:`s(o + \tfrac12) - \tfrac12`.
- nearest: :math:`\lfloor s\,o \rfloor`; nearest-exact: :math:`\lfloor c(o) + \tfrac12
  \rfloor`; both capped at :math:`L - 1`, the position rounded to float32 before the
  floor. A 4-D input takes aten's older rules (``nearest_idx``): :math:`s` in float32
  and, for nearest, :math:`o` or :math:`\lfloor o/2 \rfloor` when :math:`n = L` or
  :math:`2L`, whatever the scale factor (3-D and 5-D inputs do not; measured).
- linear: :math:`c` clamped at 0, :math:`i_0 = \lfloor c \rfloor`, :math:`i_1 =
  \min(i_0 + 1, L - 1)`, weights :math:`(1 - \lambda, \lambda)`, :math:`\lambda = c - i_0`;
  when :math:`n = L` the identity, whatever the scale factor.
- bicubic: taps :math:`\lfloor c \rfloor - 1 \ldots \lfloor c \rfloor + 2`, each clamped
  to :math:`[0, L - 1]`, Keys' cubic convolution with :math:`A = -0.75`.
- area: the windows of adaptive average pooling.

Output size: ``size``, or :math:`\lfloor L \cdot` ``scale_factor`` :math:`\rfloor`.
With ``recompute_scale_factor=True`` (and always for ``area``) the scale factor only
sets that size and the kernel scales by :math:`L/n`; otherwise it scales by
``1 / scale_factor``, which differs from :math:`L/n` when :math:`L \cdot`
``scale_factor`` is not an integer.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

from .._validate import as_float_array
from .adaptive_pooling import averaging_matrix

__all__ = [
    "interpolate", "interpolate_backward",
    "upsample", "upsample_backward",
    "upsample_nearest", "upsample_nearest_backward",
    "upsample_bilinear", "upsample_bilinear_backward",
]  # fmt: skip


class Mode(Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    LINEAR = "linear"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    TRILINEAR = "trilinear"
    AREA = "area"


# the input rank each interpolating mode takes; the other modes take 3-D, 4-D and 5-D
_RANK = {Mode.LINEAR: 3, Mode.BILINEAR: 4, Mode.BICUBIC: 4, Mode.TRILINEAR: 5}
_NEAREST = (Mode.NEAREST, Mode.NEAREST_EXACT)
_CUBIC_A = -0.75
_MODES = "nearest | linear | bilinear | bicubic | trilinear | lanczos | area | nearest-exact"


@dataclass(frozen=True)
class _Plan:
    mode: Mode
    align_corners: bool
    out_sizes: tuple[int, ...]
    scales: tuple[float | None, ...]  # what the kernel gets; None: from the sizes
    legacy_nearest: bool  # a 4-D nearest: aten's older index rules (_nearest_index)


# -- arguments, in torch's order of checks ------------------------------------------------


def _per_axis(value: Any, nd: int, what: str, input: np.ndarray, name: str) -> tuple:
    if not isinstance(value, (list, tuple)):
        return (value,) * max(nd, 0)
    if len(value) != nd:
        raise ValueError(
            f"{name}: input and {what} must have the same number of spatial dimensions, got "
            f"input of shape {input.shape} (spatial {list(input.shape[2:])}) and {what} "
            f"{value!r}; pass one value per dim of (N, C, d1, ..., dK) after N and C"
        )
    return tuple(value)


def _requested(input: np.ndarray, size: Any, scale_factor: Any, nd: int, name: str) -> tuple:
    """``(sizes, factors)``: exactly one of them is given, one entry per spatial dim."""
    if size is not None and scale_factor is not None:
        raise ValueError(f"{name}: only one of size or scale_factor should be defined")
    if size is None and scale_factor is None:
        raise ValueError(f"{name}: either size or scale_factor should be defined")
    if size is not None:
        sizes = _per_axis(size, nd, "size", input, name)
        if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in sizes):
            raise TypeError(f"{name}: size must be an int or a tuple of ints, got {size!r}")
        return tuple(int(s) for s in sizes), None
    factors = _per_axis(scale_factor, nd, "scale_factor", input, name)
    if any(not isinstance(f, numbers.Real) or not math.isfinite(f) for f in factors):
        raise ValueError(f"{name}: scale_factor must be finite numbers, got {scale_factor!r}")
    return None, tuple(float(f) for f in factors)


def _check_mode(mode: Any, ndim: int, align_corners: bool, antialias: bool, name: str) -> Mode:
    """The mode, if the input's rank is one it takes; torch's NotImplementedError if not."""
    if antialias and not (mode in ("bilinear", "bicubic", "lanczos") and ndim == 4):
        raise ValueError(
            f"{name}: antialias is restricted to the bilinear, bicubic and lanczos modes and "
            f"a 4-D input, got mode {mode!r} and a {ndim}-D input"
        )
    if mode == "lanczos" and ndim == 4 and (align_corners or not antialias):
        raise ValueError(f"{name}: lanczos mode needs antialias=True and align_corners=False")
    if antialias or mode == "lanczos":
        raise NotImplementedError(
            f"{name}: antialias=True (and mode 'lanczos') is not implemented in the reference; "
            "use antialias=False"
        )
    checked = Mode(mode) if mode in {m.value for m in Mode} else None
    wanted = _RANK.get(checked) if checked is not None else None
    if checked is not None and (wanted == ndim or (wanted is None and 3 <= ndim <= 5)):
        return checked
    if mode in ("linear", "bilinear", "trilinear") and 3 <= ndim <= 5:
        raise NotImplementedError(
            f"{name}: got a {ndim}-D input, but {mode} mode needs a {wanted}-D input"
        )
    raise NotImplementedError(
        f"{name}: only 3-D, 4-D and 5-D inputs are supported (got {ndim}-D) for the modes "
        f"{_MODES} (got {mode!r}); interpolate takes (N, C, d1, ..., dK)"
    )


def _check_sizes(input: np.ndarray, out_sizes: tuple[int, ...], mode: Mode, name: str) -> None:
    if 0 in input.shape[1:]:
        raise ValueError(
            f"{name}: expected an input non-empty except for the batch, got shape {input.shape}"
        )
    if any(n < (mode is not Mode.AREA) for n in out_sizes):  # area may give an empty output
        raise ValueError(
            f"{name}: input and output sizes should be greater than 0 (area: at least 0), got "
            f"input {input.shape} and output size {list(out_sizes)}"
        )


def _plan(input, size, scale_factor, mode, align_corners, recompute, antialias, name) -> _Plan:
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                f"{name}: align_corners can only be set with the interpolating modes linear, "
                f"bilinear, bicubic and trilinear, got mode {mode!r}; leave it None"
            )
    nd = input.ndim - 2
    sizes, factors = _requested(input, size, scale_factor, nd, name)
    if recompute and size is not None:
        raise ValueError(f"{name}: recompute_scale_factor is not meaningful with an explicit size")
    checked = _check_mode(mode, input.ndim, bool(align_corners), antialias, name)
    if sizes is None:  # floor(L * scale_factor), as torch (Python and C++) truncates
        sizes = tuple(int(length * f) for length, f in zip(input.shape[2:], factors))
    _check_sizes(input, sizes, checked, name)
    keep = factors is not None and not recompute and checked is not Mode.AREA
    scales = factors if keep else (None,) * nd
    legacy = checked in _NEAREST and input.ndim == 4
    return _Plan(checked, bool(align_corners), sizes, scales, legacy)


# -- the per-axis weights -----------------------------------------------------------------


def _inverse_scale(length: int, n: int, factor: float | None, dtype: Any) -> np.floating:
    """aten's compute_scales_value: ``1 / scale_factor`` (rounded once to the kernel's
    type) when one reaches the kernel, else ``L / n`` in that type."""
    if factor is not None and factor > 0:
        return dtype(1.0 / factor)
    return dtype(length) / dtype(n)


def _centre(scale: np.floating, n: int) -> np.ndarray:
    r""":math:`s(o + \frac12) - \frac12` for each output :math:`o`, rounded once in float32
    (the compiled kernel fuses it into a multiply-add: measured on nearest-exact's ties)."""
    exact = np.float64(scale) * (np.arange(n) + 0.5) - 0.5
    return exact.astype(scale.dtype)


def _source(length: int, n: int, align_corners: bool, factor: float | None, dtype: Any):
    """aten's area_pixel_compute_source_index (unclamped) for every output position."""
    if align_corners:
        scale = dtype(length - 1) / dtype(n - 1) if n > 1 else dtype(0)
        return scale * np.arange(n).astype(dtype)
    return _centre(_inverse_scale(length, n, factor, dtype), n)


def _nearest_index(plan: _Plan, axis: int, length: int, dtype: Any) -> np.ndarray:
    """The input position each output of ``axis`` copies, as torch's forward picks it."""
    n, factor = plan.out_sizes[axis], plan.scales[axis]
    exact = plan.mode is Mode.NEAREST_EXACT
    if plan.legacy_nearest:  # 4-D: aten's nearest_idx / nearest_exact_idx
        if not exact and n in (length, 2 * length):  # a kept or doubled size: o or o // 2
            return np.arange(n) // (n // length)
        dtype = np.float32  # their scale is a float for every input dtype
    scale = _inverse_scale(length, n, factor, dtype)
    if exact and plan.legacy_nearest:  # (o + 0.5) * scale, a double product
        position = (np.arange(n) + 0.5) * np.float64(scale)
    elif exact:  # 3-D, 5-D: in the kernel's type, as the other modes
        position = np.maximum(_centre(scale, n), 0).astype(np.float64) + 0.5
    else:
        position = scale * np.arange(n).astype(dtype)
    # floorf: the position is rounded to float32 before the floor, in float64 too
    index = np.floor(position.astype(np.float32)).astype(np.int64)
    return np.minimum(index, length - 1)


def _linear_taps(length: int, n: int, align_corners: bool, factor: float | None, dtype: Any):
    """aten's compute_source_index_and_lambda: ``(index, weight)``, each ``(n, 2)``."""
    if n == length:  # aten copies, whatever the scale factor
        return np.arange(n)[:, None], np.ones((n, 1), dtype)
    source = np.maximum(_source(length, n, align_corners, factor, dtype), 0)
    first = np.minimum(source.astype(np.int64), length - 1)
    second = first + (first < length - 1)
    lam = np.clip(source - first.astype(dtype), 0, 1)
    return np.stack([first, second], axis=1), np.stack([1 - lam, lam], axis=1)


def _cubic_taps(length: int, n: int, align_corners: bool, factor: float | None, dtype: Any):
    """Four taps per output, clamped to the border (``(n, 4)`` each); Keys' weights."""
    source = _source(length, n, align_corners, factor, dtype)
    floor = np.minimum(np.floor(source.astype(np.float32)).astype(np.int64), length - 1)
    t = np.clip(source - floor.astype(dtype), 0, 1)
    a = dtype(_CUBIC_A)

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    weights = np.stack([far(t + 1), near(t), near(1 - t), far((1 - t) + 1)], axis=1)
    index = np.clip(floor[:, None] + np.arange(-1, 3), 0, length - 1)
    return index, weights


def _axis_matrix(plan: _Plan, axis: int, length: int, dtype: Any) -> np.ndarray:
    """The ``(n, L)`` weights of spatial axis ``axis``."""
    n, factor = plan.out_sizes[axis], plan.scales[axis]
    if plan.mode is Mode.AREA:
        return averaging_matrix(length, n, dtype)
    if plan.mode in _NEAREST:
        index = _nearest_index(plan, axis, length, dtype)[:, None]
        weight = np.ones((n, 1), dtype)
    else:
        taps = _cubic_taps if plan.mode is Mode.BICUBIC else _linear_taps
        index, weight = taps(length, n, plan.align_corners, factor, dtype)
    matrix = np.zeros((n, length), dtype)
    rows = np.broadcast_to(np.arange(n)[:, None], index.shape)
    np.add.at(matrix, (rows, index), weight.astype(dtype))  # taps clamped together add up
    return matrix


def _contract(x: np.ndarray, matrix: np.ndarray, axis: int) -> np.ndarray:
    """``y[..., o, ...] = sum_i matrix[o, i] x[..., i, ...]`` along ``axis``."""
    if axis == x.ndim - 1:
        return x @ matrix.T  # (..., L) @ (L, n) -> (..., n)
    before, after = x.shape[:axis], x.shape[axis + 1 :]
    flat = x.reshape(math.prod(before), x.shape[axis], math.prod(after))  # -> (B, L, A)
    return (matrix @ flat).reshape(*before, matrix.shape[0], *after)  # (B, n, A) -> (..., n, ...)


def _compute_dtype(dtype: np.dtype) -> Any:
    return np.float32 if dtype == np.float16 else dtype.type  # float16: the kernel's float


# -- the public pairs ---------------------------------------------------------------------


def _forward(name: str, input: Any, size, scale_factor, mode, align_corners, recompute, antialias):
    input = as_float_array(input, name)
    plan = _plan(input, size, scale_factor, mode, align_corners, recompute, antialias, name)
    dtype = _compute_dtype(input.dtype)
    x = input.astype(dtype, copy=False)
    for axis, length in enumerate(input.shape[2:]):
        if plan.mode in _NEAREST:  # a copy: gathered, so it is exact (an inf stays an inf)
            x = np.take(x, _nearest_index(plan, axis, length, dtype), axis=2 + axis)
        else:
            x = _contract(x, _axis_matrix(plan, axis, length, dtype), 2 + axis)
    return x.astype(input.dtype, copy=False)


def _backward(name, grad_output, input, size, scale_factor, mode, align_corners, recompute, aa):
    input = as_float_array(input, name)
    plan = _plan(input, size, scale_factor, mode, align_corners, recompute, aa, name)
    grad_output = as_float_array(grad_output, name, "grad_output")
    expected = (*input.shape[:2], *plan.out_sizes)
    if grad_output.shape != expected:
        raise ValueError(
            f"{name}: grad_output must have the output's shape {expected}, got {grad_output.shape}"
        )
    dtype = _compute_dtype(input.dtype)
    g = grad_output.astype(dtype, copy=False)
    for axis, length in enumerate(input.shape[2:]):
        g = _contract(g, _axis_matrix(plan, axis, length, dtype).T, 2 + axis)  # W^T
    return g.astype(input.dtype, copy=False)


def interpolate(
    input: np.ndarray,
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> np.ndarray:
    r"""Resample the spatial dims of ``input`` to ``size`` or by ``scale_factor``.

    .. math:: y_{nc\,o_1 \ldots o_K} = \sum_{i_1 \ldots i_K} W^{(1)}_{o_1 i_1} \cdots
              W^{(K)}_{o_K i_K}\, x_{nc\,i_1 \ldots i_K}

    with each axis' :math:`W` given by ``mode`` (module docstring: coordinates, sizes,
    ``align_corners``, ``recompute_scale_factor``). Nearest modes copy (gathered).

    Shapes: input ``(N, C, L)`` (nearest, nearest-exact, linear, area), ``(N, C, H, W)``
    (nearest*, bilinear, bicubic, area) or ``(N, C, D, H, W)`` (nearest*, trilinear, area)
    -> ``(N, C, *out)``. ``antialias=True`` raises NotImplementedError.
    Torch: ``torch.nn.functional.interpolate``.
    """
    return _forward(
        "interpolate", input, size, scale_factor, mode, align_corners, recompute_scale_factor,
        antialias,
    )  # fmt: skip


def interpolate_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    size: int | tuple[int, ...] | None = None,
    scale_factor: float | tuple[float, ...] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> np.ndarray:
    r"""Gradient of :func:`interpolate` wrt its input: the transposed weights.

    .. math:: \frac{\partial L}{\partial x_{nc\,i_1 \ldots i_K}} = \sum_{o_1 \ldots o_K}
              W^{(1)}_{o_1 i_1} \cdots W^{(K)}_{o_K i_K}\, g_{nc\,o_1 \ldots o_K}

    Each input position collects the gradient of every output that read it, times the
    weight it was read with (nearest: the sum over the outputs that copied it).

    Torch's CPU backwards of 3-D and 5-D nearest(-exact) and of bicubic recompute the
    positions by other rules than their forwards (nearest_idx's float32 scale and its
    copies when a size is kept or doubled; bicubic copies when both sizes are kept);
    where they differ, torch's gradient is not that of its own output. This one is.
    """
    return _backward(
        "interpolate_backward", grad_output, input, size, scale_factor, mode, align_corners,
        recompute_scale_factor, antialias,
    )  # fmt: skip


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """``torch.nn.functional.upsample`` (deprecated there): :func:`interpolate`."""
    return _forward("upsample", input, size, scale_factor, mode, align_corners, None, False)


def upsample_backward(grad_output, input, size=None, scale_factor=None, mode="nearest",
                      align_corners=None):  # fmt: skip
    """Gradient of :func:`upsample`: :func:`interpolate_backward`."""
    args = (size, scale_factor, mode, align_corners, None, False)
    return _backward("upsample_backward", grad_output, input, *args)


def upsample_nearest(input, size=None, scale_factor=None):
    """``torch.nn.functional.upsample_nearest`` (deprecated): ``mode='nearest'``."""
    return _forward("upsample_nearest", input, size, scale_factor, "nearest", None, None, False)


def upsample_nearest_backward(grad_output, input, size=None, scale_factor=None):
    """Gradient of :func:`upsample_nearest`."""
    args = (size, scale_factor, "nearest", None, None, False)
    return _backward("upsample_nearest_backward", grad_output, input, *args)


def upsample_bilinear(input, size=None, scale_factor=None):
    """``torch.nn.functional.upsample_bilinear`` (deprecated): bilinear, ``align_corners=True``."""
    return _forward("upsample_bilinear", input, size, scale_factor, "bilinear", True, None, False)


def upsample_bilinear_backward(grad_output, input, size=None, scale_factor=None):
    """Gradient of :func:`upsample_bilinear`."""
    args = (size, scale_factor, "bilinear", True, None, False)
    return _backward("upsample_bilinear_backward", grad_output, input, *args)
