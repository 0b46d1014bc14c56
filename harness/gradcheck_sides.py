"""Is one layer self-consistent? Gradcheck each side's layer alone, in float64.

Used by ``check`` to decide which side to blame for a mismatch the float64 run
shows too: a layer whose backward disagrees with central differences of its
own forward is wrong, whatever the other side says. The reference side uses
``reference.gradcheck``, the torch side ``torch.autograd.gradcheck``, both with
``harness.compare.GRADCHECK``'s step and tolerances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference.nn import Module

from .backends import CaseData
from .compare import GRADCHECK
from .spec import (
    NetworkSpec,
    build_reference_layers,
    extra_output_names,
    layer_kwargs,
    reference_class,
    split_output,
)

__all__ = ["reference_consistent", "torch_consistent"]


def _weights(data: CaseData, layer: int) -> dict[str, np.ndarray]:
    prefix = f"{layer}."
    return {k[len(prefix) :]: v for k, v in data.weights.items() if k.startswith(prefix)}


def reference_consistent(
    spec: NetworkSpec, data: CaseData, layer: int | None, x: np.ndarray
) -> bool:
    """Whether the reference layer (``None``: the loss) passes gradcheck at input ``x``."""
    from reference import gradcheck

    if layer is None:
        loss = reference_class(spec.loss.type)(**layer_kwargs(spec.loss, np.float64))
        return bool(gradcheck(loss, np.array(x, dtype=np.float64), data.target, **GRADCHECK).ok)
    module = build_reference_layers(spec, np.random.default_rng(0), np.float64)[layer]
    module.load_state_dict(_weights(data, layer))
    module.train(spec.train)
    if extra_output_names(spec.layers[layer].type):
        module = _Passed(module)
    xs = x if isinstance(x, tuple) else (x,)  # a graph node may take several inputs
    wrt = tuple(k for k, a in enumerate(xs) if np.asarray(a).dtype.kind == "f")
    return bool(gradcheck(module, *(np.array(a) for a in xs), wrt=wrt, **GRADCHECK).ok)


class _Passed(Module):
    """A layer as the chain uses it: only the output it passes on (a recurrent layer's
    sequence), its final states dropped, so gradcheck sees one array."""

    def __init__(self, inner: Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: np.ndarray) -> np.ndarray:
        return split_output(self.inner(x))[0]

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return self.inner.backward(grad_output)


def torch_consistent(
    spec: NetworkSpec, data: CaseData, layer: int | None, x: np.ndarray, device: str = "cpu"
) -> bool:
    """Whether the torch layer (``None``: the loss) passes ``torch.autograd.gradcheck``."""
    import torch

    from .backends.torch import build_torch_layer

    opts: dict[str, Any] = {
        "eps": GRADCHECK["eps"],
        "atol": GRADCHECK["atol"],
        "rtol": GRADCHECK["rtol"],
        "raise_exception": False,
    }
    if layer is None:
        xt = torch.tensor(np.asarray(x), device=device, requires_grad=True)
        loss = build_torch_layer(spec.loss.type, spec.loss.kwargs, torch.float64, device)
        target = torch.as_tensor(data.target, device=device)
        return bool(torch.autograd.gradcheck(lambda z: loss(z, target), (xt,), **opts))
    # a graph node may take several inputs
    return _torch_layer_consistent(spec, data, layer, x if isinstance(x, tuple) else (x,),
                                   device, opts)  # fmt: skip


def _torch_layer_consistent(
    spec: NetworkSpec, data: CaseData, layer: Any, xs: tuple, device: str, opts: dict
) -> bool:
    """:func:`torch_consistent` for layer ``layer`` on its inputs ``xs``."""
    import torch
    from torch.func import functional_call

    from .backends.torch import build_torch_layer

    spec_layer = spec.layers[layer]
    module = build_torch_layer(spec_layer.type, spec_layer.kwargs, torch.float64, device)
    module.to(device=device, dtype=torch.float64)
    with torch.no_grad():
        module.load_state_dict(
            {k: torch.from_numpy(np.asarray(v)) for k, v in _weights(data, layer).items()}
        )
    module.train(spec.train)
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]
    buffers = {n: b.clone() for n, b in module.named_buffers()}
    inputs = [torch.tensor(np.asarray(x), device=device) for x in xs]
    for t in inputs:
        if t.is_floating_point():
            t.requires_grad_(True)
    n = len(inputs)

    def fn(*args: Any) -> Any:
        out = functional_call(module, {**dict(zip(names, args[n:])), **buffers}, tuple(args[:n]))
        return split_output(out)[0]

    return bool(torch.autograd.gradcheck(fn, (*inputs, *params), **opts))


# directional central differences of a backend's own forward (any backend): random
# directions, so each costs two runs whatever the layer's size
_DIRECTIONS = 3


def backend_consistent(
    backend: Any,
    spec: NetworkSpec,
    data: CaseData,
    layer: int | None,
    x: np.ndarray,
    out_shape: tuple[int, ...],
    device: str = "cpu",
) -> bool | None:
    """Whether ``backend``'s layer ``layer`` passes a directional gradcheck at input ``x``:
    for random directions ``v`` (of the input, then of all the weights together),
    ``<grad, v>`` against ``(L(x + εv) - L(x - εv)) / 2ε`` with ``L = mean(layer(x)²)``,
    all run by the backend in float64. None when that cannot be asked of it: the loss
    (layer None), or a backend without float64 or MSELoss."""
    from .spec import LayerSpec

    caps = backend.capabilities
    if layer is None or isinstance(x, tuple) or not caps.runs_in("float64"):
        return None
    if caps.losses is not None and "MSELoss" not in caps.losses:
        return None
    one = NetworkSpec(
        tuple(np.shape(x)),
        [spec.layers[layer]],
        LayerSpec("MSELoss"),
        train=spec.train,
        seed=spec.seed,
        input_kind=spec.input_kind,
        index_high=spec.index_high,
    )
    weights = {f"0.{k}": v for k, v in _weights(data, layer).items()}
    zeros = np.zeros(out_shape)

    def run(inp: np.ndarray, w: dict[str, np.ndarray]) -> Any:
        case = CaseData(w, inp, zeros, np.asarray(1.0), out_shape)
        return backend.run(one, case, device, "float64")

    base = run(np.asarray(x), weights)
    rng = np.random.default_rng(spec.seed)
    eps = GRADCHECK["eps"]
    for _ in range(_DIRECTIONS):
        if np.asarray(x).dtype.kind == "f":
            v = rng.standard_normal(np.shape(x))
            numeric = (run(x + eps * v, weights).loss - run(x - eps * v, weights).loss) / (2 * eps)
            if not _close(float(np.sum(base.grad_input * v)), float(numeric), float(base.loss)):
                return False
        if weights:
            vs = {k: rng.standard_normal(np.shape(w)) for k, w in weights.items()}
            plus = {k: w + eps * vs[k] for k, w in weights.items()}
            minus = {k: w - eps * vs[k] for k, w in weights.items()}
            numeric = (run(x, plus).loss - run(x, minus).loss) / (2 * eps)
            analytic = sum(float(np.sum(base.grad_params[k] * vs[k])) for k in weights)
            if not _close(analytic, float(numeric), float(base.loss)):
                return False
    return True


def _close(analytic: float, numeric: float, scale: float) -> bool:
    """Within gradcheck's tolerances, the absolute one at the loss's scale (the rounding
    of a difference of two losses, over 2ε)."""
    atol = GRADCHECK["atol"] * max(1.0, abs(scale))
    return abs(analytic - numeric) <= atol + GRADCHECK["rtol"] * abs(numeric)
