r"""``BatchNorm1d/2d/3d`` and ``InstanceNorm1d/2d/3d``: the modules that keep running statistics.

Thin wrappers around :func:`reference.functional.batch_norm` and
:func:`reference.functional.instance_norm`. They share torch's ``_NormBase``: an
optional affine ``weight`` (ones) and ``bias`` (zeros) of shape ``(num_features,)``,
and, with ``track_running_stats``, the buffers ``running_mean`` (zeros),
``running_var`` (ones) and ``num_batches_tracked`` (a 0-d int64), in torch's
``state_dict`` order. The functional updates the running statistics in place.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from .. import functional as F
from .._validate import (
    as_float_array,
    check_dtypes,
    check_ndim,
    check_positive_int,
    check_size,
)
from .init import resolve_dtype
from .module import Module, Parameter

__all__ = [
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
]  # fmt: skip


class _NormBase(Module):
    """Parameters, buffers and repr shared by batch and instance norm (torch's ``_NormBase``)."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ):
        super().__init__()
        name = type(self).__name__
        self.num_features = check_positive_int(num_features, name, "num_features")
        self.eps, self.momentum = eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        dtype = resolve_dtype(dtype)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self._cache: tuple | None = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _params(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return (
            None if self.weight is None else self.weight.data,
            None if self.bias is None else self.bias.data,
        )

    def _check_dtypes(self, input: np.ndarray, with_running_stats: bool) -> None:
        """torch's mixed-dtype rule: only a float16 input may meet float32 parameters.

        Batch norm reads the running statistics too (in training as well: it updates
        them); instance norm's torch kernel casts them, so only its affine parameters count.
        """
        weight, bias = self._params()
        tensors = {"weight": weight, "bias": bias}
        if with_running_stats:
            tensors.update(running_mean=self.running_mean, running_var=self.running_var)
        check_dtypes(input, tensors, repr(self), "mixed")

    def _accumulate(self, grad_weight: np.ndarray | None, grad_bias: np.ndarray | None) -> None:
        if self.weight is not None and grad_weight is not None:
            self.weight.accumulate_grad(grad_weight)
        if self.bias is not None and grad_bias is not None:
            self.bias.accumulate_grad(grad_bias)

    def _check_grad(self, grad_output: Any, shape: tuple[int, ...]) -> np.ndarray:
        grad_output = as_float_array(grad_output, repr(self), "grad_output")
        if grad_output.shape != shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape "
                f"{shape}, got {grad_output.shape}"
            )
        return grad_output

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class _BatchNorm(_NormBase):
    r"""Batch normalization (torch's ``_BatchNorm``); see :func:`reference.functional.batch_norm`.

    Training: batch statistics; with ``track_running_stats`` the running statistics
    are updated with factor ``momentum``, or with ``1 / num_batches_tracked`` (a
    cumulative mean of the batch statistics) when ``momentum=None``, and
    ``num_batches_tracked`` counts the training forwards. Evaluation: the running
    statistics, or the batch's when ``track_running_stats=False``.
    """

    _ndims: tuple[int, ...] = ()
    _layout = ""

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        check_ndim(input, self._ndims, repr(self), self._layout)
        check_size(input, 1, self.num_features, repr(self), "num_features (channels)")
        use_batch_stats = self.training or self.running_mean is None
        if use_batch_stats and input.shape[0] * math.prod(input.shape[2:]) == 1:
            # checked here, before num_batches_tracked counts a forward that cannot run
            raise ValueError(
                f"{self!r}: expected more than 1 value per channel when training, got input of "
                f"shape {input.shape}; use a batch of at least 2 (or call .eval())"
            )
        if self.eps < 0 or (use_batch_stats and self.eps == 0):  # torch 2.13's F.batch_norm
            bound = "positive with batch statistics" if use_batch_stats else "non-negative"
            raise ValueError(f"{self!r}: batch_norm eps must be {bound}, got {self.eps}")
        # after torch's Python-side checks (they raise first), before anything is counted
        self._check_dtypes(input, with_running_stats=True)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked)
        # None without track_running_stats; in eval mode they are read, never updated
        weight, bias = self._params()
        output = F.batch_norm(
            input,
            self.running_mean,
            self.running_var,
            weight,
            bias,
            training=use_batch_stats,
            momentum=factor,
            eps=self.eps,
        )
        self._cache = (input, self.running_mean, self.running_var, use_batch_stats, factor)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, running_mean, running_var, use_batch_stats, factor = self._require_cache(self._cache)
        grad_output = self._check_grad(grad_output, input.shape)
        weight, bias = self._params()
        grad_input, grad_weight, grad_bias = F.batch_norm_backward(
            grad_output,
            input,
            running_mean,
            running_var,
            weight,
            bias,
            training=use_batch_stats,
            momentum=factor,
            eps=self.eps,
        )
        self._accumulate(grad_weight, grad_bias)
        return grad_input


class BatchNorm1d(_BatchNorm):
    """``torch.nn.BatchNorm1d``: input ``(N, C)`` or ``(N, C, L)``, statistics per channel C."""

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L); for (N, C, H, W) use BatchNorm2d"


class BatchNorm2d(_BatchNorm):
    """``torch.nn.BatchNorm2d``: input ``(N, C, H, W)``, statistics per channel C."""

    _ndims = (4,)
    _layout = "(N, C, H, W); add a batch dimension with input[None]"


class BatchNorm3d(_BatchNorm):
    """``torch.nn.BatchNorm3d``: input ``(N, C, D, H, W)``, statistics per channel C."""

    _ndims = (5,)
    _layout = "(N, C, D, H, W); add a batch dimension with input[None]"


class _InstanceNorm(_NormBase):
    r"""Instance normalization (torch's ``_InstanceNorm``); see
    :func:`reference.functional.instance_norm`.

    Defaults differ from batch norm: ``affine=False``, ``track_running_stats=False``.
    The input's own statistics are used in training, and in evaluation unless
    ``track_running_stats`` (then the running ones). ``momentum=None`` means a factor
    of 0 (the running statistics never move) and ``num_batches_tracked`` is never
    incremented, as in torch. Unbatched input (no N) is normalized as a batch of one.
    If the channel count differs from ``num_features``, torch warns and goes on when
    ``affine=False`` (``num_features`` is unused then) and raises when ``affine=True``;
    so do we.
    """

    _spatial = 0

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ):
        super().__init__(
            num_features, eps, momentum, affine, track_running_stats, device, dtype, bias=bias
        )

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        unbatched = self._spatial + 1
        check_ndim(
            input,
            (unbatched, unbatched + 1),
            repr(self),
            "unbatched (C, *spatial) or batched (N, C, *spatial)",
        )
        feature_dim = input.ndim - unbatched
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                check_size(
                    input, feature_dim, self.num_features, repr(self), "num_features (channels)"
                )
            warnings.warn(
                f"{self!r}: input's size at dim={feature_dim} ({input.shape[feature_dim]}) "
                f"does not match num_features ({self.num_features}); num_features is not used "
                "because affine=False",
                UserWarning,
                stacklevel=2,
            )
        self._check_dtypes(input, with_running_stats=False)
        batched = input if feature_dim == 1 else input[None]  # (C, *) -> (1, C, *)
        use_input_stats = self.training or not self.track_running_stats
        momentum = 0.0 if self.momentum is None else self.momentum
        weight, bias = self._params()
        output = F.instance_norm(
            batched,
            self.running_mean,
            self.running_var,
            weight,
            bias,
            use_input_stats=use_input_stats,
            momentum=momentum,
            eps=self.eps,
        )
        self._cache = (batched, input.shape, use_input_stats, momentum)
        return output.reshape(input.shape)  # (1, C, *) -> (C, *) when unbatched

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        batched, shape, use_input_stats, momentum = self._require_cache(self._cache)
        grad_output = self._check_grad(grad_output, shape)
        weight, bias = self._params()
        grad_input, grad_weight, grad_bias = F.instance_norm_backward(
            grad_output.reshape(batched.shape),  # (C, *) -> (1, C, *) when unbatched
            batched,
            self.running_mean,
            self.running_var,
            weight,
            bias,
            use_input_stats=use_input_stats,
            momentum=momentum,
            eps=self.eps,
        )
        self._accumulate(grad_weight, grad_bias)
        return grad_input.reshape(shape)  # (1, C, *) -> (C, *) when unbatched


class InstanceNorm1d(_InstanceNorm):
    """``torch.nn.InstanceNorm1d``: input ``(N, C, L)`` or unbatched ``(C, L)``."""

    _spatial = 1


class InstanceNorm2d(_InstanceNorm):
    """``torch.nn.InstanceNorm2d``: input ``(N, C, H, W)`` or unbatched ``(C, H, W)``."""

    _spatial = 2


class InstanceNorm3d(_InstanceNorm):
    """``torch.nn.InstanceNorm3d``: input ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)``."""

    _spatial = 3
