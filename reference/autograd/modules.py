r"""A ``reference.nn`` module called on Tensors records itself on the tape.

``model(x)`` with ``x`` a :class:`~reference.autograd.Tensor` runs the module's own
``forward`` on the arrays and records one node whose backward is the module's own
hand-written ``backward``: the tape composes the rules written by hand, it never
re-derives them. The node's gradient flows to the Tensor inputs; the module's
parameters get theirs the way they always do, accumulated into ``Parameter.grad`` by
``backward``, so ``optimizer.step()`` reads them as before. A module with parameters
records a node even when no input requires a gradient (``model(x)`` on data).

A module keeps one forward's cache. So that a module may be called twice before one
backward (a shared layer in a graph), each node keeps a shallow snapshot of the
module's attributes (and its children's) taken after its forward, and puts it back
before its backward.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any

import numpy as np

from .graph import Function, FunctionCtx
from .tensor import Tensor

__all__ = ["call_module"]

_STRUCTURE = ("_parameters", "_buffers", "_modules", "training", "_non_persistent")


def _snapshot(module: Any) -> list[tuple[Any, dict[str, Any]]]:
    return [
        (m, {k: v for k, v in vars(m).items() if k not in _STRUCTURE}) for m in module.modules()
    ]


def _restore(snapshot: list[tuple[Any, dict[str, Any]]]) -> None:
    for m, saved in snapshot:
        for key, value in saved.items():
            object.__setattr__(m, key, value)


def _flatten(result: Any) -> tuple[list[Any], Any]:
    """``(out, (h, c))`` -> ``[out, h, c]`` and the structure to rebuild it."""
    if not isinstance(result, tuple):
        return [result], None
    flat: list[Any] = []
    structure = []
    for part in result:
        inner, shape = _flatten(part)
        flat += inner
        structure.append(shape if shape is not None else len(inner))
    return flat, structure


def _nest(flat: list[Any], structure: Any) -> Any:
    if structure is None:
        return flat[0]
    out, at = [], 0
    for shape in structure:
        if isinstance(shape, int):
            out.append(flat[at])
            at += 1
        else:
            count = _count(shape)
            out.append(_nest(flat[at : at + count], shape))
            at += count
    return tuple(out)


def _count(structure: Any) -> int:
    return sum(s if isinstance(s, int) else _count(s) for s in structure)


@cache
def _gradient_slots(backward: Any) -> int:
    """How many upstream gradients a module's ``backward`` takes (an RNN: output, h_n, c_n)."""
    params = inspect.signature(backward).parameters.values()
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return max(1, len(positional))


class ModuleCall(Function):
    """One call of a module: its forward on arrays, its own backward on the way back."""

    @classmethod
    def records(cls, args: tuple[Any, ...], needs: tuple[bool, ...]) -> bool:
        return any(needs) or next(args[0].parameters(), None) is not None

    @staticmethod
    def forward(ctx: FunctionCtx, module: Any, box: list, *inputs: Any, **kwargs: Any) -> Any:
        arrays = [x.data if isinstance(x, Tensor) else x for x in inputs]
        flat, structure = _flatten(module.forward(*arrays, **kwargs))
        box.append(structure)
        ctx.module, ctx.snapshot = module, _snapshot(module)
        ctx.outputs = [np.shape(o) for o in flat]
        return tuple(np.asarray(o) for o in flat) if len(flat) > 1 else np.asarray(flat[0])

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: np.ndarray) -> tuple[Any, ...]:
        module = ctx.module
        _restore(ctx.snapshot)
        slots = _gradient_slots(type(module).backward) - 1  # minus self
        result = module.backward(*grads[: max(1, slots)])
        flows = list(result) if isinstance(result, tuple) else [result]
        needs = ctx.needs_input_grad[2:]
        if len(needs) > len(flows) and needs[len(flows)] and hasattr(type(module), "target_grad"):
            flows.append(module.target_grad)  # a loss whose target requires grad
        flows += [None] * (len(needs) - len(flows))
        grads_in = [g if need else None for g, need in zip(flows, needs)]
        return (None, None, *grads_in)


@cache
def _function_for(module_type: Any) -> type[ModuleCall]:
    """A ModuleCall subclass per module class, so ``grad_fn`` says ``LinearBackward``."""
    return type(f"{module_type.__name__}Call", (ModuleCall,),
                {"torch_name": f"{module_type.__name__}Backward"})  # fmt: skip


def call_module(module: Any, *inputs: Any, **kwargs: Any) -> Any:
    """``module(*inputs)`` recorded on the tape (see the module docstring)."""
    box: list = []
    kind: Any = type(module)
    out = _function_for(kind).apply(module, box, *inputs, **kwargs)
    flat = list(out) if isinstance(out, tuple) else [out]
    return _nest(flat, box[0])
