"""The module system: registration, state_dict, gradients, modes, containers, Linear."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.nn as rnn
from harness.compare import GRADCHECK
from harness.twin import assert_twin
from reference import gradcheck


def mlp(rng: int = 0) -> rnn.Sequential:
    return rnn.Sequential(
        rnn.Linear(5, 4, rng=rng), rnn.ReLU(), rnn.Linear(4, 3, bias=False, rng=rng)
    )


def torch_mlp() -> torch.nn.Sequential:
    return torch.nn.Sequential(
        torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3, bias=False)
    )


def test_state_dict_keys_shapes_and_order_match_torch():
    ours = {k: v.shape for k, v in mlp().state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in torch_mlp().state_dict().items()}
    assert list(ours) == list(theirs)
    assert ours == theirs


def test_named_parameters_match_torch_and_default_dtype_is_float32():
    names = [n for n, _ in mlp().named_parameters()]
    assert names == [n for n, _ in torch_mlp().named_parameters()]
    assert all(p.dtype == np.float32 for p in mlp().parameters())


def test_load_state_dict_from_torch_copies_and_casts():
    model, twin = mlp().double(), torch_mlp()
    model.load_state_dict(twin.state_dict())
    for (name, ours), theirs in zip(model.state_dict().items(), twin.state_dict().values()):
        assert ours.dtype == np.float64, name
        np.testing.assert_array_equal(ours, theirs.double().numpy())
    # a copy, not a view: changing torch's tensor leaves ours alone
    with torch.no_grad():
        twin[0].weight.add_(1.0)
    assert not np.allclose(model[0].weight.data, twin[0].weight.detach().numpy())


def test_load_state_dict_errors_name_the_problem():
    model = mlp()
    state = model.state_dict()
    with pytest.raises(KeyError, match=r"missing keys \['0.bias'\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(KeyError, match="unexpected keys"):
        model.load_state_dict({**state, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"size mismatch for 0.weight: got \(4, 4\)"):
        model.load_state_dict({**state, "0.weight": np.zeros((4, 4))})
    model.load_state_dict({"0.bias": np.ones(4)}, strict=False)
    np.testing.assert_array_equal(model[0].bias.data, np.ones(4, dtype=np.float32))


def test_gradients_accumulate_until_zero_grad(rng):
    model = mlp().double()
    x = rng.standard_normal((3, 5))
    g = rng.standard_normal((3, 3))
    model(x)
    model.backward(g)
    first = model[0].weight.grad.copy()
    model(x)
    model.backward(g)
    np.testing.assert_allclose(model[0].weight.grad, 2 * first)
    model.zero_grad(set_to_none=False)
    assert np.all(model[0].weight.grad == 0)
    model.zero_grad()
    assert model[0].weight.grad is None


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"Linear.backward\(\) called before forward\(\)"):
        rnn.Linear(2, 3).backward(np.zeros((1, 3), np.float32))


def test_train_eval_propagate_to_children():
    model = mlp()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_buffers_are_saved_and_cast_but_non_persistent_ones_are_not_saved():
    module = rnn.Module()
    module.register_buffer("running", np.zeros(3, np.float32))
    module.register_buffer("scratch", np.zeros(2, np.float32), persistent=False)
    module.register_buffer("count", np.array(0, np.int64))
    assert list(module.state_dict()) == ["running", "count"]
    module.double()
    assert module.running.dtype == np.float64 and module.count.dtype == np.int64


def test_module_attribute_errors():
    class Bad(rnn.Module):
        def __init__(self):
            self.weight = rnn.Parameter(np.zeros(2))  # forgot super().__init__()

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Bad()
    layer = rnn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign ndarray as parameter 'weight'"):
        layer.weight = np.zeros((2, 2))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = layer.nope


def test_repr_reads_like_torch():
    assert repr(rnn.Linear(5, 4)) == repr(torch.nn.Linear(5, 4))
    assert repr(rnn.Flatten()) == repr(torch.nn.Flatten())


@given(
    in_features=st.integers(1, 6),
    out_features=st.integers(1, 6),
    lead=st.lists(st.integers(1, 3), min_size=0, max_size=2),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_linear_matches_torch(in_features, out_features, lead, bias, seed, device):
    x = np.random.default_rng(seed).standard_normal((*lead, in_features))
    for dtype in (np.float64, np.float32):
        ours = rnn.Linear(in_features, out_features, bias=bias, rng=seed)
        theirs = torch.nn.Linear(in_features, out_features, bias=bias)
        assert_twin(ours, theirs, [x], dtype=dtype, device=device, seed=seed)


@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    out_features=st.integers(1, 4),
    seed=st.integers(0, 2**16),
)
def test_linear_backward_passes_gradcheck(shape, out_features, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    result = gradcheck(rnn.Linear(shape[-1], out_features, rng=seed), x, seed=seed, **GRADCHECK)
    assert result.ok, str(result)


def test_linear_init_follows_torch_bounds():
    layer = rnn.Linear(400, 300, rng=0)
    bound = 1 / np.sqrt(400)
    for p in (layer.weight.data, layer.bias.data):
        assert np.abs(p).max() <= bound
        assert np.abs(p).max() > 0.95 * bound  # actually spans the interval
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.01 * bound
    np.testing.assert_array_equal(
        rnn.Linear(3, 2, rng=7).weight.data, rnn.Linear(3, 2, rng=7).weight.data
    )


def test_linear_rejects_bad_input_with_shapes_in_the_message():
    layer = rnn.Linear(784, 10)
    with pytest.raises(ValueError, match=r"expected input of shape \(\*, 784\), got \(32, 785\)"):
        layer(np.zeros((32, 785), np.float32))
    with pytest.raises(TypeError, match="must be a floating array.*int64"):
        layer(np.zeros((32, 784), np.int64))
    layer(np.zeros((2, 784), np.float32))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(2, 10\)"):
        layer.backward(np.zeros((2, 11), np.float32))
    with pytest.raises(ValueError, match="in_features must be a positive integer"):
        rnn.Linear(0, 3)


def test_dtype_follows_the_input():
    for dtype in (np.float32, np.float64):
        model = mlp().to(dtype)
        out = model(np.ones((2, 5), dtype))
        assert out.dtype == dtype
        assert model.backward(np.ones_like(out)).dtype == dtype


@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    start=st.integers(-4, 3),
    end=st.integers(-4, 3),
    seed=st.integers(0, 100),
)
def test_flatten_matches_torch(shape, start, end, seed, device):
    ndim = len(shape)
    s, e = start % max(ndim, 1), end % max(ndim, 1)
    if not (-ndim <= start < ndim and -ndim <= end < ndim) or s > e:
        with pytest.raises(ValueError, match="Flatten"):
            rnn.Flatten(start, end)(np.zeros(shape))
        return
    x = np.random.default_rng(seed).standard_normal(shape)
    assert_twin(
        rnn.Flatten(start, end), torch.nn.Flatten(start, end), [x], device=device, seed=seed
    )


def test_identity_and_unflatten_match_torch(rng, device):
    x = rng.standard_normal((2, 6, 3))
    assert_twin(rnn.Identity(), torch.nn.Identity(), [x], device=device)
    assert_twin(rnn.Unflatten(1, (2, 3)), torch.nn.Unflatten(1, (2, 3)), [x], device=device)
    with pytest.raises(ValueError, match=r"multiply to 4 but dim 1 of the input \(2, 6, 3\) has 6"):
        rnn.Unflatten(1, (2, 2))(x)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="argument 1 is a ufunc"):
        rnn.Sequential(rnn.ReLU(), np.tanh)
