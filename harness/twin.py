"""One reference module or function against its torch twin: forward, backward, every
gradient.

The per-layer tests use this; the network-level harness (``check``) does the
same layer by layer. Weights go from the reference module to the torch module
through ``state_dict`` (same keys by design), both run in the requested dtype,
and backward is driven by a random upstream gradient from ``seed``'s own stream
(:func:`upstream_gradient`), never the input's.

Its tolerance is ``harness.compare.tolerance``: fixed, per dtype, for one layer at a
time. For whole networks, and for float32 verdicts that hold over long fuzz runs, use
``harness.check``, which judges each side against an error model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .compare import Comparison, compare_arrays, tolerance


@dataclass
class TwinResult:
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)

    def failures(self) -> list[Comparison]:
        return [c for c in self.comparisons if not c.ok]

    def __str__(self) -> str:
        lines = [str(c) for c in self.comparisons if not c.ok] or ["all match"]
        return "\n".join(lines)


def _torch_dtype(dtype: Any) -> Any:
    import torch

    return {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]


# the upstream gradient's own stream: never the input's (a user's default_rng(seed) draw
# of the same shape would otherwise equal it, and LayerNorm's true input gradient at
# g = x is 0, leaving only rounding noise to compare)
_UPSTREAM_STREAM = 0x6772_6164  # "grad"


def upstream_gradient(shape: tuple[int, ...], dtype: Any, seed: int = 0) -> np.ndarray:
    """The random upstream gradient a twin run draws: standard normal, from ``seed``'s own
    stream (``SeedSequence([seed, "grad"])``), never equal to ``default_rng(seed)``'s."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _UPSTREAM_STREAM]))
    return rng.standard_normal(shape).astype(dtype)


def run_twin(
    ref: Any,
    twin: Any,
    inputs: Sequence[Any],
    *,
    dtype: Any = np.float64,
    device: str = "cpu",
    seed: int = 0,
    differentiable: Sequence[int] | None = None,
    **kwargs: Any,
) -> TwinResult:
    """Run a reference module or function and its torch twin on ``inputs``; compare the
    output, the input gradients and (modules) the parameter gradients and buffers.

    - A module (``reference.nn``): cast to ``dtype`` and run as given, so its gradients,
      buffers and weights are there to read afterwards; its weights are copied into the
      torch module first.
    - A function (``reference.functional.relu``): its backward is found by name,
      ``<name>_backward(grad_output, *inputs, **kwargs)``, in the same module, and the
      gradients it returns are compared with torch's for those inputs.

    ``inputs`` are NumPy arrays; floating ones are cast to ``dtype``, integer ones (class
    targets, indices) pass as int64. ``differentiable``: the inputs whose gradient is
    compared (default: the first for a module, every one the backward returns for a
    function). ``kwargs`` go to both functions (``dim=1``). Backward is driven by
    :func:`upstream_gradient` from ``seed``.
    """
    np_inputs = [
        np.asarray(x, dtype=dtype) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
        for x in inputs
    ]
    module = ref.to(dtype) if _is_module(ref) else None
    if module is not None:
        _load_twin(module, twin, dtype, device)
    ref_out, ref_grads, grad_out = _reference_side(module or ref, np_inputs, seed, kwargs)
    if differentiable is None:
        differentiable = (0,) if module is not None else range(len(ref_grads))
    wanted = [i for i in differentiable if i < len(ref_grads) and ref_grads[i] is not None]
    torch_out, t_inputs = _torch_side(twin, np_inputs, wanted, device, grad_out, kwargs)
    tol = tolerance(dtype, device)
    result = TwinResult([_compare("output", torch_out, ref_out, tol)])
    for i in wanted:
        if t_inputs[i].grad is not None:
            result.comparisons.append(
                _compare(f"grad input{i}", t_inputs[i].grad, ref_grads[i], tol)
            )
    if module is not None:
        result.comparisons += _module_comparisons(module, twin, tol)
    return result


def _reference_side(
    ref: Any, inputs: list[np.ndarray], seed: int, kwargs: dict[str, Any]
) -> tuple[Any, tuple, np.ndarray]:
    """The reference's output, its gradients wrt its inputs, and the upstream gradient."""
    if _is_module(ref):
        out = ref(*[x.copy() for x in inputs])
        grad_out = upstream_gradient(np.shape(out), np.asarray(out).dtype, seed)
        return out, _as_tuple(ref.backward(grad_out.copy())), grad_out
    backward = _backward_of(ref)
    out = ref(*[x.copy() for x in inputs], **kwargs)
    grad_out = upstream_gradient(np.shape(out), np.asarray(out).dtype, seed)
    grads = _as_tuple(backward(grad_out.copy(), *[x.copy() for x in inputs], **kwargs))
    return out, grads, grad_out


def _torch_side(
    twin: Any,
    inputs: list[np.ndarray],
    wanted: Sequence[int],
    device: str,
    grad_out: np.ndarray,
    kwargs: dict[str, Any],
) -> tuple[Any, list[Any]]:
    """The twin's output and its inputs (``wanted`` ones with their gradients)."""
    import torch

    t_inputs = [torch.as_tensor(x.copy()).to(device) for x in inputs]
    for i in wanted:
        if t_inputs[i].is_floating_point():
            t_inputs[i].requires_grad_(True)
    out = twin(*t_inputs, **kwargs) if kwargs else twin(*t_inputs)
    out.backward(torch.as_tensor(grad_out.copy()).to(device))
    return out, t_inputs


def _is_module(obj: Any) -> bool:
    from reference.nn.module import Module

    return isinstance(obj, Module)


def _as_tuple(grads: Any) -> tuple:
    return grads if isinstance(grads, tuple) else (grads,)


def _backward_of(fn: Any) -> Any:
    """``<name>_backward`` beside the reference function ``fn``, or a clear error."""
    import importlib

    name = getattr(fn, "__name__", repr(fn))
    home = importlib.import_module(getattr(fn, "__module__", None) or "reference.functional")
    backward = getattr(home, f"{name}_backward", None)
    if backward is None:
        raise TypeError(
            f"run_twin: {name} is not a reference.nn module and {home.__name__} has no "
            f"{name}_backward; pass a module, or a reference.functional function that "
            "has its backward beside it"
        )
    return backward


def _load_twin(module: Any, twin: Any, dtype: Any, device: str) -> None:
    """The torch twin in ``dtype`` on ``device`` with the reference module's weights."""
    import torch

    twin.to(device=device, dtype=_torch_dtype(dtype))
    twin.load_state_dict(
        {k: torch.as_tensor(v) for k, v in module.state_dict().items()}, strict=True
    )
    twin.train(module.training)


def _module_comparisons(module: Any, twin: Any, tol: Any) -> list[Comparison]:
    """Every parameter's gradient and every buffer, by state_dict name."""
    import torch

    out = []
    torch_params = dict(twin.named_parameters())
    for name, param in module.named_parameters():
        tgrad = torch_params[name].grad
        if tgrad is None and param.grad is None:
            continue
        if tgrad is None:
            tgrad = torch.zeros_like(torch_params[name])
        rgrad = param.grad if param.grad is not None else np.zeros_like(param.data)
        out.append(_compare(f"grad {name}", tgrad, rgrad, tol))
    torch_buffers = dict(twin.named_buffers())
    for name, buf in module.named_buffers():
        if name in torch_buffers:
            out.append(_compare(f"buffer {name}", torch_buffers[name], buf, tol))
    return out


def _compare(name: str, torch_value: Any, reference_value: Any, tol: Any) -> Comparison:
    """Torch against the reference, labelled and oriented as ``check``'s reports are: the
    difference is torch's, measured at the reference's scale."""
    comparison = compare_arrays(name, torch_value, reference_value, tol)
    comparison.labels = ("torch", "reference")
    return comparison


def assert_twin(*args: Any, **kwargs: Any) -> TwinResult:
    """:func:`run_twin`, raising ``AssertionError`` listing every mismatch."""
    result = run_twin(*args, **kwargs)
    if not result.ok:
        raise AssertionError(f"reference and torch disagree:\n{result}")
    return result
