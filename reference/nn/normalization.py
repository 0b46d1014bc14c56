"""``LayerNorm`` and ``GroupNorm``: per-sample normalization, no running statistics.

Thin wrappers around :func:`reference.functional.layer_norm` and
:func:`reference.functional.group_norm`. Both behave the same in training and
evaluation. ``BatchNorm*`` and ``InstanceNorm*`` are in :mod:`.batchnorm`, as in torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_dtypes, check_positive_int
from ..functional.normalization import _check_group_norm
from .init import resolve_dtype
from .module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm"]


def _normalized_shape(normalized_shape: int | Sequence[int], layer: str) -> tuple[int, ...]:
    """``normalized_shape`` as a non-empty tuple of positive ints (an int means ``(int,)``)."""
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (normalized_shape,)
    shape = tuple(
        check_positive_int(s, layer, "each entry of normalized_shape") for s in normalized_shape
    )
    if not shape:
        raise ValueError(f"{layer}: normalized_shape must have at least one dimension, got ()")
    return shape


def _check_trailing(module: Module, input: np.ndarray, normalized_shape: tuple[int, ...]) -> None:
    """Refuse an input whose trailing dimensions are not ``normalized_shape``."""
    k = len(normalized_shape)
    if input.ndim < k or input.shape[input.ndim - k :] != normalized_shape:
        raise ValueError(
            f"{module!r}: expected input of shape (*, "
            f"{', '.join(map(str, normalized_shape))}), got {input.shape}; the "
            "trailing dimensions must equal normalized_shape"
        )


def _check_grad(module: Module, grad_output: Any, input: np.ndarray) -> np.ndarray:
    """``grad_output`` as a float array of the output's (the input's) shape."""
    grad_output = as_float_array(grad_output, repr(module), "grad_output")
    if grad_output.shape != input.shape:
        raise ValueError(
            f"{module!r}.backward: grad_output must have the output's shape {input.shape}, "
            f"got {grad_output.shape}"
        )
    return grad_output


class _PerSampleNorm(Module):
    """The affine parameters and the forward/backward plumbing both layers share."""

    def _init_affine(self, shape: tuple[int, ...], affine: bool, bias: bool, dtype: Any) -> None:
        dtype = resolve_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        self._input: np.ndarray | None = None

    def _params(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            None if self.weight is None else self.weight.data,
            None if self.bias is None else self.bias.data,
        )

    def _check_dtypes(self, input: np.ndarray) -> None:
        """torch's mixed-dtype rule: only a float16 input may meet float32 parameters.

        That input is computed against the float32 parameters and its output and input
        gradient are float16 again, as torch's CPU mixed-type kernels return them.
        """
        weight, bias = self._params()
        check_dtypes(input, {"weight": weight, "bias": bias}, repr(self), "mixed")

    def _backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
        input = self._require_cache(self._input)
        return input, _check_grad(self, grad_output, input)

    def _accumulate(self, grad_weight: np.ndarray | None, grad_bias: np.ndarray | None) -> None:
        if self.weight is not None and grad_weight is not None:
            self.weight.accumulate_grad(grad_weight)
        if self.bias is not None and grad_bias is not None:
            self.bias.accumulate_grad(grad_bias)


class LayerNorm(_PerSampleNorm):
    r"""``torch.nn.LayerNorm``: normalize over the trailing ``normalized_shape`` dimensions.

    With ``elementwise_affine``, ``weight`` (ones) and, if ``bias``, ``bias`` (zeros),
    both of shape ``normalized_shape``. An int ``normalized_shape`` means ``(int,)``.
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ):
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape, "LayerNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self._init_affine(self.normalized_shape, elementwise_affine, bias, dtype)

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        _check_trailing(self, input, self.normalized_shape)
        self._check_dtypes(input)
        self._input = input
        output = F.layer_norm(input, self.normalized_shape, *self._params(), self.eps)
        return output.astype(input.dtype, copy=False)  # a float16 input stays float16

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, grad_output = self._backward(grad_output)
        grad_input, grad_weight, grad_bias = F.layer_norm_backward(
            grad_output, input, self.normalized_shape, *self._params(), self.eps
        )
        self._accumulate(grad_weight, grad_bias)
        return grad_input.astype(input.dtype, copy=False)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(_PerSampleNorm):
    r"""``torch.nn.GroupNorm``: normalize each sample over groups of channels.

    Input ``(N, C, *)`` with ``C = num_channels``, a multiple of ``num_groups``. With
    ``affine``, per-channel ``weight`` (ones) and, if ``bias``, ``bias`` (zeros).
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        self.num_groups = check_positive_int(num_groups, "GroupNorm", "num_groups")
        self.num_channels = check_positive_int(num_channels, "GroupNorm", "num_channels")
        if num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups}); every group holds num_channels / num_groups channels"
            )
        self.eps, self.affine = eps, affine
        self._init_affine((num_channels,), affine, bias, dtype)

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.num_channels}, *) (num_channels "
                f"in dim 1), got {input.shape}"
            )
        # torch's Python-side checks (a single value per group) raise before its kernel's
        _check_group_norm(input, self.num_groups, *self._params(), repr(self))
        self._check_dtypes(input)
        self._input = input
        output = F.group_norm(input, self.num_groups, *self._params(), self.eps)
        return output.astype(input.dtype, copy=False)  # a float16 input stays float16

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, grad_output = self._backward(grad_output)
        grad_input, grad_weight, grad_bias = F.group_norm_backward(
            grad_output, input, self.num_groups, *self._params(), self.eps
        )
        self._accumulate(grad_weight, grad_bias)
        return grad_input.astype(input.dtype, copy=False)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
            f"affine={self.affine}, bias={self.bias is not None}"
        )
