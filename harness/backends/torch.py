"""The torch backend: build the spec from ``torch.nn`` and record what autograd computes.

Every layer output gets ``retain_grad()``, the input ``requires_grad``, and one
``loss.backward(upstream)`` fills in the gradient wrt each layer's output and
every parameter. TF32 is switched off on CUDA (see ``harness.compare``).
"""

from __future__ import annotations

from typing import Any, overload

import numpy as np
import torch

from ..spec import NetworkSpec, SpecError
from . import DROPOUT_TYPES, CaseData, Trace, case_data, check_unchanged, dropout_seed

__all__ = ["TorchBackend", "torch_dtype", "build_torch_layer"]


def torch_dtype(dtype: Any) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]


def build_torch_layer(
    type_: str, kwargs: dict[str, Any], dtype: torch.dtype, device: str
) -> torch.nn.Module:
    """``torch.nn.<type_>(**kwargs)``, list-valued tensor arguments made tensors."""
    cls = getattr(torch.nn, type_, None)
    if cls is None:
        raise SpecError(f"torch.nn has no {type_}")
    kwargs = dict(kwargs)
    for key in ("weight", "pos_weight"):
        if isinstance(kwargs.get(key), list):
            kwargs[key] = torch.tensor(kwargs[key], dtype=dtype, device=device)
    return cls(**kwargs)


def _seed(seed: int, device: str) -> None:
    """``torch.manual_seed`` without its per-call bookkeeping (the same generator state)."""
    torch.default_generator.manual_seed(seed)
    if device.startswith("cuda"):
        torch.cuda.manual_seed_all(seed)


@overload
def _np(t: torch.Tensor) -> np.ndarray: ...
@overload
def _np(t: torch.Tensor | None) -> np.ndarray | None: ...
def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy().copy()


class TorchBackend:
    def __init__(self, device: str = "cpu", dtype: Any = np.float32):
        self.device = str(device)
        self.dtype = np.dtype(dtype)
        self.name = f"torch-{self.device}"
        if self.device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def mask(self, spec: NetworkSpec, index: int, shape: tuple[int, ...], call: int) -> np.ndarray:
        """The keep-mask torch's dropout layer ``index`` draws in forward ``call``."""
        from ..dropout_masks import torch_dropout_mask

        layer = spec.layers[index]
        module = build_torch_layer(layer.type, layer.kwargs, torch_dtype(self.dtype), self.device)
        return torch_dropout_mask(
            module, shape, self.dtype, self.device, dropout_seed(spec, index, call)
        )

    def build(self, spec: NetworkSpec, data: CaseData) -> tuple[Any, Any, Any]:
        tdtype = torch_dtype(self.dtype)
        # the weights are loaded next; torch's own init is wasted work but cheap at these
        # sizes (building on the meta device costs more in dispatch than it saves)
        model = torch.nn.Sequential(
            *[
                build_torch_layer(layer.type, layer.kwargs, tdtype, self.device)
                for layer in spec.layers
            ]
        )
        model.to(device=self.device, dtype=tdtype)
        state = {k: torch.from_numpy(np.asarray(v)) for k, v in data.weights.items()}
        with torch.no_grad():
            model.load_state_dict(state, strict=True)
        model.train(spec.train)
        loss_fn = build_torch_layer(spec.loss.type, spec.loss.kwargs, tdtype, self.device)
        optimizer = None
        if spec.optimizer is not None and spec.steps > 0:
            cls = getattr(torch.optim, spec.optimizer.type)
            optimizer = cls(model.parameters(), **dict(spec.optimizer.kwargs))
        return model, loss_fn, optimizer

    def run(self, spec: NetworkSpec, data: CaseData | None = None) -> Trace:
        data = data if data is not None else case_data(spec)
        x_np, target_np, upstream_np = data.cast(self.dtype)
        copies = (x_np.copy(), target_np.copy(), upstream_np.copy())
        model, loss_fn, optimizer = self.build(spec, data)
        layers = list(model)
        x = torch.from_numpy(x_np).to(self.device)
        if spec.input_kind == "float":
            x.requires_grad_(True)
        target = torch.from_numpy(target_np).to(self.device)
        upstream = torch.from_numpy(upstream_np).to(self.device)

        def forward_backward(call: int) -> tuple[list, Any]:
            outputs, h = [], x
            for index, module in enumerate(layers):
                if spec.train and spec.layers[index].type in DROPOUT_TYPES:
                    _seed(dropout_seed(spec, index, call), self.device)
                h = module(h)
                if h.requires_grad:
                    h.retain_grad()
                outputs.append(h)
            loss = loss_fn(h, target)
            loss.backward(upstream)
            return outputs, loss

        outputs, loss = forward_backward(0)
        grads = [o.grad if o.grad is not None else torch.zeros_like(o) for o in outputs]
        trace = Trace(
            outputs=[_np(o) for o in outputs],
            loss=_np(loss),
            grad_outputs=[_np(g) for g in grads],
            grad_input=_np(x.grad) if spec.input_kind == "float" else None,
            grad_params={
                name: _np(p.grad) if p.grad is not None else np.zeros(tuple(p.shape), self.dtype)
                for name, p in model.named_parameters()
            },
            buffers={name: _np(b) for name, b in model.named_buffers()},
        )
        for k in range(spec.steps if optimizer is not None else 0):
            if k > 0:
                optimizer.zero_grad()
                forward_backward(k)
            optimizer.step()
            trace.steps.append({name: _np(v) for name, v in model.state_dict().items()})
        if self.device != "cpu":
            torch.cuda.synchronize()
        for name, before, after in zip(
            ("input", "target", "upstream gradient"), copies, (x_np, target_np, upstream_np)
        ):
            check_unchanged(name, before, after)
        return trace
