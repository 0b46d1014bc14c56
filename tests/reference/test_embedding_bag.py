"""EmbeddingBag: gradcheck of the weight and per_sample_weights gradients, the functional and
module against torch (float64 tight, float32; 2-D input, offsets, empty bags,
include_last_offset, padding_idx, per_sample_weights, max mode's ties, max_norm's in-place
renorm, scale_grad_by_freq), torch's init and repr, and bad input raising where torch does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import reference.nn as rnn
from harness.compare import GRADCHECK, Tolerance, compare_arrays, tolerance
from harness.twin import upstream_gradient
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

EB = importlib.import_module("reference.functional.embedding_bag")
TIGHT = Tolerance(rtol=1e-10, atol=1e-10)
ERRORS = (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)

Case = dict[str, Any]


@st.composite
def cases(draw: Any, grad_options: bool = True, max_norm: bool = True) -> Case:
    """A table, bags (a (B, L) input, or 1-D with sorted offsets: empty bags likely), the
    mode and its options. ``ties``: integer-valued tables, so max mode meets ties."""
    rng = draw_rng(draw)
    num, dim = draw(st.integers(1, 5), label="num"), draw(st.integers(1, 3), label="dim")
    mode = draw(st.sampled_from(["sum", "mean", "max"]), label="mode")
    ties = draw(st.booleans(), label="ties")
    weight = (
        np.round(2 * rng.standard_normal((num, dim))) if ties else rng.standard_normal((num, dim))
    )
    case = {"weight": weight, "mode": mode, "offsets": None, "include_last_offset": False}
    if draw(st.booleans(), label="2-D"):
        case["input"] = rng.integers(0, num, (draw(st.integers(0, 3)), draw(st.integers(1, 4))))
    else:
        length = draw(st.integers(0, 7), label="length")
        case["input"] = rng.integers(0, num, length)
        starts = np.sort(rng.integers(0, length + 1, draw(st.integers(1, 4), label="bags")))
        starts[0] = 0
        last = draw(st.booleans(), label="include_last_offset")
        case["offsets"] = np.append(starts, length) if last else starts
        case["include_last_offset"] = last
    if draw(st.booleans(), label="int32"):
        case["input"] = case["input"].astype(np.int32)
    case["padding_idx"] = draw(st.sampled_from([None, 0, -1]), label="padding_idx")
    if mode == "sum" and draw(st.booleans(), label="per_sample_weights"):
        case["per_sample_weights"] = rng.standard_normal(case["input"].shape)
    if grad_options and mode != "max":
        case["scale_grad_by_freq"] = draw(st.booleans(), label="scale_grad_by_freq")
    if max_norm and draw(st.booleans(), label="max_norm"):
        case["max_norm"] = draw(st.sampled_from([0.5, 1.5]), label="max_norm value")
        case["norm_type"] = draw(st.sampled_from([1.0, 2.0, np.inf]), label="norm_type")
    return case


def _split(case: Case) -> tuple[np.ndarray, np.ndarray, dict]:
    kwargs = {k: v for k, v in case.items() if k not in ("input", "weight")}
    return case["input"], case["weight"], kwargs


def _run_ours(case: Case, dtype: Any, g: np.ndarray | None = None):
    """Forward (on a copy of the table: max_norm writes to it) and backward."""
    input, weight, kwargs = _split(case)
    weight = weight.astype(dtype)
    if kwargs.get("per_sample_weights") is not None:
        kwargs["per_sample_weights"] = kwargs["per_sample_weights"].astype(dtype)
    out = EB.embedding_bag(input, weight, **kwargs)
    g = upstream_gradient(out.shape, dtype) if g is None else g
    _, grad_weight, grad_psw = EB.embedding_bag_backward(g, input, weight, **kwargs)
    return out, weight, grad_weight, grad_psw, g


def _run_torch(case: Case, dtype: Any, g: np.ndarray):
    input, weight, kwargs = _split(case)
    w = torch.tensor(weight.astype(dtype), requires_grad=True)
    psw = kwargs.pop("per_sample_weights", None)
    psw = None if psw is None else torch.tensor(psw.astype(dtype), requires_grad=True)
    offsets = kwargs.pop("offsets")
    out = TF.embedding_bag(
        torch.tensor(input), w, None if offsets is None else torch.tensor(offsets),
        per_sample_weights=psw, **kwargs,
    )  # fmt: skip
    out.backward(torch.tensor(g))
    grad_w = w.grad.numpy() if w.grad is not None else np.zeros(w.shape, dtype)
    grad_psw = None if psw is None else psw.grad.numpy()
    return out.detach().numpy(), w.detach().numpy(), grad_w, grad_psw


def torch_cpu_frequency_divisors(indices: np.ndarray, num: int) -> np.ndarray:
    """The divisor torch's CPU dense backward applies to each row with
    ``scale_grad_by_freq`` (pytorch/pytorch#190063, in torch <= 2.13): the count of the
    i-th entry of the *sorted* indices for the i-th unique index, not the index's own."""
    counts = np.bincount(indices.reshape(-1), minlength=num)
    ordered = np.sort(indices.reshape(-1))
    divisors = np.ones(num)
    unique = np.unique(ordered)
    divisors[unique] = counts[ordered[: unique.size]]
    return divisors


def _expected_torch_weight_grad(case: Case, grad: np.ndarray, dtype: Any) -> list[np.ndarray]:
    """What torch may return for the weight's gradient: ours, or (scale_grad_by_freq) ours
    rescaled row by row by torch's divisors where they differ from the true counts."""
    candidates = [grad]
    if case.get("scale_grad_by_freq"):
        counts = np.bincount(case["input"].reshape(-1), minlength=grad.shape[0])
        buggy = torch_cpu_frequency_divisors(case["input"], grad.shape[0])
        candidates.append((grad * (np.maximum(counts, 1) / buggy)[:, None]).astype(dtype))
    return candidates


def _assert_close(name: str, ours: Any, theirs: Any, dtype: Any) -> None:
    tol = TIGHT if np.dtype(dtype) == np.float64 else tolerance(dtype)
    comparison = compare_arrays(name, theirs, ours, tol)
    assert comparison.ok, str(comparison)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=cases())
def test_functional_matches_torch(dtype: Any, case: Case) -> None:
    out, weight, grad_weight, grad_psw, g = _run_ours(case, dtype)
    t_out, t_weight, t_grad, t_psw = _run_torch(case, dtype, g)
    assert out.dtype == dtype
    _assert_close("output", out, t_out, dtype)
    _assert_close("weight after max_norm", weight, t_weight, dtype)
    tol = TIGHT if np.dtype(dtype) == np.float64 else tolerance(dtype)
    candidates = _expected_torch_weight_grad(case, grad_weight, dtype)
    assert any(compare_arrays("w", t_grad, c, tol).ok for c in candidates), (
        f"torch's weight gradient {t_grad} is neither ours {grad_weight} nor torch's known "
        "scale_grad_by_freq variant"
    )
    if grad_psw is not None:
        _assert_close("grad per_sample_weights", grad_psw, t_psw, dtype)


@given(case=cases(grad_options=False, max_norm=False))
def test_backward_passes_gradcheck(case: Case) -> None:
    """The weight's and per_sample_weights' gradients (max mode: away from ties)."""
    input, weight, kwargs = _split(case)
    if kwargs["mode"] == "max":  # distinct values: max is locally linear
        weight = weight + np.arange(weight.size).reshape(weight.shape) * 1e-3
    psw = kwargs.pop("per_sample_weights", None)
    args = [weight] if psw is None else [weight, psw]

    def forward(weight: np.ndarray, psw: np.ndarray | None = None) -> np.ndarray:
        return EB.embedding_bag(input, weight, per_sample_weights=psw, **kwargs)

    def backward(g: np.ndarray, weight: np.ndarray, psw: np.ndarray | None = None) -> tuple:
        _, gw, gp = EB.embedding_bag_backward(g, input, weight, per_sample_weights=psw, **kwargs)
        return (gw,) if psw is None else (gw, gp)

    result = gradcheck(forward, *args, backward=backward, **GRADCHECK)
    assert result.ok, str(result)


@given(case=cases(grad_options=False, max_norm=False))
def test_scale_grad_by_freq_divides_each_row_by_its_count(case: Case) -> None:
    """The documented semantics (and torch's sparse and CUDA paths'): row k of the
    gradient over the count of k in the whole input."""
    if case["mode"] == "max":
        return
    input, weight, kwargs = _split(case)
    g = upstream_gradient((EB.embedding_bag(input, weight, **kwargs).shape), np.float64)
    _, plain, _ = EB.embedding_bag_backward(g, input, weight, **kwargs)
    _, scaled, _ = EB.embedding_bag_backward(g, input, weight, scale_grad_by_freq=True, **kwargs)
    counts = np.bincount(input.reshape(-1), minlength=weight.shape[0])
    np.testing.assert_allclose(scaled, plain / np.maximum(counts, 1)[:, None], rtol=1e-12)


def test_torch_cpu_scale_grad_by_freq_uses_the_wrong_count() -> None:
    """pytorch/pytorch#190063: indices [1, 1, 3], sum; row 3 (seen once) is divided by
    2 in torch <= 2.13's CPU kernel. The reference divides by 1; a fixed torch agrees."""
    indices, offsets, weight = np.array([1, 1, 3]), np.array([0]), np.ones((4, 3))
    _, ours, _ = EB.embedding_bag_backward(
        np.ones((1, 3)), indices, weight, offsets, mode="sum", scale_grad_by_freq=True
    )
    np.testing.assert_array_equal(ours[:, 0], [0.0, 1.0, 0.0, 1.0])
    w = torch.ones(4, 3, requires_grad=True)
    TF.embedding_bag(torch.tensor(indices), w, torch.tensor(offsets), mode="sum",
                     scale_grad_by_freq=True).sum().backward()  # fmt: skip
    divisors = torch_cpu_frequency_divisors(indices, 4)
    assert w.grad[3, 0].item() in (1.0, 1.0 / divisors[3])  # ours, or torch's known bug


def test_max_mode_ties_go_to_the_first_position_like_torch() -> None:
    weight = np.array([[1.0, 2.0, 3.0], [1.0, 5.0, 0.0], [1.0, 2.0, 3.0], [4.0, 0.0, 3.0]])
    for indices in ([0, 2, 1], [2, 0, 1], [1, 2, 0]):
        case = {"input": np.array(indices), "weight": weight, "offsets": np.array([0]),
                "mode": "max"}  # fmt: skip
        out, _, grad, _, g = _run_ours(case, np.float64)
        t_out, _, t_grad, _ = _run_torch(case, np.float64, g)
        np.testing.assert_array_equal(out, t_out)
        np.testing.assert_array_equal(grad, t_grad)
        first = min(indices.index(0), indices.index(2))  # rows 0 and 2 are equal: the one
        first = indices[first]  # met first in the bag takes the gradient of features 0, 2
        assert grad[first].any() and not grad[2 if first == 0 else 0].any()


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_empty_and_all_padding_bags_give_zeros_and_no_gradient(mode: str) -> None:
    weight = np.random.default_rng(0).standard_normal((4, 3)) + 5
    case = {
        "input": np.array([1, 2, 2, 3]),
        "weight": weight,
        "offsets": np.array([0, 0, 1, 3]),
        "mode": mode,
        "padding_idx": 2,
    }  # fmt: skip  (bags: [], [1], [2, 2], [3])
    out, _, grad, _, g = _run_ours(case, np.float64)
    t_out, _, t_grad, _ = _run_torch(case, np.float64, g)
    np.testing.assert_allclose(out, t_out, rtol=1e-12)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-12)
    assert not out[0].any() and not out[2].any() and not grad[[0, 2]].any()
    if mode == "mean":  # padding leaves the count: bag [1] is W[1] itself
        np.testing.assert_allclose(out[1], weight[1], rtol=1e-12)


def test_module_matches_torch_and_accumulates() -> None:
    rng = np.random.default_rng(0)
    for kwargs in [{"mode": "sum"}, {"mode": "max", "padding_idx": 1},
                   {"mode": "mean", "max_norm": 1.0, "include_last_offset": True}]:  # fmt: skip
        ours = rnn.EmbeddingBag(5, 3, rng=0, dtype=np.float64, **kwargs)
        theirs = torch.nn.EmbeddingBag(5, 3, dtype=torch.float64, **kwargs)
        theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
        indices = rng.integers(0, 5, 6)
        offsets = np.array([0, 2, 2, 6]) if kwargs.get("include_last_offset") else np.array([0, 4])
        out = ours(indices, offsets)
        t_out = theirs(torch.tensor(indices), torch.tensor(offsets))
        g = upstream_gradient(out.shape, np.float64)
        assert ours.backward(g) == (None, None, None)
        ours(indices, offsets)
        ours.backward(g)  # accumulates
        t_out.backward(torch.tensor(2 * g))
        np.testing.assert_allclose(out, t_out.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours.weight.data, theirs.weight.detach().numpy(), rtol=1e-12)
        assert repr(ours) == repr(theirs)


def test_module_backward_passes_gradcheck_for_weight_and_per_sample_weights() -> None:
    """Through the module: the weight's accumulated gradient and the third entry of the
    tuple ``backward`` returns (one per forward argument)."""
    layer = rnn.EmbeddingBag(4, 3, mode="sum", rng=0, dtype=np.float64)
    indices = np.array([[0, 3, 3], [1, 1, 2]])

    def forward(weight: np.ndarray, psw: np.ndarray) -> np.ndarray:
        layer.weight.data = weight  # the array gradcheck perturbs in place
        return layer(indices, None, psw)

    def backward(g: np.ndarray, weight: np.ndarray, psw: np.ndarray) -> tuple:
        layer.zero_grad()
        forward(weight, psw)
        grad_indices, grad_offsets, grad_psw = layer.backward(g)
        assert grad_indices is None and grad_offsets is None
        return layer.weight.grad, grad_psw

    psw = np.random.default_rng(1).standard_normal(indices.shape)
    result = gradcheck(forward, layer.weight.data.copy(), psw, backward=backward, **GRADCHECK)
    assert result.ok, str(result)


def test_init_padding_row_state_dict_and_repr_like_torch() -> None:
    ours, theirs = (
        rnn.EmbeddingBag(300, 40, padding_idx=-1, rng=0),
        torch.nn.EmbeddingBag(300, 40, padding_idx=-1),
    )
    assert ours.padding_idx == theirs.padding_idx == 299 and not ours.weight.data[299].any()
    assert ours.weight.dtype == np.float32 and abs(ours.weight.data[:299].std() - 1) < 0.02
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    assert repr(ours) == repr(theirs)
    given_weight = np.ones((4, 3))
    layer = rnn.EmbeddingBag(4, 3, _weight=given_weight, padding_idx=1)
    assert layer.weight.data[1].all()  # used as given, padding row included (torch's rule)
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.EmbeddingBag(4, 3).backward(np.ones((1, 3)))


i5, w43 = np.array([0, 1, 2, 3, 1]), np.ones((4, 3))
ti5, tw43 = torch.tensor(i5), torch.ones(4, 3, dtype=torch.float64)
o02 = (np.array([0, 2]), torch.tensor([0, 2]))

# fmt: off
BAD = [
    ((i5, w43), {}, ValueError, "offsets has to be a 1D array"),
    ((i5.reshape(1, 5), w43, o02[0]), {}, ValueError, "offsets has to be None"),
    ((i5.reshape(1, 5, 1), w43), {}, ValueError, "1-D or 2-D"),
    ((i5, w43, np.array([[0]])), {}, ValueError, "offsets has to be a 1-D array"),
    ((i5, w43, np.array([1, 3])), {}, ValueError, r"offsets\[0\] has to be 0"),
    ((i5, w43, np.array([0, 2, 6])), {}, ValueError, "at most the input's length 5"),
    ((i5, w43, np.array([0, 2, -1])), {}, ValueError, "non-decreasing"),
    ((i5, w43, o02[0]), {"mode": "avg"}, ValueError, "mode has to be one of sum, mean or max"),
    ((i5, w43, o02[0]), {"mode": "max", "scale_grad_by_freq": True}, ValueError, "frequency"),
    ((i5, w43, o02[0]), {"mode": "max", "sparse": True}, ValueError, "sparse weights"),
    ((i5, w43, o02[0]), {"per_sample_weights": np.ones(5)}, NotImplementedError, "mode='sum'"),
    ((i5, w43, o02[0]), {"mode": "sum", "per_sample_weights": np.ones(4)}, ValueError,
     r"per_sample_weights must have the input's shape \(5,\)"),
    ((i5, w43, o02[0]), {"mode": "sum", "per_sample_weights": np.ones(5, np.float32)},
     RuntimeError, "weight's dtype"),
    ((i5, w43, o02[0]), {"padding_idx": 4}, ValueError, "padding_idx must be within"),
    ((i5, w43, o02[0]), {"padding_idx": -5}, ValueError, "padding_idx must be within"),
    ((np.array([0, 4]), w43, np.array([0])), {}, ValueError, r"every index must be in \[0, 3\]"),
    ((np.array([0, -1]), w43, np.array([0])), {}, ValueError, "every index must be in"),
    ((i5.astype(float), w43, o02[0]), {}, TypeError, "input must be an int32 or int64"),
    ((i5, w43, o02[0].astype(float)), {}, TypeError, "offsets must be an int32 or int64"),
    ((i5, w43.astype(np.int64), o02[0]), {}, TypeError, "weight must be a floating array"),
    ((i5, w43[0], o02[0]), {}, ValueError, "weight has to be 2-D"),
    ((np.zeros((2, 0), np.int64), w43), {}, ValueError, "bags of length >= 1"),
]
# fmt: on


@pytest.mark.parametrize(("args", "kwargs", "error", "message"), BAD, ids=[b[-1] for b in BAD])
def test_bad_input_raises_where_torch_raises(args: tuple, kwargs: dict, error: type, message: str):
    with pytest.raises(error, match=message):
        EB.embedding_bag(*args, **kwargs)
    t_kwargs = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    with pytest.raises(ERRORS):
        TF.embedding_bag(*[torch.tensor(a) for a in args], **t_kwargs)


def test_undefined_offsets_raise_where_torch_is_undefined() -> None:
    """torch reads out of bounds (or crashes) for no offsets, and with include_last_offset
    folds trailing indices into the last bag whatever offsets[-1] says (its documented
    contract: offsets[-1] is the input's length); the reference raises for all three."""
    for offsets, last in [(np.array([], np.int64), False), (np.array([0]), True)]:
        with pytest.raises(ValueError, match="at least"):
            EB.embedding_bag(i5, w43, offsets, include_last_offset=last)
    with pytest.raises(ValueError, match=r"offsets\[-1\] \(3\) must equal the input's length 5"):
        EB.embedding_bag(i5, w43, np.array([0, 2, 3]), include_last_offset=True, mode="max")
    weight = torch.arange(12.0).reshape(4, 3)
    folded = TF.embedding_bag(ti5, weight, torch.tensor([0, 2, 3]), include_last_offset=True,
                              mode="max")  # fmt: skip
    assert folded[1].tolist() in ([9.0, 10.0, 11.0], [6.0, 7.0, 8.0])  # CPU folds: row 3 wins


def test_two_d_input_is_fixed_length_bags_and_empty_batch_works() -> None:
    weight = np.random.default_rng(0).standard_normal((4, 3))
    two_d = np.array([[0, 1, 1], [3, 2, 0]])
    np.testing.assert_allclose(
        EB.embedding_bag(two_d, weight, mode="sum"),
        EB.embedding_bag(two_d.reshape(-1), weight, np.array([0, 3]), mode="sum"),
        rtol=1e-15,
    )
    empty = np.zeros((0, 3), np.int64)
    assert EB.embedding_bag(empty, weight, mode="max").shape == (0, 3)
    assert tuple(TF.embedding_bag(torch.tensor(empty), torch.tensor(weight)).shape) == (0, 3)


def test_module_constructor_checks_like_torch() -> None:
    checks: list[tuple[Callable, Callable, str]] = [
        (lambda: rnn.EmbeddingBag(4, 3, _weight=np.ones((3, 3))),
         lambda: torch.nn.EmbeddingBag(4, 3, _weight=torch.ones(3, 3)), "shape of _weight"),
        (lambda: rnn.EmbeddingBag(4, 3, padding_idx=4),
         lambda: torch.nn.EmbeddingBag(4, 3, padding_idx=4), "padding_idx must be within"),
        (lambda: rnn.EmbeddingBag(4, 3, mode="avg"),
         lambda: torch.nn.EmbeddingBag(4, 3, mode="avg")(ti5, o02[1]), "mode has to be one of"),
    ]  # fmt: skip
    for ours, theirs, message in checks:
        with pytest.raises(ValueError, match=message):
            ours()
        with pytest.raises((AssertionError, *ERRORS)):
            theirs()
    assert rnn.EmbeddingBag(0, 3).weight.shape == (0, 3)  # torch builds it too
