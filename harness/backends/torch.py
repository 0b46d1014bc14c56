"""The torch backend: build the spec from ``torch.nn`` and record what autograd computes.

Every layer output gets ``retain_grad()``, the input ``requires_grad``, and one
``loss.backward(upstream)`` fills in the gradient wrt each layer's output and
every parameter. TF32 is switched off on CUDA (see ``harness.compare``).

The dtype is any name :func:`harness.dtypes.parse_dtype` accepts. The float64 case
data reach torch rounded once to it, as :func:`harness.dtypes.round_to` rounds them
(bfloat16, which NumPy lacks, by way of float32, then torch's round-to-nearest-even);
index inputs and class targets stay int64. A half-precision run returns float32
arrays (exact for float16 and bfloat16), so a ``Trace`` is always NumPy.
"""

from __future__ import annotations

import functools
from typing import Any, overload

import numpy as np
import torch

from ..dtypes import DTYPES, HALF_DTYPES, parse_dtype
from ..graph import (
    RECURRENT_TYPES,
    Op,
    edge_key,
    input_nodes,
    is_graph,
    is_op,
    pack_states,
    run_nodes,
)
from ..spec import NetworkSpec, SpecError, draws_random, extra_output_names, split_output
from . import (
    CaseData,
    Trace,
    case_data,
    check_unchanged,
    dropout_seed,
    run_steps,
)
from .protocol import Capabilities

__all__ = [
    "TORCH_OPS",
    "Torch",
    "TorchBackend",
    "TorchOp",
    "torch_dtype",
    "to_torch",
    "build_torch_layer",
]

# the torch function behind each graph op (harness.graph.Op), looked up at every call
TORCH_OPS: dict[str, Any] = {
    Op.ADD.value: torch.add,
    Op.SUB.value: torch.sub,
    Op.MUL.value: torch.mul,
    Op.CAT.value: torch.cat,
    Op.TILE.value: lambda x, copies: torch.stack([x] * copies),
}


class TorchOp(torch.nn.Module):
    """A graph op as a torch module: ``forward(*inputs)`` through :data:`TORCH_OPS`."""

    def __init__(self, op: str, **kwargs: Any) -> None:
        super().__init__()
        self.op = Op(op).value
        self.kwargs = dict(kwargs)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        if self.op == Op.CAT.value:
            return TORCH_OPS[self.op](list(inputs), dim=self.kwargs.get("dim", 0))
        if self.op == Op.TILE.value:
            return TORCH_OPS[self.op](inputs[0], self.kwargs.get("copies", 1))
        return TORCH_OPS[self.op](*inputs)


_TORCH_DTYPES = {
    "float64": torch.float64,
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}


def torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of any name :func:`harness.dtypes.parse_dtype` accepts."""
    return _TORCH_DTYPES[parse_dtype(dtype)]


def to_torch(array: np.ndarray, dtype: str, device: str) -> torch.Tensor:
    """A float64 (or integer) NumPy array as a torch tensor in ``dtype`` on ``device``.

    Rounded as :func:`harness.dtypes.round_to` rounds: float32 and float16 once, by
    NumPy, bfloat16 by NumPy to float32 and then by torch (nearest even; torch's own
    float64 conversions go by way of float32 too, so for bfloat16 this is
    ``torch.from_numpy(array).to(torch.bfloat16)``). Integer arrays stay as they are.
    A new tensor: writing into it leaves ``array`` alone."""
    array = np.asarray(array)
    if array.dtype.kind != "f":
        return torch.from_numpy(array.copy()).to(device)
    name = parse_dtype(dtype)
    staged = "float32" if name == "bfloat16" else name
    with np.errstate(over="ignore"):  # past the format's range is inf, as torch rounds it
        tensor = torch.from_numpy(np.array(array, dtype=staged))
    return tensor.to(device=device, dtype=_TORCH_DTYPES[name])


@functools.cache
def torch_stateful(cls: Any) -> type:
    """``torch.nn.<cls>`` taking its initial state as separate inputs, ``forward(x, h0[,
    c0])`` (a subclass: the ``state_dict`` is torch's own)."""

    def forward(self: Any, input: Any, *states: Any) -> Any:
        return cls.forward(self, input, pack_states(states))

    return type(cls.__name__, (cls,), {"forward": forward})


def build_torch_layer(
    type_: str, kwargs: dict[str, Any], dtype: torch.dtype, device: str
) -> torch.nn.Module:
    """``torch.nn.<type_>(**kwargs)``, list-valued tensor arguments made tensors; a graph
    op (``harness.graph.Op``) as a :class:`TorchOp`."""
    if is_op(type_):
        return TorchOp(type_, **kwargs)
    cls = getattr(torch.nn, type_, None)
    if cls is None:
        raise SpecError(f"torch.nn has no {type_}")
    kwargs = dict(kwargs)
    name = parse_dtype(dtype)
    for key in ("weight", "pos_weight"):
        if isinstance(kwargs.get(key), list):
            values = np.asarray(kwargs[key], dtype=np.float64)
            kwargs[key] = to_torch(values, name, device)
    if type_ in RECURRENT_TYPES:  # initial states as separate inputs (harness.graph)
        return torch_stateful(cls)(**kwargs)
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
    """A NumPy copy of ``t``; float16 and bfloat16 come back as float32 (exactly)."""
    if t is None:
        return None
    t = t.detach().cpu()
    if t.is_sparse:  # a sparse Embedding's gradient: its rows summed, as the reference's
        t = t.to_dense()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t.numpy().copy()


class TorchBackend:
    """Runs a spec in torch on ``device`` in ``dtype`` (any :func:`parse_dtype` name).

    ``dtype_name`` is the canonical name, ``dtype`` the NumPy dtype of the arrays it
    returns: the dtype itself for float32 and float64, float32 for float16 and bfloat16.
    """

    def __init__(self, device: str = "cpu", dtype: Any = np.float32):
        self.device = str(device)
        self.dtype_name = parse_dtype(dtype)
        self.torch_dtype = _TORCH_DTYPES[self.dtype_name]
        self.dtype = np.dtype("float32" if self.dtype_name in HALF_DTYPES else self.dtype_name)
        self.name = f"torch-{self.device}"
        if self.device.startswith("cuda"):
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False

    def mask(self, spec: NetworkSpec, index: int, shape: tuple[int, ...], call: int) -> np.ndarray:
        """The keep-mask torch's dropout layer ``index`` draws in forward ``call``."""
        from ..dropout_masks import torch_layer_mask

        layer = spec.layers[index]
        module = build_torch_layer(layer.type, layer.kwargs, self.torch_dtype, self.device)
        seed = dropout_seed(spec, index, call)
        strides = self._input_strides(spec, index, shape)
        return torch_layer_mask(module, shape, self.torch_dtype, self.device, seed, strides)

    def _input_strides(
        self, spec: NetworkSpec, index: int, shape: tuple[int, ...]
    ) -> tuple[int, ...] | None:
        """How torch lays out layer ``index``'s input in memory (its mask follows that
        order): found by running the layers before it on zeros; ``None`` if contiguous."""
        if index == 0 or all(s == 1 for s in shape):
            return None
        kind = torch.int64 if spec.input_kind == "index" else self.torch_dtype
        h: Any = torch.zeros(spec.input_shape, dtype=kind, device=self.device)
        modules = []
        for layer in spec.layers[:index]:
            module = build_torch_layer(layer.type, layer.kwargs, self.torch_dtype, self.device)
            modules.append(module.to(device=self.device, dtype=self.torch_dtype).train(spec.train))
        with torch.no_grad():
            outs = run_nodes(spec, modules, h, lambda i, m, xs: split_output(m(*xs))[0])
        source = input_nodes(spec, index)[0]
        h = h if source < 0 else outs[source]
        return None if h.is_contiguous() else tuple(h.stride())

    def build(self, spec: NetworkSpec, data: CaseData) -> tuple[Any, Any, Any]:
        tdtype = self.torch_dtype
        # the weights are loaded next; torch's own init is wasted work but cheap at these
        # sizes (building on the meta device costs more in dispatch than it saves)
        layers = [
            build_torch_layer(layer.type, layer.kwargs, tdtype, self.device)
            for layer in spec.layers
        ]
        # a graph's nodes are not run in order by the container: a list of them
        model = torch.nn.ModuleList(layers) if is_graph(spec) else torch.nn.Sequential(*layers)
        model.to(device=self.device, dtype=tdtype)
        state = {k: to_torch(v, self.dtype_name, self.device) for k, v in data.weights.items()}
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
        model, loss_fn, optimizer = self.build(spec, data)
        layers = list(model)
        x, target, upstream = (
            to_torch(a, self.dtype_name, self.device)
            for a in (data.input, data.target, data.upstream)
        )
        # what torch was handed, to tell afterwards whether it wrote into any of it
        handed = [_np(t) for t in (x, target, upstream)]
        if spec.input_kind == "float":
            x.requires_grad_(True)

        graph = is_graph(spec)
        edges: dict[str, torch.Tensor] = {}

        def node(index: int, module: Any, inputs: list, call: int, extras: dict) -> Any:
            kind = spec.layers[index].type
            if graph:  # an alias per edge: its gradient is this consumer's contribution
                inputs = [t.view_as(t) for t in inputs]
                for k, t in enumerate(inputs):
                    if t.requires_grad:
                        t.retain_grad()
                        edges[edge_key(index, k)] = t
            if draws_random(kind, spec.train):
                _seed(dropout_seed(spec, index, call), self.device)
            h, more = split_output(module(*inputs))
            for name, value in zip(extra_output_names(kind), more):
                extras[f"{index}.{name}"] = value
            if h.requires_grad:
                h.retain_grad()
            return h

        def forward_backward(call: int) -> tuple[list, Any, dict]:
            extras: dict[str, Any] = {}
            outputs = run_nodes(spec, layers, x, lambda i, m, xs: node(i, m, xs, call, extras))
            loss = loss_fn(outputs[-1], target)
            loss.backward(upstream)
            return outputs, loss, extras

        outputs, loss, extras = forward_backward(0)
        trace = self._trace(spec, model, outputs, loss, x)
        trace.extras = {name: _np(v) for name, v in extras.items()}
        if graph:
            trace.grad_edges = {
                k: _np(t.grad) if t.grad is not None else np.zeros(tuple(t.shape), self.dtype)
                for k, t in edges.items()
            }
        run_steps(
            trace,
            spec.steps if optimizer is not None else 0,
            optimizer,
            forward_backward,
            lambda: optimizer.step(),
            lambda: {name: _np(v) for name, v in model.state_dict().items()},
            (RuntimeError, ValueError),
        )
        if self.device != "cpu":
            torch.cuda.synchronize()
        for name, before, tensor in zip(
            ("input", "target", "upstream gradient"), handed, (x, target, upstream)
        ):
            check_unchanged(name, before, _np(tensor))
        return trace

    def _trace(
        self, spec: NetworkSpec, model: Any, outputs: list, loss: torch.Tensor, x: torch.Tensor
    ) -> Trace:
        """The first forward and backward, as NumPy (float32 for the half dtypes)."""
        grads = [o.grad if o.grad is not None else torch.zeros_like(o) for o in outputs]
        return Trace(
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


class Torch:
    """Torch as a :class:`harness.backends.protocol.Backend`: every layer, loss and
    optimizer torch has, every dtype, the CPU and (where present) CUDA, its dropout
    masks, and ``harness.known``'s table of its documented deviations."""

    name = "torch"

    def __init__(self) -> None:
        devices = ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
        self.capabilities = Capabilities(
            dtypes=DTYPES,
            devices=devices,
            dropout_masks=True,
            known_deviations=True,
            graphs=True,
        )

    def run(self, spec: NetworkSpec, data: CaseData, device: str, dtype: str) -> Trace:
        return TorchBackend(device, dtype).run(spec, data)

    def mask(
        self,
        spec: NetworkSpec,
        index: int,
        shape: tuple[int, ...],
        call: int,
        device: str,
        dtype: str,
    ) -> np.ndarray:
        return TorchBackend(device, dtype).mask(spec, index, shape, call)

    def consistent(
        self, spec: NetworkSpec, data: CaseData, layer: int | None, x: np.ndarray, device: str
    ) -> bool:
        """Whether torch's layer ``layer`` (None: the loss) passes gradcheck at ``x``."""
        from ..gradcheck_sides import torch_consistent

        return torch_consistent(spec, data, layer, x, device)
