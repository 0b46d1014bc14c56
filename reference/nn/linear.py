"""``Linear``: the module around :func:`reference.functional.linear`."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_dtypes, check_positive_int
from .init import bias_bound, kaiming_uniform_bound, resolve_dtype, resolve_rng, uniform
from .module import Module, Parameter

__all__ = ["Linear"]


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
