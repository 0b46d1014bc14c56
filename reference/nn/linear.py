"""``Linear`` and ``Bilinear``: the modules around :func:`reference.functional.linear` and
:func:`reference.functional.bilinear`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_dtypes, check_positive_int
from .init import bias_bound, kaiming_uniform_bound, resolve_dtype, resolve_rng, uniform
from .module import Module, Parameter

__all__ = ["Linear", "Bilinear"]


class Linear(Module):
    r"""Affine layer :math:`y = x W^\top + b` (``torch.nn.Linear``).

    Parameters ``weight (out_features, in_features)`` and ``bias (out_features,)``
    start from torch's default: :math:`U(-1/\sqrt{in}, 1/\sqrt{in})` for both
    (``kaiming_uniform_(a=sqrt(5))`` reduces to that bound). ``rng`` (a Generator or
    a seed) makes the draw reproducible; ``dtype`` defaults to float32 like torch.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        self.in_features = check_positive_int(in_features, "Linear", "in_features")
        self.out_features = check_positive_int(out_features, "Linear", "out_features")
        rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
        bound = kaiming_uniform_bound(in_features)
        self.weight = Parameter(uniform(rng, (out_features, in_features), bound, dtype))
        if bias:
            self.bias = Parameter(uniform(rng, (out_features,), bias_bound(in_features), dtype))
        else:
            self.register_parameter("bias", None)
        self._input: np.ndarray | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (*, {self.in_features}), got {input.shape}; "
                f"the last dimension must equal in_features"
            )
        bias = self.bias.data if self.bias is not None else None
        # torch's addmm (with a bias) and mm (without) word the mismatch differently
        tensors = {"weight": self.weight.data, "bias": bias}
        check_dtypes(input, tensors, repr(self), "mat1" if bias is not None else "m1")
        self._input = input
        return F.linear(input, self.weight.data, bias)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._input)
        expected = input.shape[:-1] + (self.out_features,)
        if np.shape(grad_output) != expected:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape {expected}, "
                f"got {np.shape(grad_output)}"
            )
        bias = self.bias.data if self.bias is not None else None
        grad_input, grad_weight, grad_bias = F.linear_backward(
            grad_output, input, self.weight.data, bias
        )
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None:
            if grad_bias is None:
                raise RuntimeError(f"{self!r}.backward: linear_backward returned no bias gradient")
            self.bias.accumulate_grad(grad_bias)
        return grad_input

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


def _check_features(value: Any, name: str) -> int:
    """A non-negative int: torch's Bilinear builds with in2_features or out_features 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"Bilinear: {name} must be a non-negative integer, got {value!r}")
    return int(value)


class Bilinear(Module):
    r"""Bilinear layer :math:`y = x_1^\top A\, x_2 + b` (``torch.nn.Bilinear``).

    Parameters ``weight (out_features, in1_features, in2_features)`` and ``bias
    (out_features,)`` start from torch's default, :math:`U(-1/\sqrt{in_1}, 1/\sqrt{in_1})`
    for both (torch's ``reset_parameters`` bounds by ``weight.size(1)``); ``in1_features``
    must be positive (torch raises for 0: the bound would divide by 0), the others may be
    0. ``forward(input1, input2)`` takes ``(*, in1)`` and ``(*, in2)`` with the same ``*``
    (empty: unbatched);
    ``backward(grad_output)`` accumulates the parameter gradients and returns
    ``(grad_input1, grad_input2)``. A dtype other than the parameters' raises torch's
    ``RuntimeError``.
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        self.in1_features = check_positive_int(in1_features, "Bilinear", "in1_features")
        self.in2_features = _check_features(in2_features, "in2_features")
        self.out_features = _check_features(out_features, "out_features")
        rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
        bound = 1.0 / np.sqrt(self.in1_features)
        shape = (self.out_features, self.in1_features, self.in2_features)
        self.weight = Parameter(uniform(rng, shape, bound, dtype))
        if bias:
            self.bias = Parameter(uniform(rng, (self.out_features,), bound, dtype))
        else:
            self.register_parameter("bias", None)
        self._inputs: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, input1: np.ndarray, input2: np.ndarray) -> np.ndarray:
        bias = self.bias.data if self.bias is not None else None
        output = F.bilinear(input1, input2, self.weight.data, bias)
        self._inputs = (np.asarray(input1), np.asarray(input2))
        return output

    def backward(self, grad_output: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        input1, input2 = self._require_cache(self._inputs)
        bias = self.bias.data if self.bias is not None else None
        grad1, grad2, grad_weight, grad_bias = F.bilinear_backward(
            grad_output, input1, input2, self.weight.data, bias
        )
        self.weight.accumulate_grad(grad_weight)
        if self.bias is not None and grad_bias is not None:
            self.bias.accumulate_grad(grad_bias)
        return grad1, grad2

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
