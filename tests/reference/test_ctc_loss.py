"""CTCLoss and ctc_loss: gradcheck (through a log_softmax, and of the true derivative), the
pair and the module against torch in float64 and float32 over drawn lengths, blanks,
layouts and reductions, impossible alignments, unbatched input, bad input.

torch's gradient wrt ``log_probs`` is the true derivative plus ``g * exp(log_probs)`` on
every frame inside the input length (a term the backward of a log_softmax removes); the
reference returns torch's, so a gradcheck wrt ``log_probs`` checks the true derivative,
recovered by subtracting that term, and the gradcheck through ``log_softmax`` checks the
reference's own result.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference import nn as rnn
from reference.functional import ctc_loss, ctc_loss_backward, log_softmax, log_softmax_backward
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

REDUCTIONS = ["none", "mean", "sum"]


class Case(NamedTuple):
    log_probs: np.ndarray  # (T, N, C), or (T, C) unbatched
    targets: np.ndarray  # (N, S) padded or concatenated
    input_lengths: Any
    target_lengths: Any
    kwargs: dict[str, Any]

    @property
    def args(self) -> list[Any]:
        return [self.log_probs, self.targets, self.input_lengths, self.target_lengths]


def _needed_frames(labels: np.ndarray) -> int:
    """The fewest frames that can emit ``labels``: one each, plus a blank between repeats."""
    return len(labels) + int((labels[1:] == labels[:-1]).sum())


@st.composite
def ctc_cases(draw: Any, feasible: bool = False, normalised: bool = True) -> Case:
    """Random lengths (some alignments impossible unless ``feasible``), blank, layout."""
    rng = draw_rng(draw)
    batch, classes = draw(st.integers(1, 3), label="N"), draw(st.integers(2, 5), label="C")
    blank = draw(st.integers(0, classes - 1), label="blank")
    longest = draw(st.integers(0, 3), label="S")
    frames = draw(st.integers(max(1, 2 * longest if feasible else 1), 6), label="T")
    target_lengths = rng.integers(0, longest + 1, batch)
    labels = np.array([c for c in range(classes) if c != blank])
    padded = rng.choice(labels, (batch, longest + int(draw(st.booleans()))))  # maybe extra pad
    needed = [_needed_frames(padded[n, : target_lengths[n]]) for n in range(batch)]
    low = needed if feasible else [0] * batch
    input_lengths = np.array([rng.integers(lo, frames + 1) for lo in low])
    log_probs = rng.standard_normal((frames, batch, classes)) * draw(st.sampled_from([1.0, 3.0]))
    if normalised:
        log_probs = log_softmax(log_probs, 2)
    layout = draw(st.sampled_from(["padded", "concatenated"]), label="layout")
    targets = (
        np.concatenate([padded[n, : target_lengths[n]] for n in range(batch)]).astype(np.int64)
        if layout == "concatenated"
        else padded
    )
    as_type = draw(st.sampled_from([tuple, np.array]), label="lengths as")
    lengths = [as_type([int(v) for v in x]) for x in (input_lengths, target_lengths)]
    if batch == 1 and draw(st.booleans(), label="unbatched"):
        log_probs = log_probs[:, 0]
    kwargs = {
        "blank": blank,
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "zero_infinity": draw(st.booleans()),
    }
    return Case(log_probs, targets, *lengths, kwargs)


def _torch_args(case: Case, dtype: Any, requires_grad: bool = True) -> list[Any]:
    lp = torch.tensor(case.log_probs.astype(dtype), requires_grad=requires_grad)
    return [lp, torch.as_tensor(case.targets), torch.as_tensor(np.asarray(case.input_lengths)),
            torch.as_tensor(np.asarray(case.target_lengths))]  # fmt: skip


# -- gradcheck ----------------------------------------------------------------------------


@settings(max_examples=30)
@given(case=ctc_cases(feasible=True, normalised=False))
def test_gradcheck_through_log_softmax(case: Case) -> None:
    """``ctc_loss(log_softmax(x))`` wrt the logits: torch's extra exp(log_probs) term is
    removed by log_softmax's backward, so this is the reference's own result, checked."""
    _, *rest = case.args
    kw = case.kwargs
    dim = case.log_probs.ndim - 1
    result = gradcheck(
        lambda x: ctc_loss(log_softmax(x, dim), *rest, **kw),
        case.log_probs,
        backward=lambda g, x: log_softmax_backward(
            ctc_loss_backward(g, log_softmax(x, dim), *rest, **kw), x, dim
        ),
        **GRADCHECK,
    )
    assert result.ok, str(result)


def _exp_term(grad_output: Any, case: Case, log_probs: np.ndarray) -> np.ndarray:
    r""":math:`g_n e^{y_t(c)}` on the frames :math:`t < T_n`: what torch adds to the derivative."""
    lp = log_probs if log_probs.ndim == 3 else log_probs[:, None]  # (T, C) -> (T, 1, C)
    frames, batch, _ = lp.shape
    g = np.broadcast_to(np.asarray(grad_output, dtype=np.float64).reshape(-1), (batch,))
    if case.kwargs["reduction"] == "mean":
        g = g / batch / np.maximum(np.asarray(case.target_lengths).reshape(-1), 1)
    inside = np.arange(frames)[:, None] < np.asarray(case.input_lengths).reshape(1, -1)
    term = np.exp(lp) * (g * inside)[:, :, None]  # (T, N) -> (T, N, 1)
    return term.reshape(log_probs.shape)


@settings(max_examples=30)
@given(case=ctc_cases(feasible=True, normalised=False))
def test_gradient_is_the_true_derivative_plus_torchs_exp_term(case: Case) -> None:
    """Wrt unnormalised log_probs: ctc_loss_backward - g exp(y) is the derivative of ctc_loss."""
    _, *rest = case.args
    kw = case.kwargs
    result = gradcheck(
        lambda lp: ctc_loss(lp, *rest, **kw),
        case.log_probs,
        backward=lambda g, lp: ctc_loss_backward(g, lp, *rest, **kw) - _exp_term(g, case, lp),
        **GRADCHECK,
    )
    assert result.ok, str(result)


def test_torch_adds_exp_log_probs_to_the_derivative_float64_evidence() -> None:
    """Torch itself: its gradient minus central differences of its own forward is
    exp(log_probs) on the frames inside the input length (0 after), for unnormalised input."""
    rng = np.random.default_rng(7)
    lp = 2 * rng.standard_normal((5, 2, 4))
    case = Case(lp, np.array([[1, 2], [3, 3]]), (5, 4), (2, 2), {"reduction": "sum"})
    x, *rest = _torch_args(case, np.float64)
    TF.ctc_loss(x, *rest, reduction="sum").backward()
    numerical = np.zeros_like(lp)
    for index in np.ndindex(lp.shape):
        step = np.zeros_like(lp)
        step[index] = 1e-6
        up, down = (
            TF.ctc_loss(torch.tensor(lp + s), *rest, reduction="sum") for s in (step, -step)
        )
        numerical[index] = float(up - down) / 2e-6
    residual = x.grad.numpy() - numerical - _exp_term(1.0, case, lp)
    assert np.abs(residual).max() < 1e-8
    assert np.abs(x.grad.numpy() - numerical).max() > 1  # the term is not small
    np.testing.assert_allclose(
        ctc_loss_backward(1.0, *case.args, reduction="sum"), x.grad.numpy(), rtol=1e-12, atol=1e-14
    )


# -- against torch ------------------------------------------------------------------------


@settings(max_examples=40)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=ctc_cases(normalised=False))
def test_functional_matches_torch(dtype: Any, case: Case) -> None:
    """Any lengths (inf losses and their nan or zeroed gradients included), both layouts."""
    args = [case.log_probs.astype(dtype), *case.args[1:]]
    out = ctc_loss(*args, **case.kwargs)
    g = np.random.default_rng(1).standard_normal(np.shape(out)).astype(dtype)
    grad = ctc_loss_backward(g, *args, **case.kwargs)
    t_args = _torch_args(case, dtype)
    t_out = TF.ctc_loss(*t_args, **case.kwargs)
    t_out.backward(torch.as_tensor(g))
    assert out.dtype == dtype and grad.dtype == dtype and grad.shape == case.log_probs.shape
    for name, ours, theirs in [("loss", out, t_out), ("grad", grad, t_args[0].grad)]:
        comparison = compare_arrays(name, ours, theirs.detach().numpy(), tolerance(dtype))
        assert comparison.ok, str(comparison)


@settings(max_examples=25)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=ctc_cases())
def test_module_matches_torch(dtype: Any, device: str, case: Case) -> None:
    ref, twin = rnn.CTCLoss(**case.kwargs), torch.nn.CTCLoss(**case.kwargs)
    inputs = [case.log_probs, case.targets, np.asarray(case.input_lengths),
              np.asarray(case.target_lengths)]  # fmt: skip
    assert_twin(ref, twin, inputs=inputs, dtype=dtype, device=device)


def test_benchmark_size_matches_torch_in_float32() -> None:
    """T=100, N=16, C=30, S=30 (the timed size): float32 within float32's tolerance."""
    rng = np.random.default_rng(0)
    lp = log_softmax(rng.standard_normal((100, 16, 30)).astype(np.float32), 2)
    targets, lengths = rng.integers(1, 30, (16, 30)), rng.integers(10, 31, 16)
    case = Case(lp, targets, np.full(16, 100), lengths, {})
    grad = ctc_loss_backward(np.float32(1.0), *case.args)
    t_args = _torch_args(case, np.float32)
    TF.ctc_loss(*t_args).backward()
    comparison = compare_arrays("grad", grad, t_args[0].grad.numpy(), tolerance(np.float32))
    assert comparison.ok, str(comparison)


# -- impossible alignments, -inf log-probabilities, unbatched -------------------------------


@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_impossible_alignment(zero_infinity: bool, reduction: str) -> None:
    """[1, 1] needs 3 frames; with 2 its loss is inf, its gradient nan on its frames (0 with
    zero_infinity); the other sequence is untouched; frames past a length get 0."""
    lp = log_softmax(np.random.default_rng(2).standard_normal((3, 2, 3)), 2)
    kwargs = {"reduction": reduction, "zero_infinity": zero_infinity}
    case = Case(lp, np.array([[1, 1], [2, 1]]), (2, 3), (2, 2), kwargs)
    loss = ctc_loss(*case.args, **case.kwargs)
    g = np.array([0.7, -1.3]) if reduction == "none" else np.array(0.7)
    grad = ctc_loss_backward(g, *case.args, **case.kwargs)
    t_args = _torch_args(case, np.float64)
    t_loss = TF.ctc_loss(*t_args, **case.kwargs)
    t_loss.backward(torch.tensor(g))
    np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, t_args[0].grad.numpy(), rtol=1e-12, atol=1e-15)
    assert (np.isnan(grad[:2, 0]).all() != zero_infinity) and (grad[2, 0] == 0).all()
    assert np.isfinite(grad[:, 1]).all() and np.abs(grad[:, 1]).max() > 0
    if reduction == "none":
        assert loss[0] == (0 if zero_infinity else np.inf)


def test_empty_input_length_and_empty_target() -> None:
    """T_n = 0: loss 0 for an empty target, inf otherwise, and no gradient; S_n = 0 alone."""
    lp = log_softmax(np.random.default_rng(3).standard_normal((3, 3, 4)), 2)
    case = Case(lp, np.array([[1, 2], [1, 2], [3, 3]]), (0, 0, 3), (0, 1, 0), {"reduction": "none"})
    loss = ctc_loss(*case.args, reduction="none")
    grad = ctc_loss_backward(np.ones(3), *case.args, reduction="none")
    t_args = _torch_args(case, np.float64)
    t_loss = TF.ctc_loss(*t_args, reduction="none")
    t_loss.backward(torch.ones(3, dtype=torch.float64))
    np.testing.assert_allclose(loss, t_loss.detach().numpy(), rtol=1e-12)
    np.testing.assert_array_equal(grad[:, :2], 0)
    np.testing.assert_allclose(grad, t_args[0].grad.numpy(), rtol=1e-12, atol=1e-15)
    assert loss[0] == 0 and loss[1] == np.inf and loss[2] == -lp[:, 2, 0].sum()


def test_minus_infinity_log_probability_gets_nan_like_torch() -> None:
    """torch's formula computes -inf + inf at a log-probability of -inf (a softmax underflow):
    nan there (inside the length), the rest as usual."""
    lp = log_softmax(np.random.default_rng(4).standard_normal((4, 2, 4)), 2)
    lp[1, 0, 3] = -np.inf
    case = Case(lp, np.array([[1, 2], [3, 3]]), (4, 4), (2, 2), {"reduction": "sum"})
    grad = ctc_loss_backward(1.0, *case.args, reduction="sum")
    t_args = _torch_args(case, np.float64)
    TF.ctc_loss(*t_args, reduction="sum").backward()
    np.testing.assert_allclose(grad, t_args[0].grad.numpy(), rtol=1e-12, atol=1e-15)
    assert np.isnan(grad).sum() == 1 and np.isnan(grad[1, 0, 3])


def test_unbatched_is_a_batch_of_one() -> None:
    lp = log_softmax(np.random.default_rng(5).standard_normal((5, 4)), 1)
    for targets in (np.array([1, 2]), np.array([[1, 2, 0]])):
        loss = ctc_loss(lp, targets, (5,), np.array(2), reduction="none")
        batched = ctc_loss(lp[:, None], targets.reshape(1, -1), (5,), (2,), reduction="none")
        assert loss.shape == () and loss == batched[0]
        grad = ctc_loss_backward(np.array(0.5), lp, targets, (5,), (2,), reduction="none")
        assert grad.shape == (5, 4)
        t_lp = torch.tensor(lp, requires_grad=True)
        TF.ctc_loss(t_lp, torch.tensor(targets), (5,), (2,), reduction="none").backward(
            torch.tensor(0.5, dtype=torch.float64)
        )
        np.testing.assert_allclose(grad, t_lp.grad.numpy(), rtol=1e-12, atol=1e-15)


# -- bad input ----------------------------------------------------------------------------

_LP = log_softmax(np.random.default_rng(6).standard_normal((4, 2, 5)), 2)
_TG, _L, _S = np.array([[1, 2], [3, 1]]), (4, 4), (2, 2)
# fmt: off
BAD = {  # name: (args, kwargs, the reference's error, its message); torch raises for each
    "log_probs_1d": ([_LP[:, 0, 0], _TG, _L, _S], {}, ValueError, r"\(T, N, C\)"),
    "log_probs_4d": ([_LP[None], _TG, _L, _S], {}, ValueError, r"\(T, N, C\)"),
    "int_log_probs": ([_LP.astype(np.int64), _TG, _L, _S], {}, TypeError, "float32 or float64"),
    "empty_batch": ([_LP[:, :0], _TG[:0], (), ()], {}, ValueError, "non-empty"),
    "blank_too_big": ([_LP, _TG, _L, _S], {"blank": 5}, ValueError, "blank must be in"),
    "blank_negative": ([_LP, _TG, _L, _S], {"blank": -1}, ValueError, "blank must be in"),
    "input_lengths_size": ([_LP, _TG, (4,), _S], {}, ValueError, "one length per sequence"),
    "target_lengths_size": ([_LP, _TG, _L, (2, 2, 2)], {}, ValueError, "one length per"),
    "input_length_past_T": ([_LP, _TG, (5, 4), _S], {}, ValueError, r"\[0, T=4\]"),
    "negative_input_length": ([_LP, _TG, (-1, 4), _S], {}, ValueError, r"\[0, T=4\]"),
    "negative_target_length": ([_LP, _TG, _L, (-1, 2)], {}, ValueError, ">= 0"),
    "float_lengths": ([_LP, _TG, np.array([4.0, 4.0]), _S], {}, TypeError, "integral"),
    "plain_int_lengths": ([_LP[:, 0], _TG[0], 4, 2], {}, TypeError, "plain int"),
    "target_too_short": ([_LP, _TG, _L, (3, 2)], {}, ValueError, "S >= max"),
    "targets_batch": ([_LP, _TG[:1], _L, _S], {}, ValueError, "N=2"),
    "concatenated_sum": ([_LP, np.array([1, 2, 3]), _L, _S], {}, ValueError, "sum"),
    "targets_3d": ([_LP, _TG[:, :, None], _L, _S], {}, ValueError, "padded or 1-D"),
    "bad_reduction": ([_LP, _TG, _L, _S], {"reduction": "avg"}, ValueError, "reduction"),
}
# fmt: on


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_raises_like_torch(case: str) -> None:
    args, kwargs, error, message = BAD[case]
    t_args = [torch.as_tensor(a) if isinstance(a, np.ndarray) else a for a in args]
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError, KeyError)):
        TF.ctc_loss(*t_args, **kwargs)
    with pytest.raises(error, match=message):
        ctc_loss(*args, **kwargs)
    with pytest.raises(error, match=message):
        ctc_loss_backward(np.float64(1.0), *args, **kwargs)


def test_labels_torch_does_not_check_are_refused() -> None:
    """Out of [0, C) torch reads out of bounds; a blank inside a target it accepts, and its
    backward then drops a term at the last frame (shown below): the reference refuses both."""
    for targets in (np.array([[1, 5], [3, 1]]), np.array([[1, -1], [3, 1]]), _TG * 0):
        with pytest.raises(ValueError, match="cannot be blank"):
            ctc_loss(_LP, targets, _L, _S)
    with pytest.raises(TypeError, match="integer class indices"):
        ctc_loss(_LP, _TG.astype(np.float64), _L, _S)  # torch truncates floats silently
    lp = torch.tensor(_LP[:, :1], requires_grad=True)
    target = torch.tensor([[1, 0]])  # the last label is the blank
    TF.ctc_loss(lp, target, (4,), (2,), reduction="sum").backward()
    numerical = np.zeros(_LP[:, :1].shape)
    for index in np.ndindex(numerical.shape):
        step = np.zeros(numerical.shape)
        step[index] = 1e-6
        losses = [TF.ctc_loss(torch.tensor(_LP[:, :1] + s), target, (4,), (2,), reduction="sum")
                  for s in (step, -step)]  # fmt: skip
        numerical[index] = float(losses[0] - losses[1]) / 2e-6
    off = np.abs(lp.grad.numpy() - np.exp(_LP[:, :1]) - numerical).max(axis=(1, 2))
    assert (off[:-1] < 1e-8).all() and off[-1] > 1e-2  # wrong at the last frame only


def test_lengths_in_every_form_torch_takes() -> None:
    """Tuples, lists, int32/int64 arrays, any shape with N elements."""
    expected = ctc_loss(_LP, _TG, _L, _S)
    for lengths in [([4, 4], [2, 2]), (np.array([4, 4], np.int32), np.array([[2, 2]]))]:
        assert ctc_loss(_LP, _TG, *lengths) == expected
    assert ctc_loss(_LP, _TG.astype(np.int32), _L, _S) == expected


def test_module_plumbing() -> None:
    loss = rnn.CTCLoss(blank=1, zero_infinity=True)
    assert repr(loss) == "CTCLoss(blank=1, reduction='mean', zero_infinity=True)"
    assert loss.state_dict() == {} and not torch.nn.CTCLoss().state_dict()
    with pytest.raises(RuntimeError, match="before forward"):
        loss.backward()
    none = rnn.CTCLoss(reduction="none")
    none(_LP, _TG, _L, _S)
    with pytest.raises(ValueError, match="grad_output"):
        none.backward()
    with pytest.raises(ValueError, match="reduction"):
        rnn.CTCLoss(reduction="avg")
