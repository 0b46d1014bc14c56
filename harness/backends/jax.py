"""The JAX backend: the spec as pure JAX functions, differentiated by ``jax.vjp``.

Each layer is a function of ``(input, params, buffers)`` written in ``jax.numpy`` /
``jax.lax`` with torch's semantics (:mod:`harness.backends.jax_layers`), its parameters
the case's float64 weights cast to the dtype. The forward runs layer by layer through
``jax.vjp``, keeping each output and pullback; the loss too
(:mod:`harness.backends.jax_losses`); the backward pulls the case's upstream gradient
back through them in reverse, so every gradient in the trace is JAX's own autodiff.
Then the optimizer steps, torch.optim's formulas in ``jax.numpy``
(:mod:`harness.backends.jax_optim`). This module holds the :class:`Jax` backend: its
capabilities, the run, and the chain of vjps.

float64 runs inside ``jax.enable_x64(True)`` and float32 inside ``jax.enable_x64(False)``
(both scoped: importing or running this changes no global JAX setting), so float32
computes in float32 whatever the caller has enabled.

The forward and backward of a whole case is one ``jax.jit`` program (the vjps traced
inside it), and so is an optimizer step over every parameter: both are compiled once
per configuration and shape, and reused by the steps and by later runs. Op by op, XLA
would compile each primitive for each new shape (tens of milliseconds each on a CPU);
a case takes two compiles instead.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

try:  # first, so that without jax this module's import says how to get it
    import jax
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("the jax backend needs jax: pip install 'backprop-oracle[jax]'") from exc

import numpy as np

from ..dtypes import parse_dtype
from ..spec import NetworkSpec
from . import CaseData, Trace, case_data, run_steps
from .jax_layers import BUFFER_NAMES, BUILDERS
from .jax_losses import LOSSES
from .jax_optim import OPTIMIZERS, compiled_update
from .protocol import Capabilities

__all__ = ["Jax", "LOSSES", "OPTIMIZERS"]


# -- keys and copies ------------------------------------------------------------------------
def _freeze(value: Any) -> Any:
    """A hashable form of a kwargs dict (lists as tuples), to key the compiled functions."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _np(value: Any) -> np.ndarray:
    """A JAX array as a writable NumPy copy (the trace's arrays are the caller's)."""
    return np.array(value)


# -- the backend ------------------------------------------------------------------------------
class Jax:
    """JAX as a :class:`harness.backends.protocol.Backend`: float32 and float64 on the CPU,
    the layers of :data:`~harness.backends.jax_layers.BUILDERS`, the losses of
    :data:`~harness.backends.jax_losses.LOSSES`, the optimizers of
    :data:`~harness.backends.jax_optim.OPTIMIZERS`; dropout in eval mode only."""

    name = "jax"
    capabilities = Capabilities(
        dtypes=("float32", "float64"),
        devices=("cpu",),
        layers=frozenset(BUILDERS),
        losses=frozenset(LOSSES),
        optimizers=frozenset(OPTIMIZERS),
        dropout_masks=False,
        known_deviations=False,
    )

    def run(
        self,
        spec: NetworkSpec,
        data: CaseData | None = None,
        device: str = "cpu",
        dtype: str = "float32",
    ) -> Trace:
        """Forward, backward and ``spec.steps`` optimizer steps (``Backend.run``); ``data``
        defaults to :func:`~harness.backends.case_data` of ``spec``, and is only read."""
        name = parse_dtype(dtype)
        if not self.capabilities.runs_in(name):
            raise ValueError(f"the jax backend runs float32 and float64, not {name}")
        if not self.capabilities.runs_on(device):
            raise ValueError(f"the jax backend runs on the CPU, not {device!r}")
        lacking = [la.type for la in spec.layers if la.type not in BUILDERS]
        lacking += [spec.loss.type] if spec.loss.type not in LOSSES else []
        if lacking:
            raise ValueError(f"the jax backend has no {', '.join(sorted(set(lacking)))}")
        data = data if data is not None else case_data(spec)
        with jax.enable_x64(name == "float64"):
            return _Run(spec, data, np.dtype(name)).trace()


class _Optimizer:
    """``spec.optimizer`` over every parameter of a run (``run_steps`` drives it): one
    compiled update of them all, torch's per-tensor rule applied to each."""

    def __init__(self, run: _Run, type_: str, kwargs: dict):
        if type_ not in OPTIMIZERS:
            raise ValueError(f"the jax backend has no {type_} optimizer")
        defaults, fills, self.coefficients, _ = OPTIMIZERS[type_]
        self.hyper = {**defaults, **kwargs}
        self.update = compiled_update(type_, _freeze(self.hyper))
        self.run, self.count = run, 0
        fill = fills(self.hyper).items()
        self.state = [{n: {k: run.put(np.full(p.shape, v)) for k, v in fill} for n, p in ps.items()}
                      for ps in run.params]  # fmt: skip

    def zero_grad(self) -> None:
        self.run.grads = [{} for _ in self.run.params]

    def step(self) -> None:
        self.count += 1
        c = self.coefficients(self.hyper, self.count)
        self.run.params, self.state = self.update(self.run.params, self.run.grads, self.state, c)


def _layer_vjp(forward: Callable, x: Any, params: dict, buffers: dict, index: bool) -> tuple:
    """``(output, pullback, buffers after)`` of one layer; the pullback gives the gradients
    wrt the input (None for an index input, which has none) and the parameters."""
    if not index:
        return jax.vjp(lambda x, p: forward(x, p, buffers), x, params, has_aux=True)
    y, pull, after = jax.vjp(lambda p: forward(x, p, buffers), params, has_aux=True)
    return y, lambda g: (None, *pull(g)), after


def _case(layers: list[Callable], loss: Callable, index_input: bool) -> Callable:
    """One forward and backward of the whole network, as a function of its arrays:
    ``(x, params, buffers, target, upstream) -> (outputs, loss, grad_outputs,
    grad_input, grad_params, buffers)``. Layer by layer through ``jax.vjp``, keeping each
    output and pullback, then the loss's, then the pullbacks in reverse."""

    def case(x, params, buffers, target, upstream):
        h, pulls, outputs, after = x, [], [], []
        for index, forward in enumerate(layers):
            is_index = index == 0 and index_input
            h, pull, b = _layer_vjp(forward, h, params[index], buffers[index], is_index)
            outputs.append(h)
            pulls.append(pull)
            after.append(b)
        value, loss_pull = jax.vjp(lambda out: loss(out, target), h)
        (g,) = loss_pull(upstream)
        grads: list[Any] = [None] * len(pulls)
        grad_params: list[Any] = [None] * len(pulls)
        for index in range(len(pulls) - 1, -1, -1):
            grads[index] = g
            g, grad_params[index] = pulls[index](g)
        return outputs, value, grads, g, grad_params, after

    return case


@functools.lru_cache(maxsize=256)
def _compiled_case(layers: tuple, loss: tuple, train: bool, index_input: bool) -> Callable:
    forwards = [BUILDERS[type_](dict(kwargs), train) for type_, kwargs in layers]
    return jax.jit(_case(forwards, LOSSES[loss[0]](dict(loss[1])), index_input))


class _Run:
    """One case in one dtype: its compiled forward and backward, and its state."""

    def __init__(self, spec: NetworkSpec, data: CaseData, dtype: np.dtype):
        self.spec, self.dtype, self.keys = spec, dtype, list(data.weights)
        self.case = _compiled_case(
            tuple((la.type, _freeze(la.kwargs)) for la in spec.layers),
            (spec.loss.type, _freeze(spec.loss.kwargs)),
            spec.train,
            spec.input_kind == "index",
        )
        self.params: list[dict] = [{} for _ in spec.layers]
        self.buffers: list[dict] = [{} for _ in spec.layers]
        for key, value in data.weights.items():
            index, name = key.split(".", 1)
            store = self.buffers if name in BUFFER_NAMES else self.params
            store[int(index)][name] = self.put(value)
        self.x, self.target, self.upstream = (self.put(a) for a in data.cast(dtype))
        self.grads: list[dict] = []

    def put(self, array: np.ndarray) -> Any:
        """A JAX copy of ``array``: floating values cast to the run's dtype."""
        array = np.asarray(array)
        return jax.device_put(array.astype(self.dtype) if array.dtype.kind == "f" else array)

    def forward_backward(self, call: int = 0) -> tuple:
        """Outputs, loss, gradients wrt the outputs and the input; the parameters'
        gradients go to ``self.grads``, and the buffers move on as the forward moves them."""
        outputs, loss, grads, grad_input, self.grads, self.buffers = self.case(
            self.x, self.params, self.buffers, self.target, self.upstream
        )
        return outputs, loss, grads, grad_input

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameters and buffers by ``state_dict`` key, in the case's order."""
        out = {}
        for key in self.keys:
            index, name = key.split(".", 1)
            value = {**self.params[int(index)], **self.buffers[int(index)]}[name]
            out[key] = _np(value).astype(np.int64) if name == "num_batches_tracked" else _np(value)
        return out

    def trace(self) -> Trace:
        outputs, loss, grads, grad_input = self.forward_backward()
        state = self.state_dict()
        is_buffer = {k: k.split(".", 1)[1] in BUFFER_NAMES for k in self.keys}
        trace = Trace(
            outputs=[_np(o) for o in outputs],
            loss=_np(loss),
            grad_outputs=[_np(g) for g in grads],
            grad_input=None if grad_input is None else _np(grad_input),
            grad_params={
                k: _np(self.grads[int(k.split(".")[0])][k.split(".", 1)[1]])
                for k in self.keys
                if not is_buffer[k]
            },  # fmt: skip
            buffers={k: v for k, v in state.items() if is_buffer[k]},
        )
        opt = self.spec.optimizer
        if opt is not None and self.spec.steps > 0:
            optimizer = _Optimizer(self, opt.type, dict(opt.kwargs))
            run_steps(trace, self.spec.steps, optimizer, self.forward_backward,
                      optimizer.step, self.state_dict, (FloatingPointError,))  # fmt: skip
        return trace
