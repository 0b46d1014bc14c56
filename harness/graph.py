"""Graph-shaped networks: nodes that take earlier nodes' outputs, and the ops that join them.

A :class:`~harness.spec.NetworkSpec` is a chain while no layer names its ``inputs``: each
layer takes the previous one's output. A layer with ``inputs=[i, j]`` takes the outputs
of nodes ``i`` and ``j`` (``-1``: the network input), so the spec is a DAG in node
order; the last node is the network's output. A node is a ``torch.nn`` layer (two-input
ones such as ``Bilinear`` take two) or an :class:`Op` that joins tensors: ``add``,
``sub``, ``mul`` (broadcasting), ``cat`` (``dim``) and ``tile`` (``copies``: a vector
repeated per layer and direction, a recurrent layer's initial state, which a recurrent
node takes as its second (and, for an LSTM, third) input). The reference runs an op with the
forward/backward pairs of ``reference.functional.elementwise``, torch with ``torch.add``,
``torch.sub``, ``torch.mul`` and ``torch.cat``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any

import numpy as np

from reference.functional import elementwise as E
from reference.nn.module import Module

__all__ = [
    "Op",
    "OP_TYPES",
    "OpModule",
    "RECURRENT_TYPES",
    "reference_stateful",
    "check_inputs",
    "consumers",
    "edge_key",
    "input_nodes",
    "is_graph",
    "is_op",
    "forward_zeros",
    "node_inputs",
    "run_nodes",
]


class Op(str, Enum):
    """The ops a graph node may be besides a layer (lower case: no ``torch.nn`` name)."""

    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    CAT = "cat"  # kwargs: dim
    TILE = "tile"  # kwargs: copies; (*) -> (copies, *): a recurrent layer's initial state

    def __str__(self) -> str:
        return self.value


OP_TYPES = tuple(op.value for op in Op)
# the ops that take exactly two inputs (cat takes two or more)
BINARY_OPS = (Op.ADD.value, Op.SUB.value, Op.MUL.value)


def is_op(type_: str) -> bool:
    return type_ in OP_TYPES


def is_graph(spec: Any) -> bool:
    """Whether any layer of ``spec`` names its inputs (else it is a chain)."""
    return any(getattr(layer, "inputs", None) is not None for layer in spec.layers)


def input_nodes(spec: Any, index: int) -> list[int]:
    """The nodes node ``index`` takes, in order (``-1``: the network input)."""
    inputs = spec.layers[index].inputs
    return [index - 1] if inputs is None else list(inputs)


def consumers(spec: Any) -> dict[int, list[tuple[int, int]]]:
    """Per node (and ``-1``, the input): the ``(consumer, edge)`` pairs that read it."""
    out: dict[int, list[tuple[int, int]]] = {i: [] for i in range(-1, len(spec.layers))}
    for i in range(len(spec.layers)):
        for k, j in enumerate(input_nodes(spec, i)):
            out[j].append((i, k))
    return out


def edge_key(node: int, edge: int) -> str:
    """The trace's name of node ``node``'s ``edge``-th input (``Trace.grad_edges``)."""
    return f"{node}.{edge}"


def check_inputs(where: str, index: int, inputs: Any) -> list[int] | None:
    """A layer's ``inputs`` as a list of earlier node indices, or a one-line error."""
    from .spec import SpecError

    if inputs is None:
        return None
    ok = isinstance(inputs, (list, tuple)) and len(inputs) > 0
    ints = ok and all(isinstance(j, int) and not isinstance(j, bool) for j in inputs)
    if not ints:
        raise SpecError(
            f"{where}: inputs must be a non-empty list of earlier node indices (-1: the "
            f"network input), found {inputs!r}"
        )
    bad = [j for j in inputs if not -1 <= j < index]
    if bad:
        raise SpecError(
            f"{where}: inputs {list(inputs)} name node {bad[0]}, which does not come before "
            f"it: a node takes earlier nodes (0..{index - 1}) or -1, the network input"
        )
    return [int(j) for j in inputs]


def _arity(type_: str, n: int) -> None:
    if type_ in BINARY_OPS and n != 2:
        raise ValueError(f"{type_} takes 2 inputs, got {n}")
    if type_ == Op.CAT.value and n < 2:
        raise ValueError(f"cat takes 2 or more inputs, got {n}")
    if type_ == Op.TILE.value and n != 1:
        raise ValueError(f"tile takes 1 input, got {n}")


class OpModule(Module):
    """A graph op as a reference module: ``forward(*inputs)`` and ``backward(grad_output)``
    returning one gradient per input (``reference.functional.elementwise``)."""

    def __init__(self, op: str, **kwargs: Any) -> None:
        super().__init__()
        self.op = Op(op)
        allowed = {Op.CAT: {"dim"}, Op.TILE: {"copies"}}.get(self.op, set())
        extra = set(kwargs) - allowed
        if extra:
            raise ValueError(f"{op} takes no argument {sorted(extra)[0]!r}")
        self.dim = int(kwargs.get("dim", 0))
        self.copies = int(kwargs.get("copies", 1))
        self._inputs: tuple[np.ndarray, ...] | None = None

    def forward(self, *inputs: Any) -> np.ndarray:
        _arity(self.op.value, len(inputs))
        self._inputs = tuple(np.asarray(x) for x in inputs)
        if self.op is Op.CAT:
            return E.cat(self._inputs, self.dim)
        if self.op is Op.TILE:
            return E.tile(self._inputs[0], self.copies)
        # looked up at each call: reference.functional.elementwise's pair of this op
        forward: Callable[..., np.ndarray] = getattr(E, self.op.value)
        return forward(*self._inputs)

    def backward(self, grad_output: Any) -> Any:  # a tuple, one per input; tile: one array
        inputs = self._require_cache(self._inputs)
        if self.op is Op.CAT:
            return E.cat_backward(grad_output, inputs, self.dim)
        if self.op is Op.TILE:
            return E.tile_backward(grad_output, inputs[0], self.copies)
        backward: Callable[..., tuple] = getattr(E, f"{self.op.value}_backward")
        return backward(grad_output, *inputs)


# recurrent layers: a graph node may feed them their initial state as extra inputs
RECURRENT_TYPES = ("RNN", "LSTM", "GRU")


def pack_states(states: tuple) -> Any:
    """Initial states as a recurrent layer's ``hx`` takes them: ``None``, ``h0``, or the
    LSTM's ``(h0, c0)``."""
    return None if not states else states[0] if len(states) == 1 else tuple(states)


@functools.cache
def reference_stateful(cls: Any) -> type:
    """``cls`` (a reference RNN, LSTM or GRU) taking its initial state as separate inputs,
    ``forward(x, h0[, c0])``, its backward returning ``(dx, dh0[, dc0])`` then; with one
    input it is ``cls`` itself. The ``state_dict`` is unchanged (a subclass, no wrapper)."""

    def forward(self: Any, input: Any, *states: Any) -> Any:
        self._states = len(states)
        return cls.forward(self, input, pack_states(states))

    def backward(self: Any, grad_output: Any, *rest: Any) -> Any:
        grad = cls.backward(self, grad_output, *rest)
        if not getattr(self, "_states", 0):
            return grad
        hx = self.grad_hx
        return (grad, *(hx if isinstance(hx, tuple) else (hx,)))

    return type(cls.__name__, (cls,), {"forward": forward, "backward": backward})


def op_class(type_: str) -> Callable[..., OpModule]:
    """The reference 'class' of an op node: ``OpModule`` with the op bound."""

    def make(**kwargs: Any) -> OpModule:
        return OpModule(type_, **kwargs)

    make.__name__ = type_
    return make


def run_nodes(
    spec: Any, modules: Sequence[Any], x: Any, call: Callable[[int, Any, list], Any]
) -> list[Any]:
    """Each node's output in order, ``call(index, module, inputs)`` computing one node from
    its inputs' outputs (``-1``: ``x``); a chain passes each output to the next."""
    outputs: list[Any] = []
    for index, module in enumerate(modules):
        inputs = [x if j < 0 else outputs[j] for j in input_nodes(spec, index)]
        outputs.append(call(index, module, inputs))
    return outputs


def _shapes_text(inputs: list) -> str:
    shapes = [tuple(np.shape(x)) for x in inputs]
    return str(shapes[0]) if len(shapes) == 1 else ", ".join(map(str, shapes))


def forward_zeros(spec: Any, modules: Sequence[Any], x: Any) -> list[Any]:
    """Every node's output on ``x`` (zeros), dropout in eval; a :class:`SpecError` names the
    first node that cannot take its inputs' shapes."""
    from .spec import DROPOUT_TYPES, SpecError, split_output

    def call(index: int, module: Any, inputs: list) -> Any:
        layer = spec.layers[index]
        if layer.type in DROPOUT_TYPES:
            module.eval()  # a mask is not needed to know the shape
        try:
            with np.errstate(all="ignore"):
                return split_output(module(*inputs))[0]
        except Exception as exc:  # noqa: BLE001 - report any failure as a bad spec
            raise SpecError(
                f"layer {index} ({layer}) cannot follow shape {_shapes_text(inputs)}: {exc}"
            ) from exc

    return run_nodes(spec, modules, x, call)


def node_inputs(spec: Any) -> tuple[tuple[int, ...], ...] | None:
    """Each node's inputs (``harness.bounds.local_sites``); None for a chain."""
    if not is_graph(spec):
        return None
    return tuple(tuple(input_nodes(spec, i)) for i in range(len(spec.layers)))
