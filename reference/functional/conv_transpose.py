r"""Transposed convolution (``torch.nn.functional.conv_transpose1d`` / ``2d`` / ``3d``).

A transposed convolution is the *input gradient of a convolution*, used as a
forward: every input pixel is multiplied by the kernel and added into the output
at stride-spaced positions. So its pieces are those of :mod:`.conv`, swapped:

==================  ===============================================
transposed conv      computed as
==================  ===============================================
forward              convolution's input gradient (scatter per kernel offset)
grad wrt input       a convolution of ``grad_output`` (im2col + matmul)
grad wrt weight      convolution's weight gradient with the roles of
                     input and ``grad_output`` exchanged
==================  ===============================================

The weight is ``(C_in, C_out/groups, *kernel)``: the layout of the convolution it
transposes, which maps ``C_out`` channels to ``C_in``. As in :mod:`.conv`, one code
path serves 1, 2 and 3 spatial dims.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array
from .conv import BiasDtype, _positive, _tuple, check_bias, check_conv_dtypes, check_conv_input
from .im2col import (
    apply_kernel,
    batch_first,
    channels_first,
    conv_transpose_scatter,
    conv_weight_grad,
    im2col,
)

__all__ = [
    "conv_transpose1d", "conv_transpose1d_backward",
    "conv_transpose2d", "conv_transpose2d_backward",
    "conv_transpose3d", "conv_transpose3d_backward",
]  # fmt: skip


def _prepare(input, weight, bias, stride, padding, output_padding, groups, dilation, nd, layer):
    """Validate; return the batched input, weight, bias, stride/padding/dilation, output size
    and layout."""
    input = as_float_array(input, layer)
    weight = as_float_array(weight, layer, "weight")
    check_conv_input(input, weight, groups, nd, layer, transposed=True)
    if isinstance(padding, str):
        raise ValueError(f"{layer}: padding must be an int or a tuple of ints, got {padding!r}")
    stride = _positive(stride, nd, "stride", layer)
    dilation = _positive(dilation, nd, "dilation", layer)
    padding = _tuple(padding, nd, "padding", layer)
    output_padding = _tuple(output_padding, nd, "output_padding", layer)
    if min(padding) < 0 or min(output_padding) < 0:
        raise ValueError(
            f"{layer}: padding and output_padding must be non-negative, got padding={padding}, "
            f"output_padding={output_padding}"
        )
    if any(op >= max(s, d) for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{layer}: output_padding {output_padding} must be smaller than either stride "
            f"{stride} or dilation {dilation} in every dim"
        )
    bias = check_bias(bias, weight.shape[1] * groups, layer)
    kernel, size = weight.shape[2:], input.shape[-nd:]
    out_size = tuple((size[a] - 1) * stride[a] - 2 * padding[a] + dilation[a] * (kernel[a] - 1)
                     + output_padding[a] + 1 for a in range(nd))  # fmt: skip
    if min(out_size) < 1:
        raise ValueError(
            f"{layer}: input of shape {input.shape} gives output size {out_size}, which is too "
            f"small (padding {padding} removes more than the kernel {kernel} adds)"
        )
    check_conv_dtypes(input, weight, bias, BiasDtype.LAST, layer)  # after every shape, as torch
    unbatched = input.ndim == nd + 1
    x = input[None] if unbatched else input  # (C, *S) -> (1, C, *S)
    return x, weight, bias, stride, padding, dilation, out_size, unbatched


def _conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dilation, nd,
                    layer):  # fmt: skip
    x, w, b, stride, padding, dilation, out_size, unbatched = _prepare(
        input, weight, bias, stride, padding, output_padding, groups, dilation, nd, layer
    )
    x = channels_first(x)  # (N, C_in, *S) -> (C_in, N, *S)
    padded_size = tuple(o + 2 * p for o, p in zip(out_size, padding))
    padded = conv_transpose_scatter(x, w, padded_size, stride, dilation, groups)
    crop = tuple(slice(p, p + o) for p, o in zip(padding, out_size))  # cut the padding
    y = batch_first(padded[(slice(None), slice(None)) + tuple(crop)])  # -> (N, C_out, *So)
    if b is not None:
        y += b.reshape(-1, *(1,) * nd)  # (C_out,) -> (C_out, 1, ..)
    return y[0] if unbatched else y


def _conv_transpose_backward(grad_output, input, weight, bias, stride, padding, output_padding,
                             groups, dilation, nd, layer):  # fmt: skip
    x, w, b, stride, padding, dilation, out_size, unbatched = _prepare(
        input, weight, bias, stride, padding, output_padding, groups, dilation, nd, layer
    )
    expected = (*input.shape[: -nd - 1], w.shape[1] * groups, *out_size)
    if np.shape(grad_output) != expected:
        raise ValueError(
            f"{layer}_backward: grad_output must have the output's shape {expected}, got "
            f"{np.shape(grad_output)}"
        )
    g = np.asarray(grad_output)
    g = g[None] if unbatched else g  # (C_out, *So) -> (1, C_out, *So)
    g_padded = channels_first(g, tuple((p, p) for p in padding))  # -> (C_out, N, *Sp)
    in_size = x.shape[2:]
    # the input gradient is the convolution the forward transposes; with
    # output_padding >= stride it would fit extra windows: keep the first in_size
    cols = im2col(g_padded, w.shape[2:], stride, dilation, in_size)  # (C_out*K, N*prod(S))
    grad_input = apply_kernel(cols, w, groups)  # (C_in, N*prod(S))
    grad_input = batch_first(grad_input.reshape(-1, x.shape[0], *in_size))  # (N, C_in, *S)
    x_flat = channels_first(x).reshape(x.shape[1], -1)  # (N, C_in, *S) -> (C_in, N*prod(S))
    grad_weight = conv_weight_grad(x_flat, cols, w.shape, groups)
    grad_bias = g.sum(axis=(0, *range(2, g.ndim))) if b is not None else None  # (C_out,)
    return grad_input[0] if unbatched else grad_input, grad_weight, grad_bias


def conv_transpose2d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> np.ndarray:
    r"""2-d transposed convolution (the adjoint of :func:`~.conv.conv2d` in its input).

    .. math::
        y_{pad}[n, o, h s_h + i d_h, w s_w + j d_w] \mathrel{+}=
            \sum_{c \in \text{group}(o)} W[c, o, i, j]\, x[n, c, h, w],
        \qquad y = \operatorname{crop}_p(y_{pad}) + b

    Shapes: input ``(N, C_in, H, W)`` or unbatched, weight ``(C_in, C_out/groups, kh, kw)``,
    bias ``(C_out,)`` -> ``(N, C_out, Ho, Wo)``,
    :math:`H_o = (H - 1) s_h - 2 p_h + d_h (k_h - 1) + \text{output\_padding}_h + 1`.
    ``output_padding`` (smaller than the stride or the dilation) only adds rows at
    the bottom/right, to pick one of the sizes a strided convolution maps to ``H``.
    Torch: ``torch.nn.functional.conv_transpose2d`` (note: ``groups`` before ``dilation``).
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 2, "conv_transpose2d")  # fmt: skip


def conv_transpose2d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`conv_transpose2d`, with :math:`g = \partial L/\partial y`:

    .. math::
        \frac{\partial L}{\partial x[n, c, h, w]} = \sum_{o, i, j} W[c, o, i, j]\,
            g_{pad}[n, o, h s_h + i d_h, w s_w + j d_w]
        \quad \text{(a convolution of } g\text{)},

    .. math::
        \frac{\partial L}{\partial W[c, o, i, j]} = \sum_{n, h, w} x[n, c, h, w]\,
            g_{pad}[n, o, h s_h + i d_h, w s_w + j d_w], \qquad
        \frac{\partial L}{\partial b_o} = \sum_{n, h, w} g[n, o, h, w]

    where :math:`g_{pad}` is :math:`g` with ``padding`` zeros around it. Returns
    ``(grad_input, grad_weight, grad_bias)``.
    """
    return _conv_transpose_backward(grad_output, input, weight, bias, stride, padding,
                                    output_padding, groups, dilation, 2,
                                    "conv_transpose2d")  # fmt: skip


def conv_transpose1d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> np.ndarray:
    r"""1-d transposed convolution: :func:`conv_transpose2d` with one spatial dim.

    .. math:: y_{pad}[n, o, l s + i d] \mathrel{+}= \sum_{c \in \text{group}(o)} W[c, o, i]\,
              x[n, c, l], \qquad y = \operatorname{crop}_p(y_{pad}) + b

    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``, weight ``(C_in, C_out/groups, k)`` ->
    ``(N, C_out, L_o)``, :math:`L_o = (L-1)s - 2p + d(k-1) + \text{output\_padding} + 1`.
    Torch: ``torch.nn.functional.conv_transpose1d``.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 1, "conv_transpose1d")  # fmt: skip


def conv_transpose1d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`conv_transpose1d` (:func:`conv_transpose2d_backward` in 1-d).

    .. math::
        \frac{\partial L}{\partial x[n, c, l]} = \sum_{o, i} W[c, o, i]\, g_{pad}[n, o, l s + i d],
        \qquad
        \frac{\partial L}{\partial W[c, o, i]} = \sum_{n, l} x[n, c, l]\, g_{pad}[n, o, l s + i d]

    Returns ``(grad_input, grad_weight, grad_bias)``.
    """
    return _conv_transpose_backward(grad_output, input, weight, bias, stride, padding,
                                    output_padding, groups, dilation, 1,
                                    "conv_transpose1d")  # fmt: skip


def conv_transpose3d(
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> np.ndarray:
    r"""3-d transposed convolution: :func:`conv_transpose2d` with a depth dim in front.

    With :math:`u = (t s_d + k d_d, h s_h + i d_h, w s_w + j d_w)`:

    .. math::
        y_{pad}[n, o, u] \mathrel{+}= \sum_{c \in \text{group}(o)} W[c, o, k, i, j]\,
            x[n, c, t, h, w], \qquad y = \operatorname{crop}_p(y_{pad}) + b

    Shapes: input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``, weight
    ``(C_in, C_out/groups, kd, kh, kw)`` -> ``(N, C_out, Do, Ho, Wo)``, each output size
    as in :func:`conv_transpose2d`. Torch: ``torch.nn.functional.conv_transpose3d``.
    """
    return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                           dilation, 3, "conv_transpose3d")  # fmt: skip


def conv_transpose3d_backward(
    grad_output: np.ndarray,
    input: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    r"""Gradients of :func:`conv_transpose3d` (:func:`conv_transpose2d_backward` in 3-d).

    With :math:`u` as in the forward and :math:`g_{pad}` the upstream gradient with
    ``padding`` zeros around it:

    .. math::
        \frac{\partial L}{\partial x[n, c, t, h, w]} = \sum_{o, k, i, j} W[c, o, k, i, j]\,
            g_{pad}[n, o, u], \qquad
        \frac{\partial L}{\partial W[c, o, k, i, j]} = \sum_{n, t, h, w} x[n, c, t, h, w]\,
            g_{pad}[n, o, u]

    and :math:`\partial L/\partial b_o` sums :math:`g` over all but the channel.
    Returns ``(grad_input, grad_weight, grad_bias)``.
    """
    return _conv_transpose_backward(grad_output, input, weight, bias, stride, padding,
                                    output_padding, groups, dilation, 3,
                                    "conv_transpose3d")  # fmt: skip
