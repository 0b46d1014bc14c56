"""The reference backend: build the spec from ``reference.nn`` and run it by hand.

Forward layer by layer, keeping each output; backward layer by layer from the
loss's upstream gradient, keeping the gradient wrt each output; then the
optimizer steps. Nothing here imports torch, except that dropout masks (which
must equal torch's) come from a ``mask_fn`` the caller passes in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..spec import NetworkSpec, SpecError, build_reference_layers, layer_kwargs, reference_class
from . import DROPOUT_TYPES, CaseData, Trace, case_data, check_unchanged

__all__ = ["ReferenceBackend", "MaskFn"]

# (layer index, input shape, forward call) -> keep-mask
MaskFn = Callable[[int, tuple[int, ...], int], np.ndarray]


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
    ) -> Trace:
        dtype = np.dtype(dtype)
        data = data if data is not None else case_data(spec)
        x, target, upstream = data.cast(dtype)
        copies = (x.copy(), target.copy(), upstream.copy())
        model, loss_fn, optimizer = self.build(spec, dtype, data)
        layers = list(model)

        def forward_backward(call: int) -> tuple[list, Any, list, Any]:
            outputs, h = [], x
            for index, module in enumerate(layers):
                if spec.train and spec.layers[index].type in DROPOUT_TYPES:
                    if mask_fn is None:
                        raise RuntimeError(
                            "a training-mode dropout layer needs a mask_fn "
                            "(torch's mask, so both sides drop the same units)"
                        )
                    module.mask = mask_fn(index, tuple(np.shape(h)), call)
                h = module(h)
                outputs.append(h)
            loss = loss_fn(h, target)
            g = loss_fn.backward(upstream.copy())
            grads: list[Any] = [None] * len(layers)
            for index in range(len(layers) - 1, -1, -1):
                grads[index] = g
                g = layers[index].backward(g)
            grad_input = g if spec.input_kind == "float" else None
            return outputs, loss, grads, grad_input

        outputs, loss, grads, grad_input = forward_backward(0)
        trace = Trace(
            outputs=[np.array(o, copy=True) for o in outputs],
            loss=np.array(loss, copy=True),
            grad_outputs=[np.array(g, copy=True) for g in grads],
            grad_input=None if grad_input is None else np.array(grad_input, copy=True),
            grad_params={
                name: (np.array(p.grad, copy=True) if p.grad is not None else np.zeros_like(p.data))
                for name, p in model.named_parameters()
            },
            buffers={name: np.array(b, copy=True) for name, b in model.named_buffers()},
        )
        # step 1 uses the gradients just computed; steps 2.. redo forward and backward
        for k in range(spec.steps if optimizer is not None else 0):
            if k > 0:
                optimizer.zero_grad()
                forward_backward(k)
            optimizer.step()
            trace.steps.append(
                {name: np.array(v, copy=True) for name, v in model.state_dict().items()}
            )
        for name, before, after in zip(
            ("input", "target", "upstream gradient"), copies, (x, target, upstream)
        ):
            check_unchanged(name, before, after)
        return trace
