"""LBFGS against torch.optim.LBFGS: iterates, losses and every state entry.

Both optimizers minimize the same NumPy objective, without and with the
strong-Wolfe line search: a quadratic (where L-BFGS must also converge) and
Rosenbrock's function (a curved valley: the line search brackets and zooms).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference.optim as ropt
from harness.compare import compare_arrays, tolerance
from reference.nn import Parameter
from tests.reference.test_optim import compare_state


def _lbfgs_pair(objective, x0, **kwargs):
    """Reference and torch LBFGS on ``objective(x) -> (f, grad)``.

    Both closures evaluate the same NumPy objective (torch's gets a copy of its
    parameter), so both optimizers see bit-identical losses and gradients at
    identical points: any difference is the optimizer's own arithmetic.
    """
    ours, theirs = Parameter(x0.copy()), torch.tensor(x0.copy(), requires_grad=True)
    opt, torch_opt = ropt.LBFGS([ours], **kwargs), torch.optim.LBFGS([theirs], **kwargs)

    def closure():
        opt.zero_grad()
        value, ours.grad = objective(ours.data)
        return value

    def torch_closure():
        torch_opt.zero_grad()
        value, grad = objective(theirs.detach().numpy().copy())
        theirs.grad = torch.tensor(grad)
        return torch.tensor(value)

    def step():
        loss, torch_loss = opt.step(closure), torch_opt.step(torch_closure)
        tol = tolerance(np.float64)
        bad = [
            compare_arrays("loss", loss, torch_loss, tol),
            compare_arrays("x", ours.data, theirs, tol),
        ]
        bad = [str(c) for c in bad if not c.ok]
        return bad + compare_state(opt.state[ours], torch_opt.state[theirs], "LBFGS", tol)

    return ours, opt, step


class _Quadratic:
    """:math:`f(x) = x^T A x / 2 - b^T x` with a random SPD ``A``: minimum at ``A^{-1} b``."""

    def __init__(self, n: int, seed: int):
        rng = np.random.default_rng(seed)
        m = rng.standard_normal((n, n))
        self.A, self.b = m @ m.T + n * np.eye(n), rng.standard_normal(n)

    def __call__(self, x):
        return 0.5 * x @ self.A @ x - self.b @ x, self.A @ x - self.b


class _Rosenbrock:
    """The banana valley: curved, so the line search brackets and zooms."""

    @staticmethod
    def __call__(x):
        value = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        grad = np.array(
            [-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2), 200 * (x[1] - x[0] ** 2)]
        )
        return value, grad


# (line search, lr): a tiny lr makes the strong-Wolfe search extrapolate (its x10 cap)
QUADRATIC_RUNS = [(None, 0.5), ("strong_wolfe", 1.0), ("strong_wolfe", 1e-3)]


@pytest.mark.parametrize(("line_search_fn", "lr"), QUADRATIC_RUNS)
def test_lbfgs_matches_torch_on_a_quadratic_and_converges(line_search_fn, lr):
    objective = _Quadratic(6, 0)
    x0 = np.random.default_rng(1).standard_normal(6)
    ours, opt, step = _lbfgs_pair(
        objective,
        x0,
        lr=lr,
        max_iter=10,
        history_size=4,
        line_search_fn=line_search_fn,
    )
    start = objective(ours.data)[0]
    for k in range(5):
        bad = step()
        assert not bad, f"step {k + 1}:\n" + "\n".join(bad)
    minimum = objective(np.linalg.solve(objective.A, objective.b))[0]
    gap = objective(ours.data)[0] - minimum
    if lr < 0.1:  # t starts at lr in every iteration: slow, but it must make progress
        assert 0 <= gap < 0.01 * (start - minimum)
    else:  # converged as far as tolerance_change (1e-9 on the loss) lets it go
        assert 0 <= gap < 1e-8 * abs(minimum)
    state = opt.state[ours]
    assert 0 < state["n_iter"] <= state["func_evals"]


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_lbfgs_matches_torch_on_rosenbrock(line_search_fn):
    ours, opt, step = _lbfgs_pair(
        _Rosenbrock(),
        np.array([-1.2, 1.0]),
        lr=1 if line_search_fn else 1e-3,
        max_iter=10,
        history_size=3,
        line_search_fn=line_search_fn,
    )
    # Torch fuses multiply-adds (add_ with alpha, addcmul_, lerp_) where NumPy rounds
    # twice: 1-ulp differences, which Rosenbrock's curved valley amplifies ~3x per
    # function evaluation. Two steps (~35 evaluations) stay 100x inside tolerance.
    for k in range(2):
        bad = step()
        assert not bad, f"step {k + 1}:\n" + "\n".join(bad)


def test_lbfgs_needs_a_closure():
    with pytest.raises(ValueError, match="closure"):
        ropt.LBFGS([Parameter(np.zeros(2))]).step(None)
