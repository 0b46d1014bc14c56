"""The reference backend's plain run of a graph-shaped spec, on ``reference.autograd``'s tape.

Each node is called on Tensors: a layer records one node whose backward is the layer's
own hand-written ``backward`` (``reference.autograd.modules``), an op likewise through
its pair in ``reference.functional.elementwise``; ``loss.backward(upstream)`` then runs
the graph in reverse, summing each node's consumers' gradients as torch's engine does.
An alias per edge (``clone``, whose ``grad`` is retained) records what each consumer
sent back, as the torch backend's ``view_as`` aliases do.

The error model's perturbed runs take the explicit loop of
:mod:`harness.backends.reference_graph` instead: it rounds every stored value at the
node boundaries, which a tape hides inside its engine. Both call the same modules and
pairs in the same order, so an unperturbed loop and the tape agree to rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import reference.autograd as ag

from ..graph import edge_key, input_nodes
from ..spec import NetworkSpec, extra_output_names, split_output
from .reference_graph import impose_draw

__all__ = ["graph_on_tape"]


def graph_on_tape(
    spec: NetworkSpec, layers: list, x_in: Any, call: int, mask_fn: Any,
    loss_fn: Any, target: Any, upstream: Any,
) -> tuple[list, Any, list, Any, dict, dict]:  # fmt: skip
    """``(outputs, loss, grads, grad_input, extras, grad_edges)`` as arrays."""
    x = ag.Tensor(x_in, requires_grad=np.asarray(x_in).dtype.kind == "f")
    outputs: list[Any] = []
    aliases: dict[str, Any] = {}
    extras: dict[str, np.ndarray] = {}
    for index, module in enumerate(layers):
        inputs = [x if j < 0 else outputs[j] for j in input_nodes(spec, index)]
        impose_draw(spec, module, index, inputs[0].data, call, mask_fn)
        edges = [ag.clone(t) if t.requires_grad else t for t in inputs]
        for k, edge in enumerate(edges):
            if edge.requires_grad:
                edge.retain_grad()
                aliases[edge_key(index, k)] = edge
        output, more = split_output(module(*edges))
        for name, value in zip(extra_output_names(spec.layers[index].type), more):
            extras[f"{index}.{name}"] = np.array(value.data, copy=True)
        if output.requires_grad:
            output.retain_grad()
        outputs.append(output)
    loss = loss_fn(outputs[-1], ag.Tensor(target))
    loss.backward(upstream.copy())
    grads = [np.zeros_like(o.data) if o.grad is None else o.grad.data for o in outputs]
    grad_edges = {k: a.grad.data for k, a in aliases.items() if a.grad is not None}
    grad_input = None if x.grad is None else x.grad.data
    return [o.data for o in outputs], loss.data, grads, grad_input, extras, grad_edges
