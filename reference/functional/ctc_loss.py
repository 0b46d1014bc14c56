r"""The connectionist temporal classification loss as a forward/backward pair
(``torch.nn.functional.ctc_loss``).

CTC scores every alignment of a target :math:`l` (length :math:`S`) to the
:math:`T` frames of an input: a path picks one class per frame, and collapsing
repeats, then dropping blanks, must give :math:`l`. With the *extended* target
:math:`l' = (b, l_1, b, l_2, \dots, l_S, b)` (:math:`2S + 1` states, :math:`b` the
blank) the sum over paths is a recursion over frames (Graves et al., 2006), kept in
log space as torch's CPU kernel keeps it:

.. math::
    \alpha_0(0) = y_0(b), \quad \alpha_0(1) = y_0(l_1), \qquad
    \alpha_t(s) = y_t(l'_s) + \log\!\big(e^{\alpha_{t-1}(s)} + e^{\alpha_{t-1}(s-1)}
                  + [l'_s \ne l'_{s-2}]\, e^{\alpha_{t-1}(s-2)}\big)

where :math:`y_t(c)` is the log-probability of class :math:`c` at frame :math:`t`
and a state may skip the blank before it unless the label repeats. The loss of a
sequence is :math:`-\log p(l \mid y) = -\log(e^{\alpha_{T-1}(2S)} + e^{\alpha_{T-1}(2S-1)})`.

The loops run over frames only; each step is vectorised over the batch and the
extended-label axis (padded to the longest target; states past a sequence's own
:math:`2S` stay :math:`-\infty`, and they never feed a lower state).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, NamedTuple

import numpy as np

from .._validate import check_reduction

__all__ = ["ctc_loss", "ctc_loss_backward"]

_NAME = "ctc_loss"


class _TargetLayout(Enum):
    PADDED = "padded"  # (N, S_max), row n holds its target_lengths[n] labels first
    CONCATENATED = "concatenated"  # (sum(target_lengths),), the targets one after another


class _CTCProblem(NamedTuple):
    """The checked arguments, batched: log-probabilities ``(T, N, C)``, the extended
    labels ``(N, 2 S_max + 1)``, lengths ``(N,)`` int64, and whether the input was batched."""

    log_probs: np.ndarray
    extended: np.ndarray
    input_lengths: np.ndarray
    target_lengths: np.ndarray
    batched: bool


def _check_lengths(lengths: Any, batch: int, what: str) -> np.ndarray:
    """``input_lengths``/``target_lengths``: a tuple, list or integer array of ``N`` values."""
    if isinstance(lengths, (bool, int, float)):
        raise TypeError(
            f"{_NAME}: {what} must be a tuple, list or integer array (torch takes a tuple of "
            f"ints or a tensor), got the plain {type(lengths).__name__} {lengths!r}; for one "
            f"sequence pass ({lengths},) or np.array({lengths})"
        )
    array = np.asarray(lengths)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{_NAME}: {what} must be integral, got dtype {array.dtype}")
    if array.size != batch:  # torch reads any shape by its number of elements
        raise ValueError(
            f"{_NAME}: {what} must hold one length per sequence ({batch}), got shape {array.shape}"
        )
    return array.reshape(batch).astype(np.int64)  # (any shape of N elements) -> (N,)


def _padded_targets(targets: Any, target_lengths: np.ndarray, batch: int) -> np.ndarray:
    """The targets as ``(N, S_max)`` int64, ``S_max = max(target_lengths)``, whatever the layout."""
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        # torch casts any targets to int64 (floats truncated, bools as 0/1) without a word
        raise TypeError(
            f"{_NAME}: targets must be integer class indices, got dtype {targets.dtype}; "
            "cast with .astype(np.int64)"
        )
    if targets.ndim not in (1, 2):
        raise ValueError(
            f"{_NAME}: targets must be (N, S) padded or 1-D concatenated, got shape {targets.shape}"
        )
    layout = _TargetLayout.CONCATENATED if targets.ndim == 1 else _TargetLayout.PADDED
    longest = int(target_lengths.max(initial=0))
    position = np.arange(longest)
    if layout is _TargetLayout.CONCATENATED:
        if targets.shape[0] != target_lengths.sum():
            raise ValueError(
                f"{_NAME}: concatenated targets must hold sum(target_lengths) = "
                f"{target_lengths.sum()} labels, got shape {targets.shape}"
            )
        start = np.cumsum(target_lengths) - target_lengths  # (N,): where each target begins
        index = np.minimum(start[:, None] + position, max(targets.shape[0] - 1, 0))  # (N, S_max)
        return targets[index].astype(np.int64)
    if targets.shape[0] != batch or targets.shape[1] < longest:
        raise ValueError(
            f"{_NAME}: padded targets must be (N={batch}, S >= max(target_lengths)={longest}), "
            f"got shape {targets.shape}"
        )
    return targets[:, :longest].astype(np.int64)


def _extend(targets: np.ndarray, target_lengths: np.ndarray, blank: int, classes: int):
    """The extended labels :math:`l'` ``(N, 2 S_max + 1)``: blank, l_1, blank, ..., blank."""
    inside = np.arange(targets.shape[1]) < target_lengths[:, None]  # (N, S_max)
    bad = inside & ((targets < 0) | (targets >= classes) | (targets == blank))
    if bad.any():
        # torch checks none of this: it reads out of bounds for an index outside [0, C),
        # and for a blank inside a target its backward drops a term at the last frame
        n, s = np.argwhere(bad)[0]
        raise ValueError(
            f"{_NAME}: target labels must lie in [0, {classes}) and differ from blank={blank} "
            f"(torch's rule: 'the target index cannot be blank'), got {targets[n, s]} at "
            f"sequence {n}, position {s}"
        )
    extended = np.full((targets.shape[0], 2 * targets.shape[1] + 1), blank, dtype=np.int64)
    extended[:, 1::2] = np.where(inside, targets, blank)
    return extended


def _check_ctc(log_probs, targets, input_lengths, target_lengths, blank, reduction) -> _CTCProblem:
    check_reduction(reduction, _NAME)
    log_probs = np.asarray(log_probs)
    if log_probs.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{_NAME}: log_probs must be float32 or float64 (torch's CPU kernel), got dtype "
            f"{log_probs.dtype} with shape {log_probs.shape}"
        )
    if log_probs.ndim not in (2, 3) or log_probs.size == 0:
        raise ValueError(
            f"{_NAME}: log_probs must be a non-empty (T, N, C) or unbatched (T, C) array, "
            f"got shape {log_probs.shape}"
        )
    batched = log_probs.ndim == 3
    if not batched:
        log_probs = log_probs[:, None, :]  # (T, C) -> (T, 1, C)
    frames, batch, classes = log_probs.shape
    if not 0 <= blank < classes:
        raise ValueError(f"{_NAME}: blank must be in label range [0, {classes}), got {blank}")
    input_lengths = _check_lengths(input_lengths, batch, "input_lengths")
    target_lengths = _check_lengths(target_lengths, batch, "target_lengths")
    if (input_lengths < 0).any() or (input_lengths > frames).any() or (target_lengths < 0).any():
        raise ValueError(
            f"{_NAME}: input_lengths must lie in [0, T={frames}] and target_lengths be >= 0, got "
            f"input_lengths {input_lengths.tolist()}, target_lengths {target_lengths.tolist()}"
        )
    padded = _padded_targets(targets, target_lengths, batch)
    extended = _extend(padded, target_lengths, blank, classes)
    return _CTCProblem(log_probs, extended, input_lengths, target_lengths, batched)


def _log_add(*terms: np.ndarray) -> np.ndarray:
    """:math:`\\log \\sum_k e^{a_k}` as torch's kernel computes it: shifted by the largest
    term, and by 0 when every term is :math:`-\\infty` (then log 0 = -inf is the answer:
    callers ignore that divide-by-zero)."""
    largest = terms[0]
    for term in terms[1:]:
        largest = np.maximum(largest, term)
    largest = np.where(largest == -np.inf, 0, largest)
    total = np.exp(terms[0] - largest)
    for term in terms[1:]:
        total += np.exp(term - largest)
    return np.log(total) + largest


class _Shifted:
    """A row of states seen shifted by one and by two states, ``-inf`` brought in, as views
    of one buffer: ``x[s - 1], x[s - 2]`` (direction +1, the forward recursion) or
    ``x[s + 1], x[s + 2]`` (direction -1, the backward one)."""

    def __init__(self, like: np.ndarray, direction: int):
        self.buffer = np.full(like.shape[:-1] + (like.shape[-1] + 2,), -np.inf, like.dtype)
        self.direction = direction

    def set(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Hold ``x``; return it shifted by one state and by two."""
        buffer = self.buffer
        if self.direction > 0:
            buffer[..., 2:] = x
            return buffer[..., 1:-1], buffer[..., :-2]
        buffer[..., :-2] = x
        return buffer[..., 1:-1], buffer[..., 2:]


def _states(problem: _CTCProblem):
    r"""Per sequence, per state: :math:`y_t(l'_s)` ``(T, N, 2S+1)``, the states that exist
    (:math:`s \le 2S`), and where :math:`s` may be reached from :math:`s - 2`."""
    extended = problem.extended
    emit = np.take_along_axis(problem.log_probs, extended[None], axis=2)  # (T, N, 2S+1)
    exists = np.arange(extended.shape[1]) <= 2 * problem.target_lengths[:, None]
    skip = np.zeros(extended.shape, dtype=bool)
    skip[:, 2:] = extended[:, 2:] != extended[:, :-2]  # a label, unless it repeats
    return emit, exists, skip


def _alpha(problem: _CTCProblem, emit, exists, skip):
    """The forward variables ``(T, N, 2S+1)`` and the negative log-likelihoods ``(N,)``."""
    frames = emit.shape[0]
    neg_inf = np.asarray(-np.inf, dtype=emit.dtype)
    alpha = np.empty_like(emit)
    alpha[0] = np.where(exists & (np.arange(emit.shape[2]) <= 1), emit[0], neg_inf)
    shifted = _Shifted(emit[0], +1)
    with np.errstate(divide="ignore"):  # log 0: a state no path reaches yet
        for t in range(1, frames):  # frames past a sequence's length run on, unread
            one, two = shifted.set(alpha[t - 1])
            step = _log_add(alpha[t - 1], one, np.where(skip, two, neg_inf))
            alpha[t] = np.where(exists, step + emit[t], neg_inf)
    length, last = problem.input_lengths, 2 * problem.target_lengths
    rows = alpha[np.maximum(length - 1, 0), np.arange(len(length))]  # (N, 2S+1) at t = T_n - 1
    end = np.take_along_axis(rows, last[:, None], axis=1)[:, 0]
    before = np.take_along_axis(rows, np.maximum(last - 1, 0)[:, None], axis=1)[:, 0]
    before = np.where(last > 0, before, neg_inf)  # an empty target ends in its one blank
    with np.errstate(divide="ignore"):  # log 0: no alignment fits, the loss is inf
        nll = -_log_add(end, before)
    empty = np.where(problem.target_lengths == 0, 0, np.inf).astype(emit.dtype)
    return alpha, np.where(length == 0, empty, nll)


def _occupancy(problem: _CTCProblem, emit, exists, skip, alpha, nll) -> np.ndarray:
    r""":math:`\gamma_t(s) = e^{\alpha_t(s) + \beta_t(s) - y_t(l'_s)} / p`, ``(T, N, 2S+1)``:
    the share of all paths that is in state ``s`` at frame ``t`` (0 past a sequence's end).

    :math:`\beta` runs the recursion backwards from :math:`\beta_{T_n - 1}(2S) =
    y_{T_n-1}(b)` and :math:`\beta_{T_n - 1}(2S-1) = y_{T_n-1}(l_S)`; :math:`\alpha` and
    :math:`\beta` both hold :math:`y_t(l'_s)`, hence the one subtracted.
    """
    frames, length = emit.shape[0], problem.input_lengths[:, None]
    last, state = 2 * problem.target_lengths[:, None], np.arange(emit.shape[2])
    final = exists & ((state == last) | ((state == last - 1) & (last > 0)))  # 2S and 2S - 1
    neg_inf = np.asarray(-np.inf, dtype=emit.dtype)
    skip_back = np.zeros_like(skip)  # s -> s + 2 allowed where s + 2 may be reached from s
    skip_back[:, :-2] = skip[:, 2:]
    finite = np.where(np.isfinite(nll), nll, 0)[:, None]  # impossible sequences: the caller's
    # a state whose emission is -inf is never occupied (torch's nan there: see the backward)
    unused, emit_safe = emit == -np.inf, np.where(emit == -np.inf, 0, emit)
    occupancy = np.zeros_like(emit)
    beta = np.full_like(emit[0], -np.inf)
    shifted = _Shifted(beta, -1)
    with np.errstate(divide="ignore"):  # log 0: a state that cannot reach the end
        for t in reversed(range(frames)):
            one, two = shifted.set(beta)
            step = _log_add(beta, one, np.where(skip_back, two, neg_inf))
            beta = np.where(t == length - 1, np.where(final, emit[t], neg_inf), step + emit[t])
            beta = np.where(exists & (t < length), beta, neg_inf)
            log_share = np.where(unused[t], neg_inf, alpha[t] + beta - emit_safe[t] + finite)
            occupancy[t] = np.exp(log_share)
    return occupancy


def _sequence_scale(grad_output, problem: _CTCProblem, reduction: str) -> np.ndarray:
    """The upstream gradient of each sequence's loss ``(N,)``: ``g``, ``g``, or
    ``g / (max(S_n, 1) N)`` for 'none', 'sum', 'mean'."""
    dtype, batch = problem.log_probs.dtype, problem.log_probs.shape[1]
    grad_output = np.asarray(grad_output, dtype=dtype)
    if reduction == "none":
        expected = (batch,) if problem.batched else ()
        if grad_output.shape != expected:
            raise ValueError(
                f"{_NAME}: reduction='none' needs grad_output of the loss's shape {expected}, "
                f"got {grad_output.shape}"
            )
        return grad_output.reshape(batch)  # () unbatched -> (1,)
    if grad_output.size != 1:
        raise ValueError(
            f"{_NAME}: a reduced loss takes a scalar grad_output, got {grad_output.shape}"
        )
    scale = np.broadcast_to(grad_output.reshape(()), (batch,))
    if reduction == "mean":  # torch's chain: the mean's 1/N, then the division by the lengths
        scale = scale / dtype.type(batch) / np.maximum(problem.target_lengths, 1).astype(dtype)
    return scale.astype(dtype)


def ctc_loss(
    log_probs: np.ndarray,
    targets: np.ndarray,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> np.ndarray:
    r"""CTC loss :math:`\ell_n = -\log p(l_n \mid y_n)`, summed over every alignment.

    .. math::
        p(l \mid y) = \sum_{\pi \to l} \prod_t e^{y_t(\pi_t)}
                    = e^{\alpha_{T-1}(2S)} + e^{\alpha_{T-1}(2S-1)}

    with the recursion of this module's docstring. A target that no alignment fits
    (:math:`T_n` too short) has :math:`\ell_n = \infty`; ``zero_infinity`` replaces it
    by 0. 'mean' divides each :math:`\ell_n` by its target length (at least 1), then
    averages over the batch; 'sum' adds them.

    Shapes: ``log_probs`` ``(T, N, C)`` or unbatched ``(T, C)``; ``targets`` ``(N, S)``
    padded or 1-D, the targets concatenated; ``input_lengths`` and ``target_lengths``
    ``N`` integers (a tuple or an array). 'none' gives ``(N,)`` (``()`` unbatched).
    Target labels must lie in ``[0, C)`` and not be ``blank``: torch does not check
    (it reads out of bounds), the reference raises. Torch:
    ``torch.nn.functional.ctc_loss``.
    """
    problem = _check_ctc(log_probs, targets, input_lengths, target_lengths, blank, reduction)
    _, nll = _alpha(problem, *_states(problem))
    if zero_infinity:
        nll = np.where(nll == np.inf, 0, nll).astype(nll.dtype)
    if reduction == "sum":
        return np.asarray(nll.sum(), dtype=nll.dtype)
    if reduction == "mean":
        per_label = nll / np.maximum(problem.target_lengths, 1).astype(nll.dtype)
        return np.asarray(per_label.mean(), dtype=nll.dtype)
    return nll if problem.batched else nll.reshape(())


def ctc_loss_backward(
    grad_output: np.ndarray,
    log_probs: np.ndarray,
    targets: np.ndarray,
    input_lengths: Any,
    target_lengths: Any,
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> np.ndarray:
    r"""Torch's gradient wrt ``log_probs``: :math:`g_n\,(e^{y_t(c)} - \gamma_t(c))` for
    :math:`t < T_n`, 0 after.

    .. math::
        \gamma_t(c) = \sum_{s:\, l'_s = c} e^{\alpha_t(s) + \beta_t(s) - y_t(c) + \ell_n}
        = -\frac{\partial \ell_n}{\partial y_t(c)}

    is the true derivative (with a minus): the share of the paths through class
    :math:`c` at frame :math:`t`. Torch's CPU kernel adds :math:`e^{y_t(c)}`, a term
    that only vanishes downstream if ``log_probs`` came from a log_softmax: for
    :math:`y = \operatorname{log\_softmax}(x)` the backward of log_softmax maps
    :math:`g \mapsto g - e^{y} \sum_c g_c` and removes any multiple of :math:`e^{y}`,
    so the gradient wrt the logits :math:`x` is exact, :math:`g_n (e^{y} - \gamma)`.
    Wrt ``log_probs`` themselves, normalised or not, torch's (and this) result is the
    true derivative plus :math:`g_n e^{y_t(c)}` on every frame :math:`t < T_n`.

    :math:`g_n` is the upstream gradient of :math:`\ell_n` (over :math:`\max(S_n, 1) N`
    for 'mean'). As torch: an infinite loss gives nan on its frames :math:`t < T_n`
    (0 with ``zero_infinity``, for every frame), and a log-probability of
    :math:`-\infty` gets nan (torch's formula computes :math:`-\infty + \infty`). Shape:
    that of ``log_probs``.
    """
    problem = _check_ctc(log_probs, targets, input_lengths, target_lengths, blank, reduction)
    emit, exists, skip = _states(problem)
    alpha, nll = _alpha(problem, emit, exists, skip)
    occupancy = _occupancy(problem, emit, exists, skip, alpha, nll)  # (T, N, 2S+1)
    classes = problem.log_probs.shape[2]
    # (N, 2S+1, 1) == (C,) -> (N, 2S+1, C): which class each state emits
    one_hot = (problem.extended[:, :, None] == np.arange(classes)).astype(emit.dtype)
    # (N, T, 2S+1) @ (N, 2S+1, C) -> (N, T, C): the states of each class summed
    gamma = np.matmul(occupancy.transpose(1, 0, 2), one_hot).transpose(1, 0, 2)  # -> (T, N, C)
    lp = problem.log_probs
    scale = _sequence_scale(grad_output, problem, reduction)[None, :, None]  # (N,) -> (1, N, 1)
    grad = (np.exp(lp) - gamma) * scale
    impossible = (nll == np.inf)[None, :, None]  # (N,) -> (1, N, 1)
    grad = np.where(impossible, 0 if zero_infinity else np.nan, grad)
    grad = np.where((lp == -np.inf) & ~(impossible & zero_infinity), np.nan, grad)
    frame = np.arange(lp.shape[0])[:, None, None] < problem.input_lengths[None, :, None]
    grad = np.where(frame, grad, 0).astype(lp.dtype)
    return grad if problem.batched else grad[:, 0, :]  # (T, 1, C) -> (T, C)
