r"""Convolution, forward and backward (``torch.nn.functional.conv1d`` / ``conv2d``).

How the forward is computed (*im2col*):

1. pad the input with zeros and view every window the kernel visits
   (``sliding_window_view``: a strided view, nothing is copied yet);
2. copy the windows into ``cols`` of shape ``(C*kh*kw, N*Ho*Wo)``: one column per
   output pixel of every sample, holding the ``C*kh*kw`` input values it sees;
3. one matmul with the weight flattened to ``(O, C*kh*kw)`` gives every output pixel.

The backward reuses the same picture:

- the weight gradient is ``grad_output @ cols^T``, with ``grad_output`` as
  ``(O, N*Ho*Wo)``: one matmul, which also sums over the batch;
- the input gradient sends each output pixel's gradient back through the weight to
  the input positions it read: the *transposed convolution*. It is computed as a loop
  over the ``kh*kw`` kernel offsets (9 for a 3x3 kernel), each one matmul and one
  strided-slice add. The loop runs over the small kernel, never over the batch,
  the channels or the pixels.

Inside, arrays are laid out channels first, ``(C, N, H, W)``: then every pass is
one large 2-D matmul (what BLAS does best) instead of one small one per sample.
With ``groups``, channels split into ``groups`` independent blocks and each matmul
runs once per block. These pieces are in :mod:`.im2col`; this module holds the
argument handling and the two public pairs.

A 1-d convolution is a 2-d one whose input has height 1 and whose kernel has
height 1, which is how :func:`conv1d` is computed here. The transposed convolution
(``conv_transpose1d/2d``) lives in :mod:`.conv_transpose` and reuses these pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validate import as_float_array
from .im2col import (
    apply_kernel,
    batch_first,
    channels_first,
    conv_transpose_scatter,
    conv_weight_grad,
    im2col,
)

__all__ = ["conv1d", "conv1d_backward", "conv2d", "conv2d_backward"]


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


def check_bias(bias: np.ndarray | None, channels: int, layer: str) -> None:
    """A bias, when given, holds one value per output channel."""
    if bias is not None and np.shape(bias) != (channels,):
        raise ValueError(
            f"{layer}: bias must have shape ({channels},), one value per output channel, got "
            f"{np.shape(bias)}"
        )


def lift_1d(x: np.ndarray) -> np.ndarray:
    """``(N, C, L) -> (N, C, 1, L)``: a 1-d signal is an image of height 1."""
    return x[..., None, :]


# -- the two public pairs, on top of .im2col's pieces -------------------------
def _out_size(size: int, pads: tuple[int, int], k: int, s: int, d: int) -> int:
    return (size + pads[0] + pads[1] - d * (k - 1) - 1) // s + 1


def _prepare(input, weight, stride, padding, dilation, groups, nd, layer):
    """Validate; return the 4-d input and weight, 2-d stride/pads/dilation, and the layout."""
    input = as_float_array(input, layer)
    weight = as_float_array(weight, layer, "weight")
    check_conv_input(input, weight, groups, nd, layer)
    stride = _positive(stride, nd, "stride", layer)
    dilation = _positive(dilation, nd, "dilation", layer)
    pads = resolve_padding(padding, weight.shape[2:], stride, dilation, layer)
    unbatched = input.ndim == nd + 1
    x = input[None] if unbatched else input  # (C, ...) -> (1, C, ...)
    if nd == 1:
        x, weight = lift_1d(x), lift_1d(weight)
        stride, dilation, pads = (1, *stride), (1, *dilation), ((0, 0), *pads)
    kernel = weight.shape[2:]
    size = tuple(x.shape[2 + a] + sum(pads[a]) for a in range(2))
    if any(size[a] < dilation[a] * (kernel[a] - 1) + 1 for a in range(2)):
        extent = tuple(dilation[a] * (kernel[a] - 1) + 1 for a in range(2))
        raise ValueError(
            f"{layer}: the padded input {size[2 - nd :]} is smaller than the kernel's extent "
            f"{extent[2 - nd :]} (kernel {kernel[2 - nd :]}, dilation {dilation[2 - nd :]}); "
            f"input shape {input.shape}: pad more or use a smaller kernel"
        )
    return x, weight, stride, pads, dilation, unbatched


def _restore(y: np.ndarray, nd: int, unbatched: bool) -> np.ndarray:
    """Undo :func:`_prepare`'s layout: drop the unit height of 1-d, then the batch axis."""
    if nd == 1:
        y = y[:, :, 0]  # (N, C, 1, L) -> (N, C, L)
    return y[0] if unbatched else y


def _conv(input, weight, bias, stride, padding, dilation, groups, nd, layer):
    x, w, stride, pads, dilation, unbatched = _prepare(
        input, weight, stride, padding, dilation, groups, nd, layer
    )
    check_bias(bias, w.shape[0], layer)
    out_size = tuple(_out_size(x.shape[2 + a], pads[a], w.shape[2 + a], stride[a], dilation[a])
                     for a in range(2))  # fmt: skip
    cols = im2col(channels_first(x, pads), w.shape[2:], stride, dilation, out_size)
    y = apply_kernel(cols, w, groups)  # (O, N*Ho*Wo)
    y = batch_first(y.reshape(-1, x.shape[0], *out_size))  # (O, N, Ho, Wo) -> (N, O, Ho, Wo)
    if bias is not None:
        y += bias.reshape(-1, 1, 1)  # (O,) -> (O, 1, 1)
    return _restore(y, nd, unbatched)


def _conv_backward(grad_output, input, weight, bias, stride, padding, dilation, groups, nd, layer):
    x, w, stride, pads, dilation, unbatched = _prepare(
        input, weight, stride, padding, dilation, groups, nd, layer
    )
    check_bias(bias, w.shape[0], layer)
    out_size = tuple(_out_size(x.shape[2 + a], pads[a], w.shape[2 + a], stride[a], dilation[a])
                     for a in range(2))  # fmt: skip
    expected = (*input.shape[: -nd - 1], w.shape[0], *out_size[2 - nd :])
    if np.shape(grad_output) != expected:
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {expected}, got "
            f"{np.shape(grad_output)}"
        )
    g = np.asarray(grad_output)
    g = g[None] if unbatched else g  # (O, ...) -> (1, O, ...)
    g = g[:, :, None] if nd == 1 else g  # (N, O, L) -> (N, O, 1, L)
    g = channels_first(g)  # (N, O, Ho, Wo) -> (O, N, Ho, Wo)
    padded = channels_first(x, pads)  # (C, N, Hp, Wp)
    cols = im2col(padded, w.shape[2:], stride, dilation, out_size)
    grad_weight = conv_weight_grad(g.reshape(g.shape[0], -1), cols, w.shape, groups)
    grad_padded = conv_transpose_scatter(g, w, padded.shape[2:], stride, dilation, groups)
    (top, _), (left, _) = pads
    grad_input = batch_first(grad_padded[:, :, top : top + x.shape[2], left : left + x.shape[3]])
    grad_bias = g.sum(axis=(1, 2, 3)) if bias is not None else None  # (O,)
    return _restore(grad_input, nd, unbatched), grad_weight.reshape(weight.shape), grad_bias


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
    r"""1-d convolution: :func:`conv2d` on a signal of height 1.

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
    r"""Gradients of :func:`conv1d`: those of :func:`conv2d_backward` with height 1.

    .. math::
        \frac{\partial L}{\partial W[o, c, i]} = \sum_{n, l} g[n, o, l]\, x_{pad}[n, c, l s + i d],
        \qquad
        \frac{\partial L}{\partial x_{pad}}[n, c, l s + i d] \mathrel{+}= \sum_o W[o, c, i]\,
            g[n, o, l]

    Returns ``(grad_input, grad_weight, grad_bias)``.
    """
    return _conv_backward(grad_output, input, weight, bias, stride, padding, dilation, groups,
                          1, "conv1d")  # fmt: skip
