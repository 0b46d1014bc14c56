"""``NetworkSpec``: a whole test case as plain data, and what it implies (shapes).

A spec names layers by their ``torch.nn`` class name with constructor keyword
arguments; ``reference.nn`` has the same names and arguments, so each backend
builds a layer with ``getattr(module, spec.type)(**spec.kwargs)``. Weights,
inputs, targets and upstream gradients are all drawn from ``seed``, so the spec
alone reproduces a case, and it survives a JSON round trip (tuples included).
"""

from __future__ import annotations

import difflib
import functools
import inspect
import json
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LayerSpec",
    "NetworkSpec",
    "SpecError",
    "SpecFileError",
    "TARGET_KINDS",
    "TENSOR_KWARGS",
    "build_reference_layers",
    "describe",
    "infer_shapes",
    "layer_kwargs",
    "split_output",
]

# Constructor arguments that torch wants as a tensor (a loss's class weights);
# the spec keeps them as lists of floats and the backends turn them into arrays.
TENSOR_KWARGS = ("weight", "pos_weight")

DROPOUT_TYPES = (
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
)  # fmt: skip
# layers that draw random numbers in evaluation too: their windows come from torch.rand
ALWAYS_RANDOM_TYPES = ("FractionalMaxPool2d", "FractionalMaxPool3d")
# every layer whose output comes from a random draw in some mode: nothing to referee there
RANDOM_TYPES = DROPOUT_TYPES + ALWAYS_RANDOM_TYPES
# the reference module's attribute that takes torch's draw for its next forward
# (harness.dropout_masks reads the draw from torch)
DRAW_ATTRIBUTE = {
    **dict.fromkeys(DROPOUT_TYPES, "mask"),
    **dict.fromkeys(ALWAYS_RANDOM_TYPES, "random_samples"),
}


# the layers that take an index input (the embedding family's first layer)
INDEX_LAYERS = ("Embedding", "EmbeddingBag")

# layers whose training draws cannot be imposed, so the generator puts them in eval-mode
# cases only: torch's RReLU draws one slope per non-positive element, in order, so which
# draw lands where depends on the signs of its input, and those may differ between
# torch's float32 input and the reference's
UNIMPOSED_TRAINING_DRAWS = ("RReLU",)


def split_output(result: Any) -> tuple[Any, tuple[Any, ...]]:
    """A layer's result as the chain sees it: the tensor passed on, and the rest, flat.

    A recurrent layer returns ``(output, h_n)`` (the LSTM ``(output, (h_n, c_n))``): the
    chain passes ``output`` on and traces the final states beside it, named by the
    reference class's ``extra_outputs``.
    """
    if not isinstance(result, tuple):
        return result, ()
    flat: list[Any] = []
    for part in result[1:]:
        flat.extend(part if isinstance(part, tuple) else (part,))
    return result[0], tuple(flat)


def extra_output_names(layer_type: str) -> tuple[str, ...]:
    """The names of a layer's traced extras (``('h_n', 'c_n')`` for the LSTM)."""
    return tuple(getattr(reference_class(layer_type), "extra_outputs", ()))


def draws_random(layer_type: str, train: bool) -> bool:
    """Whether a layer of this type draws random numbers in this mode, so that torch's draw
    must be imposed on the reference (dropout in training; fractional pooling always)."""
    return layer_type in ALWAYS_RANDOM_TYPES or (train and layer_type in DROPOUT_TYPES)


# what ``target['kind']`` may be (harness.backends draws each)
TARGET_KINDS = tuple(
    "regression class_index probabilities log_probabilities unit_interval binary sign counts "
    "label_lists".split()
)


class SpecError(ValueError):
    """A spec that cannot be built or run: a layer that cannot follow its input's shape."""


class SpecFileError(ValueError):
    """A spec file that cannot be read, parsed, or built; ``str()`` is one line,
    ``<path>: <problem>``, for a command line to print as it is."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = re.sub(r"\s*\n\s*", " ", str(problem)).strip()
        super().__init__(f"{self.path}: {self.problem}")


@dataclass
class LayerSpec:
    """One layer (or loss, or optimizer): ``torch.nn`` class name and constructor kwargs."""

    type: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    # the earlier nodes this one takes (-1: the network input); None: the previous node
    # (a chain). Graph-shaped networks: harness.graph
    inputs: list[int] | None = None

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_short(v)}" for k, v in self.kwargs.items())
        fed = "" if self.inputs is None else f"<-{list(self.inputs)}"
        return f"{self.type}({args}){fed}"

    def to_dict(self) -> dict[str, Any]:
        """``{"type", "kwargs"}``, and ``"inputs"`` only when set (a chain's file is as it
        always was)."""
        out = {"type": self.type, "kwargs": _encode(self.kwargs)}
        if self.inputs is not None:
            out["inputs"] = list(self.inputs)
        return out


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
            "layers": [layer.to_dict() for layer in self.layers],
            "loss": self.loss.to_dict(),
            "target": _encode(self.target),
            "optimizer": None if self.optimizer is None else self.optimizer.to_dict(),
            "steps": self.steps,
            "train": self.train,
            "seed": self.seed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NetworkSpec:
        """The spec of a dict as :meth:`to_dict` writes it. Checks its structure (keys and
        the type of each value) and raises :class:`SpecError` naming the key, or the layer,
        and what was expected (type names: ``harness.spec_files.check_known_types``)."""
        if not isinstance(data, dict):
            raise SpecError(f"a spec is a JSON object ({_SPEC_HINT}), found {_found(data)}")
        data = _decode(data)
        _check_keys("", data, ("input_shape", "layers", "loss"), _SPEC_KEYS, _SPEC_HINT)
        _check_values(data)
        opt = data.get("optimizer")
        return cls(
            input_shape=tuple(data["input_shape"]),
            layers=[
                _layer_spec(f"layer {i}", layer, node=i) for i, layer in enumerate(data["layers"])
            ],
            loss=_layer_spec("loss", data["loss"]),
            target=data.get("target", {"kind": "regression"}),
            optimizer=None if opt is None else _layer_spec("optimizer", opt),
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


# -- checking a dict's structure (from_dict) ---------------------------------
_SPEC_KEYS = tuple(f.name for f in fields(NetworkSpec))
_SPEC_HINT = "a spec needs input_shape, layers and loss"
_LAYER_HINT = 'each {"type": <class name>, "kwargs": {...}}'


def _found(value: Any) -> str:
    """``value`` as JSON names it, shortened: ``a string '3'``, ``an array [3, -4]``."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    kinds = ((dict, "an object"), ((list, tuple), "an array"), (str, "a string"))
    kind = next((name for types, name in kinds if isinstance(value, types)), "a number")
    text = json.dumps(value, default=str) if kind != "a string" else repr(value)
    return f"{kind} {text if len(text) <= 60 else text[:57] + '...'}"


def _did_you_mean(name: Any, options: Any) -> str:
    """``did you mean 'ReLU'?`` for the closest option, by difflib, case aside; or ``''``."""
    lower = {option.lower(): option for option in options}
    found = difflib.get_close_matches(name.lower(), lower, n=1) if isinstance(name, str) else []
    return f"did you mean {lower[found[0]]!r}?" if found else ""


def _check_keys(where: str, data: dict, required: tuple, allowed: tuple, hint: str) -> None:
    prefix = f"{where}: " if where else ""
    for key in required:
        if key not in data:
            raise SpecError(f"{prefix}missing key {key!r} ({hint})")
    for key in data:
        if key not in allowed:
            guess = _did_you_mean(key, allowed)
            raise SpecError(
                f"{prefix}unknown key {key!r} ({guess + ' ' if guess else ''}"
                f"the keys are {', '.join(allowed)})"
            )


def _is_int(value: Any, least: int) -> bool:
    integer = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    return integer and int(value) >= least


_VALUE_CHECKS: tuple[tuple[str, Any, Any, str], ...] = (
    (
        "input_shape",
        None,
        lambda v: isinstance(v, (list, tuple)) and len(v) > 0 and all(_is_int(s, 1) for s in v),
        "a list of positive integers, batch first",
    ),
    ("layers", None, lambda v: isinstance(v, list), "a list of layers, " + _LAYER_HINT),
    ("target", {}, lambda v: isinstance(v, dict), 'an object like {"kind": "regression"}'),
    ("steps", 3, lambda v: _is_int(v, 0), "a non-negative integer"),
    ("seed", 0, lambda v: _is_int(v, 0), "a non-negative integer"),
    ("train", True, lambda v: isinstance(v, bool), "true or false"),
    ("index_high", None, lambda v: v is None or _is_int(v, 1), "a positive integer or null"),
)


def _check_values(data: dict) -> None:
    """Each key's value is of the type it needs (the layers' are checked one by one)."""
    for key, default, ok, expected in _VALUE_CHECKS:
        value = data.get(key, default)
        if not ok(value):
            raise SpecError(f"{key} must be {expected}, found {_found(value)}")
    kind = data.get("target", {}).get("kind", "regression")
    if kind not in TARGET_KINDS:
        guess = _did_you_mean(kind, TARGET_KINDS)
        raise SpecError(
            f"target: unknown kind {kind!r} (one of {', '.join(TARGET_KINDS)}"
            f"{'; ' + guess if guess else ''})"
        )


def _layer_spec(where: str, value: Any, node: int | None = None) -> LayerSpec:
    """A layer, the loss or the optimizer: ``{"type": name, "kwargs": {...}}``; a layer
    (``node``: its index) may name its ``"inputs"`` (``harness.graph.check_inputs``)."""
    from .graph import check_inputs

    if not isinstance(value, dict):
        raise SpecError(f"{where}: expected an object {_LAYER_HINT[5:]}, found {_found(value)}")
    allowed = ("type", "kwargs") if node is None else ("type", "kwargs", "inputs")
    _check_keys(where, value, ("type",), allowed, _LAYER_HINT[5:])
    if not isinstance(value["type"], str):
        raise SpecError(
            f"{where}: type must be a class name (a string), found {_found(value['type'])}"
        )
    kwargs = value.get("kwargs", {})
    if not isinstance(kwargs, dict):
        raise SpecError(
            f"{where}: kwargs must be an object of constructor arguments, found {_found(kwargs)}"
        )
    inputs = None if node is None else check_inputs(where, node, value.get("inputs"))
    return LayerSpec(value["type"], kwargs, inputs)


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


def reference_class(name: str) -> Any:
    import reference.nn as rnn

    from .graph import is_op, op_class

    if is_op(name):
        return op_class(name)
    cls = getattr(rnn, name, None)
    if cls is None:
        raise SpecError(f"reference.nn has no {name}; the spec names a layer not implemented yet")
    return cls


def build_reference_layers(
    spec: NetworkSpec, rng: np.random.Generator | None = None, dtype: Any = np.float64
) -> list[Any]:
    """The spec's layers as reference modules in ``dtype``; random init from ``rng``."""
    from .graph import RECURRENT_TYPES, reference_stateful

    layers = []
    for index, layer in enumerate(spec.layers):
        cls = reference_class(layer.type)
        if layer.type in RECURRENT_TYPES:  # its initial state may come in as inputs
            cls = reference_stateful(cls)
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
    from .graph import forward_zeros

    return [tuple(np.shape(o)) for o in forward_zeros(spec, layers, x)]


def describe(spec: NetworkSpec) -> str:
    """An architecture table: index, class, kwargs, output shape; then loss and optimizer."""
    try:
        shapes: list[Any] = infer_shapes(spec)
        problem = ""
    except SpecError as exc:
        shapes, problem = [], str(exc)
    from .graph import input_nodes, is_graph

    graph = is_graph(spec)  # a graph's table has a column of each node's inputs
    rows = [
        ("#", "layer", *(("inputs",) if graph else ()), "arguments", "output shape"),
        (
            "",
            "input",
            *(("",) if graph else ()),
            spec.input_kind + (f" < {spec.index_high}" if spec.index_high else ""),
            str(spec.input_shape),
        ),
    ]
    for index, layer in enumerate(spec.layers):
        shape = str(shapes[index]) if index < len(shapes) else "?"
        args = ", ".join(f"{k}={_short(v)}" for k, v in layer.kwargs.items())
        fed = ", ".join("input" if j < 0 else str(j) for j in input_nodes(spec, index))
        rows.append((str(index), layer.type, *((fed,) if graph else ()), args, shape))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"loss:      {spec.loss}   target: {spec.target}")
    if spec.optimizer is not None:
        lines.append(f"optimizer: {spec.optimizer} x {spec.steps} steps")
    lines.append(f"mode:      {'train' if spec.train else 'eval'}   seed: {spec.seed}")
    if problem:
        lines.append(f"INVALID: {problem}")
    return "\n".join(lines)
