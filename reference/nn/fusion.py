r"""Fold an eval-mode BatchNorm into the convolution or linear layer before it
(``torch.nn.utils.fusion``).

In eval mode batch norm is an affine map per channel :math:`c`,

.. math:: \text{bn}(z)_c = \gamma_c \frac{z_c - \mu_c}{\sqrt{\sigma^2_c + \epsilon}} + \beta_c
          = s_c z_c + (\beta_c - s_c \mu_c),
          \qquad s_c = \frac{\gamma_c}{\sqrt{\sigma^2_c + \epsilon}},

with the *running* mean :math:`\mu` and variance :math:`\sigma^2`. Applied to
:math:`z = W * x + b`, a layer linear in :math:`x`, it scales each output channel's
weights by :math:`s_c` and maps the bias to :math:`(b_c - \mu_c) s_c + \beta_c`: one layer
computing both. Training-mode batch norm uses the batch's statistics and cannot be
folded (``AssertionError``, as torch).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .module import Module, Parameter

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
]


def _data(x: Any) -> np.ndarray | None:
    """A Parameter's array, an array as is, ``None`` as ``None``."""
    if x is None:
        return None
    return x.data if isinstance(x, Parameter) else np.asarray(x)


def _check_eval(layer: Module, bn: Module) -> None:
    if layer.training or bn.training:
        raise AssertionError(
            f"Fusion only for eval! ({type(layer).__name__} training={layer.training}, "
            f"{type(bn).__name__} training={bn.training}: call .eval() on both)"
        )


def _check_running_stats(bn: Module) -> None:
    if bn.running_mean is None or bn.running_var is None:
        raise AssertionError(
            "bn.running_mean and bn.running_var must not be None (a BatchNorm built with "
            "track_running_stats=False has none to fold)"
        )


def _rsqrt(x: np.ndarray) -> np.ndarray:
    """``torch.rsqrt``: ``1 / sqrt(x)``, each rounded; inf at 0 and nan below, as torch."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 / np.sqrt(x)


def _broadcast(name: str, *shapes: tuple[int, ...]) -> None:
    """Torch combines the per-channel vectors by broadcasting; a misfit raises early."""
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise RuntimeError(
            f"{name}: the layer's and the BatchNorm's channel counts do not fit, shapes "
            f"{list(shapes)}; the BatchNorm must have one feature per output channel"
        ) from None


def fuse_conv_bn_eval(conv: Module, bn: Module, transpose: bool = False) -> Module:
    """A new convolution computing ``bn(conv(x))`` of the eval-mode pair.

    ``conv`` and ``bn`` are left unchanged (the result is a deep copy of ``conv`` with
    fused ``weight`` and ``bias``; a conv without bias gets one). ``transpose=True``
    for a transposed convolution, whose output channels are the weight's dim 1.
    Torch: ``torch.nn.utils.fusion.fuse_conv_bn_eval``.
    """
    _check_eval(conv, bn)
    _check_running_stats(bn)
    fused_conv = copy.deepcopy(conv)
    fused_conv.weight, fused_conv.bias = fuse_conv_bn_weights(
        fused_conv.weight,
        fused_conv.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
        transpose,
    )
    return fused_conv


def fuse_conv_bn_weights(
    conv_w: Any,
    conv_b: Any,
    bn_rm: Any,
    bn_rv: Any,
    bn_eps: float,
    bn_w: Any,
    bn_b: Any,
    transpose: bool = False,
) -> tuple[Parameter, Parameter]:
    r"""Fused ``(weight, bias)`` Parameters of a convolution followed by batch norm.

    .. math:: W'_{c\dots} = W_{c\dots}\, s_c, \qquad b'_c = (b_c - \mu_c)\, s_c + \beta_c

    with :math:`s_c = \gamma_c / \sqrt{\sigma^2_c + \epsilon}` (``bn_w`` ``None``:
    :math:`\gamma = 1`; ``bn_b`` or ``conv_b`` ``None``: 0), :math:`c` indexing dim 0
    of ``conv_w`` (dim 1 with ``transpose``). Computed in the promoted dtype and
    rounded to the conv weight's (bias's) dtype, as torch. Arrays or Parameters.
    Torch: ``torch.nn.utils.fusion.fuse_conv_bn_weights``.
    """
    conv_w, conv_b = _data(conv_w), _data(conv_b)
    bn_rm, bn_rv, bn_w, bn_b = _data(bn_rm), _data(bn_rv), _data(bn_w), _data(bn_b)
    conv_bias_dtype = conv_w.dtype if conv_b is None else conv_b.dtype
    conv_b = np.zeros_like(bn_rm) if conv_b is None else conv_b
    bn_w = np.ones_like(bn_rm) if bn_w is None else bn_w
    bn_b = np.zeros_like(bn_rm) if bn_b is None else bn_b
    bn_var_rsqrt = _rsqrt(bn_rv + bn_eps)
    ones = [1] * (conv_w.ndim - 2)
    shape = [1, -1, *ones] if transpose else [-1, 1, *ones]
    scale = (bn_w * bn_var_rsqrt).reshape(shape)  # (C,) -> (C, 1, 1...) or (1, C, 1...)
    _broadcast("fuse_conv_bn_weights", conv_w.shape, scale.shape)
    _broadcast("fuse_conv_bn_weights", conv_b.shape, bn_rm.shape, bn_w.shape, bn_b.shape)
    fused_w = (conv_w * scale).astype(conv_w.dtype)
    fused_b = ((conv_b - bn_rm) * bn_var_rsqrt * bn_w + bn_b).astype(conv_bias_dtype)
    return Parameter(fused_w), Parameter(fused_b)


def fuse_linear_bn_eval(linear: Module, bn: Module) -> Module:
    """A new Linear computing ``bn(linear(x))`` of the eval-mode pair.

    ``bn`` must have ``linear.out_features`` features, or 1 (broadcast), else
    ``AssertionError``, as torch. ``linear`` and ``bn`` are left unchanged.
    Torch: ``torch.nn.utils.fusion.fuse_linear_bn_eval``.
    """
    _check_eval(linear, bn)
    if linear.out_features != bn.num_features and bn.num_features != 1:
        raise AssertionError(
            "To fuse, linear.out_features == bn.num_features or bn.num_features == 1, "
            f"got linear.out_features={linear.out_features} and bn.num_features={bn.num_features}"
        )
    _check_running_stats(bn)
    fused_linear = copy.deepcopy(linear)
    fused_linear.weight, fused_linear.bias = fuse_linear_bn_weights(
        fused_linear.weight,
        fused_linear.bias,
        bn.running_mean,
        bn.running_var,
        bn.eps,
        bn.weight,
        bn.bias,
    )
    return fused_linear


def fuse_linear_bn_weights(
    linear_w: Any,
    linear_b: Any,
    bn_rm: Any,
    bn_rv: Any,
    bn_eps: float,
    bn_w: Any,
    bn_b: Any,
) -> tuple[Parameter, Parameter]:
    r"""Fused ``(weight, bias)`` Parameters of a Linear followed by batch norm.

    .. math:: W'_{c,:} = W_{c,:}\, s_c, \qquad b'_c = (b_c - \mu_c)\, s_c + \beta_c

    :math:`s` as in :func:`fuse_conv_bn_weights`, but cast to the weight's dtype
    *before* it scales the weight (torch's order); ``bn_w`` and ``bn_b`` are
    required (torch's function has no default for an ``affine=False`` BatchNorm:
    ``TypeError``). Torch: ``torch.nn.utils.fusion.fuse_linear_bn_weights``.
    """
    if bn_w is None or bn_b is None:
        raise TypeError(
            "fuse_linear_bn_weights: bn_w and bn_b must be arrays, got None (an affine=False "
            "BatchNorm has none; torch fails the same way): pass ones and zeros"
        )
    linear_w, linear_b = _data(linear_w), _data(linear_b)
    bn_rm, bn_rv, bn_w, bn_b = _data(bn_rm), _data(bn_rv), _data(bn_w), _data(bn_b)
    linear_bias_dtype = linear_w.dtype if linear_b is None else linear_b.dtype
    linear_b = np.zeros_like(bn_rm) if linear_b is None else linear_b
    bn_scale = bn_w * _rsqrt(bn_rv + bn_eps)
    scale = bn_scale[..., None].astype(linear_w.dtype)  # (C,) -> (C, 1)
    _broadcast("fuse_linear_bn_weights", linear_w.shape, scale.shape)
    _broadcast("fuse_linear_bn_weights", linear_b.shape, bn_rm.shape, bn_scale.shape, bn_b.shape)
    fused_w = linear_w * scale
    fused_b = ((linear_b - bn_rm) * bn_scale + bn_b).astype(linear_bias_dtype)
    return Parameter(fused_w), Parameter(fused_b)
