r"""Recurrent cells: one time step of an Elman RNN, an LSTM and a GRU, and their backward.

Every cell takes a batch ``input (N, H_in)`` and state ``hx (N, H)``, the weights
``w_ih (G H, H_in)``, ``w_hh (G H, H)`` and optional biases ``b_ih, b_hh (G H,)``,
with ``G`` gates stacked in torch's order (RNN: 1; LSTM: i, f, g, o; GRU: r, z, n).
Names and argument order are ``torch.rnn_tanh_cell``, ``torch.lstm_cell``... Each
``*_backward`` takes the upstream gradient(s) of the cell's output(s) first, then what
the forward took, recomputes the forward's gates (no hidden cache) and returns the
gradients wrt ``input``, the state(s), ``w_ih, w_hh, b_ih, b_hh`` (``None`` for an
absent bias).

The math of each cell is written once, in two private halves that the whole layers of
:mod:`reference.functional.recurrent_layers` also use:

- ``_*_step(x_gates, state, w_hh, b_hh) -> (new state, cache)`` from the input's
  projection :math:`x W_{ih}^\top + b_{ih}` (``(N, G H)``, which a layer computes for
  all time steps in one matmul), the cache holding the gate activations;
- ``_*_step_backward(grad_state, cache, w_hh) -> (grad_a_x, grad_a_h, grad of the
  previous state)``, with ``grad_a_x``, ``grad_a_h`` ``(N, G H)`` the gradients wrt the
  pre-activations of the input side and of the state side (the same array but for the
  GRU, whose reset gate scales the state side). The weight gradients follow from these by
  :func:`_weight_grads` (a layer stacks them over time and does it once).

Backprop through time is the chain of these steps: the ``grad_hx`` a step returns is
added to the upstream gradient of the previous step's output.
"""

from __future__ import annotations

import numpy as np

from .activation_smooth import sigmoid

__all__ = [
    "rnn_tanh_cell", "rnn_tanh_cell_backward", "rnn_relu_cell", "rnn_relu_cell_backward",
    "lstm_cell", "lstm_cell_backward", "gru_cell", "gru_cell_backward",
]  # fmt: skip

Grads = tuple  # (grad_input, grad_hx[, grad_cx], grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)
StepGrads = tuple  # (grad_a_x (N, G H), grad_a_h (N, G H), grad of the previous state)


def _affine(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """:math:`x W^\\top + b`: ``(N, in) -> (N, out)``."""
    out = x @ w.T
    if b is not None:
        out += b  # in place: the product is a fresh array
    return out


def _weight_grads(
    grad_i: np.ndarray, grad_h: np.ndarray, input: np.ndarray, hx: np.ndarray, has_bias: bool
) -> tuple:
    """Gradients of the two affine maps given the gradients of their outputs (N, G H);
    with rows stacked over time, ``(L N, .)``, the sum over time of every step's."""
    gw_ih, gw_hh = grad_i.T @ input, grad_h.T @ hx
    if not has_bias:
        return gw_ih, gw_hh, None, None
    return gw_ih, gw_hh, grad_i.sum(axis=0), grad_h.sum(axis=0)


def _cell_grads(step_grads: StepGrads, input, hx, w_ih, b_ih) -> Grads:
    """A single cell's full gradients from its step backward."""
    grad_a_x, grad_a_h, grad_state = step_grads
    rest = _weight_grads(grad_a_x, grad_a_h, input, hx, b_ih is not None)
    return (grad_a_x @ w_ih, *grad_state) + rest


def _rnn_tanh_step(x_gates, state: tuple, w_hh, b_hh) -> tuple:
    h = np.tanh(x_gates + _affine(state[0], w_hh, b_hh))
    return (h,), h


def _rnn_tanh_step_backward(grad_state: tuple, out: np.ndarray, w_hh) -> StepGrads:
    grad_pre = grad_state[0] * (1 - out * out)  # tanh' = 1 - tanh^2
    return grad_pre, grad_pre, (grad_pre @ w_hh,)


def _rnn_relu_step(x_gates, state: tuple, w_hh, b_hh) -> tuple:
    h = np.maximum(x_gates + _affine(state[0], w_hh, b_hh), 0)
    return (h,), h


def _rnn_relu_step_backward(grad_state: tuple, out: np.ndarray, w_hh) -> StepGrads:
    # h' > 0 exactly where a > 0: torch's gradient is 0 at the kink a = 0
    grad_pre = np.where(out > 0, grad_state[0], 0).astype(out.dtype, copy=False)
    return grad_pre, grad_pre, (grad_pre @ w_hh,)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> np.ndarray:
    r"""Elman step :math:`h' = \tanh(x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`.

    ``input (N, H_in)``, ``hx (N, H)`` -> ``(N, H)`` (``torch.rnn_tanh_cell``).
    """
    return _rnn_tanh_step(_affine(input, w_ih, b_ih), (hx,), w_hh, b_hh)[1]


def rnn_tanh_cell_backward(grad_h, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Grads:
    r"""With :math:`a` the pre-activation and :math:`\delta = g \odot (1 - h'^2)`:

    .. math::
        \partial x = \delta W_{ih},\quad \partial h = \delta W_{hh},\quad
        \partial W_{ih} = \delta^\top x,\quad \partial W_{hh} = \delta^\top h,\quad
        \partial b_{ih} = \partial b_{hh} = \textstyle\sum_n \delta_n.

    Returns ``(grad_input, grad_hx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    out = _rnn_tanh_step(_affine(input, w_ih, b_ih), (hx,), w_hh, b_hh)[1]
    return _cell_grads(_rnn_tanh_step_backward((grad_h,), out, w_hh), input, hx, w_ih, b_ih)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> np.ndarray:
    r"""Elman step :math:`h' = \max(0, x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`
    (``torch.rnn_relu_cell``)."""
    return _rnn_relu_step(_affine(input, w_ih, b_ih), (hx,), w_hh, b_hh)[1]


def rnn_relu_cell_backward(grad_h, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Grads:
    r"""As :func:`rnn_tanh_cell_backward` with :math:`\delta = g \odot [a > 0]` (torch's
    ReLU gradient is 0 at the kink :math:`a = 0`)."""
    out = _rnn_relu_step(_affine(input, w_ih, b_ih), (hx,), w_hh, b_hh)[1]
    return _cell_grads(_rnn_relu_step_backward((grad_h,), out, w_hh), input, hx, w_ih, b_ih)


def _lstm_step(x_gates, state: tuple, w_hh, b_hh) -> tuple:
    """``((h', c'), cache)``; the cache is ``(i, f, g, o, c, tanh c')``."""
    h, c = state
    gates = _affine(h, w_hh, b_hh)
    gates += x_gates  # in place, the same sum as x_gates + (h W_hh^T + b_hh)
    a_i, a_f, a_g, a_o = np.split(gates, 4, axis=1)  # (N, 4H) -> 4 x (N, H)
    i, f, g, o = sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)
    c_new = f * c + i * g
    tc = np.tanh(c_new)
    return (o * tc, c_new), (i, f, g, o, c, tc)


def _lstm_step_backward(grad_state: tuple, cache: tuple, w_hh) -> StepGrads:
    i, f, g, o, c, tc = cache
    g_h, g_c = grad_state
    c_bar = g_c + g_h * o * (1 - tc * tc)  # both paths into c'
    grad_gates = np.concatenate(  # 4 x (N, H) -> (N, 4H), torch's gate order
        [c_bar * g * i * (1 - i), c_bar * c * f * (1 - f), c_bar * i * (1 - g * g),
         g_h * tc * o * (1 - o)], axis=1,
    )  # fmt: skip
    return grad_gates, grad_gates, (grad_gates @ w_hh, c_bar * f)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple[np.ndarray, np.ndarray]:
    r"""LSTM step (``torch.lstm_cell``; ``hx`` is the pair ``(h, c)``):

    .. math::
        (a_i, a_f, a_g, a_o) = x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh},\quad
        i, f, o = \sigma(a_{i,f,o}),\quad g = \tanh a_g,\\
        c' = f \odot c + i \odot g,\qquad h' = o \odot \tanh c'.

    Returns ``(h', c')``, each ``(N, H)``.
    """
    h_new, c_new = _lstm_step(_affine(input, w_ih, b_ih), tuple(hx), w_hh, b_hh)[0]
    return h_new, c_new


def lstm_cell_backward(grad_hc, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Grads:
    r"""Upstream ``grad_hc = (g_h, g_c)`` (either may be ``None``: zero). The gradient
    reaching :math:`c'` is both paths, :math:`\bar c = g_c + g_h \odot o \odot (1 - \tanh^2 c')`;

    .. math::
        \partial a_i = \bar c\, g\, i(1-i),\ \partial a_f = \bar c\, c\, f(1-f),\
        \partial a_g = \bar c\, i (1-g^2),\ \partial a_o = g_h \tanh c'\, o(1-o),\\
        \partial c = \bar c \odot f,\quad \partial x = \partial a\, W_{ih},\quad
        \partial h = \partial a\, W_{hh},\quad \partial W_{ih} = \partial a^\top x,\ \dots

    Returns ``(grad_input, grad_h, grad_c, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    h, c = hx
    cache = _lstm_step(_affine(input, w_ih, b_ih), (h, c), w_hh, b_hh)[1]
    g_h = np.zeros_like(h) if grad_hc[0] is None else grad_hc[0]
    g_c = np.zeros_like(c) if grad_hc[1] is None else grad_hc[1]
    return _cell_grads(_lstm_step_backward((g_h, g_c), cache, w_hh), input, h, w_ih, b_ih)


def _gru_step(x_gates, state: tuple, w_hh, b_hh) -> tuple:
    """``((h',), cache)``; the cache is ``(h, r, z, n, W_{hn} h + b_{hn})``."""
    hx = state[0]
    i_r, i_z, i_n = np.split(x_gates, 3, axis=1)  # (N, 3H) -> 3 x (N, H)
    h_r, h_z, h_n = np.split(_affine(hx, w_hh, b_hh), 3, axis=1)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * hx,), (hx, r, z, n, h_n)


def _gru_step_backward(grad_state: tuple, cache: tuple, w_hh) -> StepGrads:
    hx, r, z, n, h_n = cache
    grad_h = grad_state[0]
    d_n = grad_h * (1 - z) * (1 - n * n)
    d_z = grad_h * (hx - n) * z * (1 - z)
    d_r = d_n * h_n * r * (1 - r)
    grad_i = np.concatenate([d_r, d_z, d_n], axis=1)  # 3 x (N, H) -> (N, 3H)
    grad_hh = np.concatenate([d_r, d_z, r * d_n], axis=1)
    return grad_i, grad_hh, (grad_h * z + grad_hh @ w_hh,)


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> np.ndarray:
    r"""GRU step (``torch.gru_cell``), the reset gate acting on :math:`W_{hn} h + b_{hn}`:

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}),\quad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}),\\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\quad
        h' = (1 - z) \odot n + z \odot h.
    """
    return _gru_step(_affine(input, w_ih, b_ih), (hx,), w_hh, b_hh)[0][0]


def gru_cell_backward(grad_h, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Grads:
    r"""With :math:`h_n = W_{hn} h + b_{hn}` and upstream :math:`g`:

    .. math::
        \partial a_n = g (1-z)(1-n^2),\quad \partial a_z = g (h - n) z(1-z),\quad
        \partial a_r = \partial a_n\, h_n\, r(1-r),\\
        \partial(\text{x-side}) = (\partial a_r, \partial a_z, \partial a_n),\quad
        \partial(\text{h-side}) = (\partial a_r, \partial a_z, r\,\partial a_n),\quad
        \partial h = g z + \partial(\text{h-side})\, W_{hh}.

    Returns ``(grad_input, grad_hx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    cache = _gru_step(_affine(input, w_ih, b_ih), (hx,), w_hh, b_hh)[1]
    return _cell_grads(_gru_step_backward((grad_h,), cache, w_hh), input, hx, w_ih, b_ih)
