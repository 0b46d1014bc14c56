"""Random graph-shaped networks (``harness.graph``): the generator's ``graph`` family.

A graph is drawn as a stem and then one to three *motifs*, each joining branches that
start at the current node (the network input for the first):

- ``residual``: :math:`x + f(x)` (sometimes :math:`x - f(x)`), ``f`` one to three
  shape-preserving layers (a ``Linear(d, d)``, a conv whose padding keeps the shape, an
  activation, a norm): a skip across them;
- ``concat``: two branches concatenated along the channels (dim 1) or features (dim -1);
- ``gate``: :math:`x \\cdot \\sigma(g(x))`;
- ``broadcast``: :math:`x + b(x)` or :math:`x \\cdot \\sigma(b(x))` with ``b(x)`` pooled
  or projected to size 1 along a dim, so the op broadcasts (its backward reduces);
- ``heads``: two heads summed;
- ``pair``: a two-input layer (``Bilinear``, ``CosineSimilarity``, ``PairwiseDistance``)
  over two branches;
- ``state``: a recurrent layer over ``(N, L, F)`` started from an initial state computed
  from the data (``Flatten -> Linear -> Tanh -> tile``; ``h0``, and ``c0`` for an LSTM),
  so the states' gradients are traced as its input edges.

Every node is checked by running the reference on zeros of its inputs' shapes (a motif
that does not fit is dropped whole), so every drawn spec is valid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .activations import propose_activation
from .chooser import Chooser, Limits, _ref_class, available
from .graph import RECURRENT_TYPES, Op, is_op, reference_stateful
from .known_bugs import torch_bug
from .sequence import recurrent_options
from .spec import (
    DROPOUT_TYPES,
    UNIMPOSED_TRAINING_DRAWS,
    LayerSpec,
    _accepts,
    reference_class,
    split_output,
)

__all__ = ["MOTIFS", "graph_layers"]

Shape = tuple[int, ...]


class _Graph:
    """The nodes drawn so far, their shapes, and the checks each new node must pass."""

    def __init__(self, input_shape: Shape, train: bool, limits: Limits) -> None:
        self.layers: list[LayerSpec] = []
        self.shapes: dict[int, Shape] = {-1: input_shape}
        self.train, self.limits = train, limits

    def node(self, type_: str, inputs: list[int], **kwargs: Any) -> int | None:
        """Append ``type_(**kwargs)`` over ``inputs``; its index, or None if it does not fit."""
        if not is_op(type_):
            cls = _ref_class(type_)
            if cls is None or type_ in self.limits.exclude:
                return None
            kwargs = {k: v for k, v in kwargs.items() if _accepts(cls, k)}
        return self.append(LayerSpec(type_, kwargs, list(inputs)))

    def append(self, layer: LayerSpec) -> int | None:
        shapes = [self.shapes[j] for j in layer.inputs or [len(self.layers) - 1]]
        if self.train and layer.type in UNIMPOSED_TRAINING_DRAWS:
            return None
        if torch_bug(layer.type, layer.kwargs, shapes[0]) is not None:
            return None
        if not _normalizes_enough(layer, shapes[0]):
            return None
        out = _node_shape(layer, shapes, self.train)
        if out is None or 0 in out or int(np.prod(out[1:])) > self.limits.max_features:
            return None
        self.layers.append(layer)
        self.shapes[len(self.layers) - 1] = out
        return len(self.layers) - 1


def _normalizes_enough(layer: LayerSpec, shape: Shape) -> bool:
    from .fits import _norm_group_size

    try:
        return _norm_group_size(layer, shape) >= 3
    except (KeyError, IndexError, ZeroDivisionError):
        return False


def _node_shape(layer: LayerSpec, shapes: list[Shape], train: bool) -> Shape | None:
    """The reference node run on zeros of ``shapes``: its output shape, or None."""
    try:
        cls = reference_class(layer.type)
        if layer.type in RECURRENT_TYPES:
            cls = reference_stateful(cls)
        kwargs = dict(layer.kwargs)
        if _accepts(cls, "rng"):
            kwargs["rng"] = 0
        if _accepts(cls, "dtype"):
            kwargs["dtype"] = np.float64
        module = cls(**kwargs)
        module.train(train and layer.type not in DROPOUT_TYPES)
        with np.errstate(all="ignore"):
            out, _ = split_output(module(*(np.zeros(s) for s in shapes)))
    except Exception:  # noqa: BLE001 - does not fit: the motif is dropped
        return None
    return tuple(np.shape(out))


# -- shape-preserving and shape-changing layers --------------------------------------
def _conv_like(shape: Shape) -> bool:
    return len(shape) >= 3 and len(shape) <= 4


def _keep(ch: Chooser, g: _Graph, at: int) -> int | None:
    """One shape-preserving layer after node ``at``."""
    shape = g.shapes[at]
    d = len(shape) - 2
    kind = ch.choice(["linear", "activation", "norm", "activation", "dropout"])
    if kind == "linear" and _conv_like(shape):
        k = ch.choice([1, 3])
        padding: Any = ch.choice([k // 2, "same"])
        c = shape[1]
        return g.node(f"Conv{d}d", [at], in_channels=c, out_channels=c, kernel_size=k,
                      padding=padding, bias=not ch.boolean(0.2))  # fmt: skip
    if kind == "linear":
        return g.node("Linear", [at], in_features=shape[-1], out_features=shape[-1])
    if kind == "norm" and _conv_like(shape):
        if ch.boolean():
            return g.node(f"BatchNorm{d}d", [at], num_features=shape[1])
        groups = ch.choice([n for n in (1, 2, shape[1]) if shape[1] % n == 0])
        return g.node("GroupNorm", [at], num_groups=groups, num_channels=shape[1])
    if kind == "norm":
        return g.node("LayerNorm", [at], normalized_shape=shape[-1])
    if kind == "dropout" and g.limits.dropout:
        return g.node("Dropout", [at], p=ch.choice([0.5, 0.2]))
    act = propose_activation(ch, shape)
    if act is None or act.type == "PReLU":  # PReLU's channel count needs its own fit
        act = LayerSpec("Tanh")
    index = g.node(act.type, [at], **act.kwargs)
    return index if index is not None and g.shapes[index] == shape else None


def _change(ch: Chooser, g: _Graph, at: int, width: int) -> int | None:
    """A layer after node ``at`` that makes its channels (conv) or features ``width``."""
    shape = g.shapes[at]
    if _conv_like(shape):
        k = ch.choice([1, 3])
        return g.node(f"Conv{len(shape) - 2}d", [at], in_channels=shape[1], out_channels=width,
                      kernel_size=k, padding=k // 2)  # fmt: skip
    return g.node("Linear", [at], in_features=shape[-1], out_features=width)


def _width(ch: Chooser, g: _Graph) -> int:
    return ch.integer(1, g.limits.max_channels if g.limits.max_channels else 4)


# -- motifs: each returns the node it ends at, or None (the motif is dropped) -----------
def residual(ch: Chooser, g: _Graph, at: int) -> int | None:
    h: int | None = at
    for _ in range(ch.integer(1, 3)):
        h = _keep(ch, g, h) if h is not None else None
    if h is None:
        return None
    op = Op.SUB if ch.boolean(0.2) else Op.ADD
    return g.node(op.value, [at, h] if ch.boolean(0.7) else [h, at])


def concat(ch: Chooser, g: _Graph, at: int) -> int | None:
    shape = g.shapes[at]
    a = at if ch.boolean(0.3) else _change(ch, g, at, _width(ch, g))
    b = _change(ch, g, at, _width(ch, g))
    if a is None or b is None:
        return None
    dim = 1 if _conv_like(shape) else ch.choice([-1, len(shape) - 1])
    return g.node(Op.CAT.value, [a, b], dim=dim)


def gate(ch: Chooser, g: _Graph, at: int) -> int | None:
    shape = g.shapes[at]
    if _conv_like(shape):
        c = shape[1]
        pre = g.node(f"Conv{len(shape) - 2}d", [at], in_channels=c, out_channels=c, kernel_size=1)
    else:
        pre = g.node("Linear", [at], in_features=shape[-1], out_features=shape[-1])
    s = g.node("Sigmoid", [pre]) if pre is not None else None
    return g.node(Op.MUL.value, [at, s] if ch.boolean() else [s, at]) if s is not None else None


def broadcast(ch: Chooser, g: _Graph, at: int) -> int | None:
    shape = g.shapes[at]
    if _conv_like(shape):
        b = g.node(f"AdaptiveAvgPool{len(shape) - 2}d", [at], output_size=1)
    else:
        b = g.node("Linear", [at], in_features=shape[-1], out_features=1)
    if b is None:
        return None
    if ch.boolean():
        return g.node(Op.ADD.value, [at, b] if ch.boolean() else [b, at])
    s = g.node("Sigmoid", [b])
    return g.node(Op.MUL.value, [at, s]) if s is not None else None


def heads(ch: Chooser, g: _Graph, at: int) -> int | None:
    width = _width(ch, g)
    a, b = _change(ch, g, at, width), _change(ch, g, at, width)
    if a is None or b is None:
        return None
    return g.node(Op.ADD.value, [a, b])


def pair(ch: Chooser, g: _Graph, at: int) -> int | None:
    shape = g.shapes[at]
    kind = ch.choice(["Bilinear", "CosineSimilarity", "PairwiseDistance"])
    if kind == "Bilinear" and not _conv_like(shape) and available("Bilinear"):
        a = at if ch.boolean(0.3) else _change(ch, g, at, _width(ch, g))
        b = _change(ch, g, at, _width(ch, g))
        if a is None or b is None:
            return None
        return g.node("Bilinear", [a, b], in1_features=g.shapes[a][-1],
                      in2_features=g.shapes[b][-1], out_features=_width(ch, g))  # fmt: skip
    if len(shape) == 2 and kind == "CosineSimilarity":
        return None  # (N, F) -> (N,): no head follows a 1-d output
    a = at if ch.boolean(0.4) else _keep(ch, g, at)
    b = _keep(ch, g, at)
    if a is None or b is None:
        return None
    if kind == "CosineSimilarity":
        return g.node(kind, [a, b], dim=1 if _conv_like(shape) else -1)
    return g.node(kind, [a, b], keepdim=len(shape) == 2 or ch.boolean())


def _initial_state(ch: Chooser, g: _Graph, at: int, width: int, copies: int) -> int | None:
    """``(N, L, F) -> (copies, N, width)``: Flatten, Linear, Tanh, then one copy per layer
    and direction (``tile``), a state made from the data as an encoder makes one."""
    n, steps, features = g.shapes[at]
    flat = g.node("Flatten", [at])
    if flat is None:
        return None
    lin = g.node("Linear", [flat], in_features=steps * features, out_features=width)
    squashed = g.node("Tanh", [lin]) if lin is not None else None
    return g.node(Op.TILE.value, [squashed], copies=copies) if squashed is not None else None


def state(ch: Chooser, g: _Graph, at: int) -> int | None:
    """A recurrent layer over ``(N, L, F)`` started from an initial state computed from the
    data (``h0``, and ``c0`` for an LSTM): the states' gradients are traced as its input
    edges, its final states beside its output."""
    shape = g.shapes[at]
    drawn = recurrent_options(ch, shape[2], g.limits) if len(shape) == 3 else None
    if drawn is None:
        return None
    kind, options = drawn
    hidden = options["hidden_size"]
    copies = options["num_layers"] * (2 if options["bidirectional"] else 1)
    states = [_initial_state(ch, g, at, options.get("proj_size") or hidden, copies)]
    if kind == "LSTM":
        states.append(_initial_state(ch, g, at, hidden, copies))
    if any(s is None for s in states):
        return None
    return g.node(kind, [at, *[s for s in states if s is not None]], **options)


MOTIFS: dict[str, Callable[[Chooser, _Graph, int], int | None]] = {
    "residual": residual,
    "concat": concat,
    "gate": gate,
    "broadcast": broadcast,
    "heads": heads,
    "pair": pair,
    "state": state,
}


def _input_shape(ch: Chooser, limits: Limits, batch: int) -> Shape:
    kind = ch.choice(["dense", "conv", "sequence"])
    if kind == "conv" and available("Conv1d"):
        d = ch.integer(1, 2)
        spatial = tuple(ch.integer(1, min(limits.max_spatial, 5)) for _ in range(d))
        return (batch, ch.integer(1, limits.max_channels), *spatial)
    if kind == "sequence":
        return (batch, ch.integer(1, limits.max_spatial), ch.integer(1, limits.max_width))
    return (batch, ch.integer(1, limits.max_width))


def graph_layers(
    ch: Chooser, limits: Limits, train: bool, batch: int
) -> tuple[Shape, list[LayerSpec], Shape]:
    """A graph's input shape, its nodes, and its output shape (module doc)."""
    input_shape = _input_shape(ch, limits, batch)
    g = _Graph(input_shape, train, limits)
    at = -1
    if ch.boolean(0.5):  # a stem that sets the width the motifs work at
        stem = _change(ch, g, at, ch.integer(2, max(2, limits.max_channels)))
        at = stem if stem is not None else at
    names, drawn = list(MOTIFS), 0
    for _ in range(ch.integer(1, 3)):
        name = ch.choice(names)
        before = len(g.layers)
        end = MOTIFS[name](ch, g, at)
        if end is None:  # drop the motif's nodes: nothing later reads them
            del g.layers[before:]
            g.shapes = {k: v for k, v in g.shapes.items() if k < before}
            continue
        at, drawn = end, drawn + 1
        if len(g.shapes[at]) < 2:
            break
    if not drawn:  # nothing fitted: a residual Linear always does
        width = g.shapes[at][-1]
        end = g.node("Linear", [at], in_features=width, out_features=width)
        if end is not None:
            g.node(Op.ADD.value, [at, end])
    return input_shape, g.layers, g.shapes[len(g.layers) - 1]
