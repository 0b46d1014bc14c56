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


_CELLS = {
    RNNMode.RNN_TANH: (R.rnn_tanh_cell, R.rnn_tanh_cell_backward),
    RNNMode.RNN_RELU: (R.rnn_relu_cell, R.rnn_relu_cell_backward),
    RNNMode.GRU: (R.gru_cell, R.gru_cell_backward),
}


def _step(mode: RNNMode, x: np.ndarray, state: tuple, w: Weights) -> tuple:
    """One time step: ``(output (N, H_out), new state)``."""
    if mode is not RNNMode.LSTM:
        h = _CELLS[mode][0](x, state[0], *w[:4])
        return h, (h,)
    h_raw, c = R.lstm_cell(x, state, *w[:4])
    h = h_raw if w[4] is None else h_raw @ w[4].T  # (N, H) -> (N, P)
    return h, (h, c)


def _step_backward(mode: RNNMode, grad_state: tuple, x, state: tuple, w: Weights) -> tuple:
    """``(grad_x, grad of the previous state, weight grads)``; ``grad_state`` already holds
    the step output's gradient added to the next step's state gradient."""
    if mode is not RNNMode.LSTM:
        gx, gh, *gw = _CELLS[mode][1](grad_state[0], x, state[0], *w[:4])
        return gx, (gh,), (*gw, None)
    g_h, g_c = grad_state
    grad_w_hr = None
    if w[4] is not None:  # through the projection h = h_raw W_hr^T
        h_raw = R.lstm_cell(x, state, *w[:4])[0]
        grad_w_hr = g_h.T @ h_raw
        g_h = g_h @ w[4]  # (N, P) -> (N, H)
    gx, gh, gc, *gw = R.lstm_cell_backward((g_h, g_c), x, state, *w[:4])
    return gx, (gh, gc), (*gw, grad_w_hr)


def _time_steps(length: int, reverse: bool) -> range:
    return range(length - 1, -1, -1) if reverse else range(length)


def _direction(mode: RNNMode, x: np.ndarray, state: tuple, w: Weights, reverse: bool):
    """One layer, one direction: outputs ``(L, N, H_out)``, final state, and the state
    before each step (the cache of the backward)."""
    outputs = np.empty((x.shape[0], x.shape[1], state[0].shape[1]), dtype=x.dtype)
    before: list[tuple] = [()] * x.shape[0]
    for t in _time_steps(x.shape[0], reverse):
        before[t] = state
        outputs[t], state = _step(mode, x[t], state, w)
    return outputs, state, before


def _direction_backward(mode, grad_out, grad_state, x, before, w: Weights, reverse: bool):
    grad_x = np.empty_like(x)
    grad_w = [None if a is None else np.zeros_like(a) for a in w]
    for t in _time_steps(x.shape[0], not reverse):  # the forward's steps, last first
        grad_state = (grad_state[0] + grad_out[t], *grad_state[1:])
        grad_x[t], grad_state, gw = _step_backward(mode, grad_state, x[t], before[t], w)
        for acc, g in zip(grad_w, gw):
            if acc is not None:
                acc += g
    return grad_x, grad_state, grad_w


def rnn_layers(
    mode: RNNMode, input, hx: tuple, weights: list[Weights], bidirectional: bool,
    dropout: float = 0.0, masks: list | None = None,
):  # fmt: skip
    r"""Forward of a stacked (bi)directional recurrent layer, time-major.

    ``hx`` is ``(h0,)`` or ``(h0, c0)`` for the LSTM, each ``(num_layers * D, N, *)``;
    ``weights[k]`` is ``(w_ih, w_hh, b_ih, b_hh, w_hr)`` of state ``k``. Returns
    ``(output (L, N, D H_out), final states like hx, cache)``; the cache is what
    :func:`rnn_layers_backward` takes (each layer's input and states before each step).
    ``masks`` (training with ``dropout > 0``): one bool keep-mask ``(L, N, D H_out)`` per
    layer but the last, applied to that layer's output as :func:`dropout` does
    (:math:`y \odot M / (1 - p)`); ``None``: no dropout.
    """
    d = 2 if bidirectional else 1
    finals: list[list[np.ndarray]] = [[] for _ in hx]
    layer_input, cache = input, []
    for layer in range(len(weights) // d):
        outs = []
        for k in range(layer * d, layer * d + d):
            out, final, before = _direction(
                mode, layer_input, tuple(s[k] for s in hx), weights[k], k % d == 1
            )
            outs.append(out)
            cache.append((layer_input, before))
            for store, s in zip(finals, final):
                store.append(s)
        layer_input = np.concatenate(outs, axis=2)  # D x (L, N, H_out) -> (L, N, D H_out)
        if masks is not None and layer < len(masks):
            layer_input = _dropout(layer_input, dropout, mask=masks[layer])
    return layer_input, tuple(np.stack(s) for s in finals), cache


def rnn_layers_backward(
    mode: RNNMode, grad_output, grad_final: tuple, cache, weights, d: int,
    dropout: float = 0.0, masks: list | None = None,
):  # fmt: skip
    r"""Backward of :func:`rnn_layers`: ``grad_output (L, N, D H_out)``, ``grad_final`` the
    gradients of the final states (like ``hx``). Layers are visited last first; a layer's
    input gradient is the sum over its directions, taken back through the dropout
    between layers (``dropout``, ``masks`` as the forward had them). Returns ``(grad_input, grad_hx,
    grad_weights)`` (``grad_weights[k]`` like ``weights[k]``).
    """
    grad_hx = [np.empty_like(g) for g in grad_final]
    grad_weights: list = [None] * len(weights)
    for layer in range(len(weights) // d - 1, -1, -1):
        # (L, N, D H_out) -> D x (L, N, H_out)
        grad_outs, grad_input = np.split(grad_output, d, axis=2), None
        for j, k in enumerate(range(layer * d, layer * d + d)):
            layer_input, before = cache[k]
            gx, g_state, grad_weights[k] = _direction_backward(
                mode, grad_outs[j], tuple(g[k] for g in grad_final), layer_input, before,
                weights[k], j == 1,
            )  # fmt: skip
            grad_input = gx if grad_input is None else grad_input + gx
            for store, g in zip(grad_hx, g_state):
                store[k] = g
        grad_output = grad_input
        if masks is not None and 0 < layer <= len(masks):
            grad_output = _dropout_backward(grad_output, masks[layer - 1], dropout)
    return grad_output, tuple(grad_hx), grad_weights
