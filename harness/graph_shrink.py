"""Shrinking a graph-shaped spec (``harness.graph``): drop nodes, keep the graph valid.

A node is removed by rewiring whatever read it to one of its own inputs (for an op,
"replace the op by one of its inputs"); the ``inputs`` of every later node are
re-indexed, and nodes that no longer reach the output are dropped with it. A graph left
with nothing but a chain's wiring becomes a chain again (``inputs`` None), so its repro
reads as one. :func:`graph_fitted` is ``harness.shrink.fitted`` for a graph: each node's
input-dependent arguments set from its inputs' shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .graph import input_nodes, is_op
from .spec import LayerSpec, NetworkSpec

__all__ = ["drop_candidates", "graph_fitted", "without_node"]


def _as_chain_if_possible(layers: list[LayerSpec]) -> list[LayerSpec]:
    wiring = [
        layer.inputs if layer.inputs is not None else [i - 1] for i, layer in enumerate(layers)
    ]
    if all(w == [i - 1] for i, w in enumerate(wiring)):
        return [LayerSpec(layer.type, layer.kwargs) for layer in layers]
    return layers


def without_node(spec: NetworkSpec, drop: int, via: int) -> NetworkSpec | None:
    """``spec`` without node ``drop``, its readers reading its ``via``-th input instead;
    nodes that then no longer reach the output go too. None when nothing is left."""
    sources = input_nodes(spec, drop)
    if via >= len(sources):
        return None
    n = len(spec.layers)
    # where each old reference now points (old indices), -1 the input
    target = {j: j for j in range(-1, n)}
    target[drop] = target[sources[via]]
    output = target[n - 1]
    # the nodes the output still needs, walking back from it
    needed: set[int] = set()
    stack = [output]
    while stack:
        j = stack.pop()
        if j < 0 or j in needed:
            continue
        needed.add(j)
        stack += [target[k] for k in input_nodes(spec, j)]
    kept = sorted(needed)
    if not kept:
        return None
    new_index = {old: new for new, old in enumerate(kept)}
    new_index[-1] = -1
    layers = [
        LayerSpec(
            spec.layers[old].type,
            spec.layers[old].kwargs,
            [new_index[target[k]] for k in input_nodes(spec, old)],
        )
        for old in kept
    ]
    return dataclasses.replace(spec, layers=_as_chain_if_possible(layers))


def drop_candidates(spec: NetworkSpec) -> list[NetworkSpec]:
    """Each node dropped (last first), rewired to each of its inputs in turn."""
    out = []
    for i in range(len(spec.layers) - 1, -1, -1):
        for via in range(len(input_nodes(spec, i))):
            candidate = without_node(spec, i, via)
            if candidate is not None:
                out.append(candidate)
    return out


def graph_fitted(
    spec: NetworkSpec,
    fit: Callable[[LayerSpec, tuple[int, ...], int | None], LayerSpec],
    norm_rule: bool,
) -> tuple[list[LayerSpec], tuple[int, ...]] | None:
    """The nodes with their input-dependent arguments set (``fit`` for a one-input layer,
    ``Bilinear``'s feature counts from its two inputs) and the output shape; None when a
    node cannot take its inputs."""
    from .fits import _norm_group_size
    from .graph_generate import _node_shape
    from .known_bugs import torch_bug

    shapes: dict[int, tuple[int, ...]] = {-1: spec.input_shape}
    layers: list[LayerSpec] = []
    for index, layer in enumerate(spec.layers):
        ins = [shapes[j] for j in input_nodes(spec, index)]
        if layer.type == "Bilinear" and len(ins) == 2:
            kw = {**layer.kwargs, "in1_features": ins[0][-1], "in2_features": ins[1][-1]}
            layer = LayerSpec(layer.type, kw, layer.inputs)
        elif len(ins) == 1 and not is_op(layer.type):
            high = spec.index_high if index == 0 else None
            layer = dataclasses.replace(fit(layer, ins[0], high), inputs=layer.inputs)
        if norm_rule and _norm_group_size(layer, ins[0]) < 3:
            return None
        if torch_bug(layer.type, layer.kwargs, ins[0]) is not None:
            return None
        out = _node_shape(layer, ins, spec.train)
        if out is None or 0 in out:
            return None
        layers.append(layer)
        shapes[index] = out
    return layers, shapes[len(layers) - 1]
