"""The reference.autograd engine (graph.py, tensor.py) driven through the arithmetic and
reduction ops, side by side with torch: the tutorial example, gradient accumulation,
retain_graph and the freed-graph error, non-scalar backward, retain_grad, the graph's
structure (grad_fn names, next_functions, is_leaf), no_grad/enable_grad/set_grad_enabled,
detach, autograd.grad, in-place modification of a saved tensor, requires_grad rules,
repr.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch

import reference.autograd as ag
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

LIBS = [ag, torch]


def _error(call: Any) -> tuple[type, str]:
    with pytest.raises(Exception) as info:
        call()
    return type(info.value), str(info.value)


def _both(call: Any) -> None:
    """``call(lib)`` raises the same exception class and message on both libraries."""
    assert _error(lambda: call(ag)) == _error(lambda: call(torch))


def test_tutorial_example() -> None:
    """torch's autograd tutorial: out = mean(3 (x + 2)^2) at x = 1 is 27, d out/dx = 4.5."""
    x = ag.ones(2, 2, requires_grad=True)
    y = x + 2
    z = y * y * 3
    out = z.mean()
    assert out.item() == 27.0 and out.dtype == np.float32
    assert y.grad_fn.name() == "AddBackward0" and z.grad_fn.name() == "MulBackward0"
    assert repr(out) == "tensor(27., grad_fn=<MeanBackward0>)"
    assert repr(x) == "tensor([[1., 1.],\n        [1., 1.]], requires_grad=True)"
    out.backward()
    np.testing.assert_array_equal(x.grad.data, np.full((2, 2), 4.5, np.float32))
    assert y.grad is None and x.grad.dtype == np.float32


@pytest.mark.parametrize("lib", LIBS, ids=["ours", "torch"])
def test_repr(lib: Any) -> None:
    x = lib.tensor([1.0, 2.5], requires_grad=True)
    assert repr(x * 2) == "tensor([2., 5.], grad_fn=<MulBackward0>)"
    assert repr((x * 2).sum()) == "tensor(7., grad_fn=<SumBackward0>)"
    assert repr(x.detach()) == "tensor([1.0000, 2.5000])"


def _run(lib: Any, steps: Any) -> list:
    x = lib.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=lib.float64, requires_grad=True)
    w = lib.tensor([0.3, -0.7], dtype=lib.float64, requires_grad=True)
    return steps(lib, x, w)


def _compare(steps: Any) -> None:
    for ours, theirs in zip(_run(ag, steps), _run(torch, steps), strict=True):
        theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
        ours = ours.data if isinstance(ours, ag.Tensor) else ours
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_grad_accumulates_across_backwards() -> None:
    def steps(lib: Any, x: Any, w: Any) -> list:
        (x @ w).exp().sum().backward()
        first = x.grad.clone() if lib is torch else ag.Tensor(x.grad.data.copy())
        (x * w).pow(2).mean().backward()
        return [first, x.grad, w.grad]

    _compare(steps)


def test_retain_graph_and_freed_graph_error() -> None:
    def steps(lib: Any, x: Any, w: Any) -> list:
        y = (x * w).sigmoid().sum()
        y.backward(retain_graph=True)
        y.backward()
        return [x.grad, w.grad]

    _compare(steps)

    def twice(lib: Any) -> None:
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        y = (x * x).sum()
        y.backward()
        y.backward()

    _both(twice)


def test_non_scalar_backward() -> None:
    _both(lambda lib: (lib.ones(3, requires_grad=True) * 2).backward())

    def steps(lib: Any, x: Any, w: Any) -> list:
        y = x * w - x.abs()
        y.backward(lib.tensor([[1.0, 2.0], [-3.0, 0.5]], dtype=lib.float64))
        return [x.grad, w.grad]

    _compare(steps)


def test_backward_without_grad_raises() -> None:
    _both(lambda lib: lib.ones(3).sum().backward())
    _both(lambda lib: (lib.ones(3) * 2).sum().backward())


def test_retain_grad() -> None:
    def steps(lib: Any, x: Any, w: Any) -> list:
        h = x * w
        h.retain_grad()
        u = h.tanh()
        u.retain_grad()
        (u * u).sum().backward()
        assert h.retains_grad and not x.retains_grad
        return [h.grad, u.grad, x.grad]

    _compare(steps)
    for lib in LIBS:
        y = lib.ones(2, requires_grad=True) * 2
        y.sum().backward()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns on reading a non-leaf's grad
            assert y.grad is None  # a non-leaf keeps no grad unless retain_grad()
    _both(lambda lib: lib.ones(2).retain_grad())


def _names(fn: Any, depth: int = 4) -> Any:
    """grad_fn's tree as names, to compare the two libraries' graphs."""
    if fn is None:
        return None
    kids = [(_names(n, depth - 1) if depth else "...", i) for n, i in fn.next_functions]
    return fn.name().removeprefix("torch::autograd::"), kids


def test_graph_structure() -> None:
    def graph(lib: Any) -> Any:
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = lib.tensor([3.0, 4.0], requires_grad=True)
        c = lib.tensor([5.0, 6.0])  # needs no grad: (None, 0) in next_functions
        d = (a * b + c).exp() / (a - 2) @ b
        leaves = [t.is_leaf for t in (a, b, c, d)]
        return _names(d.grad_fn), leaves, d.requires_grad, (a * b).grad_fn.next_functions[0][0]

    ours, theirs = graph(ag), graph(torch)
    assert ours[:3] == theirs[:3]
    assert ours[3].name() == "AccumulateGrad" and ours[1] == [True, True, True, False]
    a = ag.tensor([1.0], requires_grad=True)
    assert (a * 2).grad_fn.next_functions[0][0].variable is a  # the leaf's accumulator


@pytest.mark.parametrize("lib", LIBS, ids=["ours", "torch"])
def test_no_grad_enable_grad_set_grad_enabled(lib: Any) -> None:
    x = lib.ones(2, requires_grad=True)
    with lib.no_grad():
        y = x * 2
        assert not lib.is_grad_enabled()
        with lib.enable_grad():
            z = x * 3
    assert not y.requires_grad and y.grad_fn is None and y.is_leaf
    assert z.requires_grad and z.grad_fn is not None and lib.is_grad_enabled()

    @lib.no_grad()
    def doubled(t: Any) -> Any:
        return t * 2

    assert doubled(x).grad_fn is None and lib.is_grad_enabled()
    with lib.set_grad_enabled(False):
        assert (x + 1).grad_fn is None
    assert (x + 1).grad_fn is not None


@pytest.mark.parametrize("lib", LIBS, ids=["ours", "torch"])
def test_detach(lib: Any) -> None:
    x = lib.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert d.grad_fn is None and not d.requires_grad and d.is_leaf
    z = (d * x).sum()
    z.backward()
    np.testing.assert_array_equal(np.asarray(x.grad.numpy()), [3.0, 6.0])  # d a constant


def test_autograd_grad() -> None:
    """The derivative at a point, and the partials of f(u, v) = u^2 v + sin(u v)."""
    for lib in LIBS:
        lib_grad = torch.autograd.grad if lib is torch else ag.grad
        x = lib.tensor(0.7, dtype=lib.float64, requires_grad=True)
        (dx,) = lib_grad(x**3 - 2 * x, x)
        assert abs(dx.item() - (3 * 0.7**2 - 2)) < 1e-15 and x.grad is None
    results = []
    for lib in LIBS:
        lib_grad = torch.autograd.grad if lib is torch else ag.grad
        u = lib.tensor([0.5, -1.0], dtype=lib.float64, requires_grad=True)
        v = lib.tensor([2.0, 0.3], dtype=lib.float64, requires_grad=True)
        f = (u * u * v + (u * v).sin()).sum()
        du, dv = lib_grad(f, (u, v), retain_graph=True)
        (only_v,) = lib_grad(f, v)
        results.append([t.detach().numpy() for t in (du, dv, only_v)])
        assert u.grad is None and v.grad is None
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-14)
    u, v = 0.5, 2.0
    np.testing.assert_allclose(results[0][0][0], 2 * u * v + v * np.cos(u * v), rtol=1e-14)


def test_autograd_grad_unused_message() -> None:
    def unused(lib: Any) -> Any:
        lib_grad = torch.autograd.grad if lib is torch else ag.grad
        a, b = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
        return lib_grad((a * 2).sum(), (a, b))

    _both(unused)


def test_autograd_grad_unused() -> None:
    def unused(lib: Any) -> Any:
        lib_grad = torch.autograd.grad if lib is torch else ag.grad
        a, b = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
        return lib_grad((a * 2).sum(), (a, b))

    assert _error(lambda: unused(ag))[0] is _error(lambda: unused(torch))[0] is RuntimeError
    for lib in LIBS:
        with pytest.raises(RuntimeError, match="appears to not have been used in the graph"):
            unused(lib)

    def allowed(lib: Any) -> Any:
        lib_grad = torch.autograd.grad if lib is torch else ag.grad
        a, b = lib.ones(2, requires_grad=True), lib.ones(2, requires_grad=True)
        return lib_grad((a * 2).sum(), (a, b), allow_unused=True)[1]

    assert allowed(ag) is None and allowed(torch) is None


def test_inplace_on_saved_tensor_raises() -> None:
    def modified(lib: Any) -> None:
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = a * 1
        c = b * b  # saves b
        b.add_(1)
        c.sum().backward()

    ours, theirs = _error(lambda: modified(ag)), _error(lambda: modified(torch))
    assert ours[0] is theirs[0] is RuntimeError
    assert "modified by an inplace operation" in ours[1]
    assert ours[1].split(":")[0] == theirs[1].split(":")[0]

    def after_sum(lib: Any) -> None:  # sum saves nothing: a later in-place change is harmless
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = a * 1
        c = b.sum()
        b.mul_(2)
        c.backward()
        assert a.grad.tolist() == [1.0, 1.0]

    def input_of(lib: Any, op: str) -> None:
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = a * 1
        c = getattr(b, op)().sum()
        b.add_(1)
        c.backward()

    for lib in LIBS:
        after_sum(lib)
        for op in ("exp", "sqrt", "rsqrt", "tanh", "sigmoid", "relu"):  # torch saves the result
            input_of(lib, op)
        for op in ("sin", "log", "abs"):  # torch saves their input
            with pytest.raises(RuntimeError, match="modified by an inplace operation"):
                input_of(lib, op)


def test_inplace_on_saved_output_raises() -> None:
    def exp_output(lib: Any) -> None:
        a = lib.tensor([1.0, 2.0], requires_grad=True)
        b = (a * 1).exp()
        c = b.sum() * 1 if lib is ag else b.sum()
        b.mul_(2)
        c.backward()

    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        exp_output(torch)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        exp_output(ag)


def test_inplace_records_on_non_leaf() -> None:
    results = []
    for lib in LIBS:
        a = lib.tensor([1.0, -2.0, 3.0], requires_grad=True)
        y = a * 2
        y.add_(a)
        y.mul_(a)
        assert not y.is_leaf and y.grad_fn.name() == "MulBackward0"
        y.sum().backward()
        results.append(a.grad.numpy().copy())
    np.testing.assert_allclose(*results, rtol=1e-6)


def test_requires_grad_on_integer_message() -> None:
    _both(lambda lib: lib.ones(2, dtype=lib.int64).requires_grad_())


def test_requires_grad_rules() -> None:
    for lib in LIBS:
        with pytest.raises(RuntimeError, match="(?i)only tensors of floating point"):
            lib.ones(2, dtype=lib.int64).requires_grad_()
        with pytest.raises(RuntimeError, match="(?i)only tensors of floating point"):
            lib.tensor([1, 2], requires_grad=True)
    _both(lambda lib: setattr(lib.ones(2, requires_grad=True) * 2, "requires_grad", False))
    for lib in LIBS:
        i = lib.tensor([1, 2])
        x = lib.ones(2, requires_grad=True)
        y = x * i + i  # an integer operand: the result is float and records
        assert y.requires_grad and y.dtype == (np.float32 if lib is ag else torch.float32)
        assert not (i * 2).requires_grad and (i * 2).grad_fn is None
        assert not (x > 0).requires_grad  # comparisons carry no gradient


def test_shared_subexpression_and_diamond() -> None:
    def steps(lib: Any, x: Any, w: Any) -> list:
        h = x * w  # used three times
        out = (h.exp() + h.sin() * h).sum() + h.max() + h.amax(0).sum()
        out.backward()
        return [x.grad, w.grad, out]

    _compare(steps)


def test_long_chain_is_iterative() -> None:
    """A 3000-op chain: the engine does not recurse, so no RecursionError."""
    x = ag.tensor([1.0], dtype=ag.float64, requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**3000], rtol=1e-11)


def test_float32_and_float64_gradients_keep_their_dtypes() -> None:
    for lib in LIBS:
        a = lib.ones(3, dtype=lib.float32, requires_grad=True)
        b = lib.ones(3, dtype=lib.float64, requires_grad=True)
        out = (a * b).sum()
        assert out.dtype == (np.float64 if lib is ag else torch.float64)
        out.backward()
        assert str(a.grad.dtype).endswith("float32") and str(b.grad.dtype).endswith("float64")
