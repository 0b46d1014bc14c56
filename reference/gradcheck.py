"""Check a hand-written backward against central differences, in float64.

The reference must be right on its own, not only "the same as torch". For a
function :math:`f` and a random upstream gradient :math:`g`, the analytic
vector-Jacobian product :math:`J^\\top g` is compared, element by element, with

.. math:: \\frac{\\partial}{\\partial x_k} \\langle g, f(x) \\rangle
          \\approx \\frac{\\langle g, f(x + \\epsilon e_k)\\rangle
                         - \\langle g, f(x - \\epsilon e_k)\\rangle}{2\\epsilon}

whose error is :math:`O(\\epsilon^2)`. A random :math:`g` (never ones) makes a
transposed or mis-broadcast gradient visible.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from .nn.module import Module


@dataclass
class GradcheckResult:
    """Outcome of :func:`gradcheck`; truthy when every element passed.

    ``worst`` describes the element with the largest error relative to the
    allowance ``atol + rtol * |numerical|``.
    """

    ok: bool
    worst: dict[str, Any] = field(default_factory=dict)
    checked: int = 0

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        verdict = "passed" if self.ok else "FAILED"
        if not self.worst:
            return f"gradcheck {verdict} ({self.checked} elements)"
        w = self.worst
        return (
            f"gradcheck {verdict} ({self.checked} elements); worst element: {w['name']}"
            f"{list(w['index'])}: analytic {w['analytic']:.10g}, numerical "
            f"{w['numerical']:.10g}, |diff| {w['abs_err']:.3g} (allowed {w['allowed']:.3g})"
        )


def _as_tuple(grads: Any) -> tuple:
    return grads if isinstance(grads, tuple) else (grads,)


def gradcheck(
    fn: Callable[..., Any] | Module,
    *inputs: Any,
    backward: Callable[..., Any] | None = None,
    wrt: Sequence[int] | None = None,
    grad_output: np.ndarray | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> GradcheckResult:
    """Compare an analytic backward with central differences in float64.

    Parameters
    ----------
    fn
        A function ``fn(*inputs) -> output``, or a :class:`~reference.nn.Module`.
        A module's parameters are checked too, and its ``backward`` is used.
        The caller's module is left as it was (dtype, values, ``grad``, cache):
        the check runs on a ``copy.deepcopy`` of it cast to float64, whose grads
        are cleared before its one backward, so gradients that an earlier
        backward accumulated into ``Parameter.grad`` neither enter the check
        nor are changed by it.
    inputs
        Arrays (floating ones are copied to float64) and other arguments
        (integer targets, flags) passed through unchanged.
    backward
        For a plain function: ``backward(grad_output, *inputs)`` returning the
        gradient wrt each input in ``wrt`` (a tuple if several; ``None`` entries
        are skipped).
    wrt
        Indices of the inputs to differentiate. Default: every floating input
        of a function; the first input of a module.
    grad_output
        The upstream gradient; default a standard normal draw from ``seed``.
    eps, atol, rtol
        Step and tolerances, by default torch.autograd.gradcheck's:
        ``eps = 1e-6, atol = 1e-5, rtol = 1e-3`` (the tests and the harness pass
        ``harness.compare.GRADCHECK``'s tighter ones). An element passes when
        ``|analytic - numerical| <= atol + rtol * |numerical|``. With
        :math:`\\phi(x) = \\langle g, f(x) \\rangle`, the central difference errs
        by :math:`\\epsilon^2 |\\phi^{(3)}| / 6` (truncation) plus about
        :math:`u |\\phi| / \\epsilon` (rounding, :math:`u = 1.1 \\cdot 10^{-16}`);
        a one-sided difference would err by :math:`\\epsilon |\\phi^{(2)}| / 2`.
    """
    if not isinstance(fn, Module) and backward is None:
        raise ValueError("gradcheck: pass backward=... for a plain function (a Module has its own)")
    # a private float64 copy: .double() and the backward's accumulation act in place
    module = copy.deepcopy(fn).double() if isinstance(fn, Module) else None
    forward: Callable[..., Any] = module if module is not None else fn
    args = [np.array(x, dtype=np.float64) if _is_float(x) else x for x in inputs]
    if wrt is None:
        wrt = [0] if module is not None else [i for i, x in enumerate(args) if _is_float(x)]

    output = np.asarray(forward(*args), dtype=np.float64)
    if grad_output is None:
        grad_output = np.random.default_rng(seed).standard_normal(output.shape)
    grad_output = np.asarray(grad_output, dtype=np.float64)

    if module is not None:
        targets = _module_targets(module, args, wrt, grad_output)
    else:  # not None: a plain function without backward was refused on entry
        targets = _function_targets(cast(Callable[..., Any], backward), args, wrt, grad_output)

    def objective() -> float:
        return float(np.sum(grad_output * np.asarray(forward(*args), dtype=np.float64)))

    return _compare(targets, objective, eps, atol, rtol)


_Target = tuple[str, np.ndarray, np.ndarray]  # (name, the array perturbed, its analytic grad)


def _module_targets(
    module: Module, args: list, wrt: Sequence[int], grad_output: np.ndarray
) -> list[_Target]:
    """The input and parameter gradients of one backward of ``module`` (forward already run).

    The grads are cleared first: ``backward`` *adds* :math:`J^\\top g` to
    ``Parameter.grad``, so a stale value would be counted in the analytic side.
    """
    module.zero_grad()
    grads = _as_tuple(module.backward(grad_output.copy()))
    if len(wrt) > len(grads):
        raise ValueError(f"gradcheck: {type(module).__name__}.backward returns one gradient")
    targets = [(f"input{i}", args[i], np.asarray(g)) for i, g in zip(wrt, grads)]
    for name, param in module.named_parameters():
        grad = param.grad if param.grad is not None else np.zeros_like(param.data)
        targets.append((name, param.data, grad))
    return targets


def _function_targets(
    backward: Callable[..., Any], args: list, wrt: Sequence[int], grad_output: np.ndarray
) -> list[_Target]:
    """The gradients ``backward(g, *args)`` returns for the inputs in ``wrt``."""
    grads = _as_tuple(backward(grad_output.copy(), *args))
    if len(grads) < len(wrt):
        raise ValueError(f"gradcheck: backward returned {len(grads)} gradients for wrt={wrt}")
    return [(f"input{i}", args[i], np.asarray(g)) for i, g in zip(wrt, grads) if g is not None]


def _compare(
    targets: list[_Target], objective: Callable[[], float], eps: float, atol: float, rtol: float
) -> GradcheckResult:
    """Each analytic element against :math:`(\\phi(x + \\epsilon e_k) - \\phi(x - \\epsilon e_k))
    / 2\\epsilon`, where ``objective()`` evaluates :math:`\\phi` at the arrays' current values."""
    worst: dict[str, Any] = {}
    worst_ratio, checked, ok = -1.0, 0, True
    for name, array, analytic in targets:
        if analytic.shape != array.shape:
            mismatch = {"name": name, "index": (), "analytic": np.nan, "numerical": np.nan}
            return GradcheckResult(False, {**mismatch, "abs_err": np.inf, "allowed": 0.0}, checked)
        flat = array.reshape(-1)  # a view: perturbing it perturbs what fn reads
        for k in range(flat.size):
            saved = flat[k]
            flat[k] = saved + eps
            plus = objective()
            flat[k] = saved - eps
            minus = objective()
            flat[k] = saved
            numerical = (plus - minus) / (2 * eps)
            value = float(analytic.reshape(-1)[k])
            err = abs(value - numerical)
            allowed = atol + rtol * abs(numerical)
            checked += 1
            ok &= err <= allowed
            if err / allowed > worst_ratio:
                worst_ratio = err / allowed
                worst = {
                    "name": name,
                    "index": tuple(int(i) for i in np.unravel_index(k, array.shape)),
                    "analytic": value,
                    "numerical": numerical,
                    "abs_err": err,
                    "allowed": allowed,
                }
    return GradcheckResult(bool(ok), worst, checked)


def _is_float(x: Any) -> bool:
    return isinstance(x, (np.ndarray, float)) and np.asarray(x).dtype.kind == "f"
