"""Random valid ``NetworkSpec``s, from a NumPy Generator or (through ``strategies``) hypothesis.

One table, ``FAMILIES``, says which layers a family can put after a given shape;
each entry proposes one ``LayerSpec`` through a :class:`Chooser`, the small
interface that wraps either ``numpy.random.Generator`` (``random_spec``) or
hypothesis's ``data.draw`` (``strategies.network_specs``, which then shrinks
toward fewer layers and smaller shapes). A family only proposes layer types
that exist in ``reference.nn`` right now, so the generator grows as the
reference does. Every proposal is checked by running the reference layer on
zeros of the current shape; one that does not fit is dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .activations import propose_activation
from .chooser import (
    Chooser,
    Limits,
    RngChooser,
    _dropout_supported,
    _ref_class,
    _spec,
    available,
)
from .fits import _has_parameters, _next_shape, _norm_group_size
from .heads import LOSSES, propose_optimizer, propose_sparse_adam
from .known_bugs import torch_bug
from .proposals import propose_norm_extra, propose_padding, propose_resample, propose_shuffle
from .sequence import per_step_head, propose_sequence
from .spec import (
    UNIMPOSED_TRAINING_DRAWS,
    LayerSpec,
    NetworkSpec,
    _accepts,
)

__all__ = [
    "Chooser",
    "RngChooser",
    "Limits",
    "FAMILIES",
    "GRAPH",
    "ALL_FAMILIES",
    "random_spec",
    "build_spec",
    "available",
    "LOSSES",
]


def _dropout(ch: Chooser, name: str) -> LayerSpec | None:
    if not available(name):
        return None
    return _spec(ch, name, p=ch.choice([0.5, 0.0, 0.2, ch.real(0.05, 0.9)]))


# -- dense: (N, F) and (N, L, F) --------------------------------------------
def propose_dense(ch: Chooser, shape: tuple[int, ...], limits: Limits) -> LayerSpec | None:
    kind = ch.choice(
        ["linear", "activation", "activation", "norm", "dropout", "flatten", "norm_extra"]
    )
    if kind == "norm_extra":
        return propose_norm_extra(ch, shape)
    if kind == "linear" or not available("Linear"):
        return _spec(
            ch,
            "Linear",
            in_features=shape[-1],
            out_features=ch.integer(1, limits.max_width),
            bias=not ch.boolean(0.2),
        )
    if kind == "norm":
        if ch.boolean() and available("LayerNorm"):
            normalized = shape[-1] if ch.boolean(0.7) else tuple(shape[1:])
            return _spec(
                ch,
                "LayerNorm",
                normalized_shape=normalized,
                elementwise_affine=not ch.boolean(0.2),
                bias=not ch.boolean(0.2),
            )
        if len(shape) in (2, 3) and available("BatchNorm1d"):
            return _batchnorm(ch, "BatchNorm1d", shape[1])
        return None
    if kind == "dropout" and limits.dropout:
        return _dropout(ch, ch.choice(["Dropout", "Dropout", "AlphaDropout"]))
    if kind == "flatten" and len(shape) > 2:
        return _spec(ch, "Flatten")
    return propose_activation(ch, shape)


def _batchnorm(ch: Chooser, name: str, features: int) -> LayerSpec | None:
    momentum = ch.choice([0.1, None, ch.real(0.01, 0.9)])
    return _spec(
        ch,
        name,
        num_features=features,
        momentum=momentum,
        affine=not ch.boolean(0.2),
        track_running_stats=not ch.boolean(0.2),
    )


# -- conv: (N, C, L) and (N, C, H, W) ---------------------------------------
def _size(ch: Chooser, d: int, lo: int, hi: int) -> int | tuple[int, ...]:
    """An int, or (for 2d and 3d, sometimes) a per-dimension tuple."""
    if d >= 2 and ch.boolean(0.3):
        return tuple(ch.integer(lo, hi) for _ in range(d))
    return ch.integer(lo, hi)


def propose_conv(ch: Chooser, shape: tuple[int, ...], limits: Limits) -> LayerSpec | None:
    if len(shape) not in (3, 4, 5):
        return None
    d = len(shape) - 2
    channels, spatial = shape[1], min(shape[2:])
    kind = ch.choice(
        [
            "conv",
            "activation",
            "pool",
            "conv",
            "norm",
            "transpose",
            "adaptive",
            "dropout",
            "flatten",
            "pad",
            "shuffle",
            "norm_extra",
            "resample",
        ]
    )
    if kind == "conv":
        out = ch.integer(1, limits.max_channels)
        groups = ch.choice([g for g in (1, 2, 3) if channels % g == 0 and out % g == 0])
        kernel = _size(ch, d, 1, max(1, min(3, spatial)))
        padding: Any = _size(ch, d, 0, 1)
        stride = 1 if ch.boolean(0.6) else _size(ch, d, 1, 2)
        if stride == 1 and ch.boolean(0.2):
            padding = ch.choice(["same", "valid"])
        mode = ch.choice(["zeros", "zeros", "reflect", "replicate", "circular"])
        return _spec(
            ch,
            f"Conv{d}d",
            in_channels=channels,
            out_channels=out,
            kernel_size=kernel,
            stride=stride,
            padding=padding,
            dilation=ch.choice([1, 1, 2]),
            groups=groups,
            bias=not ch.boolean(0.2),
            padding_mode=mode,
        )
    if kind == "transpose":
        out = ch.integer(1, limits.max_channels)
        groups = ch.choice([g for g in (1, 2) if channels % g == 0 and out % g == 0])
        stride = ch.integer(1, 2)
        dilation = ch.choice([1, 1, 2])
        return _spec(
            ch,
            f"ConvTranspose{d}d",
            in_channels=channels,
            out_channels=out,
            kernel_size=ch.integer(1, 3),
            stride=stride,
            padding=ch.integer(0, 1),
            output_padding=ch.integer(0, max(stride, dilation) - 1),
            groups=groups,
            bias=not ch.boolean(0.2),
            dilation=dilation,
        )
    if kind == "pool":
        kernel = ch.integer(1, max(1, min(3, spatial)))
        stride = ch.choice([None, 1, 2])
        padding = ch.integer(0, kernel // 2)
        if ch.boolean():
            # a dilated window with padding can read only padding: a -inf output that
            # turns the rest of the network into nan (and torch then sends its gradient
            # into the next channel: pinned in tests/reference/test_pooling.py)
            return _spec(
                ch,
                f"MaxPool{d}d",
                kernel_size=kernel,
                stride=stride,
                padding=padding,
                dilation=ch.choice([1, 1, 2]) if padding == 0 else 1,
                ceil_mode=ch.boolean(0.3),
            )
        return _spec(
            ch,
            f"AvgPool{d}d",
            kernel_size=kernel,
            stride=stride,
            padding=padding,
            ceil_mode=ch.boolean(0.3),
            count_include_pad=not ch.boolean(0.3),
        )
    if kind == "adaptive":
        name = ch.choice([f"AdaptiveAvgPool{d}d", f"AdaptiveMaxPool{d}d"])
        return _spec(ch, name, output_size=_size(ch, d, 1, limits.max_spatial))
    if kind == "norm":
        which = ch.choice(["batch", "group", "instance"])
        if which == "batch":
            return _batchnorm(ch, f"BatchNorm{d}d", channels)
        if which == "group":
            groups = ch.choice([g for g in (1, 2, 3, channels) if channels % g == 0])
            return _spec(
                ch,
                "GroupNorm",
                num_groups=groups,
                num_channels=channels,
                affine=not ch.boolean(0.2),
            )
        return _spec(
            ch,
            f"InstanceNorm{d}d",
            num_features=channels,
            affine=ch.boolean(),
            track_running_stats=ch.boolean(0.3),
        )
    if kind == "dropout" and limits.dropout:
        return _dropout(
            ch, ch.choice(["Dropout", f"Dropout{d}d", "AlphaDropout", "FeatureAlphaDropout"])
        )
    if kind == "flatten":
        return _spec(ch, "Flatten")
    if kind in EXTRAS:
        return EXTRAS[kind](ch, shape)
    return propose_activation(ch, shape)


# the conv family's shape-changing extras (harness.proposals)
EXTRAS = {
    "pad": propose_padding,
    "shuffle": propose_shuffle,
    "norm_extra": propose_norm_extra,
    "resample": propose_resample,
}


# -- embedding: an index input, then dense layers on (N, L, D) ----------------
def _embedding(ch: Chooser, index_high: int, limits: Limits) -> LayerSpec:
    """The family's first layer: an Embedding (``(N, L) -> (N, L, D)``) or, sometimes, an
    EmbeddingBag that reduces each row of indices to one vector (``(N, L) -> (N, D)``)."""
    dim = ch.integer(1, limits.max_width)
    if available("EmbeddingBag") and "EmbeddingBag" not in limits.exclude and ch.boolean(0.3):
        bag = _spec(
            ch,
            "EmbeddingBag",
            num_embeddings=index_high,
            embedding_dim=dim,
            mode=ch.choice(["mean", "sum", "max"]),
            padding_idx=ch.choice([None, 0]),
        )
        if bag is not None:
            return bag
    first = _spec(
        ch, "Embedding", num_embeddings=index_high, embedding_dim=dim,
        padding_idx=ch.choice([None, 0]),
    )  # fmt: skip
    assert first is not None
    return first


def propose_embedding(ch: Chooser, shape: tuple[int, ...], limits: Limits) -> LayerSpec | None:
    return propose_dense(ch, shape, limits)


FAMILIES: dict[str, Callable[[Chooser, tuple[int, ...], Limits], LayerSpec | None]] = {
    "dense": propose_dense,
    "conv": propose_conv,
    "embedding": propose_embedding,
    "sequence": propose_sequence,
}
# graph-shaped networks (harness.graph_generate): a family of their own, and 1 in
# GRAPH_ODDS + 1 default draws
GRAPH = "graph"
GRAPH_ODDS = 6
ALL_FAMILIES = (*FAMILIES, GRAPH)  # what --families may name
# the class a family needs before it is offered at all
FAMILY_NEEDS = {
    "dense": "Linear",
    "conv": "Conv1d",
    "embedding": "Embedding",
    "sequence": "LSTM",
    GRAPH: "Linear",
}


# -- assembling a spec -----------------------------------------------------------
def build_spec(
    ch: Chooser, limits: Limits | None = None, seed: int | None = None, **overrides: Any
) -> NetworkSpec:
    """A valid spec from the choices ``ch`` makes (shared by ``random_spec`` and hypothesis)."""
    limits = limits or Limits(**overrides)
    families = [
        f
        for f in (limits.families or tuple(FAMILIES))
        if (f in FAMILIES or f == GRAPH) and available(FAMILY_NEEDS[f])
    ]
    if not families:
        families = ["dense"]
    family = ch.choice(families)
    train = ch.boolean(0.8)
    if not _dropout_supported():
        limits.dropout = False
    batch = ch.integer(1, limits.max_batch)
    n_layers = ch.integer(1, limits.max_layers)
    layers: list[LayerSpec] = []
    index_high = None
    shape: tuple[int, ...]
    if family == GRAPH:  # a graph-shaped network (harness.graph_generate)
        from .graph_generate import graph_layers

        input_shape, layers, out_shape = graph_layers(ch, limits, train, batch)
        n_layers, shape = len(layers), out_shape
    elif family == "conv":
        d = ch.integer(1, max(n for n in (1, 2, 3) if available(f"Conv{n}d")))
        # a volume's side is kept small: its cube must fit max_features with channels
        side = limits.max_spatial if d < 3 else max(1, min(limits.max_spatial, 4))
        spatial = tuple(ch.integer(1, side) for _ in range(d))
        shape = (batch, ch.integer(1, limits.max_channels), *spatial)
    elif family == "embedding" or (family == "sequence" and ch.boolean(0.3)):
        index_high = ch.integer(2, limits.max_width)
        shape = (batch, ch.integer(1, limits.max_spatial))
    elif family == "sequence":
        shape = (batch, ch.integer(1, limits.max_spatial), ch.integer(1, limits.max_width))
    else:
        shape = (batch, ch.integer(1, limits.max_width))
    if family != GRAPH:
        input_shape = shape

    if index_high is not None:
        first = (
            _embedding(ch, index_high, limits)
            if family == "embedding"
            else _table(ch, index_high, limits)
        )
        layers.append(first)
        shape = _next_shape(first, shape, train, index_input=True) or shape
    propose = FAMILIES.get(family, propose_dense)
    for _ in range(n_layers - len(layers)):
        layer = propose(ch, shape, limits) if len(shape) > 2 or family != "conv" else None
        if layer is None:
            layer = propose_dense(ch, shape, limits)
        if layer is None or layer.type in limits.exclude:
            continue
        if train and layer.type in UNIMPOSED_TRAINING_DRAWS:
            continue
        if torch_bug(layer.type, layer.kwargs, shape) is not None:
            continue  # torch's backward is wrong there, in every dtype (harness.known_bugs)
        if _norm_group_size(layer, shape) < 3:
            # one value normalizes to rounding noise / sqrt(eps); two normalize to +-1
            # whatever they are, so the gradient below is 0 in the math (rounding noise)
            continue
        new_shape = _next_shape(layer, shape, train)
        if new_shape is None or int(np.prod(new_shape[1:])) > limits.max_features or 0 in new_shape:
            continue
        layers.append(layer)
        shape = new_shape

    if not layers:  # every proposal was rejected: a Linear always fits
        layers.append(
            LayerSpec(
                "Linear",
                {"in_features": shape[-1], "out_features": ch.integer(1, limits.max_width)},
            )
        )
        shape = (*shape[:-1], layers[-1].kwargs["out_features"])

    # the loss, and the head it needs
    losses = [n for n in (limits.losses or tuple(LOSSES)) if n in LOSSES and available(n)]
    if not losses:
        losses = ["MSELoss"]
    loss_name = ch.choice(losses)
    make, needs_classes = LOSSES[loss_name]
    classes = shape[-1] if len(shape) == 2 else 0
    if needs_classes and family == "sequence" and len(shape) == 3 and ch.boolean(0.5):
        if loss_name in ("CrossEntropyLoss", "NLLLoss"):  # a class per time step: (N, C, L)
            head = per_step_head(shape, ch.integer(2, max(2, limits.max_width // 2)))
            layers += head
            shape = (shape[0], head[-1].kwargs["unflattened_size"][0], shape[1])
            needs_classes, classes = False, shape[1]
    if needs_classes:
        if len(shape) > 2:
            layers.append(LayerSpec("Flatten", {}))
            shape = (shape[0], int(np.prod(shape[1:])))
        if len(shape) != 2 or shape[1] < 2 or ch.boolean(0.5) or loss_name in ("NLLLoss",):
            classes = ch.integer(2, max(2, limits.max_width))
            layers.append(
                LayerSpec(
                    "Linear", {"in_features": shape[1], "out_features": classes, "bias": True}
                )
            )
            shape = (shape[0], classes)
        classes = shape[1]
    loss, target, final = make(ch, classes)
    if final is not None:
        layers.append(LayerSpec(final, {"dim": 1} if final == "LogSoftmax" else {}))
    loss = LayerSpec(
        loss.type,
        {
            k: v
            for k, v in loss.kwargs.items()
            if v is not None and _accepts(_ref_class(loss.type), k)
        },
    )
    optimizer = propose_optimizer(ch, limits)
    if layers[0].type == "Embedding" and not _has_parameters(layers[1:]) and ch.boolean(0.4):
        # the embedding's is the only gradient: make it sparse, for SparseAdam's row updates
        sparse = propose_sparse_adam(ch, limits)
        if sparse is not None:
            layers[0] = LayerSpec("Embedding", {**layers[0].kwargs, "sparse": True})
            optimizer = sparse
    if optimizer is not None and not _has_parameters(layers):
        optimizer = None  # torch refuses an optimizer over no parameters
    steps = ch.integer(1, limits.max_steps) if optimizer is not None else 0
    spec = NetworkSpec(
        input_shape=input_shape,
        layers=layers,
        loss=loss,
        target=target,
        optimizer=optimizer,
        steps=steps,
        train=train,
        seed=seed if seed is not None else ch.integer(0, 2**31 - 1),
        input_kind="index" if index_high is not None else "float",
        index_high=index_high,
    )
    # a default draw is now and then a graph instead (drawn last: the chain draws stay)
    if limits.families is None and limits.graphs and ch.integer(0, GRAPH_ODDS) == GRAPH_ODDS:
        return build_spec(ch, dataclasses.replace(limits, families=(GRAPH,)), seed)
    return spec


def _table(ch: Chooser, index_high: int, limits: Limits) -> LayerSpec:
    """A sequence of tokens' first layer: an Embedding, ``(N, L) -> (N, L, D)``."""
    dim = ch.integer(1, limits.max_width)
    return LayerSpec("Embedding", {"num_embeddings": index_high, "embedding_dim": dim})


def random_spec(rng: np.random.Generator | int | None = None, **limits: Any) -> NetworkSpec:
    """A random valid spec. ``limits``: see :class:`Limits` (max_layers, max_width, ...)."""
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return build_spec(RngChooser(rng), Limits(**limits))
