"""Shared checks for reference.autograd ops: gradcheck through the tape, the same call on
the tape and on torch's autograd under one random upstream gradient, and torch's own
sample inputs (``op_db``) run through both."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest
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


# -- torch's own sample inputs (op_db) ------------------------------------------------
_OP_DB: list = []


def op_infos(name: str, variant: str | None = None) -> list:
    if not _OP_DB:
        from torch.testing._internal.common_methods_invocations import op_db

        _OP_DB.extend(op_db)
    return [i for i in _OP_DB if i.name == name and variant in (None, i.variant_test_name)]


def _convert(obj: Any, leaves: list, lib: str) -> Any:
    if isinstance(obj, torch.Tensor):
        data = obj.detach().numpy().copy()
        make = torch.tensor if lib == "torch" else ag.Tensor
        leaf = make(data, requires_grad=obj.requires_grad)
        leaves.append(leaf)
        return leaf
    if isinstance(obj, torch.dtype) and lib == "ours":
        return torch.empty((), dtype=obj).numpy().dtype
    if isinstance(obj, (list, tuple)):
        return type(obj)(_convert(o, leaves, lib) for o in obj)
    if isinstance(obj, dict):
        return {k: _convert(v, leaves, lib) for k, v in obj.items()}
    return obj


def _outputs(out: Any) -> list:
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _close(ours: np.ndarray, theirs: np.ndarray, what: Any, rtol: float, atol: float) -> None:
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, err_msg=str(what))


def run_op_db(name: str, ours: Callable[..., Any], variant: str | None = None, *,
              rtol: float = 1e-10, atol: float = 1e-12) -> tuple[int, int]:  # fmt: skip
    """Every float64 OpInfo sample of ``name``: forward values, dtypes and every input's
    gradient under a random upstream gradient, ours vs torch; where torch raises we raise
    the same class. A sample whose argument form the reference refuses
    (TypeError/NotImplementedError) is counted, not compared. Returns
    ``(supported, total)``."""
    supported = total = 0
    rng = np.random.default_rng(0)
    for info in op_infos(name, variant):
        for sample in info.sample_inputs("cpu", torch.float64, requires_grad=True):
            total += 1
            t_leaves: list = []
            r_leaves: list = []
            args = (sample.input, sample.args, sample.kwargs)
            t_in, r_in = _convert(args, t_leaves, "torch"), _convert(args, r_leaves, "ours")
            try:
                theirs = info.op(t_in[0], *t_in[1], **t_in[2])
            except Exception as error:  # noqa: BLE001 - ours must raise alike
                with pytest.raises(type(error)):
                    ours(r_in[0], *r_in[1], **r_in[2])
                supported += 1
                continue
            try:
                mine = ours(r_in[0], *r_in[1], **r_in[2])
            except (TypeError, NotImplementedError):
                continue
            supported += 1
            for r, t in zip(_outputs(mine), _outputs(theirs), strict=True):
                _close(r.data, t.detach().numpy(), (name, sample), rtol, atol)
                assert r.dtype == t.detach().numpy().dtype, (name, sample)
            t_float = [t for t in _outputs(theirs) if t.requires_grad]
            r_float = [r for r in _outputs(mine) if r.requires_grad]
            assert len(t_float) == len(r_float), (name, sample)
            if not t_float:
                continue
            grads = [rng.standard_normal(tuple(t.shape)) for t in t_float]
            torch.autograd.backward(t_float, [torch.tensor(g) for g in grads])
            ag.backward(r_float, grads)
            for r, t in zip(r_leaves, t_leaves):
                if t.grad is None:
                    assert r.grad is None or not np.any(r.grad.data), (name, sample)
                else:
                    assert r.grad is not None, (name, sample)
                    _close(r.grad.data, t.grad.numpy(), (name, sample, "grad"), rtol, atol)
    return supported, total
