"""TripletMarginWithDistanceLoss, AdaptiveLogSoftmaxWithLoss and LinearCrossEntropyLoss:
gradcheck of every backward, the pairs and modules against torch in float64 and float32
(unbatched included), kinks and ties at the exact points, state_dict keys, bad input.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference import nn as rnn
from reference.functional import adaptive_softmax as AF
from reference.functional import triplet_loss as TRF
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

REDUCTIONS = ["none", "mean", "sum"]
F64 = torch.float64


def _close(name: str, ours: Any, theirs: Any, dtype: Any) -> None:
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    comparison = compare_arrays(name, ours, theirs, tolerance(dtype))
    assert comparison.ok, str(comparison)


# -- TripletMarginWithDistanceLoss -------------------------------------------------------


def _squared(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return ((x1 - x2) ** 2).sum(-1)


def _squared_backward(g: np.ndarray, x1: np.ndarray, x2: np.ndarray):
    grad = 2 * (x1 - x2) * np.asarray(g)[..., None]
    return grad, -grad


def _manhattan(x1: np.ndarray, x2: np.ndarray) -> np.ndarray:
    return np.abs(x1 - x2).sum(-1)


def _manhattan_backward(g: np.ndarray, x1: np.ndarray, x2: np.ndarray):
    grad = np.sign(x1 - x2) * np.asarray(g)[..., None]  # torch's abs'(0) = 0
    return grad, -grad


DISTANCES = {  # name: (reference distance, its backward, torch's), None: the default
    "default": (None, None, None),
    "squared": (_squared, _squared_backward, lambda x, y: ((x - y) ** 2).sum(-1)),
    "manhattan": (_manhattan, _manhattan_backward, lambda x, y: (x - y).abs().sum(-1)),
}


@st.composite
def triplet_cases(draw: Any) -> tuple[list[np.ndarray], dict[str, Any], str]:
    rng, name = draw_rng(draw), draw(st.sampled_from(sorted(DISTANCES)), label="distance")
    layout = draw(st.sampled_from(["batch", "broadcast", "1d", "3d", "0d"]), label="layout")
    if layout == "0d" and name != "default":  # a custom distance reduces the last dim
        layout = "1d"
    d = draw(st.integers(1, 4))
    shapes = {"batch": [(3, d)] * 3, "broadcast": [(3, d), (1, d), (3, 1)], "1d": [(d,)] * 3,
              "3d": [(2, 2, d)] * 3, "0d": [()] * 3}[layout]  # fmt: skip
    inputs = [rng.standard_normal(s) for s in shapes]
    kwargs = {
        "margin": draw(st.sampled_from([0.5, 1.0, 3.0])),
        "swap": draw(st.booleans()),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return inputs, kwargs, name


def _triplet_pair(name: str) -> dict[str, Any]:
    distance, backward, _ = DISTANCES[name]
    return {"distance_function": distance, "distance_backward": backward}


@given(case=triplet_cases())
def test_triplet_gradcheck(case: Any) -> None:
    inputs, kwargs, name = case
    kw = {**kwargs, **_triplet_pair(name)}
    result = gradcheck(
        lambda *xs: TRF.triplet_margin_with_distance_loss(*xs, **kw),
        *inputs,
        backward=lambda g, *xs: TRF.triplet_margin_with_distance_loss_backward(g, *xs, **kw),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@settings(max_examples=25)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=triplet_cases())
def test_triplet_module_matches_torch(dtype: Any, device: str, case: Any) -> None:
    inputs, kwargs, name = case
    ref = rnn.TripletMarginWithDistanceLoss(**kwargs, **_triplet_pair(name))
    twin = torch.nn.TripletMarginWithDistanceLoss(**kwargs, distance_function=DISTANCES[name][2])
    assert_twin(ref, twin, inputs=inputs, dtype=dtype, device=device, differentiable=(0, 1, 2))


_A = np.zeros((1, 2))
TRIPLET_KINKS = {  # name: (inputs, kwargs); squared distances, so the ties are exact
    "hinge_at_zero": ([_A, np.array([[1.0, 0]]), np.array([[2.0, 0]])], {"margin": 3.0}),
    "swap_tie": ([_A, np.array([[2.0, 0]]), np.array([[1.0, 0]])], {"margin": 4.0, "swap": True}),
    "manhattan_zero": ([_A, _A, np.array([[0.0, 1]])], {"margin": 2.0}),
}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(TRIPLET_KINKS))
def test_triplet_kinks_follow_torch(case: str, reduction: str) -> None:
    """clamp_min passes the gradient at exactly 0; torch.minimum splits a tie in half."""
    inputs, kwargs = TRIPLET_KINKS[case]
    name = "manhattan" if case == "manhattan_zero" else "squared"
    kw = {**kwargs, "reduction": reduction}
    out = TRF.triplet_margin_with_distance_loss(*inputs, **kw, **_triplet_pair(name))
    g = np.random.default_rng(3).standard_normal(np.shape(out))
    grads = TRF.triplet_margin_with_distance_loss_backward(g, *inputs, **kw, **_triplet_pair(name))
    ts = [torch.tensor(x, requires_grad=True) for x in inputs]
    t_out = TF.triplet_margin_with_distance_loss(*ts, **kw, distance_function=DISTANCES[name][2])
    t_out.backward(torch.tensor(g))
    _close("loss", out, t_out, np.float64)
    for ours, t in zip(grads, ts):
        _close("grad", ours, t.grad, np.float64)
    assert np.abs(grads[0]).max() > 0  # the gradient passed the kink


def test_triplet_default_is_pairwise_distance_with_eps() -> None:
    a, p, n = np.zeros(3), np.full(3, 0.5), np.ones(3)
    expected = max(0, 1 + np.linalg.norm(a - p + 1e-6) - np.linalg.norm(a - n + 1e-6))
    assert TRF.triplet_margin_with_distance_loss(a, p, n) == pytest.approx(expected, rel=1e-15)


def test_triplet_errors() -> None:
    x = np.zeros((2, 3))
    loss = rnn.TripletMarginWithDistanceLoss(distance_function=_squared)
    loss(x, x + 1, x)  # the forward needs no backward
    with pytest.raises(TypeError, match="without distance_backward"):
        loss.backward()
    with pytest.raises(TypeError, match="without distance_backward"):
        TRF.triplet_margin_with_distance_loss_backward(1.0, x, x, x, distance_function=_squared)
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        TF.triplet_margin_with_distance_loss(torch.zeros(2, 3), torch.zeros(3), torch.zeros(2, 3))
    with pytest.raises(RuntimeError, match="same number of dimensions"):
        TRF.triplet_margin_with_distance_loss(x, x[0], x)
    for bad in ({"margin": 0.0}, {"reduction": "avg"}):
        with pytest.raises(ValueError):
            TF.triplet_margin_with_distance_loss(*[torch.zeros(2, 3)] * 3, **bad)
        with pytest.raises(ValueError, match="margin|reduction"):
            TRF.triplet_margin_with_distance_loss(x, x, x, **bad)
    with pytest.raises(ValueError, match="greater than 0"):
        rnn.TripletMarginWithDistanceLoss(margin=-1.0)
    with pytest.raises(TypeError, match="callable"):
        TRF.triplet_margin_with_distance_loss(x, x, x, distance_function=3)
    with pytest.raises(TypeError, match="floating"):
        TRF.triplet_margin_with_distance_loss(x.astype(int), x, x)


# -- AdaptiveLogSoftmaxWithLoss ----------------------------------------------------------


@st.composite
def asm_cases(draw: Any) -> dict[str, Any]:
    rng = draw_rng(draw)
    n_classes = draw(st.integers(2, 9), label="n_classes")
    count = draw(st.integers(1, min(3, n_classes - 1)), label="clusters")
    cutoffs = sorted(rng.choice(np.arange(1, n_classes), count, replace=False).tolist())
    in_features = draw(st.integers(1, 6), label="in_features")
    batch = draw(st.integers(1, 4))
    unbatched = draw(st.booleans(), label="unbatched")
    x = rng.standard_normal(in_features if unbatched else (batch, in_features)) * 2
    target = rng.integers(0, n_classes, () if unbatched else batch)
    module = {"in_features": in_features, "n_classes": n_classes, "cutoffs": cutoffs,
              "div_value": draw(st.sampled_from([1.0, 2.0, 4.0])),
              "head_bias": draw(st.booleans())}  # fmt: skip
    return {"module": module, "x": x, "target": target, "seed": int(rng.integers(2**31))}


def _asm_twins(case: dict[str, Any], dtype: Any) -> tuple[Any, Any]:
    ref = rnn.AdaptiveLogSoftmaxWithLoss(**case["module"], dtype=dtype, rng=case["seed"])
    with warnings.catch_warnings():  # torch warns for the empty weight of a rank-0 tail
        warnings.simplefilter("ignore", UserWarning)
        twin = torch.nn.AdaptiveLogSoftmaxWithLoss(**case["module"], dtype=torch.float64)
    twin.to({np.float32: torch.float32, np.float64: torch.float64}[dtype])
    twin.load_state_dict({k: torch.tensor(v) for k, v in ref.state_dict().items()})
    return ref, twin


@settings(max_examples=30)
@given(case=asm_cases())
def test_asm_gradcheck(case: dict[str, Any]) -> None:
    """Wrt the input and every weight, of both results (output and loss, concatenated)."""
    ref, _ = _asm_twins(case, np.float64)
    head_weight, tails, bias = ref._weights()
    flat = (
        [head_weight] + [w for pair in tails for w in pair] + ([bias] if bias is not None else [])
    )
    cutoffs, target, k = ref.cutoffs, case["target"], len(tails)

    def unpack(ws: tuple) -> tuple:
        pairs = [(ws[1 + 2 * i], ws[2 + 2 * i]) for i in range(k)]
        return ws[0], pairs, (ws[-1] if bias is not None else None)

    def forward(x: np.ndarray, *ws: np.ndarray) -> np.ndarray:
        hw, pairs, hb = unpack(ws)
        out = AF.adaptive_log_softmax_with_loss(x, target, hw, pairs, cutoffs, hb)
        return np.append(out.output, out.loss)

    def backward(g: np.ndarray, x: np.ndarray, *ws: np.ndarray) -> tuple:
        hw, pairs, hb = unpack(ws)
        g_out = g[:-1].reshape(np.shape(target))
        gx, ghw, ghb, gt = AF.adaptive_log_softmax_with_loss_backward(
            (g_out, g[-1]), x, target, hw, pairs, cutoffs, hb
        )
        return (gx, ghw, *[w for pair in gt for w in pair], *([ghb] if hb is not None else []))

    result = gradcheck(forward, case["x"], *flat, backward=backward, **GRADCHECK)
    assert result.ok, str(result)


@settings(max_examples=25)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=asm_cases())
def test_asm_matches_torch(dtype: Any, case: dict[str, Any]) -> None:
    """Both results, a random upstream gradient for each, every parameter's gradient."""
    ref, twin = _asm_twins(case, dtype)
    x, target = case["x"].astype(dtype), case["target"]
    out = ref(x, target)
    rng = np.random.default_rng(case["seed"])
    g_out, g_loss = rng.standard_normal(np.shape(out.output)), rng.standard_normal()
    grad_x = ref.backward(AF._ASMoutput(g_out.astype(dtype), np.asarray(g_loss, dtype)))
    tx = torch.tensor(x, requires_grad=True)
    t_out = twin(tx, torch.tensor(target))
    torch_dtype = tx.dtype
    torch.autograd.backward(
        [t_out.output, t_out.loss],
        [torch.tensor(g_out, dtype=torch_dtype), torch.tensor(g_loss, dtype=torch_dtype)],
    )
    assert out.output.dtype == dtype and grad_x.dtype == dtype
    _close("output", out.output, t_out.output, dtype)
    _close("loss", out.loss, t_out.loss, dtype)
    _close("grad input", grad_x, tx.grad, dtype)
    torch_params = dict(twin.named_parameters())
    for name, param in ref.named_parameters():
        theirs = torch_params[name].grad
        _close(name, param.grad, torch.zeros_like(torch_params[name]) if theirs is None else theirs,
               dtype)  # fmt: skip
    if x.ndim == 2:
        _close("log_prob", ref.log_prob(x), twin.log_prob(torch.tensor(x)), dtype)
        if dtype == np.float64:  # argmax: float32's near-ties may go either way
            np.testing.assert_array_equal(ref.predict(x), twin.predict(torch.tensor(x)).numpy())


def test_asm_state_dict_predict_tie_and_backward_forms() -> None:
    """torch's keys and shapes (a rank-0 tail when in_features // div**i = 0); argmax ties
    go to the first class, as torch's; backward takes a scalar, None or a pair."""
    kwargs = {"in_features": 5, "n_classes": 10, "cutoffs": [2, 4, 7], "head_bias": True}
    ref = rnn.AdaptiveLogSoftmaxWithLoss(**kwargs, rng=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        twin = torch.nn.AdaptiveLogSoftmaxWithLoss(**kwargs)
    assert {k: v.shape for k, v in ref.state_dict().items()} == {
        k: tuple(v.shape) for k, v in twin.state_dict().items()
    }
    assert ref.state_dict()["tail.1.0.weight"].shape == (0, 5)
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    zero = {k: np.zeros_like(v) for k, v in ref.state_dict().items()}
    ref.load_state_dict(zero)
    twin.load_state_dict({k: torch.tensor(v) for k, v in zero.items()})
    np.testing.assert_array_equal(ref.predict(x), twin.predict(torch.tensor(x)).numpy())
    assert (ref.predict(x) == 0).all()
    target = np.array([0, 5, 9])
    ref(x, target)
    first = ref.backward()
    ref(x, target)
    np.testing.assert_array_equal(ref.backward(np.float32(1.0)), first)
    ref(x, target)
    np.testing.assert_array_equal(ref.backward((None, 1.0)), first)
    with pytest.raises(ValueError, match="pair"):
        ref.backward((1.0, 1.0, 1.0))


def _asm(**kwargs: Any) -> rnn.AdaptiveLogSoftmaxWithLoss:
    return rnn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6], **kwargs)


def _torch_asm() -> torch.nn.AdaptiveLogSoftmaxWithLoss:
    with warnings.catch_warnings():  # its second tail has rank 8 // 16 = 0
        warnings.simplefilter("ignore", UserWarning)
        return torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, [3, 6])


def _double(x: Any) -> Any:
    return x.double() if isinstance(x, torch.Tensor) else x.astype(np.float64)


_X, _Y = np.zeros((4, 8), np.float32), np.array([0, 4, 7, 9])
# fmt: off
ASM_BAD = {  # name: (call on (module, input, target), the reference's error, its message)
    "target_too_big": (lambda m, x, y: m(x, y + 1), RuntimeError, r"in \[0, 9\]"),
    "target_negative": (lambda m, x, y: m(x, y - 1), RuntimeError, r"in \[0, 9\]"),
    "batch_mismatch": (lambda m, x, y: m(x, y[:2]), RuntimeError, "same size in the batch"),
    "multi_target": (lambda m, x, y: m(x, y[None]), RuntimeError, "multi-target"),
    "0d_target_2d_input": (lambda m, x, y: m(x, y[0]), RuntimeError, "0D target"),
    "1d_target_3d_input": (lambda m, x, y: m(x[None], y[:1]), RuntimeError, "2D input"),
    "float_target": (lambda m, x, y: m(x, y * 1.0), TypeError, "int64"),
    "dtype_mismatch": (lambda m, x, y: m(_double(x), y), RuntimeError, "m1 and m2"),
    "in_features": (lambda m, x, y: m(x[:, :5], y), ValueError, "in_features"),
    "log_prob_1d": (lambda m, x, y: m.log_prob(x[0]), ValueError, r"\(N, in_features\)"),
    "predict_1d": (lambda m, x, y: m.predict(x[0]), ValueError, r"\(N, in_features\)"),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(ASM_BAD))
def test_asm_bad_input_raises_like_torch(case: str) -> None:
    call, error, message = ASM_BAD[case]
    args = [torch.tensor(_X), torch.tensor(_Y)]
    with pytest.raises((RuntimeError, ValueError, IndexError)):
        call(_torch_asm(), *args)
    with pytest.raises(error, match=message):
        call(_asm(rng=0), _X, _Y)


@pytest.mark.parametrize("cutoffs", [[], [3, 3], [6, 3], [0, 3], [3, 10], [3.5]])
def test_asm_bad_cutoffs(cutoffs: list[Any]) -> None:
    with pytest.raises(ValueError, match="cutoffs should be"):
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    with pytest.raises(ValueError, match="cutoffs should be"):
        rnn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)


# -- LinearCrossEntropyLoss --------------------------------------------------------------


@st.composite
def lce_cases(draw: Any) -> tuple[dict[str, Any], list[np.ndarray]]:
    rng = draw_rng(draw)
    in_features, classes = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    out_features = draw(st.sampled_from([(), (2,), (2, 3)]), label="out_features")
    unbatched = not out_features and draw(st.booleans(), label="unbatched")
    lead = () if unbatched else (draw(st.integers(1, 3)),)
    probabilities = draw(st.booleans(), label="probabilities")
    ignore = None if probabilities else draw(st.sampled_from([None, -100, 0]))
    kwargs = {
        "out_features": out_features,
        "bias": draw(st.booleans()),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "weight": rng.uniform(0.2, 2.0, classes) if draw(st.booleans()) else None,
        "ignore_index": ignore,
        "label_smoothing": draw(st.sampled_from([0.0, 0.1])),
    }
    x = rng.standard_normal((*lead, in_features))
    if probabilities:
        target = rng.dirichlet(np.ones(classes), (*lead, *out_features))  # (*N, *d, C)
        target = np.moveaxis(target, -1, len(lead))  # -> (*N, C, *d)
    else:
        target = rng.integers(0, classes, (*lead, *out_features))
        target.reshape(-1)[0] = 1 if ignore == 0 and classes > 1 else target.reshape(-1)[0]
    return {"in_features": in_features, "num_classes": classes, **kwargs}, [x, target]


def _torch_kwargs(kwargs: dict[str, Any], dtype: Any = torch.float64) -> dict[str, Any]:
    weight = kwargs["weight"]
    return {**kwargs, "weight": None if weight is None else torch.tensor(weight, dtype=dtype)}


@settings(max_examples=30)
@given(case=lce_cases())
def test_lce_gradcheck(case: Any) -> None:
    kwargs, (x, target) = case
    if kwargs["ignore_index"] == 0 and kwargs["num_classes"] == 1:
        kwargs = {**kwargs, "ignore_index": None}  # every target ignored: a nan mean
    module = rnn.LinearCrossEntropyLoss(**kwargs, dtype=np.float64, rng=0)
    result = gradcheck(module, x, target, **GRADCHECK)
    assert result.ok, str(result)


@settings(max_examples=25)
@pytest.mark.parametrize("options", [None, "chunked"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=lce_cases())
def test_lce_module_matches_torch(dtype: Any, options: Any, device: str, case: Any) -> None:
    """``options`` (torch's chunked kernel where it applies) is the same math."""
    kwargs, inputs = case
    kwargs = {**kwargs, "options": options and torch.nn.LinearCrossEntropyOptions()}
    ref = rnn.LinearCrossEntropyLoss(**kwargs, rng=1)
    with warnings.catch_warnings():  # torch warns where options do not apply
        warnings.simplefilter("ignore", UserWarning)
        twin = torch.nn.LinearCrossEntropyLoss(**_torch_kwargs(kwargs, torch.float32))
        assert_twin(ref, twin, inputs=inputs, dtype=dtype, device=device)


def test_lce_state_dict_matches_torch() -> None:
    kwargs = {"out_features": (2, 3), "bias": True, "weight": np.ones(4)}
    ref = rnn.LinearCrossEntropyLoss(5, 4, **kwargs)
    twin = torch.nn.LinearCrossEntropyLoss(5, 4, **_torch_kwargs(kwargs))
    assert {k: v.shape for k, v in ref.state_dict().items()} == {
        k: tuple(v.shape) for k, v in twin.state_dict().items()
    }
    assert list(ref.state_dict()) == ["weight", "linear.weight", "linear.bias"]


_LX = np.zeros((4, 3))
# fmt: off
LCE_BAD = {  # name: (constructor kwargs, forward inputs, the reference's error, its message)
    "int_probabilities": ({}, [_LX, np.zeros((4, 2), np.int64)], RuntimeError, "floating point"),
    "batch_mismatch": ({}, [_LX, np.zeros((5, 2))], ValueError, r"\(4, 2\)"),
    "in_features": ({}, [np.zeros((4, 5)), np.zeros(4, np.int64)], RuntimeError, "in_features"),
    "weight_shape": ({"weight": np.ones(3)}, None, RuntimeError, "weight shape"),
    "label_smoothing": ({"label_smoothing": 2.0}, None, RuntimeError, "label_smoothing"),
    "ignore_with_probabilities": ({"ignore_index": -100}, [_LX, np.full((4, 2), 0.5)],
                                  RuntimeError, "ignore_index cannot"),
    "unbatched_k_dim": ({"out_features": (2,)}, [_LX[0], np.zeros(2, np.int64)], RuntimeError,
                        "batched input"),
    "input_3d": ({}, [_LX[None], np.zeros((1, 4), np.int64)], RuntimeError, "dimensionality"),
    "dtype_mismatch": ({"dtype": np.float32}, [_LX, np.zeros(4, np.int64)], RuntimeError,
                       "m1 and m2"),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(LCE_BAD))
def test_lce_bad_input_raises_like_torch(case: str) -> None:
    """torch.nn's own error samples for this module (module_db), and a few more."""
    kwargs, inputs, error, message = LCE_BAD[case]
    t_kwargs = {**_torch_kwargs({"weight": None, **kwargs}), "dtype": torch.float64}
    if kwargs.get("dtype") is np.float32:
        t_kwargs["dtype"] = torch.float32
    with pytest.raises((RuntimeError, ValueError)):
        torch.nn.LinearCrossEntropyLoss(3, 2, **t_kwargs)(*map(torch.tensor, inputs or []))
    with pytest.raises(error, match=message):
        rnn.LinearCrossEntropyLoss(3, 2, **{"dtype": np.float64, **kwargs})(*(inputs or []))
