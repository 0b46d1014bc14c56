"""Backends run a ``NetworkSpec`` and record a ``Trace``; this module holds what they share.

Both backends get the *same* case data, drawn once from ``spec.seed`` in float64
(:func:`case_data`): the weights (the reference model's initial ``state_dict``),
the input, the target and the upstream gradient of the loss (a standard normal
draw, never 1, so that a wrong scale in a loss backward cannot hide). Each
backend casts them to its dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import DROPOUT_TYPES, NetworkSpec, SpecError, build_reference_layers, split_output

__all__ = [
    "Trace",
    "CaseData",
    "case_data",
    "dropout_seed",
    "check_unchanged",
    "lost_steps",
    "run_steps",
    "parameters_lost",
    "DROPOUT_TYPES",
]


@dataclass
class Trace:
    """Everything one backend computed for one case, as float64-free NumPy arrays."""

    outputs: list[np.ndarray]  # the output of every layer, in order
    loss: np.ndarray
    grad_outputs: list[np.ndarray]  # dL/d(output of layer i), from the upstream gradient
    grad_input: np.ndarray | None  # dL/d(network input); None for an index input
    grad_params: dict[str, np.ndarray]  # state_dict name -> gradient after one backward
    buffers: dict[str, np.ndarray]  # state_dict buffers after the first forward
    steps: list[dict[str, np.ndarray]] = field(default_factory=list)  # state after step k+1
    # a layer's outputs beyond the one passed on, by "<layer>.<name>" (a recurrent layer's
    # final states "2.h_n", "2.c_n": harness.spec.split_output)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    # a graph's gradient along each input edge, by "<node>.<k>" (node's k-th input): that
    # consumer's contribution alone (harness.graph); empty for a chain
    grad_edges: dict[str, np.ndarray] = field(default_factory=dict)

    def grad_wrt_input_of(self, index: int) -> np.ndarray | None:
        """The gradient wrt layer ``index``'s input: the previous layer's output gradient."""
        return self.grad_input if index == 0 else self.grad_outputs[index - 1]


@dataclass
class CaseData:
    """The float64 weights and data of a case; every backend casts from these."""

    weights: dict[str, np.ndarray]
    input: np.ndarray
    target: np.ndarray
    upstream: np.ndarray
    output_shape: tuple[int, ...]

    def cast(self, dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Input, target and upstream in ``dtype`` (index inputs and class targets stay int64)."""
        x = self.input if self.input.dtype.kind == "i" else self.input.astype(dtype)
        t = self.target if self.target.dtype.kind == "i" else self.target.astype(dtype)
        return x, t, self.upstream.astype(dtype)

    def rounded_to(self, dtype: str) -> CaseData:
        """The same case with every float array rounded to ``dtype`` (kept in float64):
        exactly what a backend computing in ``dtype`` receives."""
        from ..dtypes import round_to

        return CaseData(
            {k: round_to(v, dtype) for k, v in self.weights.items()},
            round_to(self.input, dtype),
            round_to(self.target, dtype),
            round_to(self.upstream, dtype),
            self.output_shape,
        )


def _softmax(z: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _target(spec: NetworkSpec, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    target = spec.target
    kind = target.get("kind", "regression")
    if kind == "class_index":
        classes = shape[1]
        t = rng.integers(0, classes, size=(shape[0], *shape[2:]))
        ignore = spec.loss.kwargs.get("ignore_index", -100)
        drop = rng.random(t.shape) < target.get("ignore_fraction", 0.0)
        t[drop] = ignore
        # at least one counted target: a mean over nothing is 0/0
        if t.flat[0] == ignore:
            t.flat[0] = (ignore + 1) % classes if 0 <= ignore < classes else 0
        return t.astype(np.int64)
    if kind == "probabilities":
        return _softmax(rng.standard_normal(shape), axis=target.get("dim", 1))
    if kind == "log_probabilities":
        return np.log(_softmax(rng.standard_normal(shape), axis=target.get("dim", 1)))
    if kind == "unit_interval":
        return rng.uniform(0.0, 1.0, shape)
    if kind == "binary":
        return rng.integers(0, 2, shape).astype(np.float64)
    if kind == "sign":  # +-1 labels (SoftMarginLoss, HingeEmbeddingLoss)
        return rng.choice([-1.0, 1.0], shape)
    if kind == "counts":  # Poisson counts (PoissonNLLLoss)
        return rng.poisson(2.0, shape).astype(np.float64)
    if kind == "label_lists":
        return _label_lists(shape, rng)
    if kind == "regression":
        return rng.standard_normal(shape)
    raise SpecError(f"unknown target kind {kind!r}")


def _label_lists(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """MultiLabelMarginLoss's targets: per row of ``(N, C)``, some distinct classes, then
    -1 (the rest of the row is ignored)."""
    rows, classes = shape
    order = np.argsort(rng.random(shape), axis=1)  # a random permutation per row
    count = rng.integers(1, classes + 1, (rows, 1))  # at least one label
    return np.where(np.arange(classes) < count, order, -1).astype(np.int64)


# losses that reduce the class dim of their (N, C, ...) input to one loss per sample
_PER_SAMPLE = (
    "CrossEntropyLoss",
    "NLLLoss",
    "MultiMarginLoss",
    "MultiLabelMarginLoss",
    "MultiLabelSoftMarginLoss",
)


def _loss_shape(spec: NetworkSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    if spec.loss.kwargs.get("reduction", "mean") != "none":
        return ()
    if spec.loss.type in _PER_SAMPLE:
        return (shape[0], *shape[2:])
    return shape


def case_data(spec: NetworkSpec) -> CaseData:
    """Weights, input, target and upstream gradient of ``spec``, in float64, from its seed."""
    layers = build_reference_layers(spec, np.random.default_rng(spec.seed), np.float64)
    weights: dict[str, np.ndarray] = {}
    for index, module in enumerate(layers):
        for key, value in module.state_dict().items():
            weights[f"{index}.{key}"] = value
    data_rng = np.random.default_rng([spec.seed, 1])
    if spec.input_kind == "index":
        x: np.ndarray = data_rng.integers(0, spec.index_high, spec.input_shape).astype(np.int64)
    else:
        x = data_rng.standard_normal(spec.input_shape)
    # the output shape, from the same modules run on zeros (their state is thrown away)
    from ..graph import forward_zeros

    shape = tuple(np.shape(forward_zeros(spec, layers, np.zeros_like(x))[-1]))
    target = _target(spec, shape, data_rng)
    upstream = data_rng.standard_normal(_loss_shape(spec, shape))
    return CaseData(weights, x, target, np.asarray(upstream, dtype=np.float64), shape)


def dropout_seed(spec: NetworkSpec, layer: int, call: int) -> int:
    """The torch seed for dropout layer ``layer`` in forward call ``call`` (0: first pass)."""
    return int((spec.seed * 1_000_003 + layer * 7919 + call * 104_729) % (2**31 - 1))


def check_unchanged(name: str, before: np.ndarray, after: Any) -> None:
    """Raise if a backend wrote into an array it was only meant to read."""
    after = np.asarray(after)
    if before.shape != after.shape or not np.array_equal(before, after, equal_nan=True):
        raise RuntimeError(
            f"the backend modified its {name} in place; backends must not "
            "mutate their inputs or the upstream gradient"
        )


def run_steps(
    trace: Trace,
    steps: int,
    optimizer: Any,
    forward_backward: Callable[[int], Any],
    step: Callable[[], None],
    state: Callable[[], dict[str, np.ndarray]],
    refusals: tuple[type[BaseException], ...],
) -> None:
    """The optimizer's ``steps``, each ``state()`` after ``step()`` recorded in
    ``trace.steps``: step 1 uses the gradients just computed, steps 2.. redo forward and
    backward. A forward that raises one of ``refusals`` on parameters already lost ends
    the run with :func:`lost_steps`; any other failure is the case's."""
    for k in range(steps):
        if k > 0:
            optimizer.zero_grad()
            try:
                forward_backward(k)
            except refusals:
                if not parameters_lost(trace.steps[-1]):
                    raise
                trace.steps += lost_steps(trace.steps[-1], steps - k)
                return
        step()
        trace.steps.append(state())


def lost_steps(state: dict[str, np.ndarray], remaining: int) -> list[dict[str, np.ndarray]]:
    """The steps after a forward that raised on parameters already NaN or inf (a float16
    Adam whose eps rounded to 0; a loss that refuses a NaN probability): the parameters
    are lost, and every later step would leave them so; their floating values are NaN."""
    lost = {k: np.full_like(v, np.nan) if v.dtype.kind == "f" else v for k, v in state.items()}
    return [dict(lost) for _ in range(remaining)]


def parameters_lost(state: dict[str, np.ndarray]) -> bool:
    return any(v.dtype.kind == "f" and not np.isfinite(v).all() for v in state.values())
