"""``NetworkSpec``: a whole test case as plain data, and what it implies (shapes).

A spec names layers by their ``torch.nn`` class name with constructor keyword
arguments; ``reference.nn`` has the same names and arguments, so each backend
builds a layer with ``getattr(module, spec.type)(**spec.kwargs)``. Weights,
inputs, targets and upstream gradients are all drawn from ``seed``, so the spec
alone reproduces a case, and it survives a JSON round trip (tuples included).
"""

from __future__ import annotations

import functools
import inspect
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "LayerSpec",
    "NetworkSpec",
    "SpecError",
    "TENSOR_KWARGS",
    "build_reference_layers",
    "describe",
    "infer_shapes",
    "layer_kwargs",
]

# Constructor arguments that torch wants as a tensor (a loss's class weights);
# the spec keeps them as lists of floats and the backends turn them into arrays.
TENSOR_KWARGS = ("weight", "pos_weight")

DROPOUT_TYPES = ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout")


class SpecError(ValueError):
    """A spec that cannot be built or run: a layer that cannot follow its input's shape."""


@dataclass
class LayerSpec:
    """One layer (or loss, or optimizer): ``torch.nn`` class name and constructor kwargs."""

    type: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.kwargs.items())
        return f"{self.type}({args})"


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and len(value) > 4:
        return "[" + ", ".join(_short(v) for v in value[:3]) + f", ... ({len(value)})]"
    if isinstance(value, list):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return repr(value)


@dataclass
class NetworkSpec:
    """A network, its data, loss and training: everything a case needs.

    ``input_shape`` includes the batch. ``input_kind`` is ``'float'`` (standard
    normal inputs) or ``'index'`` (integers in ``[0, index_high)`` for a network
    that starts with ``Embedding``). ``target`` describes the loss's target:
    ``{'kind': 'class_index', 'num_classes': C, 'ignore_fraction': f}``,
    ``'probabilities'`` (softmax along ``dim``), ``'unit_interval'``, ``'binary'``,
    ``'regression'``, ``'log_probabilities'``. ``optimizer`` is ``None`` for a
    case without training steps; otherwise ``steps`` optimizer steps run.
    """

    input_shape: tuple[int, ...]
    layers: list[LayerSpec]
    loss: LayerSpec
    target: dict[str, Any] = field(default_factory=lambda: {"kind": "regression"})
    optimizer: LayerSpec | None = None
    steps: int = 3
    train: bool = True
    seed: int = 0
    input_kind: str = "float"
    index_high: int | None = None

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        if self.input_kind not in ("float", "index"):
            raise SpecError(f"input_kind must be 'float' or 'index', got {self.input_kind!r}")
        if self.input_kind == "index" and not self.index_high:
            raise SpecError("an 'index' input needs index_high (the embedding's num_embeddings)")

    # -- JSON ---------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "input_shape": list(self.input_shape),
            "input_kind": self.input_kind,
            "index_high": self.index_high,
            "layers": [_encode(vars(layer)) for layer in self.layers],
            "loss": _encode(vars(self.loss)),
            "target": _encode(self.target),
            "optimizer": None if self.optimizer is None else _encode(vars(self.optimizer)),
            "steps": self.steps,
            "train": self.train,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        data = _decode(data)
        opt = data.get("optimizer")
        return cls(
            input_shape=tuple(data["input_shape"]),
            layers=[LayerSpec(**layer) for layer in data["layers"]],
            loss=LayerSpec(**data["loss"]),
            target=data.get("target", {"kind": "regression"}),
            optimizer=None if opt is None else LayerSpec(**opt),
            steps=data.get("steps", 3),
            train=data.get("train", True),
            seed=data.get("seed", 0),
            input_kind=data.get("input_kind", "float"),
            index_high=data.get("index_high"),
        )

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_json(cls, text: str) -> NetworkSpec:
        return cls.from_dict(json.loads(text))

    def __str__(self) -> str:
        layers = " -> ".join(str(layer) for layer in self.layers)
        opt = f", {self.optimizer} x{self.steps}" if self.optimizer else ""
        return f"{self.input_shape} -> {layers} -> {self.loss}{opt} (seed {self.seed})"


# JSON has no tuples; kernel_size=(2, 3) must come back a tuple, since torch
# stores it as given and the repro prints it. Tag them.
def _encode(value: Any) -> Any:
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


# -- building reference layers ----------------------------------------------
@functools.cache
def _accepts(cls: type, name: str) -> bool:
    try:
        return name in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return False


def layer_kwargs(layer: LayerSpec, dtype: Any) -> dict[str, Any]:
    """The kwargs with tensor-valued arguments (a loss's ``weight``) as arrays of ``dtype``."""
    kwargs = dict(layer.kwargs)
    for key in TENSOR_KWARGS:
        if isinstance(kwargs.get(key), list):
            kwargs[key] = np.asarray(kwargs[key], dtype=dtype)
    return kwargs


def reference_class(name: str) -> type:
    import reference.nn as rnn

    cls = getattr(rnn, name, None)
    if cls is None:
        raise SpecError(f"reference.nn has no {name}; the spec names a layer not implemented yet")
    return cls


def build_reference_layers(
    spec: NetworkSpec, rng: np.random.Generator | None = None, dtype: Any = np.float64
) -> list[Any]:
    """The spec's layers as reference modules in ``dtype``; random init from ``rng``."""
    layers = []
    for index, layer in enumerate(spec.layers):
        cls = reference_class(layer.type)
        kwargs = layer_kwargs(layer, dtype)
        if _accepts(cls, "rng"):
            kwargs["rng"] = rng if rng is not None else np.random.default_rng(spec.seed)
        if _accepts(cls, "dtype"):
            kwargs["dtype"] = dtype
        try:
            module = cls(**kwargs)
        except Exception as exc:  # noqa: BLE001 - any constructor complaint is a bad spec
            raise SpecError(f"layer {index} ({layer}) cannot be built: {exc}") from exc
        module.train(spec.train)
        layers.append(module)
    return layers


def infer_shapes(spec: NetworkSpec) -> list[tuple[int, ...]]:
    """Each layer's output shape, found by running the reference on zeros in float64.

    Raises :class:`SpecError` naming the first layer that cannot take its input,
    the shape it received and the reason.
    """
    layers = build_reference_layers(spec)
    if spec.input_kind == "index":
        x: np.ndarray = np.zeros(spec.input_shape, dtype=np.int64)
    else:
        x = np.zeros(spec.input_shape, dtype=np.float64)
    shapes = []
    for index, (layer, module) in enumerate(zip(spec.layers, layers)):
        if layer.type in DROPOUT_TYPES:
            module.eval()  # a mask is not needed to know the shape
        try:
            with np.errstate(all="ignore"):
                x = module(x)
        except Exception as exc:  # noqa: BLE001 - report any failure as a bad chain
            raise SpecError(
                f"layer {index} ({layer}) cannot follow shape {tuple(np.shape(x))}: {exc}"
            ) from exc
        shapes.append(tuple(np.shape(x)))
    return shapes


def describe(spec: NetworkSpec) -> str:
    """An architecture table: index, class, kwargs, output shape; then loss and optimizer."""
    try:
        shapes: list[Any] = infer_shapes(spec)
        problem = ""
    except SpecError as exc:
        shapes, problem = [], str(exc)
    rows = [
        ("#", "layer", "arguments", "output shape"),
        (
            "",
            "input",
            spec.input_kind + (f" < {spec.index_high}" if spec.index_high else ""),
            str(spec.input_shape),
        ),
    ]
    for index, layer in enumerate(spec.layers):
        shape = str(shapes[index]) if index < len(shapes) else "?"
        args = ", ".join(f"{k}={_short(v)}" for k, v in layer.kwargs.items())
        rows.append((str(index), layer.type, args, shape))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"loss:      {spec.loss}   target: {spec.target}")
    if spec.optimizer is not None:
        lines.append(f"optimizer: {spec.optimizer} x {spec.steps} steps")
    lines.append(f"mode:      {'train' if spec.train else 'eval'}   seed: {spec.seed}")
    if problem:
        lines.append(f"INVALID: {problem}")
    return "\n".join(lines)
