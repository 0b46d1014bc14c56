r"""Fractional max pooling, forward and backward (``torch.nn.functional.fractional_max_pool2d/3d``).

Graham's *Fractional Max-Pooling* (2014): windows of a fixed size :math:`k` whose starts
advance by a *fractional* stride, so an axis of length :math:`n` shrinks to any
:math:`n_{out}` with :math:`n_{out} + k - 1 \le n`. Each (sample, channel) plane draws
one number :math:`u \in [0, 1)` per spatial axis (``_random_samples``, shape
``(N, C, nd)``) and window :math:`i` of that axis starts at (torch's
``generate_intervals``)

.. math:: s_i = \lfloor (i + u)\,\alpha \rfloor - \lfloor u\,\alpha \rfloor, \quad
          \alpha = \frac{n - k}{n_{out} - 1}, \quad i < n_{out} - 1, \qquad
          s_{n_{out} - 1} = n - k.

Torch computes :math:`\alpha`, :math:`i + u` and both products **in the input's dtype**
(float32 for float32 input) and truncates to int; so do we, because a product that
lands on an integer in float64 may fall just below it in float32 and shift a window.
The components of a plane's sample are read as torch's kernels read them: ``(w, h)``
for 2-d, ``(t, h, w)`` for 3-d.

The output is the maximum of each window, with torch's scan rule (row-major over the
window, a value replaces the running maximum when greater, or when NaN): the first
maximum wins, a NaN wins (the last NaN), an all ``-inf`` window points at its first
element. ``indices`` hold the flat index into the input plane (``h * W + w``,
``(t * H + h) * W + w``). The gradient of each window goes to that one element:

.. math:: \frac{\partial L}{\partial x[n, c, u]} = \sum_{j\,:\,\text{index}[n, c, j] = u}
          g[n, c, j].

``_random_samples=None`` draws the samples from ``rng``, in the input's dtype; to
reproduce torch, pass the samples torch drew (``harness/dropout_masks.py``). The
backward needs the forward's ``indices``, or the samples to recompute them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import as_float_array
from .conv import _positive, _tuple
from .pooling import scatter_to_plane

__all__ = [
    "fractional_max_pool2d", "fractional_max_pool2d_backward",
    "fractional_max_pool3d", "fractional_max_pool3d_backward", "fractional_intervals",
]  # fmt: skip

# which component of a plane's sample drives each spatial axis (H, W) / (T, H, W)
_SAMPLE_COMPONENT = {2: (1, 0), 3: (0, 1, 2)}
_AXIS_NAMES = {2: ("height", "width"), 3: ("time", "height", "width")}


def fractional_intervals(sample: np.ndarray, size: int, out: int, kernel: int) -> np.ndarray:
    """Window starts ``(..., out)`` (int64) for samples ``(...)``, torch's
    ``generate_intervals`` in the samples' dtype (module docstring)."""
    sample = np.asarray(sample)
    t = sample.dtype.type
    starts = np.full((*sample.shape, out), size - kernel, dtype=np.int64)
    if out > 1:
        alpha = t(size - kernel) / t(out - 1)
        i = np.arange(out - 1).astype(sample.dtype)
        # float -> int truncates toward zero, as C++'s static_cast<int>
        shifted = ((i + sample[..., None]) * alpha).astype(np.int64)  # (..., out - 1)
        starts[..., :-1] = shifted - (sample * alpha).astype(np.int64)[..., None]
    return starts


def _output_size(shape, output_size, output_ratio, nd, layer) -> tuple[int, ...]:
    """``output_size``, or ``int(n * ratio)`` per axis (torch's functional)."""
    if (output_size is None) == (output_ratio is None):
        raise ValueError(
            f"{layer}: requires specifying either an output_size or an output_ratio "
            f"(exactly one), got output_size={output_size!r}, output_ratio={output_ratio!r}"
        )
    if output_size is not None:
        out = _tuple(output_size, nd, "output_size", layer)
    else:
        ratio = tuple(output_ratio) if isinstance(output_ratio, Sequence) else (output_ratio,) * nd
        if len(ratio) != nd or not all(isinstance(r, (int, float, np.number)) for r in ratio):
            raise ValueError(f"{layer}: output_ratio must be a number or {nd} numbers, "
                             f"got {output_ratio!r}")  # fmt: skip
        out = tuple(int(n * r) for n, r in zip(shape[-nd:], ratio))
    if min(out) < 0:
        raise ValueError(f"{layer}: output size must be non-negative, got {out}")
    return out


def _check_window_fits(size, kernel, out, nd, layer) -> None:
    """torch's checks: ``out + k - 1 <= n`` in 2-d; in 3-d ``k <= n`` and ``out + k - 1 < n``
    (strict, so a 3-d axis cannot be covered at stride 1), axes in torch's order."""
    order = (0, 1) if nd == 2 else (0, 2, 1)  # 3-d checks time, width, height
    for axis in order:
        n, k, o = size[axis], kernel[axis], out[axis]
        fits = o + k - 1 <= n if nd == 2 else (k <= n and o + k - 1 < n)
        if not fits:
            name = _AXIS_NAMES[nd][axis]
            raise ValueError(
                f"{layer}: pool {name} {k} too large relative to input {name} {n} (output "
                f"{name} {o}); torch needs output + kernel - 1 {'<=' if nd == 2 else '<'} "
                "input: use a smaller kernel_size or output_size"
            )


def _check_samples(samples, x, nd, layer) -> np.ndarray:
    """torch's checks on ``_random_samples`` (dtype, 3 dims, ``(>= N, C, nd)``); the rows
    beyond the batch are ignored, as torch ignores them."""
    samples = np.asarray(samples)
    if samples.dtype != x.dtype:
        raise TypeError(
            f"{layer}: _random_samples must have the input's dtype {x.dtype}, got "
            f"{samples.dtype} (torch: Expect _random_samples to have the same dtype as input)"
        )
    n, c = x.shape[:2]
    if samples.ndim != 3 or samples.shape[0] < n or samples.shape[1:] != (c, nd):
        raise ValueError(
            f"{layer}: _random_samples must have shape (N, C, {nd}) = ({n}, {c}, {nd}) (more "
            f"rows than the batch are ignored; (1, C, {nd}) for unbatched input), got "
            f"{samples.shape}"
        )
    if not np.isfinite(samples).all():
        raise ValueError(f"{layer}: _random_samples must be finite (torch draws them in [0, 1))")
    return samples[:n]


def _prepare(input, kernel_size, output_size, output_ratio, samples, rng, nd, layer):
    """Validate; return the batched input, kernel, output size and the ``(N, C, nd)`` samples."""
    input = as_float_array(input, layer)
    if input.ndim not in (nd + 1, nd + 2) or 0 in input.shape[-nd - 1 :]:
        raise ValueError(
            f"{layer}: expected a {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, "
            f"non-empty except for the batch, got shape {input.shape}"
        )
    kernel = _positive(kernel_size, nd, "kernel_size", layer)
    out = _output_size(input.shape, output_size, output_ratio, nd, layer)
    x = input[None] if input.ndim == nd + 1 else input  # (C, ...) -> (1, C, ...)
    _check_window_fits(x.shape[2:], kernel, out, nd, layer)
    if samples is None:
        samples = draw_samples(x.shape[:2], nd, x.dtype, rng)
    return x, kernel, out, _check_samples(samples, x, nd, layer)


def draw_samples(batch_channels: tuple[int, int], nd: int, dtype: Any, rng: Any) -> np.ndarray:
    """``(N, C, nd)`` samples uniform on [0, 1) in ``dtype`` (float32 drawn as float32, so
    rounding never makes a 1)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)  # a seed or None (nn.init.resolve_rng's rule)
    dtype = np.dtype(dtype)
    drawn = np.float64 if dtype == np.float64 else np.float32
    return rng.random((*batch_channels, nd), dtype=drawn).astype(dtype)


def _window_index(x, kernel, out, samples, nd) -> np.ndarray:
    """Flat plane index of every window element: ``(N, C, *out, *kernel)``."""
    n, c, *size = x.shape
    flat = np.zeros((n, c) + (1,) * (2 * nd), dtype=np.int64)
    stride = 1
    for axis in reversed(range(nd)):  # a loop over spatial axes
        sample = samples[..., _SAMPLE_COMPONENT[nd][axis]]  # (N, C)
        starts = fractional_intervals(sample, size[axis], out[axis], kernel[axis])
        pos = starts[..., None] + np.arange(kernel[axis])  # (N, C, out_a, k_a)
        # (N, C, out_a, k_a) -> (N, C, 1.., out_a, 1.., 1.., k_a, 1..)
        shape = [n, c] + [1] * (2 * nd)
        shape[2 + axis], shape[2 + nd + axis] = out[axis], kernel[axis]
        flat = flat + pos.reshape(shape) * stride
        stride *= size[axis]
    return flat


def _fractional_max(input, kernel_size, output_size, output_ratio, samples, rng, nd, layer):
    x, kernel, out, samples = _prepare(input, kernel_size, output_size, output_ratio,
                                       samples, rng, nd, layer)  # fmt: skip
    n, c = x.shape[:2]
    window = int(np.prod(kernel))
    plane, count = int(np.prod(x.shape[2:])), int(np.prod(out)) * window
    flat = _window_index(x, kernel, out, samples, nd).reshape(n, c, *out, window)
    planes = x.reshape(n, c, 1, plane)  # (N, C, *size) -> (N, C, 1, plane)
    values = np.take_along_axis(planes, flat.reshape(n, c, 1, count), axis=-1)
    values = values.reshape(flat.shape)  # (N, C, 1, count) -> (N, C, *out, window)
    arg = values.argmax(axis=-1)  # the first maximum in scan order, as torch
    is_nan = np.isnan(values)
    if is_nan.any():
        last_nan = window - 1 - is_nan[..., ::-1].argmax(axis=-1)  # torch: the last NaN wins
        arg = np.where(is_nan.any(axis=-1), last_nan, arg)
    output = np.take_along_axis(values, arg[..., None], axis=-1)[..., 0]
    indices = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    if np.ndim(input) == nd + 1:
        output, indices = output[0], indices[0]  # (1, C, ...) -> (C, ...)
    return output, indices


def _fractional_max_backward(grad_output, input, kernel_size, output_size, output_ratio,
                             samples, indices, nd, layer):  # fmt: skip
    if indices is None:
        if samples is None:
            raise ValueError(
                f"{layer}: the windows are random; pass indices= (from the forward with "
                "return_indices=True) or the _random_samples the forward used"
            )
        _, indices = _fractional_max(input, kernel_size, output_size, output_ratio, samples,
                                     None, nd, layer)  # fmt: skip
    input = as_float_array(input, layer)
    indices = np.asarray(indices)
    g = as_float_array(grad_output, layer, "grad_output")
    if g.shape != indices.shape or g.shape[:-nd] != input.shape[:-nd]:
        raise ValueError(
            f"{layer}: grad_output must have the output's shape {indices.shape}, got {g.shape}"
        )
    plane = int(np.prod(input.shape[-nd:]))
    if g.size == 0:
        return np.zeros(input.shape, dtype=g.dtype)
    # (..., *out) -> (planes, 1, outputs): scatter_to_plane takes 2 trailing output dims
    lead = int(np.prod(input.shape[:-nd]))
    g2, i2 = g.reshape(lead, 1, -1), indices.reshape(lead, 1, -1)
    return scatter_to_plane(g2, i2, input.shape, plane)


def fractional_max_pool2d(
    input: np.ndarray,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: np.ndarray | None = None,
    *,
    rng: np.random.Generator | int | None = None,
):
    r"""2-d fractional max pooling: :math:`y[n, c, i, j] = \max` over the
    :math:`k_H \times k_W` window at :math:`(s^H_i, s^W_j)` of plane :math:`(n, c)`.

    Exactly one of ``output_size`` (an int or a pair) and ``output_ratio`` (a number or
    a pair: :math:`n_{out} = \lfloor n \cdot r \rfloor`) is given. ``_random_samples``:
    ``(N, C, 2)`` (``(1, C, 2)`` unbatched) in the input's dtype, components ``(w, h)``;
    ``None`` draws them from ``rng``. Shapes: ``(N, C, H, W)`` or ``(C, H, W)`` ->
    ``(N, C, H_o, W_o)``; with ``return_indices`` also the flat indices ``h * W + w``.
    Torch: ``torch.nn.functional.fractional_max_pool2d`` (whose own functional refuses a
    bare number for ``output_ratio``, against its documentation; the module takes one).
    """
    output, indices = _fractional_max(input, kernel_size, output_size, output_ratio,
                                      _random_samples, rng, 2, "fractional_max_pool2d")  # fmt: skip
    return (output, indices) if return_indices else output


def fractional_max_pool2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: np.ndarray | None = None,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`fractional_max_pool2d`: each window's gradient goes to its maximum,
    summed where windows overlap. ``indices`` are the forward's; recomputed from
    ``_random_samples`` when not given."""
    return _fractional_max_backward(grad_output, input, kernel_size, output_size, output_ratio,
                                    _random_samples, indices, 2,
                                    "fractional_max_pool2d_backward")  # fmt: skip


def fractional_max_pool3d(
    input: np.ndarray,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: np.ndarray | None = None,
    *,
    rng: np.random.Generator | int | None = None,
):
    r"""3-d fractional max pooling over :math:`k_T \times k_H \times k_W` windows.

    As :func:`fractional_max_pool2d`, with samples ``(N, C, 3)`` read as ``(t, h, w)``
    and torch's stricter 3-d size rule (``out + k - 1 < n``). Shapes:
    ``(N, C, T, H, W)`` or ``(C, T, H, W)``; flat indices ``(t * H + h) * W + w``.
    Torch: ``torch.nn.functional.fractional_max_pool3d``.
    """
    output, indices = _fractional_max(input, kernel_size, output_size, output_ratio,
                                      _random_samples, rng, 3, "fractional_max_pool3d")  # fmt: skip
    return (output, indices) if return_indices else output


def fractional_max_pool3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    kernel_size: Any,
    output_size: Any = None,
    output_ratio: Any = None,
    return_indices: bool = False,
    _random_samples: np.ndarray | None = None,
    *,
    indices: np.ndarray | None = None,
) -> np.ndarray:
    r"""Gradient of :func:`fractional_max_pool3d`: each window's gradient to its maximum."""
    return _fractional_max_backward(grad_output, input, kernel_size, output_size, output_ratio,
                                    _random_samples, indices, 3,
                                    "fractional_max_pool3d_backward")  # fmt: skip
