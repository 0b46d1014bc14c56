"""Convolution modules: ``Conv1d``/``2d``/``3d`` and ``ConvTranspose1d``/``2d``/``3d``.

Thin wrappers around :mod:`reference.functional.conv` and
:mod:`reference.functional.conv_transpose`, with torch's constructor arguments,
attributes, ``state_dict`` keys (``weight``, ``bias``) and default init.

A ``padding_mode`` other than ``'zeros'`` is applied as torch applies it: an
explicit :func:`~reference.functional.pad` of the input, then a convolution with
no padding; the backward runs the same two steps in reverse.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_dtypes, check_positive_int
from ..functional.conv import _positive, _tuple, check_conv_input, resolve_padding
from .init import bias_bound, kaiming_uniform_bound, resolve_dtype, resolve_rng, uniform
from .module import Module, Parameter

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate",
             "circular": "circular"}  # fmt: skip
# the functional pair of each layer, by its number of spatial dims
_CONV = {1: (F.conv1d, F.conv1d_backward), 2: (F.conv2d, F.conv2d_backward),
         3: (F.conv3d, F.conv3d_backward)}  # fmt: skip
_CONV_TRANSPOSE = {1: (F.conv_transpose1d, F.conv_transpose1d_backward),
                   2: (F.conv_transpose2d, F.conv_transpose2d_backward),
                   3: (F.conv_transpose3d, F.conv_transpose3d_backward)}  # fmt: skip


class _ConvNd(Module):
    """Shared constructor, init and printing (torch's ``_ConvNd``)."""

    _nd = 2

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        transposed: bool,
        output_padding: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        name, nd = type(self).__name__, self._nd
        self.in_channels = check_positive_int(in_channels, name, "in_channels")
        self.out_channels = check_positive_int(out_channels, name, "out_channels")
        self.groups = check_positive_int(groups, name, "groups")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")  # fmt: skip
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")  # fmt: skip
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")  # fmt: skip
        if transposed and padding_mode != "zeros":
            raise ValueError(f'{name}: only "zeros" padding mode is supported, got '
                             f"{padding_mode!r}")  # fmt: skip
        self.kernel_size = _positive(kernel_size, nd, "kernel_size", name)
        self.stride = _positive(stride, nd, "stride", name)
        self.dilation = _positive(dilation, nd, "dilation", name)
        if transposed and isinstance(padding, str):
            raise ValueError(f"{name}: padding must be an int or a tuple of ints, got "
                             f"{padding!r}")  # fmt: skip
        # validates 'same'/'valid' and gives torch's (before, after) split
        pads = resolve_padding(padding, self.kernel_size, self.stride, self.dilation, name)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, nd, "padding", name)
        self.transposed = transposed
        self.output_padding = _tuple(output_padding, nd, "output_padding", name)
        self.padding_mode = padding_mode
        # torch's F.pad argument: (before, after) pairs from the last dim backwards
        reversed_pads = [p for pair in reversed(pads) for p in pair]
        # (a list for 'same'/'valid', a tuple otherwise: torch's own types)
        self._reversed_padding_repeated_twice = (
            reversed_pads if isinstance(padding, str) else tuple(reversed_pads)
        )

        rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
        if transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        # torch: kaiming_uniform_(a=sqrt(5)) with fan_in = weight.size(1) * kernel area,
        # for the transposed layers too (their dim 1 is out_channels / groups)
        fan_in = shape[1] * math.prod(self.kernel_size)
        self.weight = Parameter(uniform(rng, shape, kaiming_uniform_bound(fan_in), dtype))
        if bias:
            self.bias = Parameter(uniform(rng, (out_channels,), bias_bound(fan_in), dtype))
        else:
            self.register_parameter("bias", None)
        self._cache: tuple | None = None

    def _check_input(self, input: Any) -> np.ndarray:
        input = as_float_array(input, repr(self))
        check_conv_input(input, self.weight.data, self.groups, self._nd, type(self).__name__,
                         transposed=self.transposed)  # fmt: skip
        self._check_dtypes(input)
        return input

    def _check_dtypes(self, input: np.ndarray) -> None:
        """torch's error for an input whose dtype is not the weight's, as its kernel words it.

        Only a plain convolution with a bias and integer padding (after an explicit
        ``F.pad`` for the other padding modes) meets the bias check first; the
        transposed ones and ``'same'``/``'valid'`` padding reach the scalar-type check.
        """
        weight = self.weight.data
        bias = self.bias.data if self.bias is not None else None
        string_padding = isinstance(self.padding, str) and self.padding_mode == "zeros"
        if bias is not None and not self.transposed and not string_padding:
            check_dtypes(input, {"bias": bias, "weight": weight}, repr(self), "bias type")
            return
        key = "tensor type" if input.dtype == np.float16 else "scalar type"
        check_dtypes(input, {"weight": weight, "bias": bias}, repr(self), key)

    def _accumulate(self, grad_weight: np.ndarray, grad_bias: np.ndarray | None) -> None:
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            if grad_bias is None:
                raise RuntimeError(f"{self!r}.backward: no bias gradient for a layer with a bias")
            self.bias.accumulate_grad(grad_bias)

    def extra_repr(self) -> str:
        nd = self._nd
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")  # fmt: skip
        if isinstance(self.padding, str) or self.padding != (0,) * nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        dilation: Any = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         False, 0, groups, bias, padding_mode, device, dtype, rng=rng)  # fmt: skip

    def _functional(self):
        return _CONV[self._nd]

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = self._check_input(input)
        forward, _ = self._functional()
        padding: Any = self.padding
        padded = input
        if self.padding_mode != "zeros":
            # torch: pad explicitly in the requested mode, then convolve with no padding
            padded = F.pad(input, self._reversed_padding_repeated_twice,
                           _PAD_MODE[self.padding_mode])  # fmt: skip
            padding = 0
        self._cache = (input, padded, padding)
        bias = self.bias.data if self.bias is not None else None
        return forward(padded, self.weight.data, bias, self.stride, padding, self.dilation,
                       self.groups)  # fmt: skip

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, padded, padding = self._require_cache(self._cache)
        _, backward = self._functional()
        bias = self.bias.data if self.bias is not None else None
        grad_padded, grad_weight, grad_bias = backward(
            grad_output,
            padded,
            self.weight.data,
            bias,
            self.stride,
            padding,
            self.dilation,
            self.groups,
        )
        self._accumulate(grad_weight, grad_bias)
        if self.padding_mode == "zeros":
            return grad_padded
        return F.pad_backward(grad_padded, input, self._reversed_padding_repeated_twice,
                              _PAD_MODE[self.padding_mode])  # fmt: skip


class Conv1d(_Conv):
    r"""1-d convolution layer (``torch.nn.Conv1d``), :func:`~reference.functional.conv1d`.

    Weight ``(out_channels, in_channels/groups, kernel_size)``, bias ``(out_channels,)``,
    both :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})` with
    ``fan_in = in_channels/groups * kernel_size`` (torch's default init).
    """

    _nd = 1


class Conv2d(_Conv):
    r"""2-d convolution layer (``torch.nn.Conv2d``), :func:`~reference.functional.conv2d`.

    Weight ``(out_channels, in_channels/groups, kh, kw)``, bias ``(out_channels,)``,
    both :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})` with
    ``fan_in = in_channels/groups * kh * kw``. ``padding`` takes an int, a pair,
    ``'valid'`` or ``'same'``; ``padding_mode`` one of ``'zeros'``, ``'reflect'``,
    ``'replicate'``, ``'circular'``.
    """

    _nd = 2


class Conv3d(_Conv):
    r"""3-d convolution layer (``torch.nn.Conv3d``), :func:`~reference.functional.conv3d`.

    Weight ``(out_channels, in_channels/groups, kd, kh, kw)``, bias ``(out_channels,)``,
    both :math:`U(-1/\sqrt{\text{fan\_in}}, 1/\sqrt{\text{fan\_in}})` with
    ``fan_in = in_channels/groups * kd * kh * kw``. ``padding`` and ``padding_mode`` as
    in :class:`Conv2d`, over the three trailing dims.
    """

    _nd = 3


class _ConvTranspose(_ConvNd):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        padding: Any = 0,
        output_padding: Any = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: Any = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         True, output_padding, groups, bias, padding_mode, device, dtype,
                         rng=rng)  # fmt: skip

    def _functional(self):
        return _CONV_TRANSPOSE[self._nd]

    def _output_padding(self, input: np.ndarray, output_size: Any) -> tuple[int, ...]:
        """The ``output_padding`` that yields ``output_size`` (torch's ``_output_padding``)."""
        if output_size is None:
            return self.output_padding
        nd, name = self._nd, type(self).__name__
        size = list(output_size)
        if len(size) == nd + 2 or (len(size) == nd + 1 and input.ndim == nd + 1):
            size = size[-nd:]  # torch accepts the full shape too
        if len(size) != nd:
            raise ValueError(f"{name}: output_size must have {nd} or {nd + 2} elements, got "
                             f"{output_size!r}")  # fmt: skip
        padding = []
        for a in range(nd):
            smallest = ((input.shape[-nd + a] - 1) * self.stride[a] - 2 * self.padding[a]
                        + self.dilation[a] * (self.kernel_size[a] - 1) + 1)  # fmt: skip
            if not smallest <= size[a] <= smallest + self.stride[a] - 1:
                raise ValueError(
                    f"{name}: requested output_size {tuple(output_size)} is not reachable from "
                    f"input {input.shape}: dim {a} must lie in [{smallest}, "
                    f"{smallest + self.stride[a] - 1}], got {size[a]}"
                )
            padding.append(size[a] - smallest)
        return tuple(padding)

    def forward(self, input: np.ndarray, output_size: Any = None) -> np.ndarray:
        input = self._check_input(input)
        output_padding = self._output_padding(input, output_size)
        self._cache = (input, output_padding)
        forward, _ = self._functional()
        bias = self.bias.data if self.bias is not None else None
        return forward(input, self.weight.data, bias, self.stride, self.padding, output_padding,
                       self.groups, self.dilation)  # fmt: skip

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, output_padding = self._require_cache(self._cache)
        _, backward = self._functional()
        bias = self.bias.data if self.bias is not None else None
        grad_input, grad_weight, grad_bias = backward(
            grad_output,
            input,
            self.weight.data,
            bias,
            self.stride,
            self.padding,
            output_padding,
            self.groups,
            self.dilation,
        )
        self._accumulate(grad_weight, grad_bias)
        return grad_input


class ConvTranspose1d(_ConvTranspose):
    r"""1-d transposed convolution (``torch.nn.ConvTranspose1d``).

    Weight ``(in_channels, out_channels/groups, kernel_size)``; default init
    :math:`U(\pm 1/\sqrt{\text{fan\_in}})` with torch's ``fan_in = weight.size(1) *
    kernel_size = out_channels/groups * kernel_size``. ``forward(input, output_size)``
    may ask for one of the output sizes a stride allows.
    """

    _nd = 1


class ConvTranspose2d(_ConvTranspose):
    r"""2-d transposed convolution (``torch.nn.ConvTranspose2d``).

    Weight ``(in_channels, out_channels/groups, kh, kw)``; default init
    :math:`U(\pm 1/\sqrt{\text{fan\_in}})` with torch's ``fan_in = weight.size(1) * kh * kw
    = out_channels/groups * kh * kw``.
    """

    _nd = 2


class ConvTranspose3d(_ConvTranspose):
    r"""3-d transposed convolution (``torch.nn.ConvTranspose3d``).

    Weight ``(in_channels, out_channels/groups, kd, kh, kw)``; default init
    :math:`U(\pm 1/\sqrt{\text{fan\_in}})` with torch's ``fan_in = weight.size(1) * kd *
    kh * kw = out_channels/groups * kd * kh * kw``.
    """

    _nd = 3
