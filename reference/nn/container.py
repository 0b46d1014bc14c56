"""Containers and shape-only layers: Sequential, Identity, Flatten, Unflatten."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validate import normalize_dim
from ..functional.shape import flatten, flatten_backward
from .module import Module


class Sequential(Module):
    """Modules applied in order (``torch.nn.Sequential``).

    Forward: :math:`y = f_n(\\dots f_2(f_1(x)))`. Backward is the chain rule read
    right to left: each module's ``backward`` turns the gradient wrt its output
    into the gradient wrt its input, which is the previous module's output.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential takes Modules; argument {index} is a {type(module).__name__}"
                )
            self.add_module(str(index), module)

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input

    def backward(self, grad_output: Any) -> Any:
        for module in reversed(self._modules.values()):
            grad_output = module.backward(grad_output)
        return grad_output

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Identity(Module):
    r"""``torch.nn.Identity``: :math:`y = x`, so :math:`\partial L/\partial x = g`."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()  # torch ignores any arguments; so do we

    def forward(self, input: np.ndarray) -> np.ndarray:
        return input

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return grad_output


class Flatten(Module):
    """Flatten dims ``start_dim..end_dim`` (``torch.nn.Flatten``, default ``(1, -1)``)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        self._input_shape = input.shape
        return flatten(input, self.start_dim, self.end_dim)

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return flatten_backward(grad_output, self._require_cache(self._input_shape))

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (``torch.nn.Unflatten``)."""

    def __init__(self, dim: int, unflattened_size: tuple[int, ...]):
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)
        self._input_shape: tuple[int, ...] | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        dim = normalize_dim(self.dim, input.ndim, "Unflatten")
        if int(np.prod(self.unflattened_size)) != input.shape[dim]:
            raise ValueError(
                f"Unflatten(dim={self.dim}, unflattened_size={self.unflattened_size}): the sizes "
                f"multiply to {int(np.prod(self.unflattened_size))} but dim {self.dim} of the "
                f"input {input.shape} has {input.shape[dim]}"
            )
        self._input_shape = input.shape
        return input.reshape(input.shape[:dim] + self.unflattened_size + input.shape[dim + 1 :])

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return grad_output.reshape(self._require_cache(self._input_shape))
