"""One reference module against its torch twin: forward, backward, every gradient.

The per-layer tests use this; the network-level harness (``check``) does the
same layer by layer. Weights go from the reference module to the torch module
through ``state_dict`` (same keys by design), both run in the requested dtype,
and backward is driven by a random upstream gradient drawn from ``seed``.
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


def run_twin(
    ref_module: Any,
    torch_module: Any,
    inputs: Sequence[Any],
    *,
    dtype: Any = np.float64,
    device: str = "cpu",
    seed: int = 0,
    differentiable: Sequence[int] = (0,),
) -> TwinResult:
    """Run both modules on ``inputs`` and compare output, input grads and parameter grads.

    ``inputs`` are NumPy arrays; floating ones are cast to ``dtype``, integer
    ones (class targets, indices) pass as int64. ``differentiable`` lists the
    inputs whose gradient is compared (the reference module's ``backward``
    returns the gradient wrt its first input only). The reference module's
    weights are copied into the torch module first.
    """
    import torch

    tdtype = _torch_dtype(dtype)
    ref_module.to(dtype)
    torch_module.to(device=device, dtype=tdtype)
    torch_module.load_state_dict(
        {k: torch.as_tensor(v) for k, v in ref_module.state_dict().items()}, strict=True
    )
    torch_module.train(ref_module.training)

    np_inputs = [
        np.asarray(x, dtype=dtype) if np.asarray(x).dtype.kind == "f" else np.asarray(x)
        for x in inputs
    ]
    t_inputs = []
    for i, x in enumerate(np_inputs):
        t = torch.as_tensor(x.copy()).to(device)
        if i in differentiable and x.dtype.kind == "f":
            t.requires_grad_(True)
        t_inputs.append(t)

    ref_out = ref_module(*[x.copy() for x in np_inputs])
    torch_out = torch_module(*t_inputs)
    tol = tolerance(dtype, device)
    result = TwinResult([_compare("output", torch_out, ref_out, tol)])

    rng = np.random.default_rng(seed)
    grad_out = rng.standard_normal(np.shape(ref_out)).astype(dtype)
    torch_out.backward(torch.as_tensor(grad_out.copy()).to(device))
    ref_grad = ref_module.backward(grad_out.copy())
    ref_grads = ref_grad if isinstance(ref_grad, tuple) else (ref_grad,)
    for i, g in zip(differentiable, ref_grads):
        if t_inputs[i].grad is not None:
            result.comparisons.append(_compare(f"grad input{i}", t_inputs[i].grad, g, tol))

    torch_params = dict(torch_module.named_parameters())
    for name, param in ref_module.named_parameters():
        tgrad = torch_params[name].grad
        if tgrad is None and param.grad is None:
            continue
        if tgrad is None:
            tgrad = torch.zeros_like(torch_params[name])
        rgrad = param.grad if param.grad is not None else np.zeros_like(param.data)
        result.comparisons.append(_compare(f"grad {name}", tgrad, rgrad, tol))

    torch_buffers = dict(torch_module.named_buffers())
    for name, buf in ref_module.named_buffers():
        if name in torch_buffers:
            result.comparisons.append(_compare(f"buffer {name}", torch_buffers[name], buf, tol))
    return result


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
