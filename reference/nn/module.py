"""Module and Parameter: the stateful shell around the pure functional pairs.

A reference module mirrors ``torch.nn.Module`` where a user can see it: attribute
registration, ``named_parameters``, ``state_dict`` keys and order, ``train``/``eval``,
``zero_grad``. What torch does with autograd we do by hand: ``forward`` saves what
the backward needs (the module's *cache*), and ``backward(grad_output)``
accumulates every parameter's gradient into ``Parameter.grad`` and returns the
gradient with respect to the module's input.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor


class Parameter:
    """A trainable array and the gradient accumulated into it (``torch.nn.Parameter``).

    ``grad`` is ``None`` until the first backward, then each backward *adds* to it,
    as in torch; ``Module.zero_grad()`` clears it.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: Any):
        self.data: np.ndarray = np.array(data)
        # an ndarray; a sparse Embedding's is a SparseRows (reference.functional.embedding)
        self.grad: Any = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def accumulate_grad(self, grad: np.ndarray) -> None:
        """``grad += g`` (or ``grad = g`` the first time), kept in the parameter's dtype."""
        grad = np.asarray(grad, dtype=self.data.dtype)
        if grad.shape != self.data.shape:
            raise ValueError(
                f"gradient of shape {grad.shape} does not match its parameter of shape "
                f"{self.data.shape}"
            )
        if self.grad is None:
            # copy: the caller may keep using the array it handed us
            self.grad = grad.copy()
        else:
            self.grad += grad

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of every reference layer, activation and loss.

    Subclasses implement ``forward(*inputs)`` and ``backward(grad_output)``.
    Assigning a ``Parameter`` or ``Module`` attribute registers it, as in torch,
    so ``state_dict()`` keys come out as ``"0.weight"``, ``"fc1.bias"``...
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # -- registration -------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if params is None:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call; "
                f"call super().__init__() first in {type(self).__name__}.__init__"
            )
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign {type(value).__name__} as parameter {name!r} "
                    "(a Parameter or None is required)"
                )
            params[name] = None
        elif name in self._buffers:
            self._buffers[name] = None if value is None else np.asarray(value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # only called when normal lookup fails: parameters, buffers, submodules
        for store in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(store)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def register_buffer(self, name: str, value: Any, persistent: bool = True) -> None:
        """A non-trainable array saved in ``state_dict`` (e.g. ``running_mean``)."""
        self._buffers[name] = None if value is None else np.asarray(value)
        if not persistent:
            self._non_persistent.add(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module

    # -- the two passes -----------------------------------------------------
    def forward(self, *inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def backward(self, grad_output: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward()")

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        if any(isinstance(x, Tensor) for x in inputs):
            # on reference.autograd Tensors: recorded on the tape, backward by self.backward
            from ..autograd.modules import call_module

            return call_module(self, *inputs, **kwargs)
        return self.forward(*inputs, **kwargs)

    def _require_cache(self, cache: Any) -> Any:
        """The forward's saved values, or a clear error if backward came first."""
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): "
                "run forward on an input first, then backward once per forward"
            )
        return cache

    # -- traversal ----------------------------------------------------------
    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self.named_children():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        seen: set[int] = set()
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, np.ndarray]]:
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_prefix, module in modules:
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_prefix}.{name}" if module_prefix else name), buf

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    # -- state --------------------------------------------------------------
    def state_dict(self, prefix: str = "") -> OrderedDict[str, np.ndarray]:
        """Copies of parameters then persistent buffers, module by module (torch's order)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                out[prefix + name] = param.data.copy()
        for name, buf in self._buffers.items():
            if buf is not None and name not in self._non_persistent:
                out[prefix + name] = np.array(buf, copy=True)
        for name, child in self.named_children():
            out.update(child.state_dict(prefix=f"{prefix}{name}."))
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> None:
        """Copy values in, cast to each destination's dtype (torch's ``copy_`` semantics).

        Accepts anything ``np.asarray`` understands, torch CPU tensors included.
        Raises ``KeyError`` on missing/unexpected keys when ``strict`` and
        ``ValueError`` on a shape mismatch, listing every problem at once.
        """
        own = self.state_dict()
        problems = []
        if strict:
            missing = [k for k in own if k not in state_dict]
            unexpected = [k for k in state_dict if k not in own]
            if missing:
                problems.append(f"missing keys {missing}")
            if unexpected:
                problems.append(f"unexpected keys {unexpected}")
        incoming = {}
        for key, value in state_dict.items():
            if key not in own:
                continue
            array = np.asarray(value)
            if array.shape != own[key].shape:
                problems.append(
                    f"size mismatch for {key}: got {array.shape}, the module has {own[key].shape}"
                )
            incoming[key] = array
        if problems:
            raise (KeyError if strict and not any("size" in p for p in problems) else ValueError)(
                f"Error(s) in loading state_dict for {type(self).__name__}: " + "; ".join(problems)
            )
        for module_prefix, module in self.named_modules():
            base = f"{module_prefix}." if module_prefix else ""
            for name, param in module._parameters.items():
                if param is not None and base + name in incoming:
                    param.data = np.array(incoming[base + name], dtype=param.data.dtype)
            for name, buf in module._buffers.items():
                if buf is not None and base + name in incoming:
                    module._buffers[name] = np.array(incoming[base + name], dtype=buf.dtype)

    # -- modes and housekeeping --------------------------------------------
    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for param in self.parameters():
            if set_to_none:
                param.grad = None
            elif param.grad is not None:
                param.grad[...] = 0

    def to(self, dtype: Any) -> Module:
        """Cast floating parameters, their gradients and floating buffers (in place)."""
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"{type(self).__name__}.to() takes a floating dtype, got {dtype}")
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None:
                    param.data = param.data.astype(dtype)
                    if param.grad is not None:
                        param.grad = param.grad.astype(dtype)
            for name, buf in module._buffers.items():
                if buf is not None and buf.dtype.kind == "f":
                    module._buffers[name] = buf.astype(dtype)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # -- printing -----------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        children = [f"({name}): {child!r}" for name, child in self.named_children()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        body = "\n".join("  " + line for c in children for line in c.splitlines())
        return f"{type(self).__name__}(\n{body}\n)"
