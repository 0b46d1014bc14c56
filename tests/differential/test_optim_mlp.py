"""Training a small MLP: reference optimizers against torch.optim on every device.

A reference ``Sequential(Linear, ReLU, Linear)`` with ``MSELoss`` and its torch
twin start from the same weights (copied through ``state_dict``) and train for
20 steps on the same batch, each with its own optimizer built from the same
name and arguments, the way the harness builds them:
``getattr(reference.optim, name)(model.parameters(), **kwargs)``. Parameters
must agree after every step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import reference.nn as rnn
import reference.optim as ropt
from harness.compare import compare_arrays, tolerance
from tests.reference.test_optim import torch_scalar_dtype

STEPS = 20

CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, maximize=False)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=1e-2)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
    ("Adamax", dict(lr=0.01, weight_decay=1e-3)),
    ("NAdam", dict(lr=0.01, decoupled_weight_decay=True, weight_decay=1e-2)),
    ("RAdam", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.005, momentum=0.5, centered=True, weight_decay=1e-3)),
    ("Adagrad", dict(lr=0.1, lr_decay=1e-2, initial_accumulator_value=0.1)),
    ("Adadelta", dict(lr=1.0, rho=0.8)),
]


def _ids(cases: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [f"{name}-{i}" for i, (name, _) in enumerate(cases)]


def _torch_dtype(dtype: Any) -> torch.dtype:
    return {np.float32: torch.float32, np.float64: torch.float64}[dtype]


class Twins:
    """The reference MLP, its torch twin with the same weights, and one batch of data."""

    def __init__(self, dtype: Any, device: str, seed: int = 0):
        self.dtype, self.device = dtype, device
        self.ours = rnn.Sequential(
            rnn.Linear(4, 8, rng=seed, dtype=dtype),
            rnn.ReLU(),
            rnn.Linear(8, 3, rng=seed + 1, dtype=dtype),
        )
        self.theirs = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
        ).to(device=device, dtype=_torch_dtype(dtype))
        self.theirs.load_state_dict({k: torch.tensor(v) for k, v in self.ours.state_dict().items()})
        rng = np.random.default_rng(seed + 2)
        self.x = rng.standard_normal((16, 4)).astype(dtype)
        self.y = rng.standard_normal((16, 3)).astype(dtype)
        self.tx = torch.tensor(self.x, device=device)
        self.ty = torch.tensor(self.y, device=device)
        self.loss, self.torch_loss = rnn.MSELoss(), torch.nn.MSELoss()

    def closure(self, optimizer: ropt.Optimizer):
        def evaluate() -> np.ndarray:
            optimizer.zero_grad()
            loss = self.loss(self.ours(self.x), self.y)
            self.ours.backward(self.loss.backward())
            return loss

        return evaluate

    def torch_closure(self, optimizer: torch.optim.Optimizer):
        def evaluate() -> torch.Tensor:
            optimizer.zero_grad()
            loss = self.torch_loss(self.theirs(self.tx), self.ty)
            loss.backward()
            return loss

        return evaluate

    def mismatches(self, where: str) -> list[str]:
        tol = tolerance(self.dtype, self.device)
        theirs = self.theirs.state_dict()
        return [
            str(c)
            for key, value in self.ours.state_dict().items()
            if not (c := compare_arrays(f"{where} {key}", value, theirs[key], tol)).ok
        ]


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=_ids(CASES))
def test_mlp_trains_like_torch(name, kwargs, dtype, device):
    twins = Twins(dtype, device)
    opt = getattr(ropt, name)(twins.ours.parameters(), **kwargs)
    torch_opt = getattr(torch.optim, name)(twins.theirs.parameters(), **kwargs)
    closure, torch_closure = twins.closure(opt), twins.torch_closure(torch_opt)
    first = None
    for step in range(1, STEPS + 1):
        closure()
        opt.step()
        torch_closure()
        with torch_scalar_dtype(dtype):  # NAdam's mu_product in the parameters' precision
            torch_opt.step()
        bad = twins.mismatches(f"{name}({kwargs}) step {step}")
        assert not bad, "\n".join(bad)
        first = first if first is not None else float(twins.loss(twins.ours(twins.x), twins.y))
    assert float(twins.loss(twins.ours(twins.x), twins.y)) < first, "the MLP did not train"


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_mlp_lbfgs_matches_torch(line_search_fn, device):
    twins = Twins(np.float64, device)
    kwargs = dict(
        lr=1 if line_search_fn else 0.2, max_iter=5, history_size=5, line_search_fn=line_search_fn
    )
    opt = ropt.LBFGS(twins.ours.parameters(), **kwargs)
    torch_opt = torch.optim.LBFGS(twins.theirs.parameters(), **kwargs)
    losses = []
    for step in range(1, 4):
        loss = opt.step(twins.closure(opt))
        torch_loss = torch_opt.step(twins.torch_closure(torch_opt))
        c = compare_arrays("loss", loss, torch_loss, tolerance(np.float64, device))
        bad = ([] if c.ok else [str(c)]) + twins.mismatches(f"LBFGS step {step}")
        assert not bad, "\n".join(bad)
        losses.append(float(loss))
    assert losses[-1] < losses[0]
