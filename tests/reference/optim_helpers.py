"""What the optimizer tests share: a reference optimizer and its torch twin, stepped together.

``test_optim`` and ``test_optim_more`` subclass :class:`OptimPair` with their own
tables of optimizers; both compare every parameter and every state entry after
every step with :func:`run_and_compare`.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from harness.compare import compare_arrays, tolerance
from reference.nn import Parameter

STEPS = 20


@contextlib.contextmanager
def torch_scalar_dtype(dtype: Any):
    """Torch's optimizer scalars (``step``, NAdam's ``mu_product``) in ``dtype``.

    Torch allocates those 0-d state tensors (ASGD's ``eta`` and ``mu`` too) in
    ``torch.get_default_dtype()`` (float32 unless changed), whatever the
    parameters' dtype. ``step`` counts exactly either way, but NAdam's product of
    momentum coefficients then carries float32 rounding (~1e-8 relative in its
    update, which shows as ~1e-8 absolute errors in float64 parameters after 20
    steps at lr=0.5): float64 runs must set the default dtype to get float64 math
    from torch. ``test_torch_nadam_keeps_mu_product_in_float32_by_default`` pins
    the quirk.
    """
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def compare_state(ours: dict, theirs: dict, where: str, tol, ordered: bool = False) -> list[str]:
    """Same keys (in the same order, if ``ordered``), and every value within ``tol``.

    A value may be an array, a scalar or a list of arrays (torch's ``None`` entries
    in a list are skipped).
    """
    keys, torch_keys = (list(ours), list(theirs)) if ordered else (sorted(ours), sorted(theirs))
    if keys != torch_keys:
        return [f"{where}: state keys {keys} != torch's {torch_keys}"]
    bad = []
    for key in ours:
        a, b = ours[key], theirs[key]
        if isinstance(b, list):
            if len(a) != len(b):
                bad.append(f"{where} state[{key!r}]: length {len(a)} != torch's {len(b)}")
                continue
            pairs = [(f"{key}[{i}]", x, y) for i, (x, y) in enumerate(zip(a, b)) if y is not None]
        else:
            pairs = [(key, a, b)]
        for label, x, y in pairs:
            c = compare_arrays(f"{where} state[{label!r}]", x, y, tol)
            if not c.ok:
                bad.append(str(c))
    return bad


class OptimPair:
    """Identical parameters for a reference optimizer and its torch twin.

    A subclass builds ``self.opt`` over ``self.ours`` and ``self.torch_opt`` over
    ``self.theirs``; ``ordered_state`` asks for torch's order of state keys too.
    """

    ordered_state = False
    opt: Any
    torch_opt: Any

    def __init__(self, name: str, shapes: list[tuple], seed: int, dtype: Any):
        self.name, self.dtype = name, np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        start = [np.asarray(self.rng.standard_normal(s), dtype=self.dtype) for s in shapes]
        self.ours = [Parameter(x.copy()) for x in start]
        self.theirs = [torch.tensor(x, requires_grad=True) for x in start]

    def draw_grads(self, none_probability: float = 0.15) -> None:
        for ours, theirs in zip(self.ours, self.theirs):
            if self.rng.random() < none_probability:
                ours.grad, theirs.grad = None, None
            else:
                g = np.asarray(self.rng.standard_normal(ours.shape), dtype=self.dtype)
                ours.grad, theirs.grad = g.copy(), torch.tensor(g)

    def step(self) -> None:
        self.opt.step()
        with torch_scalar_dtype(self.dtype):
            self.torch_opt.step()

    def mismatches(self, where: str) -> list[str]:
        tol = tolerance(self.dtype)
        bad = []
        for i, (ours, theirs) in enumerate(zip(self.ours, self.theirs)):
            c = compare_arrays(f"{where} param {i}", ours.data, theirs, tol)
            if not c.ok:
                bad.append(str(c))
            bad += compare_state(
                self.opt.state.get(ours, {}),
                self.torch_opt.state.get(theirs, {}),
                f"{where} param {i}",
                tol,
                ordered=self.ordered_state,
            )
        return bad


def run_and_compare(pair: OptimPair, steps: int = STEPS, context: str = "") -> None:
    """Fresh gradients, a step of both, and every mismatch reported, ``steps`` times."""
    for k in range(steps):
        pair.draw_grads()
        pair.step()
        bad = pair.mismatches(f"{pair.name} step {k + 1}")
        assert not bad, f"{context}\n" + "\n".join(bad)
