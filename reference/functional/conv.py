r"""Convolution, forward and backward (``torch.nn.functional.conv1d`` / ``2d`` / ``3d``).

How the forward is computed (*im2col*), drawn in 2-d:

1. pad the input with zeros and view every window the kernel visits
   (``sliding_window_view``: a strided view, nothing is copied yet);
2. copy the windows into ``cols`` of shape ``(C*kh*kw, N*Ho*Wo)``: one column per
   output pixel of every sample, holding the ``C*kh*kw`` input values it sees;
3. one matmul with the weight flattened to ``(O, C*kh*kw)`` gives every output pixel.

The backward reuses the same picture:

- the weight gradient is ``grad_output @ cols^T``, with ``grad_output`` as
  ``(O, N*Ho*Wo)``: one matmul, which also sums over the batch;
- the input gradient sends each output pixel's gradient back through the weight to
  the input positions it read: the *transposed convolution*. One matmul, then a loop
  over the ``kh*kw`` kernel offsets (9 for a 3x3 kernel), each one strided-slice add:
  the loop runs over the small kernel, never over the batch, channels or pixels.

Inside, arrays are laid out channels first, ``(C, N, H, W)``: then every pass is
one large 2-D matmul (what BLAS does best) instead of one small one per sample.
With ``groups``, channels split into ``groups`` independent blocks and each matmul
runs once per block. These pieces, in :mod:`.im2col`, take any number of spatial
dims: :func:`conv1d`, :func:`conv2d` and :func:`conv3d` (a volume, ``kd*kh*kw``
offsets) share one code path, and ``conv_transpose1d/2d/3d`` (:mod:`.conv_transpose`)
reuse it. This module holds the argument handling and the three public pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

import numpy as np

from .._validate import as_float_array, check_dtypes
from .im2col import (
    apply_kernel,
    batch_first,
    channels_first,
    conv_transpose_scatter,
    conv_weight_grad,
    im2col,
)

__all__ = [
    "conv1d", "conv1d_backward", "conv2d", "conv2d_backward", "conv3d", "conv3d_backward",
]  # fmt: skip


# -- arguments ---------------------------------------------------------------
def _tuple(value: Any, n: int, name: str, layer: str) -> tuple[int, ...]:
    """An int or a length-``n`` sequence of ints as an ``n``-tuple (torch's ``_pair``)."""
    values = tuple(value) if isinstance(value, Sequence) else (value,) * n
    if len(values) != n or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"{layer}: {name} must be an int or {n} ints, got {value!r}")
    return tuple(int(v) for v in values)


def _positive(value: Any, n: int, name: str, layer: str) -> tuple[int, ...]:
    values = _tuple(value, n, name, layer)
    if min(values) <= 0:
        raise ValueError(f"{layer}: {name} must be positive, got {value!r}")
    return values


def resolve_padding(
    padding: Any,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    layer: str,
) -> tuple[tuple[int, int], ...]:
    """``(before, after)`` zeros per spatial dim from an int, a tuple, ``'valid'`` or ``'same'``.

    ``'same'`` pads ``d*(k-1)`` in total; when that is odd the extra zero goes
    after (bottom/right), as torch does. It needs stride 1: with a stride no
    padding keeps the size, and torch refuses it.
    """
    if isinstance(padding, str):
        if padding == "valid":
            return tuple((0, 0) for _ in kernel)
        if padding != "same":
            raise ValueError(
                f"{layer}: invalid padding string {padding!r}, should be one of "
                "{'valid', 'same'} or an int / tuple of ints"
            )
        if any(s != 1 for s in stride):
            raise ValueError(
                f"{layer}: padding='same' is not supported for strided convolutions "
                f"(stride={stride}); use an explicit padding"
            )
        totals = [d * (k - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    values = _tuple(padding, len(kernel), "padding", layer)
    if min(values) < 0:
        raise ValueError(f"{layer}: padding must be non-negative, got {padding!r}")
    return tuple((p, p) for p in values)


def check_conv_input(
    input: np.ndarray,
    weight: np.ndarray,
    groups: int,
    nd: int,
    layer: str,
    transposed: bool = False,
) -> None:
    """Rank, group and channel checks shared by the functions and the modules.

    ``weight`` is ``(O, C/groups, *kernel)`` for a convolution and
    ``(C, O/groups, *kernel)`` for a transposed one.
    """
    if input.ndim not in (nd + 1, nd + 2):
        raise ValueError(
            f"{layer}: expected {nd + 1}-D (unbatched) or {nd + 2}-D (batched) input, got "
            f"shape {input.shape}"
        )
    if weight.ndim != nd + 2:
        raise ValueError(f"{layer}: expected a {nd + 2}-D weight, got shape {weight.shape}")
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups <= 0:
        raise ValueError(f"{layer}: groups must be a positive integer, got {groups!r}")
    channels = input.shape[-nd - 1]
    if transposed:
        expected = weight.shape[0]
        if expected % groups:
            raise ValueError(
                f"{layer}: weight dim 0 ({expected}, the input channels) must be divisible by "
                f"groups={groups}; weight shape {weight.shape}"
            )
    else:
        expected = weight.shape[1] * groups
        if weight.shape[0] % groups:
            raise ValueError(
                f"{layer}: weight dim 0 ({weight.shape[0]}, the output channels) must be "
                f"divisible by groups={groups}; weight shape {weight.shape}"
            )
    if channels != expected:
        raise ValueError(
            f"{layer}: weight {weight.shape} with groups={groups} expects input with "
            f"{expected} channels in dim {-nd - 1}, got input of shape {input.shape} with "
            f"{channels} channels"
        )


def check_bias(bias: Any, channels: int, layer: str) -> np.ndarray | None:
    """A bias, when given, is a floating array with one value per output channel."""
    if bias is None:
        return None
    bias = as_float_array(bias, layer, "bias")
    if bias.shape != (channels,):
        raise ValueError(
            f"{layer}: bias must have shape ({channels},), one value per output channel, got "
            f"{bias.shape}"
        )
    return bias


class BiasDtype(Enum):
    """Where torch's kernel meets a bias whose dtype is not the input's."""

    FIRST = "checked before the weight"  # a convolution with integer padding
    CAST = "cast to the input's dtype"  # a convolution with 'same' / 'valid' padding
    LAST = "checked after the weight"  # a transposed convolution


def check_conv_dtypes(input, weight, bias, rule: BiasDtype, layer: str) -> None:
    """torch's ``RuntimeError`` for a weight or bias of another dtype than the input, in
    the order and words of torch's kernel (it never promotes between them)."""
    if bias is not None and rule is BiasDtype.FIRST:
        check_dtypes(input, {"bias": bias}, layer, "bias type")
    key = "tensor type" if input.dtype == np.float16 else "scalar type"
    check_dtypes(input, {"weight": weight}, layer, key)
    if bias is not None and rule is BiasDtype.LAST:
        check_dtypes(input, {"bias": bias}, layer, "scalar type")


# -- the public pairs, on top of .im2col's pieces -----------------------------
def _prepare(input, weight, bias, stride, padding, dilation, groups, nd, layer):
    """Validate; return the batched input, weight, bias, stride/pads/dilation, the layout."""
    input = as_float_array(input, layer)
    weight = as_float_array(weight, layer, "weight")
    check_conv_input(input, weight, groups, nd, layer)
    bias = check_bias(bias, weight.shape[0], layer)
    stride = _positive(stride, nd, "stride", layer)
    dilation = _positive(dilation, nd, "dilation", layer)
    kernel = weight.shape[2:]
    pads = resolve_padding(padding, kernel, stride, dilation, layer)
    size = tuple(n + p + q for n, (p, q) in zip(input.shape[-nd:], pads))
    extent = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if any(s < e for s, e in zip(size, extent)):
        raise ValueError(
            f"{layer}: the padded input {size} is smaller than the kernel's extent {extent} "
            f"(kernel {kernel}, dilation {dilation}); input shape {input.shape}: pad more or "
            "use a smaller kernel"
        )
    # torch checks the dtypes after every shape
    rule = BiasDtype.CAST if isinstance(padding, str) else BiasDtype.FIRST
    check_conv_dtypes(input, weight, bias, rule, layer)
    unbatched = input.ndim == nd + 1
    x = input[None] if unbatched else input  # (C, *S) -> (1, C, *S)
    return x, weight, bias, stride, pads, dilation, unbatched


def _out_size(x: np.ndarray, weight: np.ndarray, stride, pads, dilation) -> tuple[int, ...]:
    """``floor((S + before + after - d (k - 1) - 1) / s) + 1`` per spatial dim."""
    return tuple((n + p + q - d * (k - 1) - 1) // s + 1 for n, (p, q), k, s, d
                 in zip(x.shape[2:], pads, weight.shape[2:], stride, dilation))  # fmt: skip


def _conv(input, weight, bias, stride, padding, dilation, groups, nd, layer):
    x, w, b, stride, pads, dilation, unbatched = _prepare(
        input, weight, bias, stride, padding, dilation, groups, nd, layer
    )
    out_size = _out_size(x, w, stride, pads, dilation)
    cols = im2col(channels_first(x, pads), w.shape[2:], stride, dilation, out_size)
    y = apply_kernel(cols, w, groups)  # (O, N*prod(So))
    y = batch_first(y.reshape(-1, x.shape[0], *out_size))  # (O, N, *So) -> (N, O, *So)
    if b is not None:  # (in the input's dtype, as torch casts it for 'same' / 'valid')
        y += b.astype(y.dtype, copy=False).reshape(-1, *(1,) * nd)  # (O,) -> (O, 1, ..)
    return y[0] if unbatched else y


def _conv_backward(grad_output, input, weight, bias, stride, padding, dilation, groups, nd, layer):
    x, w, b, stride, pads, dilation, unbatched = _prepare(
        input, weight, bias, stride, padding, dilation, groups, nd, layer
    )
    out_size = _out_size(x, w, stride, pads, dilation)
    expected = (*input.shape[: -nd - 1], w.shape[0], *out_size)
    if np.shape(grad_output) != expected:
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {expected}, got "
            f"{np.shape(grad_output)}"
        )
    g = np.asarray(grad_output)
    g = channels_first(g[None] if unbatched else g)  # (N, O, *So) -> (O, N, *So)
    padded = channels_first(x, pads)  # (C, N, *Sp)
    cols = im2col(padded, w.shape[2:], stride, dilation, out_size)
    g_flat = g.reshape(g.shape[0], -1)  # (O, N, *So) -> (O, N*prod(So))
    grad_weight = conv_weight_grad(g_flat, cols, w.shape, groups)
    grad_padded = conv_transpose_scatter(g, w, padded.shape[2:], stride, dilation, groups)
    crop = tuple(slice(p, p + n) for (p, _), n in zip(pads, x.shape[2:]))  # cut the padding
    grad_input = batch_first(grad_padded[(slice(None), slice(None)) + tuple(crop)])  # (N, C, *S)
    grad_bias = g_flat.sum(axis=1).astype(b.dtype, copy=False) if b is not None else None  # (O,)
    return grad_input[0] if unbatched else grad_input, grad_weight, grad_bias


def conv2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    r"""2-d convolution (a cross-correlation, as in every deep-learning library).

    .. math::
        y[n, o, h, w] = b_o + \sum_{c \in \text{group}(o)} \sum_{i, j}
            W[o, c, i, j] \; x_{pad}[n, c, h s_h + i d_h, w s_w + j d_w]

    Shapes: input ``(N, C, H, W)`` or ``(C, H, W)``, weight ``(O, C/groups, kh, kw)``,
    bias ``(O,)`` -> ``(N, O, Ho, Wo)`` with
    :math:`H_o = \lfloor (H + p_{top} + p_{bottom} - d_h (k_h - 1) - 1) / s_h \rfloor + 1`.
    ``padding`` is an int, a pair, ``'valid'`` (none) or ``'same'`` (stride 1 only;
    an odd total puts the extra zero at the bottom/right). Channel ``c`` belongs to
    group ``c // (C/groups)`` and only meets the output channels of its group.

    Torch: ``torch.nn.functional.conv2d``.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`conv2d` wrt input, weight and bias.

    With :math:`g = \partial L/\partial y` and the same index map as the forward:

    .. math::
        \frac{\partial L}{\partial W[o, c, i, j]} = \sum_{n, h, w} g[n, o, h, w]\,
            x_{pad}[n, c, h s_h + i d_h, w s_w + j d_w], \qquad
        \frac{\partial L}{\partial b_o} = \sum_{n, h, w} g[n, o, h, w]

    .. math::
        \frac{\partial L}{\partial x_{pad}}[n, c, h s_h + i d_h, w s_w + j d_w]
            \mathrel{+}= \sum_o W[o, c, i, j]\, g[n, o, h, w]

    and the input gradient is that of :math:`x_{pad}` with the padding cut away
    (the transposed convolution of :math:`g`). Returns ``(grad_input, grad_weight,
    grad_bias)``, ``grad_bias`` ``None`` when ``bias`` is.
    """
    return _conv_backward(grad_output, input, weight, bias, stride, padding, dilation, groups,
                          2, "conv2d")  # fmt: skip


def conv1d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    r"""1-d convolution: :func:`conv2d`'s im2col and matmul with one spatial dim.

    .. math:: y[n, o, l] = b_o + \sum_{c \in \text{group}(o)} \sum_i W[o, c, i]\,
              x_{pad}[n, c, l s + i d]

    Shapes: input ``(N, C, L)`` or ``(C, L)``, weight ``(O, C/groups, k)``, bias
    ``(O,)`` -> ``(N, O, L_o)``, :math:`L_o = \lfloor (L + 2p - d(k-1) - 1)/s \rfloor + 1`.
    Torch: ``torch.nn.functional.conv1d``.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`conv1d`: those of :func:`conv2d_backward` with one spatial dim.

    .. math::
        \frac{\partial L}{\partial W[o, c, i]} = \sum_{n, l} g[n, o, l]\, x_{pad}[n, c, l s + i d],
        \qquad
        \frac{\partial L}{\partial x_{pad}}[n, c, l s + i d] \mathrel{+}= \sum_o W[o, c, i]\,
            g[n, o, l]

    Returns ``(grad_input, grad_weight, grad_bias)``.
    """
    return _conv_backward(grad_output, input, weight, bias, stride, padding, dilation, groups,
                          1, "conv1d")  # fmt: skip


def conv3d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    r"""3-d convolution: :func:`conv2d`'s im2col and matmul with a depth dim in front.

    .. math::
        y[n, o, t, h, w] = b_o + \sum_{c \in \text{group}(o)} \sum_{k, i, j} W[o, c, k, i, j]\,
            x_{pad}[n, c, t s_d + k d_d, h s_h + i d_h, w s_w + j d_w]

    Shapes: input ``(N, C, D, H, W)`` or ``(C, D, H, W)``, weight
    ``(O, C/groups, kd, kh, kw)``, bias ``(O,)`` -> ``(N, O, Do, Ho, Wo)``, each output
    size as in :func:`conv2d`. ``padding`` is an int, a triple, ``'valid'`` or
    ``'same'``. Torch: ``torch.nn.functional.conv3d``.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def conv3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`conv3d`: those of :func:`conv2d_backward` with three spatial dims.

    With :math:`g = \partial L/\partial y`, :math:`u = (t s_d + k d_d, h s_h + i d_h,
    w s_w + j d_w)` the position a kernel tap reads:

    .. math::
        \frac{\partial L}{\partial W[o, c, k, i, j]} = \sum_{n, t, h, w} g[n, o, t, h, w]\,
            x_{pad}[n, c, u], \qquad
        \frac{\partial L}{\partial x_{pad}}[n, c, u] \mathrel{+}= \sum_o W[o, c, k, i, j]\,
            g[n, o, t, h, w]

    and :math:`\partial L/\partial b_o` sums :math:`g` over all but the channel.
    Returns ``(grad_input, grad_weight, grad_bias)``.
    """
    return _conv_backward(grad_output, input, weight, bias, stride, padding, dilation, groups,
                          3, "conv3d")  # fmt: skip
