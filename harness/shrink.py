"""Shrink a failing case to a small one that still shows the same finding.

A fuzzer's failing case is a random spec: six layers, a batch of four, Adam over
three steps and a weighted cross-entropy, when the bug is one GELU. :func:`shrink`
reduces it greedily, keeping a candidate only if the caller's ``still_fails``
says it still fails; :func:`shrink_report` does so for a :class:`Report`, with
"still fails" meaning "``check`` finds the same :func:`signature`".

Every candidate is first made valid (:func:`fitted`): the arguments that depend on
a layer's input (a ``Linear``'s ``in_features``, a conv's ``in_channels``, a norm's
``num_features``, a loss's class weights) are recomputed from the shapes, as
``harness.generate`` does when it builds a spec; a candidate whose shapes still do
not work is skipped without asking ``still_fails``. The passes are deterministic;
only the time budget can cut them short.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backends import case_data
from .checking import check
from .fits import _has_parameters, _next_shape, _norm_group_size
from .graph import is_graph
from .graph_shrink import drop_candidates, graph_fitted
from .known_bugs import torch_bug
from .spec import (
    INDEX_LAYERS,
    TENSOR_KWARGS,
    LayerSpec,
    NetworkSpec,
    infer_shapes,
    layer_kwargs,
    reference_class,
)
from .verdict import Blame, Kind, Report

__all__ = ["fitted", "shrink", "shrink_report", "signature"]

# the constructor arguments that set how wide a layer's output is
WIDTH_KWARGS = ("out_features", "out_channels", "embedding_dim")
# losses whose class weights are per class along dim 1 (the others broadcast on the last dim)
CLASS_DIM_LOSSES = ("CrossEntropyLoss", "NLLLoss")
LOSS_KINDS = (Kind.LOSS.value, Kind.GRAD_OUTPUT.value)
_ERROR_CLASS = re.compile(r"^\s*(?:\[[^\]]*\]\s*)?([A-Za-z_][\w.]*)\s*:")


def signature(report: Report) -> tuple[str, ...] | None:
    """What identifies a report's finding, to tell whether a smaller case shows the same one.

    Returns
    -------
    tuple or None
        ``(kind, layer_type, blame)`` of the first mismatch (mismatches are in
        localization order, so the first is the root, not something downstream of
        it); ``("error", ExceptionClass)`` for a crash (errors and no mismatches),
        the class parsed from ``"[cpu float32] ValueError: ..."``; None when ok.
    """
    if report.mismatches:
        first = report.mismatches[0]
        return (Kind(first.kind).value, first.layer_type, Blame(first.blame).value)
    if report.errors:
        match = _ERROR_CLASS.match(report.errors[0])
        return ("error", match.group(1) if match else report.errors[0].split(":", 1)[0].strip())
    return None


# -- keeping a candidate valid --------------------------------------------------
def _fit_layer(layer: LayerSpec, shape: tuple[int, ...], index_high: int | None) -> LayerSpec:
    """``layer`` with the arguments that must match its input ``shape`` set from it."""
    kw, kind = dict(layer.kwargs), layer.type
    if kind == "Linear" and len(shape) >= 2:
        kw["in_features"] = shape[-1]
    elif "in_channels" in kw and len(shape) >= 2:
        kw["in_channels"] = shape[1]
        groups = kw.get("groups", 1)
        if shape[1] % groups or kw.get("out_channels", groups) % groups:
            kw["groups"] = 1
    elif kind.startswith(("BatchNorm", "InstanceNorm")) and len(shape) >= 2:
        kw["num_features"] = shape[1]
    elif kind == "GroupNorm" and len(shape) >= 2:
        depthwise = kw.get("num_groups") == kw.get("num_channels")
        kw["num_channels"] = shape[1]
        if depthwise or shape[1] % kw["num_groups"]:
            kw["num_groups"] = shape[1] if depthwise else 1
    elif kind == "LayerNorm":
        normalized = kw["normalized_shape"]
        if isinstance(normalized, (tuple, list)) and len(normalized) < len(shape):
            kw["normalized_shape"] = tuple(shape[len(shape) - len(normalized) :])
        elif not isinstance(normalized, (tuple, list)):
            kw["normalized_shape"] = shape[-1]
    elif kind in INDEX_LAYERS and index_high is not None:
        kw["num_embeddings"] = index_high
    return LayerSpec(kind, kw, layer.inputs)


def _fit_loss(spec: NetworkSpec, out: tuple[int, ...]) -> tuple[LayerSpec, dict[str, Any]]:
    """The loss with its per-class weights resized to the output ``out``, and its target."""
    kw, target = dict(spec.loss.kwargs), dict(spec.target)
    if len(out) < 2:
        return LayerSpec(spec.loss.type, kw), target
    classes = out[1] if spec.loss.type in CLASS_DIM_LOSSES else out[-1]
    for key in TENSOR_KWARGS:
        if isinstance(kw.get(key), list):
            kw[key] = (list(kw[key]) + [1.0] * classes)[:classes]
    if target.get("kind") == "class_index":
        target["num_classes"] = out[1]
    return LayerSpec(spec.loss.type, kw), target


def _loss_runs(spec: NetworkSpec, out: tuple[int, ...]) -> bool:
    """Whether the reference loss takes an output of shape ``out`` and the case's target."""
    try:
        target = case_data(spec).target
        loss = reference_class(spec.loss.type)(**layer_kwargs(spec.loss, np.float64))
        with np.errstate(all="ignore"):
            loss(np.zeros(out), target)
    except Exception:  # noqa: BLE001 - any complaint: the candidate is not a valid case
        return False
    return True


def fitted(spec: NetworkSpec, norm_rule: bool = True) -> NetworkSpec | None:
    """``spec`` with every input-dependent argument fixed up, or None when it cannot work.

    Walks the layers from the input, setting each layer's dependent arguments from the
    shape it receives (:func:`_fit_layer`), then the loss's weights and target and, when
    no layer has parameters any more, drops the optimizer (torch refuses an empty one).
    None when a layer cannot follow its input (``infer_shapes`` raises), an index input
    lost its ``Embedding`` (or ``EmbeddingBag``), a layer meets a known torch bug
    (``harness.known_bugs``), the loss cannot take the output, or (``norm_rule``) a
    normalization would take its statistics over fewer than 3 values: the degenerate
    case ``harness.generate`` never proposes, where the gradient is rounding noise.
    """
    if not spec.layers or (spec.input_kind == "index" and spec.layers[0].type not in INDEX_LAYERS):
        return None
    shape, layers = spec.input_shape, list[LayerSpec]()
    if is_graph(spec):  # harness.graph_shrink: each node fitted to its inputs' shapes
        walked = graph_fitted(spec, _fit_layer, norm_rule)
        if walked is None:
            return None
        layers, shape = walked
    for index, layer in enumerate(spec.layers if not is_graph(spec) else ()):
        layer = _fit_layer(layer, shape, spec.index_high if index == 0 else None)
        if norm_rule and _norm_group_size(layer, shape) < 3:
            return None
        if torch_bug(layer.type, layer.kwargs, shape) is not None:
            return None  # shrunk onto a known torch bug: not the finding being shrunk
        index_input = index == 0 and spec.input_kind == "index"
        new_shape = _next_shape(layer, shape, spec.train, index_input)
        if new_shape is None or 0 in new_shape:
            return None
        layers.append(layer)
        shape = new_shape
    optimizer, steps = spec.optimizer, spec.steps
    if optimizer is not None and not _has_parameters(layers):
        optimizer, steps = None, 0
    loss, target = _fit_loss(spec, shape)
    candidate = dataclasses.replace(
        spec, layers=layers, loss=loss, target=target, optimizer=optimizer, steps=steps
    )
    try:
        infer_shapes(candidate)
    except ValueError:  # SpecError included
        return None
    return candidate if _loss_runs(candidate, shape) else None


# -- the greedy search ------------------------------------------------------------
def _key(spec: NetworkSpec) -> str:
    return spec.to_json(indent=None)


class _Shrinker:
    """The best failing spec so far, the clock, and the verdicts already asked for."""

    def __init__(
        self, spec: NetworkSpec, still_fails: Callable[[NetworkSpec], bool], budget_s: float
    ):
        self.best, self.still_fails = spec, still_fails
        self.deadline = time.monotonic() + budget_s
        self.tried: dict[str, bool] = {}
        # hold candidates to the generator's normalization rule only if the case keeps it
        self.norm_rule = fitted(spec) is not None

    def out_of_time(self) -> bool:
        return time.monotonic() > self.deadline

    def accept(self, candidate: NetworkSpec) -> bool:
        """Make ``candidate`` the best if it is valid, new, and still fails.

        Invalid candidates cost nothing; a spec already judged is not judged again
        (``still_fails`` is assumed deterministic); an exception from ``still_fails``
        counts as "does not fail the same way".
        """
        if self.out_of_time():
            return False
        fixed = fitted(candidate, self.norm_rule)
        if fixed is None:
            return False
        key = _key(fixed)
        if key == _key(self.best):
            return False
        if key not in self.tried:
            try:
                self.tried[key] = bool(self.still_fails(fixed))
            except Exception:  # noqa: BLE001 - a candidate that breaks the caller is no repro
                self.tried[key] = False
        if self.tried[key]:
            self.best = fixed
        return self.tried[key]


def _without(spec: NetworkSpec, drop: Sequence[int]) -> NetworkSpec:
    layers = [layer for i, layer in enumerate(spec.layers) if i not in drop]
    return dataclasses.replace(spec, layers=layers)


def drop_layers(sh: _Shrinker) -> bool:
    """Pass 1: drop each layer, from the last to the first; where it cannot go alone,
    drop it with the layer before it (a ``Flatten`` and the ``Linear`` that needs it).

    Fewer layers is the biggest simplification, and going from the end means a layer
    found removable is never tried twice in one pass. Returns whether anything changed.
    """
    if is_graph(sh.best):  # a node dropped, its readers rewired (harness.graph_shrink)
        changed = False
        while not sh.out_of_time() and any(sh.accept(c) for c in drop_candidates(sh.best)):
            changed = True
        return changed
    changed, i = False, len(sh.best.layers) - 1
    while i >= 0 and not sh.out_of_time():
        i = min(i, len(sh.best.layers) - 1)
        if sh.accept(_without(sh.best, [i])) or (
            i > 0 and sh.accept(_without(sh.best, [i - 1, i]))
        ):
            changed = True
        i -= 1
    return changed


def _smaller(sh: _Shrinker, value_of: Callable[[NetworkSpec], Any], with_value, lo: int) -> bool:
    """Shrink one integer of the spec toward ``lo``: halve while it still fails, then
    decrement; stop when neither does. Returns whether it changed."""
    changed = False
    while not sh.out_of_time():
        value = value_of(sh.best)
        if not isinstance(value, int) or isinstance(value, bool) or value <= lo:
            return changed
        for candidate in dict.fromkeys((max(lo, value // 2), value - 1)):
            if sh.accept(with_value(sh.best, candidate)):
                changed = True
                break
        else:
            return changed
    return changed


def _input_dim(d: int) -> tuple[Callable, Callable]:
    def value_of(s: NetworkSpec) -> int | None:
        return s.input_shape[d] if d < len(s.input_shape) else None

    def with_value(s: NetworkSpec, v: int) -> NetworkSpec:
        return dataclasses.replace(s, input_shape=(*s.input_shape[:d], v, *s.input_shape[d + 1 :]))

    return value_of, with_value


def _layer_width(i: int, key: str) -> tuple[Callable, Callable]:
    def value_of(s: NetworkSpec) -> int | None:
        return s.layers[i].kwargs.get(key) if i < len(s.layers) else None

    def with_value(s: NetworkSpec, v: int) -> NetworkSpec:
        layers = list(s.layers)
        layers[i] = LayerSpec(layers[i].type, {**layers[i].kwargs, key: v}, layers[i].inputs)
        return dataclasses.replace(s, layers=layers)

    return value_of, with_value


def smaller_sizes(sh: _Shrinker) -> bool:
    """Pass 2: a smaller batch (down to 1), smaller input sizes (features, channels,
    spatial sizes, sequence length; down to 1), fewer embedding rows (down to 2), and
    narrower layers (``out_features``, ``out_channels``, ``embedding_dim``; down to 1).

    Small tensors make the report's numbers readable and the repro fast; the
    dependents (the next layer's ``in_features``, the loss's class weights) follow
    through :func:`fitted`. Returns whether anything changed.
    """
    changed = False
    for d in range(len(sh.best.input_shape)):
        changed |= _smaller(sh, *_input_dim(d), lo=1)
    if sh.best.input_kind == "index":
        high = (lambda s: s.index_high, lambda s, v: dataclasses.replace(s, index_high=v))
        changed |= _smaller(sh, *high, lo=2)
    for i in range(len(sh.best.layers)):
        for key in WIDTH_KWARGS:
            changed |= _smaller(sh, *_layer_width(i, key), lo=1)
    return changed


def simpler_training(sh: _Shrinker, keep_loss: bool = False) -> bool:
    """Pass 3: no optimizer at all, else fewer steps (down to 1), then plain SGD with the
    same lr; then ``MSELoss`` on a regression target (unless ``keep_loss``: the finding
    is at the loss, and another loss would not show it).

    A finding before the first step needs no training, and one in a layer needs no
    exotic loss: each removes a column of numbers from the report. Returns whether
    anything changed.
    """
    changed = False
    if sh.best.optimizer is not None:
        changed |= sh.accept(dataclasses.replace(sh.best, optimizer=None, steps=0))
    if sh.best.optimizer is not None:
        steps = (lambda s: s.steps, lambda s, v: dataclasses.replace(s, steps=v))
        changed |= _smaller(sh, *steps, lo=1)
    opt = sh.best.optimizer
    if opt is not None and (opt.type != "SGD" or set(opt.kwargs) - {"lr"}):
        sgd = LayerSpec("SGD", {"lr": opt.kwargs.get("lr", 0.01)})
        changed |= sh.accept(dataclasses.replace(sh.best, optimizer=sgd))
    loss = sh.best.loss
    plain = loss.type == "MSELoss" and not loss.kwargs and sh.best.target == {"kind": "regression"}
    if not keep_loss and not plain:
        regression = {"kind": "regression"}
        mse = [LayerSpec("MSELoss", {})]
        if loss.kwargs.get("reduction") in ("sum", "none"):
            mse.append(LayerSpec("MSELoss", {"reduction": loss.kwargs["reduction"]}))
        for candidate in mse:
            if sh.accept(dataclasses.replace(sh.best, loss=candidate, target=regression)):
                changed = True
                break
    return changed


def shrink(
    spec: NetworkSpec,
    still_fails: Callable[[NetworkSpec], bool],
    budget_s: float = 60.0,
    keep_loss: bool = False,
) -> NetworkSpec:
    """A smaller spec for which ``still_fails`` is still true; ``spec`` if none is found.

    Runs the passes :func:`drop_layers`, :func:`smaller_sizes` and
    :func:`simpler_training` over and over until a round changes nothing or
    ``budget_s`` seconds are spent (the clock is read before each candidate; the best
    so far is returned). Each candidate is fixed up by :func:`fitted` and skipped if it
    cannot work; it is accepted only if ``still_fails(candidate)``. ``keep_loss``: never
    swap the loss (the finding is about it).
    """
    sh = _Shrinker(spec, still_fails, budget_s)
    changed = True
    while changed and not sh.out_of_time():
        changed = drop_layers(sh)
        changed |= smaller_sizes(sh)
        changed |= simpler_training(sh, keep_loss)
    return sh.best


def shrink_report(
    report: Report,
    devices: Sequence[str] | None = None,
    dtypes: Sequence[str] | str | None = None,
    budget_s: float = 60.0,
    backends: Sequence[Any] | None = None,
) -> tuple[NetworkSpec, Report]:
    """The smallest spec that ``check`` finds failing as ``report`` does, and its report.

    "As ``report`` does" means the same :func:`signature`, checked on ``devices``,
    ``dtypes`` and ``backends`` (by default the report's own; backends by name,
    ``harness.backends.protocol.backend_named``) with attribution on, so blame compares.
    Returns ``(report.spec, report)`` when the report is ok or nothing smaller
    reproduces it.
    """
    wanted = signature(report)
    if wanted is None:
        return report.spec, report
    devices = tuple(devices) if devices is not None else (report.devices or None)
    dtypes = dtypes if dtypes is not None else (report.dtypes or ("float32", "float64"))
    if backends is None:
        from .backends.protocol import backend_named

        backends = [backend_named(name) for name in report.backends]
    failing: dict[str, Report] = {}

    def still_fails(candidate: NetworkSpec) -> bool:
        found = check(candidate, devices, dtypes, attribute=True, backends=backends)
        if signature(found) != wanted:
            return False
        failing[_key(candidate)] = found
        return True

    keep_loss = wanted[0] in LOSS_KINDS
    best = shrink(report.spec, still_fails, budget_s, keep_loss)
    return best, failing.get(_key(best), report)
