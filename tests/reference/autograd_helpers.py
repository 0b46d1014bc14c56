"""Shared checks for reference.autograd ops: gradcheck through the tape, and the same
call on the tape and on torch's autograd under one random upstream gradient."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

import reference.autograd as ag
from harness.compare import GRADCHECK
from reference.gradcheck import gradcheck


def tape_gradcheck(fn: Callable[..., ag.Tensor], *arrays: np.ndarray, seed: int = 0) -> Any:
    """gradcheck in float64 of ``fn`` (Tensors in, one Tensor out) through the tape."""

    def forward(*xs: np.ndarray) -> np.ndarray:
        return fn(*(ag.Tensor(x) for x in xs)).data

    def backward(grad_output: np.ndarray, *xs: np.ndarray) -> tuple:
        leaves = [ag.Tensor(x, requires_grad=True) for x in xs]
        fn(*leaves).backward(grad_output)
        return tuple(np.zeros_like(x) if t.grad is None else t.grad.data
                     for t, x in zip(leaves, xs))  # fmt: skip

    return gradcheck(forward, *arrays, backward=backward, seed=seed, **GRADCHECK)


def against_torch(ours: Callable[..., ag.Tensor], theirs: Callable[..., torch.Tensor],
                  arrays: Sequence[np.ndarray], rtol: float, atol: float = 0.0,
                  seed: int = 0) -> None:  # fmt: skip
    """Forward values and every floating input's gradient under one random upstream
    gradient, the tape vs torch's autograd; integer arrays pass through without grad."""
    ref_in = [ag.Tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    tor_in = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ref_out, tor_out = ours(*ref_in), theirs(*tor_in)
    np.testing.assert_allclose(ref_out.data, tor_out.detach().numpy(), rtol=rtol, atol=atol)
    assert ref_out.dtype == tor_out.detach().numpy().dtype
    if not tor_out.requires_grad:
        return
    g = np.random.default_rng(seed).standard_normal(tor_out.shape).astype(ref_out.dtype)
    ref_out.backward(g)
    tor_out.backward(torch.tensor(g))
    for r, t in zip(ref_in, tor_in):
        if t.grad is None:
            assert r.grad is None or not np.any(r.grad.data)
        else:
            assert r.grad is not None
            np.testing.assert_allclose(r.grad.data, t.grad.numpy(), rtol=rtol, atol=atol)
