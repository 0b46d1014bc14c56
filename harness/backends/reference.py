"""The reference backend: build the spec from ``reference.nn`` and run it by hand.

Forward layer by layer, keeping each output; backward layer by layer from the
loss's upstream gradient, keeping the gradient wrt each output; then the
optimizer steps. Nothing here imports torch, except that dropout masks (which
must equal torch's) come from a ``mask_fn`` the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from enum import Enum
from typing import Any

import numpy as np

from reference.functional.embedding import SparseRows
from reference.functional.rounding import sampling

from ..graph import is_graph
from ..spec import (
    DRAW_ATTRIBUTE,
    NetworkSpec,
    SpecError,
    build_reference_layers,
    draws_random,
    extra_output_names,
    layer_kwargs,
    reference_class,
    split_output,
)
from . import (
    CaseData,
    Trace,
    case_data,
    check_unchanged,
    run_steps,
)

__all__ = ["ReferenceBackend", "MaskFn", "Perturb", "Site"]

# (layer index, input shape, forward call) -> keep-mask
MaskFn = Callable[[int, tuple[int, ...], int], np.ndarray]


class Site(str, Enum):
    """Where a run may be perturbed (``harness.bounds``' stochastic arithmetic)."""

    INPUT = "input"  # the network input
    WEIGHT = "weight"  # a parameter as loaded
    OUTPUT = "output"  # a layer's output
    BUFFER = "buffer"  # a layer's running statistics after its forward
    LOSS = "loss"
    GRAD_OUTPUT = "grad_output"  # the loss's gradient wrt the network output
    GRAD_INPUT = "grad_input"  # the gradient a layer's backward returns
    GRAD_PARAM = "grad_param"
    OPTIMIZER_GRAD = "optimizer_grad"  # a gradient as the optimizer reads it
    UPDATE = "update"  # a parameter's change in an optimizer step
    STEPPED = "stepped"  # a parameter after a step
    STATE = "state"  # an optimizer state array (moments) after a step
    STATISTIC = "statistic"  # a mean inside a layer (reference.functional.rounding)


# (array, site, layer index or None, basis) -> the array, perturbed; the basis is what an
# error at the site may be measured against: the layer's input at its output, the
# incoming gradient at its input gradient (harness.known)
Perturb = Callable[..., np.ndarray]


def _same(array: np.ndarray, site: Site, layer: int | None, basis: Any = None) -> np.ndarray:
    return array


class ReferenceBackend:
    name = "reference"

    def build(self, spec: NetworkSpec, dtype: Any, data: CaseData) -> tuple[Any, Any, Any]:
        """The model (a reference Sequential with the case's weights), loss and optimizer."""
        import reference.nn as rnn

        model = rnn.Sequential(*build_reference_layers(spec, np.random.default_rng(0), dtype))
        model.load_state_dict(data.weights)
        model.train(spec.train)
        loss_fn = reference_class(spec.loss.type)(**layer_kwargs(spec.loss, dtype))
        optimizer = None
        if spec.optimizer is not None and spec.steps > 0:
            import reference.optim as ropt

            cls = getattr(ropt, spec.optimizer.type, None)
            if cls is None:
                raise SpecError(f"reference.optim has no {spec.optimizer.type}")
            optimizer = cls(list(model.parameters()), **dict(spec.optimizer.kwargs))
        return model, loss_fn, optimizer

    def run(
        self,
        spec: NetworkSpec,
        dtype: Any = np.float64,
        data: CaseData | None = None,
        mask_fn: MaskFn | None = None,
        perturb: Perturb | None = None,
    ) -> Trace:
        """Forward, backward and the optimizer steps of ``spec``; every value recorded.

        ``perturb`` (``harness.bounds``) is applied at every :class:`Site`: the input and
        weights, each layer's output and buffers, the loss, each gradient, and each
        parameter's update and state after a step; the trace records the perturbed values.
        """
        dtype = np.dtype(dtype)
        data = data if data is not None else case_data(spec)
        x, target, upstream = data.cast(dtype)
        copies = (x.copy(), target.copy(), upstream.copy())
        model, loss_fn, optimizer = self.build(spec, dtype, data)
        layers = list(model)
        noise = perturb or _same
        for layer_index, module in enumerate(layers):
            for param in module.parameters():
                param.data = noise(param.data, Site.WEIGHT, layer_index)
        x_in = noise(x.copy(), Site.INPUT, None) if perturb and x.dtype.kind == "f" else x
        # a perturbation may round the statistics inside layers too (their reductions)
        statistic = getattr(perturb, "statistic", None)

        if is_graph(spec):
            return self._run_graph(
                spec,
                layers,
                model,
                x_in,
                target,
                upstream,
                loss_fn,
                optimizer,
                mask_fn,
                perturb,
                noise,
                statistic,
                (x, target, upstream),
                copies,
            )

        def forward_backward(call: int) -> tuple[list, Any, list, Any, dict]:
            outputs, h, extras = [], x_in, {}
            for index, module in enumerate(layers):
                kind = spec.layers[index].type
                if draws_random(kind, spec.train):
                    if mask_fn is None:
                        raise RuntimeError(
                            f"a {kind} layer that draws random numbers needs a mask_fn "
                            "(torch's draw, so both sides drop the same units)"
                        )
                    draw = mask_fn(index, tuple(np.shape(h)), call)
                    if draw.dtype.kind == "f":  # fractional samples: torch's, in the input's dtype
                        draw = draw.astype(np.asarray(h).dtype)
                    setattr(module, DRAW_ATTRIBUTE[kind], draw)
                with _in_layer(statistic, index, backward=False):
                    output, more = split_output(module(h))
                for name, value in zip(extra_output_names(kind), more):
                    extras[f"{index}.{name}"] = noise(value, Site.OUTPUT, index, h)
                h = noise(output, Site.OUTPUT, index, h)
                _perturb_buffers(module, noise, index)
                outputs.append(h)
            with _in_layer(statistic, None, backward=False):
                loss = noise(np.asarray(loss_fn(h, target)), Site.LOSS, None)
            with _in_layer(statistic, None, backward=True):
                g = loss_fn.backward(upstream.copy())
            g = noise(g, Site.GRAD_OUTPUT, None, upstream)
            loss, g = _overflowed(perturb, h, target, loss, g)
            grads: list[Any] = [None] * len(layers)
            for index in range(len(layers) - 1, -1, -1):
                grads[index] = g
                with _in_layer(statistic, index, backward=True):
                    g = layers[index].backward(g)
                if g is not None and np.asarray(g).dtype.kind == "f":
                    g = noise(g, Site.GRAD_INPUT, index, grads[index])
                for param in layers[index].parameters():
                    if param.grad is not None:
                        param.grad = _perturbed_grad(param.grad, noise, Site.GRAD_PARAM, index)
            grad_input = g if spec.input_kind == "float" else None
            return outputs, loss, grads, grad_input, extras

        trace = _record(model, *forward_backward(0))
        steps = spec.steps if optimizer is not None else 0
        _steps(trace, model, optimizer, steps, forward_backward, noise)
        for name, before, after in zip(
            ("input", "target", "upstream gradient"), copies, (x, target, upstream)
        ):
            check_unchanged(name, before, after)
        return trace

    def _run_graph(
        self, spec: NetworkSpec, layers: list, model: Any, x_in: Any, target: Any,
        upstream: Any, loss_fn: Any, optimizer: Any, mask_fn: MaskFn | None,
        perturb: Perturb | None, noise: Perturb, statistic: Any, arrays: tuple,
        copies: tuple,
    ) -> Trace:  # fmt: skip
        """:meth:`run` for a graph-shaped spec (``harness.backends.reference_graph``)."""
        from .reference_graph import graph_backward, graph_forward

        def in_layer(index: int | None, backward: bool) -> Any:
            return _in_layer(statistic, index, backward)

        def params(module: Any, index: int) -> None:
            for param in module.parameters():
                if param.grad is not None:
                    param.grad = _perturbed_grad(param.grad, noise, Site.GRAD_PARAM, index)

        edges: dict[str, np.ndarray] = {}

        def forward_backward(call: int) -> tuple[list, Any, list, Any, dict]:
            if perturb is None:  # a plain run: on the tape (harness.backends.reference_tape)
                from .reference_tape import graph_on_tape

                outputs, loss, grads, grad_input, extras, found = graph_on_tape(
                    spec, layers, x_in, call, mask_fn, loss_fn, target, upstream
                )
                edges.update(found)
                return (
                    outputs,
                    loss,
                    grads,
                    grad_input if spec.input_kind == "float" else None,
                    extras,
                )
            outputs, extras = graph_forward(
                spec, layers, x_in, call, noise, in_layer, mask_fn,
                lambda module, index: _perturb_buffers(module, noise, index),
            )  # fmt: skip
            h = outputs[-1]
            with in_layer(None, False):
                loss = noise(np.asarray(loss_fn(h, target)), Site.LOSS, None)
            with in_layer(None, True):
                g = loss_fn.backward(upstream.copy())
            g = noise(g, Site.GRAD_OUTPUT, None, upstream)
            loss, g = _overflowed(perturb, h, target, loss, g)
            grads, grad_input, found = graph_backward(
                spec, layers, outputs, g, noise, in_layer, params
            )
            edges.update(found)
            return outputs, loss, grads, grad_input if spec.input_kind == "float" else None, extras

        trace = _record(model, *forward_backward(0))
        trace.grad_edges = {k: np.array(v, copy=True) for k, v in edges.items()}
        steps = spec.steps if optimizer is not None else 0
        _steps(trace, model, optimizer, steps, forward_backward, noise)
        for name, before, after in zip(("input", "target", "upstream gradient"), copies, arrays):
            check_unchanged(name, before, after)
        return trace


def _in_layer(
    statistic: Callable[..., np.ndarray] | None, index: int | None, backward: bool
) -> Any:
    """While layer ``index``'s (None: the loss's) forward or backward runs, its statistics
    reach the perturbation with its index and pass."""
    if statistic is None:
        return nullcontext()
    return sampling(lambda mean, terms, axes: statistic(mean, terms, axes, index, backward))


def _overflowed(perturb: Any, h: Any, target: Any, loss: Any, g: Any) -> tuple[Any, Any]:
    """Where a known deviation's loss formula leaves the dtype's range (torch's
    SoftMarginLoss, harness.known), the loss is inf and its gradient NaN, as torch's are."""
    overflow = getattr(perturb, "overflow", None)
    if overflow is None:
        return loss, g
    beyond = np.asarray(overflow(np.asarray(h), np.asarray(target), perturb.dtype))
    if not beyond.any():
        return loss, g
    loss = np.where(beyond, np.inf, loss) if np.shape(loss) == beyond.shape else np.inf + loss
    return np.asarray(loss), np.where(beyond, np.nan, g)


def _steps(
    trace: Trace, model: Any, optimizer: Any, steps: int, forward_backward: Any, noise: Perturb
) -> None:
    """The optimizer's ``steps`` (``harness.backends.run_steps``), each perturbed."""
    run_steps(
        trace,
        steps,
        optimizer,
        forward_backward,
        lambda: _perturbed_step(optimizer, list(model), noise),
        lambda: {name: np.array(v, copy=True) for name, v in model.state_dict().items()},
        (ValueError, FloatingPointError),
    )


def _record(
    model: Any, outputs: list, loss: Any, grads: list, grad_input: Any, extras: dict
) -> Trace:
    """The trace of one forward and backward: copies, as the modules keep their arrays."""
    return Trace(
        outputs=[np.array(o, copy=True) for o in outputs],
        loss=np.array(loss, copy=True),
        grad_outputs=[np.array(g, copy=True) for g in grads],
        grad_input=None if grad_input is None else np.array(grad_input, copy=True),
        grad_params={
            name: _dense(p.grad) if p.grad is not None else np.zeros_like(p.data)
            for name, p in model.named_parameters()
        },
        buffers={name: np.array(b, copy=True) for name, b in model.named_buffers()},
        extras={name: np.array(v, copy=True) for name, v in extras.items()},
    )


def _dense(grad: Any) -> np.ndarray:
    """A parameter's gradient as the trace keeps it: dense (a sparse Embedding's rows summed,
    as torch's ``to_dense``), a copy."""
    return grad.to_dense() if isinstance(grad, SparseRows) else np.array(grad, copy=True)


def _perturbed_grad(grad: Any, noise: Perturb, site: Site, index: int) -> Any:
    """A gradient's stored values perturbed: a sparse one's rows (its indices are exact)."""
    if isinstance(grad, SparseRows):
        return SparseRows(grad.indices, noise(grad.values, site, index), grad.shape)
    return noise(grad, site, index)


def _perturb_buffers(module: Any, noise: Perturb, index: int) -> None:
    """Running statistics are stored values too: perturb the floating ones in place."""
    for name, buf in list(module._buffers.items()):
        if buf is not None and buf.dtype.kind == "f":
            module._buffers[name] = noise(buf, Site.BUFFER, index)


def _perturbed_step(optimizer: Any, layers: list, noise: Perturb) -> None:
    """``optimizer.step()``, then each parameter's update, value and state perturbed."""
    if noise is _same:
        optimizer.step()
        return
    before = [[p.data.copy() for p in module.parameters()] for module in layers]
    for index, module in enumerate(layers):
        for param in module.parameters():
            if param.grad is not None:
                param.grad = _perturbed_grad(param.grad, noise, Site.OPTIMIZER_GRAD, index)
    optimizer.step()
    for index, (module, olds) in enumerate(zip(layers, before)):
        for param, old in zip(module.parameters(), olds):
            update = noise(param.data - old, Site.UPDATE, index)
            param.data = noise(old + update, Site.STEPPED, index)
            state = optimizer.state.get(param, {})
            for key, value in state.items():
                if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                    state[key] = noise(value, Site.STATE, index)
