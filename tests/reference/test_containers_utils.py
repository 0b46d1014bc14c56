"""ModuleList, ModuleDict, ParameterList, ParameterDict against torch's (keys, order,
repr, the list and dict API), and torch.nn.utils' clipping and vector conversions on the
same parameters and gradients.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.nn as rnn
from harness.compare import compare_arrays, tolerance
from reference.nn.containers import ModuleDict, ModuleList, ParameterDict, ParameterList
from reference.nn.module import Module, Parameter
from reference.nn.utils import (
    clip_grad_norm_,
    clip_grad_value_,
    parameters_to_vector,
    vector_to_parameters,
)
from tests.reference.test_normalization import DTYPES
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture


def _same_state(ours: Module, theirs: torch.nn.Module) -> None:
    """Equal state_dict keys in order, equal parameter names, equal repr."""
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert repr(ours) == repr(theirs)


# -- ModuleList / ModuleDict ------------------------------------------------------------


def test_module_list_api_and_keys_match_torch() -> None:
    ours = ModuleList([rnn.Linear(2, 3), rnn.ReLU()])
    theirs = torch.nn.ModuleList([torch.nn.Linear(2, 3), torch.nn.ReLU()])
    for m in (ours, theirs):
        m.append(type(m[0])(3, 3, bias=False))
        m.extend([type(m[0])(3, 1)])
        m += [m[1]]  # the same ReLU twice
    _same_state(ours, theirs)
    ours.insert(1, rnn.Tanh())
    theirs.insert(1, torch.nn.Tanh())
    _same_state(ours, theirs)
    del ours[2], theirs[2]  # renumbered afterwards
    _same_state(ours, theirs)
    assert type(ours.pop(0)).__name__ == type(theirs.pop(0)).__name__ == "Linear"
    _same_state(ours, theirs)
    _same_state(ours[1:], theirs[1:])
    _same_state(ours + ours[:1], theirs + theirs[:1])
    assert len(ours) == len(theirs) == 4 and ours[-1] is ours[3]
    assert [type(m).__name__ for m in ours] == [type(m).__name__ for m in theirs]
    del ours[1:3], theirs[1:3]
    _same_state(ours, theirs)


def test_module_list_repr_compresses_repeats_like_torch() -> None:
    ours = ModuleList([rnn.ReLU(), rnn.Tanh(), rnn.Tanh(), rnn.Linear(2, 2), rnn.Linear(2, 2)])
    theirs = torch.nn.ModuleList(
        [torch.nn.ReLU(), torch.nn.Tanh(), torch.nn.Tanh(), torch.nn.Linear(2, 2),
         torch.nn.Linear(2, 2)]
    )  # fmt: skip
    assert repr(ours) == repr(theirs)
    assert repr(ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_module_dict_api_and_keys_match_torch() -> None:
    ours = ModuleDict({"b": rnn.Linear(2, 3), "a": rnn.ReLU()})
    theirs = torch.nn.ModuleDict({"b": torch.nn.Linear(2, 3), "a": torch.nn.ReLU()})
    _same_state(ours, theirs)  # insertion order, not sorted
    ours.update([("c", rnn.Linear(3, 1)), ["b", rnn.Linear(2, 2, bias=False)]])
    theirs.update([("c", torch.nn.Linear(3, 1)), ["b", torch.nn.Linear(2, 2, bias=False)]])
    _same_state(ours, theirs)
    ours["d"], theirs["d"] = rnn.Tanh(), torch.nn.Tanh()
    assert list(ours.keys()) == list(theirs.keys()) == ["b", "a", "c", "d"]
    assert [k for k, _ in ours.items()] == list(theirs) and len(ours) == 4
    assert "a" in ours and "z" not in ours and type(ours.pop("a")).__name__ == "ReLU"
    del ours["c"]
    assert list(ours) == ["b", "d"] and list(ours.state_dict()) == ["b.weight"]
    ours.clear()
    assert len(ours) == 0 and ours.state_dict() == {}


def test_nested_containers_register_in_a_parent_like_torch() -> None:
    class Net(Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = ModuleList([rnn.Linear(2, 2), ModuleDict({"out": rnn.Linear(2, 1)})])
            self.scales = ParameterList([np.ones(2, np.float32)])
            self.extra = ParameterDict({"shift": np.zeros(3, np.float32)})

    class TorchNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = torch.nn.ModuleList(
                [torch.nn.Linear(2, 2), torch.nn.ModuleDict({"out": torch.nn.Linear(2, 1)})]
            )
            self.scales = torch.nn.ParameterList([torch.ones(2)])
            self.extra = torch.nn.ParameterDict({"shift": torch.zeros(3)})

    ours, theirs = Net(), TorchNet()
    for name in ("blocks", "scales", "extra"):
        _same_state(getattr(ours, name), getattr(theirs, name))
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict()) == [
        "blocks.0.weight", "blocks.0.bias", "blocks.1.out.weight", "blocks.1.out.bias",
        "scales.0", "extra.shift",
    ]  # fmt: skip
    ours.double()
    assert all(p.dtype == np.float64 for p in ours.parameters())
    theirs.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})


def test_module_containers_refuse_what_torch_refuses() -> None:
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        ModuleList([1])
    with pytest.raises(TypeError, match="int is not a Module subclass"):
        torch.nn.ModuleList([1])
    with pytest.raises(IndexError, match="index 2 is out of range"):
        ModuleList([rnn.ReLU()])[2] = rnn.ReLU()
    with pytest.raises(TypeError, match="module name should be a string"):
        ModuleDict({1: rnn.ReLU()})
    with pytest.raises(KeyError, match='contain ".", got: a.b'):
        ModuleDict({"a.b": rnn.ReLU()})
    with pytest.raises(KeyError, match="attribute 'training' already exists"):
        ModuleDict({"training": rnn.ReLU()})
    with pytest.raises(ValueError, match="element #0 has length 3; 2 is required"):
        ModuleDict([("a", rnn.ReLU(), 3)])
    with pytest.raises(NotImplementedError):
        ModuleList([rnn.ReLU()])(np.ones(2))


# -- ParameterList / ParameterDict ------------------------------------------------------


def test_parameter_list_matches_torch() -> None:
    rng = np.random.default_rng(0)
    values = [rng.standard_normal((2, 3)), rng.standard_normal(2).astype(np.float32)]
    ours = ParameterList([Parameter(values[0]), values[1]])
    theirs = torch.nn.ParameterList(
        [torch.nn.Parameter(torch.tensor(values[0])), torch.tensor(values[1])]
    )
    for p in (ours, theirs):
        p.append(3)  # kept as a plain object, not registered
    _same_state(ours, theirs)
    assert isinstance(ours[1], Parameter) and ours[2] == theirs[2] == 3
    ours[0], theirs[0] = np.zeros(4), torch.zeros(4, dtype=torch.float64)  # keeps its place
    _same_state(ours, theirs)
    _same_state(ours[:2], theirs[:2])
    assert len(ours) == 3 and [type(x).__name__ for x in ours][2] == "int"
    assert repr(ParameterList()) == repr(torch.nn.ParameterList())
    one, their_one = (
        ParameterList([np.ones(2, np.float32)]),
        torch.nn.ParameterList([torch.ones(2)]),
    )
    assert repr(one) == repr(their_one)  # torch's odd single-line form
    with pytest.raises(RuntimeError, match="should not be called"):
        ours()


def test_parameter_dict_matches_torch_and_sorts_a_plain_dict() -> None:
    ours = ParameterDict({"b": np.zeros((2, 3), np.float32), "a": np.ones((), np.float64), "c": 3})
    theirs = torch.nn.ParameterDict(
        {"b": torch.zeros(2, 3), "a": torch.ones((), dtype=torch.float64), "c": 3}
    )
    _same_state(ours, theirs)
    assert list(ours) == list(theirs) == ["a", "b", "c"]  # torch's update sorts a dict
    ordered = OrderedDict([("z", np.ones(1, np.float32)), ("y", np.ones(1, np.float32))])
    ours.update(ordered)
    theirs.update(OrderedDict((k, torch.tensor(v)) for k, v in ordered.items()))
    _same_state(ours, theirs)  # an OrderedDict keeps its order
    assert ours.get("q", 5) == 5 and "z" in ours and list(reversed(ours))[0] == "y"
    assert ours.setdefault("w", np.ones(2)).shape == (2,)
    assert ours.popitem()[0] == "w" and ours.pop("z").shape == (1,)
    merged = ours | ParameterDict({"m": np.ones(1)})
    assert list(merged) == ["a", "b", "c", "y", "m"] and list(ours) == ["a", "b", "c", "y"]
    del ours["b"]
    assert list(ours.state_dict()) == ["a", "y"] and len(ours.copy()) == 3
    ours.clear()
    assert len(ours) == 0 and ours.state_dict() == {} and not hasattr(ours, "c")
    with pytest.raises(TypeError, match="not a string"):
        ParameterDict()[1] = np.ones(1)
    with pytest.raises(KeyError, match="already exists"):
        ParameterDict({"keys": np.ones(1)})  # torch refuses a parameter named like a method
    with pytest.raises(KeyError, match="already exists"):
        torch.nn.ParameterDict({"keys": torch.ones(1)})


# -- clipping and vectors ---------------------------------------------------------------

NORM_TYPES = [2.0, 1.0, 0.0, math.inf, -math.inf, 0.5, 3.0, -1.0]


@st.composite
def parameter_sets(draw: Any) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(data, grad or None) pairs; some gradients have zeros, some are all zero."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shapes = draw(st.lists(st.lists(st.integers(1, 3), max_size=2), min_size=1, max_size=4))
    out = []
    for shape in shapes:
        data = rng.standard_normal(shape)
        kind = draw(st.sampled_from(["normal", "sparse", "zero", "none"]))
        grad = rng.standard_normal(shape) * rng.uniform(0.1, 5)
        grad = {"normal": grad, "sparse": grad * (rng.random(shape) < 0.5), "zero": 0 * grad}.get(
            kind
        )
        out.append((data, None if grad is None else np.asarray(grad)))
    return out


def _pair(params: list, dtype: Any) -> tuple[list[Parameter], list[torch.nn.Parameter]]:
    ours, theirs = [], []
    for data, grad in params:
        p = Parameter(data.astype(dtype))
        t = torch.nn.Parameter(torch.tensor(data.astype(dtype)))
        if grad is not None:
            p.grad, t.grad = grad.astype(dtype), torch.tensor(grad.astype(dtype))
        ours.append(p)
        theirs.append(t)
    return ours, theirs


def _same_grads(ours: list[Parameter], theirs: list, dtype: Any) -> None:
    for i, (p, t) in enumerate(zip(ours, theirs)):
        assert (p.grad is None) == (t.grad is None)
        if p.grad is not None:
            assert p.grad.dtype == dtype
            check = compare_arrays(f"grad {i}", p.grad, t.grad, tolerance(dtype, "cpu"))
            assert check.ok, str(check)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(params=parameter_sets(), norm_type=st.sampled_from(NORM_TYPES),
       max_norm=st.sampled_from([0.5, 1.0, 100.0]))  # fmt: skip
def test_clip_grad_norm_matches_torch(
    params: list, norm_type: float, max_norm: float, dtype: Any
) -> None:
    ours, theirs = _pair(params, dtype)
    total = clip_grad_norm_(iter(ours), max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    check = compare_arrays("total norm", total, expected, tolerance(dtype, "cpu"))
    assert check.ok, str(check)
    assert total.shape == () and total.dtype == (dtype if any(g is not None for _, g in params)
                                                 else np.float32)  # fmt: skip
    _same_grads(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(params=parameter_sets(), clip_value=st.sampled_from([0.1, 1.0, -0.5]))
def test_clip_grad_value_matches_torch(params: list, clip_value: float, dtype: Any) -> None:
    ours, theirs = _pair(params, dtype)
    assert clip_grad_value_(ours, clip_value) is None
    if any(t.grad is not None for t in theirs):  # torch 2.13 raises on no gradient at all
        torch.nn.utils.clip_grad_value_(theirs, clip_value)
    _same_grads(ours, theirs, dtype)


def test_clip_grad_value_without_any_gradient_is_a_no_op() -> None:
    """torch 2.13's foreach path refuses an empty list of gradients (an internal check)."""
    clip_grad_value_([Parameter(np.ones(2))], 1.0)
    with pytest.raises(RuntimeError, match="empty"):
        torch.nn.utils.clip_grad_value_([torch.nn.Parameter(torch.ones(2))], 1.0)


def test_clip_grad_norm_of_zero_norm_and_single_parameter_counts_like_torch() -> None:
    """The 0-norm counts gradients with a nonzero entry, not the nonzero entries."""
    grads = [np.array([1.0, 0.0, -2.0]), np.array([[0.0, 3.0], [0.0, 0.0]]), np.zeros(2)]
    ours, theirs = _pair([(np.zeros_like(g), g) for g in grads], np.float32)
    assert float(clip_grad_norm_(ours, 10.0, 0)) == 2.0
    assert float(torch.nn.utils.clip_grad_norm_(theirs, 10.0, 0)) == 2.0
    single = Parameter(np.zeros(2))
    single.grad = np.array([3.0, 4.0])
    assert float(clip_grad_norm_(single, 1.0)) == 5.0
    np.testing.assert_allclose(single.grad, [0.6, 0.8], rtol=1e-6)


def test_clip_grad_norm_nonfinite_and_empty_like_torch() -> None:
    grads = [np.array([np.inf, 1.0]), np.array([2.0])]
    ours, theirs = _pair([(np.zeros_like(g), g) for g in grads], np.float64)
    with pytest.raises(RuntimeError, match="is non-finite, so it cannot be clipped"):
        clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(ours[0].grad, [np.inf, 1.0])  # untouched
    assert np.isinf(clip_grad_norm_(ours, 1.0))
    assert math.isinf(float(torch.nn.utils.clip_grad_norm_(theirs, 1.0)))
    _same_grads(ours, theirs, np.float64)  # [nan, 0] and [0], as torch's
    with pytest.warns(UserWarning, match="empty generator"):
        total = clip_grad_norm_((p for p in []), 1.0)
    assert total.dtype == np.float32 and float(total) == 0.0
    with pytest.raises(TypeError, match="item 0 is a ndarray"):
        clip_grad_norm_([np.ones(2)], 1.0)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_parameters_to_vector_and_back_match_torch(dtype: Any) -> None:
    rng = np.random.default_rng(1)
    shapes = [(2, 3), (4,), (), (1, 2)]
    ours, theirs = _pair([(rng.standard_normal(s), None) for s in shapes], dtype)
    vec = parameters_to_vector(ours)
    np.testing.assert_array_equal(vec, torch.nn.utils.parameters_to_vector(theirs).detach())
    assert vec.shape == (13,) and vec.dtype == dtype
    new = rng.standard_normal(15)  # float64, two spare entries (ignored, as torch's)
    vector_to_parameters(new, ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, t in zip(ours, theirs):
        assert p.shape == tuple(t.shape) and p.dtype == np.float64 == t.numpy(force=True).dtype
        np.testing.assert_array_equal(p.data, t.detach().numpy())
    new[0] = 100.0  # each parameter is a view of the vector, as torch's
    assert ours[0].data[0, 0] == 100.0


def test_vector_to_parameters_refuses_bad_vectors_before_changing_anything() -> None:
    params = [Parameter(np.zeros(3)), Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="hold 5 values, the vector only 4"):
        vector_to_parameters(np.ones(4), params)
    assert all(np.all(p.data == 0) for p in params)
    with pytest.raises(RuntimeError, match="invalid for input of size"):  # torch: part way
        torch.nn.utils.vector_to_parameters(torch.ones(4), [torch.zeros(3), torch.zeros(2)])
    with pytest.raises(TypeError, match="expected np.ndarray, but got: list"):
        vector_to_parameters([1.0] * 5, params)
    with pytest.raises(ValueError, match="at least one parameter"):
        parameters_to_vector([])
