"""Embedding: gradcheck of the weight gradient, the module against torch (padding_idx,
scale_grad_by_freq, max_norm's in-place renorm), torch's init and repr, and bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.gradcheck import gradcheck

DTYPES = [np.float64, np.float32]


@st.composite
def cases(draw: Any, max_norm: bool = False) -> tuple[np.ndarray, dict]:
    """Indices of any shape (0-d included, repeats likely) and constructor kwargs."""
    num = draw(st.integers(1, 6), label="num_embeddings")
    dim = draw(st.integers(1, 4), label="embedding_dim")
    shape = tuple(draw(st.lists(st.integers(1, 4), max_size=3), label="shape"))
    seed = draw(st.integers(0, 2**32 - 1))
    indices = np.random.default_rng(seed).integers(0, num, shape)
    if draw(st.booleans(), label="int32"):
        indices = indices.astype(np.int32)
    kwargs = {
        "num_embeddings": num,
        "embedding_dim": dim,
        "padding_idx": draw(st.sampled_from([None, 0, num - 1, -1]), label="padding_idx"),
        "scale_grad_by_freq": draw(st.booleans(), label="scale_grad_by_freq"),
    }
    if max_norm:
        kwargs["max_norm"] = draw(st.sampled_from([None, 0.5, 1.5]), label="max_norm")
        kwargs["norm_type"] = draw(st.sampled_from([2.0, 1.0, 3.0, float("inf")]), label="p")
    return indices, kwargs


@given(case=cases())
def test_weight_gradient_passes_gradcheck(case: tuple[np.ndarray, dict]) -> None:
    """The weight's gradient is the derivative of the lookup (padding row: 0, not the
    derivative: torch's choice, so gradcheck runs on the other rows via a wrapper that
    leaves the padding row out of the forward's dependence)."""
    indices, kwargs = case
    padding_idx = kwargs["padding_idx"]
    num = kwargs["num_embeddings"]
    weight = np.random.default_rng(0).standard_normal((num, kwargs["embedding_dim"]))
    pad = None if padding_idx is None else padding_idx % num
    # the padding row's output does not depend on the weight (torch's semantics):
    # the wrapper makes that literal by looking it up from a frozen copy
    frozen = weight.copy()

    def lookup(weight: np.ndarray) -> np.ndarray:
        output = F.embedding(indices, weight, padding_idx=padding_idx)
        if pad is not None:
            output = np.where((indices == pad)[..., None], frozen[pad], output)
        return output

    def backward(g: np.ndarray, weight: np.ndarray) -> np.ndarray:
        grad_indices, grad_weight = F.embedding_backward(g, indices, weight, padding_idx)
        assert grad_indices is None  # integer indices have no gradient
        return grad_weight

    result = gradcheck(lookup, weight, backward=backward, **GRADCHECK)
    assert result.ok, str(result)


@given(case=cases())
def test_scale_grad_by_freq_divides_by_the_count(case: tuple[np.ndarray, dict]) -> None:
    indices, kwargs = case
    num, dim = kwargs["num_embeddings"], kwargs["embedding_dim"]
    weight = np.zeros((num, dim))
    g = np.random.default_rng(1).standard_normal(indices.shape + (dim,))
    _, plain = F.embedding_backward(g, indices, weight, kwargs["padding_idx"])
    _, scaled = F.embedding_backward(
        g, indices, weight, kwargs["padding_idx"], scale_grad_by_freq=True
    )
    counts = np.bincount(indices.reshape(-1), minlength=num)
    np.testing.assert_allclose(scaled, plain / np.maximum(counts, 1)[:, None])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=cases(max_norm=True), seed=st.integers(0, 2**16))
def test_module_matches_torch(
    case: tuple[np.ndarray, dict], seed: int, dtype: Any, device: str
) -> None:
    """Output, weight gradient (padding row zero, frequency scaling), and the weight after
    max_norm's in-place renormalization."""
    indices, kwargs = case
    module = rnn.Embedding(**kwargs, rng=seed)
    twin = torch.nn.Embedding(**kwargs)
    assert_twin(module, twin, [indices], dtype=dtype, device=device, differentiable=())
    comparison = compare_arrays(
        "weight after forward", module.weight.data, twin.weight, tolerance(dtype, device)
    )
    assert comparison.ok, str(comparison)
    if kwargs["padding_idx"] is not None:
        assert not np.any(module.weight.grad[module.padding_idx])


def test_max_norm_renormalizes_looked_up_rows_in_place() -> None:
    weight = np.array([[3.0, 4.0], [0.3, 0.4], [6.0, 8.0]])  # norms 5, 0.5, 10
    output = F.embedding(np.array([0, 1, 0]), weight, max_norm=1.0)
    np.testing.assert_allclose(weight[0], [0.6, 0.8], rtol=1e-6)  # scaled once, to ~1
    np.testing.assert_array_equal(weight[1], [0.3, 0.4])  # under the bound: untouched
    np.testing.assert_array_equal(weight[2], [6.0, 8.0])  # not looked up: untouched
    np.testing.assert_array_equal(output, weight[[0, 1, 0]])
    # torch's 1e-7 in the denominator: the norm ends just under max_norm
    assert np.linalg.norm(weight[0]) == pytest.approx(5 / (5 + 1e-7), abs=1e-15)


def test_init_is_standard_normal_with_the_padding_row_zeroed() -> None:
    module = rnn.Embedding(2000, 5, padding_idx=-3, rng=0)
    assert module.padding_idx == 1997 and module.weight.dtype == np.float32
    w = module.weight.data
    np.testing.assert_array_equal(w[1997], 0)
    others = np.delete(w, 1997, axis=0)
    assert abs(others.mean()) < 0.03 and abs(others.std() - 1) < 0.03  # n = 9985
    np.testing.assert_array_equal(
        rnn.Embedding(4, 3, rng=5).weight.data, rnn.Embedding(4, 3, rng=5).weight.data
    )


def test_state_dict_and_repr_match_torch() -> None:
    for kwargs in [
        {},
        {"padding_idx": -1, "max_norm": 1.0},
        {"max_norm": 2.0, "norm_type": 1.0, "scale_grad_by_freq": True, "sparse": True},
    ]:
        ref, twin = rnn.Embedding(5, 3, **kwargs), torch.nn.Embedding(5, 3, **kwargs)
        assert repr(ref) == repr(twin)
        assert list(ref.state_dict()) == list(twin.state_dict()) == ["weight"]
        assert ref.state_dict()["weight"].shape == tuple(twin.weight.shape)
        assert ref.padding_idx == twin.padding_idx


def test_weight_and_from_pretrained() -> None:
    table = np.arange(6.0).reshape(3, 2)
    module = rnn.Embedding(3, 2, padding_idx=0, _weight=table)
    np.testing.assert_array_equal(module.weight.data, table)  # used as given, padding row too
    assert module.weight.data is not table
    frozen = rnn.Embedding.from_pretrained(table)
    out = frozen(np.array([[2, 1]]))
    np.testing.assert_array_equal(out, [[[4.0, 5.0], [2.0, 3.0]]])
    assert frozen.backward(np.ones_like(out)) is None and frozen.weight.grad is None
    trainable = rnn.Embedding.from_pretrained(table, freeze=False)
    trainable(np.array([2, 2]))
    trainable.backward(np.ones((2, 2)))
    trainable(np.array([2]))
    trainable.backward(np.ones((1, 2)))  # gradients accumulate across backwards
    np.testing.assert_array_equal(trainable.weight.grad, [[0, 0], [0, 0], [3, 3]])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dtype_follows_the_weight(dtype: Any) -> None:
    module = rnn.Embedding(4, 3, dtype=dtype, rng=0)
    out = module(np.array([[1, 2], [3, 3]]))
    assert out.dtype == dtype and out.shape == (2, 2, 3)
    assert module(np.array(2)).shape == (3,)  # a 0-d index gives one row
    module.backward(np.ones((3,), dtype=dtype))
    assert module.weight.grad.dtype == dtype


ERRORS = [
    (
        lambda: rnn.Embedding(5, 3, rng=0)(np.array([0, 5])),
        ValueError,
        r"every index must be in \[0, 4\] .* got indices from 0 to 5",
    ),
    (
        lambda: rnn.Embedding(5, 3, rng=0)(np.array([-1, 2])),
        ValueError,
        "negative indices do not wrap around",
    ),
    (
        lambda: rnn.Embedding(5, 3, rng=0)(np.array([1.0, 2.0])),
        TypeError,
        "indices must be an int32 or int64 array, got dtype float64",
    ),
    (lambda: rnn.Embedding(5, 3, rng=0)(np.array([True])), TypeError, "got dtype bool"),
    (lambda: rnn.Embedding(5, 3, rng=0)(np.array([1], dtype=np.uint8)), TypeError, "uint8"),
    (lambda: rnn.Embedding(5, 3, padding_idx=5), ValueError, "padding_idx must be within"),
    (lambda: rnn.Embedding(5, 3, padding_idx=-6), ValueError, r"in \[-5, 4\], got -6"),
    (
        lambda: rnn.Embedding(5, 3, _weight=np.ones((4, 3))),
        ValueError,
        r"_weight must have shape .* \(5, 3\), got \(4, 3\)",
    ),
    (lambda: rnn.Embedding(0, 3), ValueError, "num_embeddings must be a positive integer"),
    (lambda: F.embedding(np.array([0]), np.ones(3)), ValueError, "weight must be 2-D"),
    (
        lambda: F.embedding_backward(np.ones((2, 2)), np.array([0, 1]), np.ones((3, 3))),
        ValueError,
        r"grad_output must have the output's shape \(2, 3\)",
    ),
]


@pytest.mark.parametrize(("call", "error", "message"), ERRORS, ids=[m for *_, m in ERRORS])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_torch_refuses_the_same() -> None:
    with pytest.raises(IndexError, match="index out of range"):
        torch.nn.Embedding(5, 3)(torch.tensor([-1]))
    with pytest.raises(RuntimeError, match="Long, Int"):
        torch.nn.Embedding(5, 3)(torch.tensor([1.0]))
    with pytest.raises(AssertionError, match="Padding_idx must be within"):
        torch.nn.Embedding(5, 3, padding_idx=-6)


def test_backward_before_forward_and_wrong_gradient_shape() -> None:
    module = rnn.Embedding(4, 3, rng=0)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((2, 3)))
    module(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(2, 3\)"):
        module.backward(np.ones((3, 2)))
