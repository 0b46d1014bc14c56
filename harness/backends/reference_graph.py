"""The reference backend's loop over a graph-shaped spec (``harness.graph``).

Forward in node order, each node on its inputs' outputs; backward in reverse node order:
each node's backward gets the *total* gradient of its output (the sum of what its
consumers sent back) and returns one gradient per input edge, which is perturbed at
``Site.GRAD_INPUT`` exactly as a chain layer's input gradient is, recorded as that
edge's gradient and added into its producer's total. Every stored value is perturbed
where the chain perturbs it, so ``harness.bounds``' error model needs nothing new.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..graph import edge_key, input_nodes
from ..spec import DRAW_ATTRIBUTE, NetworkSpec, draws_random, extra_output_names, split_output

__all__ = ["graph_forward", "graph_backward", "impose_draw"]


def impose_draw(
    spec: NetworkSpec, module: Any, index: int, x: Any, call: int, mask_fn: Any
) -> None:
    """Torch's draw for a layer that draws random numbers, set on the reference module."""
    kind = spec.layers[index].type
    if not draws_random(kind, spec.train):
        return
    if mask_fn is None:
        raise RuntimeError(
            f"a {kind} layer that draws random numbers needs a mask_fn "
            "(torch's draw, so both sides drop the same units)"
        )
    draw = mask_fn(index, tuple(np.shape(x)), call)
    if draw.dtype.kind == "f":
        draw = draw.astype(np.asarray(x).dtype)
    setattr(module, DRAW_ATTRIBUTE[kind], draw)


def graph_forward(
    spec: NetworkSpec,
    layers: list,
    x_in: Any,
    call: int,
    noise: Callable[..., np.ndarray],
    in_layer: Callable[[int, bool], Any],
    mask_fn: Any,
    perturb_buffers: Callable[[Any, int], None],
) -> tuple[list, dict]:
    """Every node's output (perturbed at ``Site.OUTPUT``) and the extras."""
    from .reference import Site

    outputs: list[Any] = []
    extras: dict[str, np.ndarray] = {}
    for index, module in enumerate(layers):
        kind = spec.layers[index].type
        inputs = [x_in if j < 0 else outputs[j] for j in input_nodes(spec, index)]
        impose_draw(spec, module, index, inputs[0], call, mask_fn)
        with in_layer(index, False):
            output, more = split_output(module(*inputs))
        for name, value in zip(extra_output_names(kind), more):
            extras[f"{index}.{name}"] = noise(value, Site.OUTPUT, index, inputs[0])
        outputs.append(noise(output, Site.OUTPUT, index, inputs[0]))
        perturb_buffers(module, index)
    return outputs, extras


def graph_backward(
    spec: NetworkSpec,
    layers: list,
    outputs: list,
    g: Any,
    noise: Callable[..., np.ndarray],
    in_layer: Callable[[int, bool], Any],
    perturb_params: Callable[[Any, int], None],
) -> tuple[list, Any, dict]:
    """The total gradient wrt each node's output, wrt the network input, and per edge."""
    from .reference import Site

    n = len(layers)
    totals: dict[int, Any] = {n - 1: g}
    edges: dict[str, np.ndarray] = {}
    grads: list[Any] = [None] * n
    for index in range(n - 1, -1, -1):
        total = totals.get(index)
        if total is None:  # a node nothing reads: no gradient reaches it
            total = np.zeros_like(np.asarray(outputs[index]))
        grads[index] = total
        sources = input_nodes(spec, index)
        with in_layer(index, True):
            result = layers[index].backward(total)
        results = tuple(result) if len(sources) > 1 else (result,)
        for k, (j, r) in enumerate(zip(sources, results)):
            if r is None or np.asarray(r).dtype.kind != "f":
                continue
            r = noise(r, Site.GRAD_INPUT, index, total)
            edges[edge_key(index, k)] = r
            totals[j] = r if totals.get(j) is None else totals[j] + r
        perturb_params(layers[index], index)
    return grads, totals.get(-1), edges
