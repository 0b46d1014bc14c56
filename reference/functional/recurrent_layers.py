r"""Whole recurrent layers (``torch.nn.RNN``, ``LSTM``, ``GRU``): the cells of
:mod:`reference.functional.recurrent` run over time, stacked in layers, in one or two
directions, and backprop through time by hand.

Time-major throughout: ``input (L, N, H_in)``, state ``(num_layers * D, N, H_out)`` with
``D = 2`` if bidirectional and ``H_out`` = ``proj_size`` or ``hidden_size``; state
``k = layer * D + direction`` belongs to that layer and direction (torch's layout).
Layer ``l > 0`` reads the concatenated outputs ``(L, N, D H_out)`` of layer ``l - 1``.

Forward, one direction: :math:`(y_t, s_t) = \text{cell}(x_t, s_{t-1})` for
:math:`t = 1..L` (the reverse direction runs :math:`t = L..1`); an LSTM with a
projection emits :math:`h_t = W_{hr} (o_t \odot \tanh c_t)`.

Backward through time, the mirror loop: with :math:`\bar s_L = \partial h_n` (and
:math:`\partial c_n`), at each step the upstream gradient of the cell's output is
:math:`\partial y_t + \bar s_t` and the cell's backward gives :math:`\partial x_t`,
:math:`\bar s_{t-1}` and a contribution to every weight gradient, summed over time.
:math:`\bar s_0` is the gradient wrt the initial state.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum

import numpy as np

from . import recurrent as R
from .dropout import dropout as _dropout
from .dropout import dropout_backward as _dropout_backward

__all__ = ["RNNMode", "rnn_layers", "rnn_layers_backward"]

Weights = tuple  # (w_ih, w_hh, b_ih, b_hh, w_hr), absent ones None


class RNNMode(Enum):
    RNN_TANH = "RNN_TANH"
    RNN_RELU = "RNN_RELU"
    LSTM = "LSTM"
    GRU = "GRU"


# mode -> (step from the input's projection, its backward from the step's cache)
_CELLS: dict[RNNMode, tuple[Callable[..., tuple], Callable[..., tuple]]] = {
    RNNMode.RNN_TANH: (R._rnn_tanh_step, R._rnn_tanh_step_backward),
    RNNMode.RNN_RELU: (R._rnn_relu_step, R._rnn_relu_step_backward),
    RNNMode.LSTM: (R._lstm_step, R._lstm_step_backward),
    RNNMode.GRU: (R._gru_step, R._gru_step_backward),
}


def _time_steps(length: int, reverse: bool) -> range:
    return range(length - 1, -1, -1) if reverse else range(length)


def _rows(batch_sizes, length: int, n: int) -> list[int]:
    """Rows active at each step: all ``n``, or the packed ``batch_sizes[t]`` (a prefix,
    the batch being sorted longest first)."""
    return [n] * length if batch_sizes is None else [int(b) for b in batch_sizes]


def _carry(new: tuple, old: tuple, active: int) -> tuple:
    """The state after a step that ran only the first ``active`` rows: the others keep
    theirs (their sequence has ended, or in the reverse direction not yet begun)."""
    if active == old[0].shape[0]:
        return new
    return tuple(np.concatenate([a, s[active:]]) for a, s in zip(new, old))  # (n, .) + (N - n, .)


def _direction(mode, x, state: tuple, w: Weights, reverse: bool, batch_sizes=None):
    """One layer, one direction: outputs ``(L, N, H_out)``, final state, and the saved
    ``(h before each step (L, N, H_out), step caches, unprojected h (L, N, H) or None)``.

    The input side :math:`x_t W_{ih}^\top + b_{ih}` does not depend on the recurrence:
    it is one matmul over all ``L N`` rows; only :math:`h_{t-1} W_{hh}^\top` is per step.
    With ``batch_sizes`` (packed input) step ``t`` runs rows ``:batch_sizes[t]`` only; the
    other rows output 0 and keep their state.
    """
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    step = _CELLS[mode][0]
    length, n = x.shape[:2]
    rows = _rows(batch_sizes, length, n)
    alloc = np.empty if batch_sizes is None else np.zeros  # packed: inactive rows stay 0
    # (L, N, H_in) -> (L N, H_in) -> (L N, G H) -> (L, N, G H)
    x_gates = R._affine(x.reshape(length * n, -1), w_ih, b_ih).reshape(length, n, -1)
    # the same values in column-major order, so that w_hh.T in the per-step product is
    # row-major: BLAS is markedly faster on (N, H) @ (H, G H) with that layout
    w_hh = np.asfortranarray(w_hh)
    outputs = alloc((length, n, state[0].shape[1]), dtype=x.dtype)
    before = np.empty_like(outputs)
    raw = None if w_hr is None else alloc((length, n, w_hr.shape[1]), dtype=x.dtype)
    caches: list = [None] * length
    for t in _time_steps(length, reverse):
        m = rows[t]
        before[t] = state[0]
        new, caches[t] = step(x_gates[t, :m], tuple(s[:m] for s in state), w_hh, b_hh)
        if raw is not None:  # LSTM projection h = (o * tanh c) W_hr^T
            raw[t, :m] = new[0]
            new = (new[0] @ w_hr.T, *new[1:])  # (n, H) -> (n, P)
        outputs[t, :m] = new[0]
        state = _carry(new, state, m)
    return outputs, state, (before, caches, raw)


def _direction_backward(mode, grad_out, grad_state, x, saved, w: Weights, reverse: bool,
                        batch_sizes=None):  # fmt: skip
    """Backward through time of :func:`_direction`. The loop only carries the state
    gradient; the pre-activation gradients of every step are stacked ``(L, N, G H)`` and
    the input gradient and all weight gradients are then one matmul (or sum) each. With
    ``batch_sizes``, a row inactive at step ``t`` passes its state gradient through
    unchanged (its state did) and its pre-activation gradients are 0."""
    w_ih, w_hh, b_ih, b_hh, w_hr = w
    before, caches, raw = saved
    step_backward = _CELLS[mode][1]
    length, n = x.shape[:2]
    steps = _rows(batch_sizes, length, n)
    alloc = np.empty if batch_sizes is None else np.zeros
    grad_ax = alloc((length, n, w_ih.shape[0]), dtype=x.dtype)
    grad_ah = alloc(grad_ax.shape, x.dtype) if mode is RNNMode.GRU else grad_ax  # same but GRU
    grad_proj = None if raw is None else alloc(grad_out.shape, grad_out.dtype)
    for t in _time_steps(length, not reverse):  # the forward's steps, last first
        m = steps[t]
        g_h = grad_state[0][:m] + grad_out[t, :m]
        if grad_proj is not None:  # back through h = h_raw W_hr^T
            grad_proj[t, :m] = g_h
            g_h = g_h @ w_hr  # (n, P) -> (n, H)
        grad_ax[t, :m], a_h, g_prev = step_backward(
            (g_h, *(g[:m] for g in grad_state[1:])), caches[t], w_hh
        )
        if grad_ah is not grad_ax:
            grad_ah[t, :m] = a_h
        grad_state = _carry(g_prev, grad_state, m)
    rows = length * n
    g_x, g_h = grad_ax.reshape(rows, -1), grad_ah.reshape(rows, -1)  # (L, N, G H) -> (L N, G H)
    grad_x = (g_x @ w_ih).reshape(x.shape)  # (L N, H_in) -> (L, N, H_in)
    flat_x, flat_before = x.reshape(rows, -1), before.reshape(rows, -1)  # (L, N, .) -> (L N, .)
    grad_w = R._weight_grads(g_x, g_h, flat_x, flat_before, b_ih is not None)
    grad_w_hr = None
    if grad_proj is not None:  # (L, N, P) -> (L N, P) and (L, N, H) -> (L N, H)
        grad_w_hr = grad_proj.reshape(rows, -1).T @ raw.reshape(rows, -1)
    return grad_x, grad_state, [*grad_w, grad_w_hr]


def rnn_layers(
    mode: RNNMode, input, hx: tuple, weights: list[Weights], bidirectional: bool,
    dropout: float = 0.0, masks: list | None = None, batch_sizes=None,
):  # fmt: skip
    r"""Forward of a stacked (bi)directional recurrent layer, time-major.

    ``hx`` is ``(h0,)`` or ``(h0, c0)`` for the LSTM, each ``(num_layers * D, N, *)``;
    ``weights[k]`` is ``(w_ih, w_hh, b_ih, b_hh, w_hr)`` of state ``k``. Returns
    ``(output (L, N, D H_out), final states like hx, cache)``; the cache is what
    :func:`rnn_layers_backward` takes (per layer and direction its input, the states
    before each step and each step's gate activations, so the backward recomputes none).
    ``masks`` (training with ``dropout > 0``): one bool keep-mask ``(L, N, D H_out)`` per
    layer but the last, applied to that layer's output as :func:`dropout` does
    (:math:`y \odot M / (1 - p)`); ``None``: no dropout.

    ``batch_sizes (L,)`` (a packed input, see :mod:`reference.nn.utils.rnn`): ``input``
    and ``hx`` are the padded batch in sorted order, longest first, and step ``t`` runs
    only the first ``batch_sizes[t]`` rows (:math:`t < \ell_b`); the others output 0 and
    keep their state, so each final state is the one after the sequence's own last step
    (forward direction), or after its first element (reverse direction, which starts each
    sequence at its own last element from ``hx``).
    """
    d = 2 if bidirectional else 1
    finals: list[list[np.ndarray]] = [[] for _ in hx]
    layer_input, cache = input, []
    for layer in range(len(weights) // d):
        outs = []
        for k in range(layer * d, layer * d + d):
            out, final, saved = _direction(
                mode, layer_input, tuple(s[k] for s in hx), weights[k], k % d == 1, batch_sizes
            )
            outs.append(out)
            cache.append((layer_input, saved))
            for store, s in zip(finals, final):
                store.append(s)
        layer_input = np.concatenate(outs, axis=2)  # D x (L, N, H_out) -> (L, N, D H_out)
        if masks is not None and layer < len(masks):
            layer_input = _dropout(layer_input, dropout, mask=masks[layer])
    return layer_input, tuple(np.stack(s) for s in finals), cache


def rnn_layers_backward(
    mode: RNNMode, grad_output, grad_final: tuple, cache, weights, d: int,
    dropout: float = 0.0, masks: list | None = None, batch_sizes=None,
):  # fmt: skip
    r"""Backward of :func:`rnn_layers`: ``grad_output (L, N, D H_out)``, ``grad_final`` the
    gradients of the final states (like ``hx``). Layers are visited last first; a layer's
    input gradient is the sum over its directions, taken back through the dropout
    between layers (``dropout``, ``masks``, ``batch_sizes`` as the forward had them).
    Returns ``(grad_input, grad_hx, grad_weights)`` (``grad_weights[k]`` like
    ``weights[k]``).
    """
    grad_hx = [np.empty_like(g) for g in grad_final]
    grad_weights: list = [None] * len(weights)
    for layer in range(len(weights) // d - 1, -1, -1):
        # (L, N, D H_out) -> D x (L, N, H_out)
        grad_outs, grad_input = np.split(grad_output, d, axis=2), None
        for j, k in enumerate(range(layer * d, layer * d + d)):
            layer_input, saved = cache[k]
            gx, g_state, grad_weights[k] = _direction_backward(
                mode, grad_outs[j], tuple(g[k] for g in grad_final), layer_input, saved,
                weights[k], j == 1, batch_sizes,
            )  # fmt: skip
            grad_input = gx if grad_input is None else grad_input + gx
            for store, g in zip(grad_hx, g_state):
                store[k] = g
        grad_output = grad_input
        if masks is not None and 0 < layer <= len(masks):
            grad_output = _dropout_backward(grad_output, masks[layer - 1], dropout)
    return grad_output, tuple(grad_hx), grad_weights
