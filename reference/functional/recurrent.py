r"""Recurrent cells: one time step of an Elman RNN, an LSTM and a GRU, and their backward.

Every cell takes a batch ``input (N, H_in)`` and state ``hx (N, H)``, the weights
``w_ih (G H, H_in)``, ``w_hh (G H, H)`` and optional biases ``b_ih, b_hh (G H,)``,
with ``G`` gates stacked in torch's order (RNN: 1; LSTM: i, f, g, o; GRU: r, z, n).
Names and argument order are ``torch.rnn_tanh_cell``, ``torch.lstm_cell``... Each
``*_backward`` takes the upstream gradient(s) of the cell's output(s) first, then what
the forward took, recomputes the forward's gates (no hidden cache) and returns the
gradients wrt ``input``, the state(s), ``w_ih, w_hh, b_ih, b_hh`` (``None`` for an
absent bias).

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


def _affine(x: np.ndarray, w: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    """:math:`x W^\\top + b`: ``(N, in) -> (N, out)``."""
    out = x @ w.T
    return out if b is None else out + b


def _weight_grads(
    grad_i: np.ndarray, grad_h: np.ndarray, input: np.ndarray, hx: np.ndarray, has_bias: bool
) -> tuple:
    """Gradients of the two affine maps given the gradients of their outputs (N, G H)."""
    gw_ih, gw_hh = grad_i.T @ input, grad_h.T @ hx
    if not has_bias:
        return gw_ih, gw_hh, None, None
    return gw_ih, gw_hh, grad_i.sum(axis=0), grad_h.sum(axis=0)


def _rnn_cell_backward(
    grad_pre: np.ndarray, input: np.ndarray, hx: np.ndarray, w_ih, w_hh, b_ih
) -> Grads:
    grad_input, grad_hx = grad_pre @ w_ih, grad_pre @ w_hh
    return (grad_input, grad_hx) + _weight_grads(grad_pre, grad_pre, input, hx, b_ih is not None)


def rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> np.ndarray:
    r"""Elman step :math:`h' = \tanh(x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`.

    ``input (N, H_in)``, ``hx (N, H)`` -> ``(N, H)`` (``torch.rnn_tanh_cell``).
    """
    return np.tanh(_affine(input, w_ih, b_ih) + _affine(hx, w_hh, b_hh))


def rnn_tanh_cell_backward(grad_h, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Grads:
    r"""With :math:`a` the pre-activation and :math:`\delta = g \odot (1 - h'^2)`:

    .. math::
        \partial x = \delta W_{ih},\quad \partial h = \delta W_{hh},\quad
        \partial W_{ih} = \delta^\top x,\quad \partial W_{hh} = \delta^\top h,\quad
        \partial b_{ih} = \partial b_{hh} = \textstyle\sum_n \delta_n.

    Returns ``(grad_input, grad_hx, grad_w_ih, grad_w_hh, grad_b_ih, grad_b_hh)``.
    """
    out = rnn_tanh_cell(input, hx, w_ih, w_hh, b_ih, b_hh)
    return _rnn_cell_backward(grad_h * (1 - out * out), input, hx, w_ih, w_hh, b_ih)


def rnn_relu_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> np.ndarray:
    r"""Elman step :math:`h' = \max(0, x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`
    (``torch.rnn_relu_cell``)."""
    return np.maximum(_affine(input, w_ih, b_ih) + _affine(hx, w_hh, b_hh), 0)


def rnn_relu_cell_backward(grad_h, input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> Grads:
    r"""As :func:`rnn_tanh_cell_backward` with :math:`\delta = g \odot [a > 0]` (torch's
    ReLU gradient is 0 at the kink :math:`a = 0`)."""
    pre = _affine(input, w_ih, b_ih) + _affine(hx, w_hh, b_hh)
    grad_pre = np.where(pre > 0, grad_h, 0).astype(pre.dtype, copy=False)
    return _rnn_cell_backward(grad_pre, input, hx, w_ih, w_hh, b_ih)


def _lstm_gates(input, hx, w_ih, w_hh, b_ih, b_hh) -> tuple[np.ndarray, ...]:
    gates = _affine(input, w_ih, b_ih) + _affine(hx, w_hh, b_hh)
    a_i, a_f, a_g, a_o = np.split(gates, 4, axis=1)  # (N, 4H) -> 4 x (N, H)
    return sigmoid(a_i), sigmoid(a_f), np.tanh(a_g), sigmoid(a_o)


def lstm_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> tuple[np.ndarray, np.ndarray]:
    r"""LSTM step (``torch.lstm_cell``; ``hx`` is the pair ``(h, c)``):

    .. math::
        (a_i, a_f, a_g, a_o) = x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh},\quad
        i, f, o = \sigma(a_{i,f,o}),\quad g = \tanh a_g,\\
        c' = f \odot c + i \odot g,\qquad h' = o \odot \tanh c'.

    Returns ``(h', c')``, each ``(N, H)``.
    """
    h, c = hx
    i, f, g, o = _lstm_gates(input, h, w_ih, w_hh, b_ih, b_hh)
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


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
    i, f, g, o = _lstm_gates(input, h, w_ih, w_hh, b_ih, b_hh)
    tc = np.tanh(f * c + i * g)
    g_h = np.zeros_like(h) if grad_hc[0] is None else grad_hc[0]
    g_c = np.zeros_like(c) if grad_hc[1] is None else grad_hc[1]
    c_bar = g_c + g_h * o * (1 - tc * tc)
    grad_gates = np.concatenate(  # 4 x (N, H) -> (N, 4H), torch's gate order
        [c_bar * g * i * (1 - i), c_bar * c * f * (1 - f), c_bar * i * (1 - g * g),
         g_h * tc * o * (1 - o)], axis=1,
    )  # fmt: skip
    rest = _weight_grads(grad_gates, grad_gates, input, h, b_ih is not None)
    return (grad_gates @ w_ih, grad_gates @ w_hh, c_bar * f) + rest


def _gru_parts(input, hx, w_ih, w_hh, b_ih, b_hh) -> tuple[np.ndarray, ...]:
    i_r, i_z, i_n = np.split(_affine(input, w_ih, b_ih), 3, axis=1)  # (N, 3H) -> 3 x (N, H)
    h_r, h_z, h_n = np.split(_affine(hx, w_hh, b_hh), 3, axis=1)
    r, z = sigmoid(i_r + h_r), sigmoid(i_z + h_z)
    return r, z, np.tanh(i_n + r * h_n), h_n


def gru_cell(input, hx, w_ih, w_hh, b_ih=None, b_hh=None) -> np.ndarray:
    r"""GRU step (``torch.gru_cell``), the reset gate acting on :math:`W_{hn} h + b_{hn}`:

    .. math::
        r = \sigma(W_{ir} x + b_{ir} + W_{hr} h + b_{hr}),\quad
        z = \sigma(W_{iz} x + b_{iz} + W_{hz} h + b_{hz}),\\
        n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn})),\quad
        h' = (1 - z) \odot n + z \odot h.
    """
    r, z, n, _ = _gru_parts(input, hx, w_ih, w_hh, b_ih, b_hh)
    return (1 - z) * n + z * hx


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
    r, z, n, h_n = _gru_parts(input, hx, w_ih, w_hh, b_ih, b_hh)
    d_n = grad_h * (1 - z) * (1 - n * n)
    d_z = grad_h * (hx - n) * z * (1 - z)
    d_r = d_n * h_n * r * (1 - r)
    grad_i = np.concatenate([d_r, d_z, d_n], axis=1)  # 3 x (N, H) -> (N, 3H)
    grad_hh = np.concatenate([d_r, d_z, r * d_n], axis=1)
    rest = _weight_grads(grad_i, grad_hh, input, hx, b_ih is not None)
    return (grad_i @ w_ih, grad_h * z + grad_hh @ w_hh) + rest
