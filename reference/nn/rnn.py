"""``RNNCell``, ``LSTMCell``, ``GRUCell`` (one step, around
:mod:`reference.functional.recurrent`) and ``RNN``, ``LSTM``, ``GRU`` (stacked layers over
time, around :mod:`reference.functional.recurrent_layers`; see ``_RNNBase``).

Parameters are torch's: ``weight_ih (G H, H_in)``, ``weight_hh (G H, H)``, ``bias_ih``,
``bias_hh (G H,)`` (G = 1, 4, 3 gates), all drawn from :math:`U(-1/\\sqrt H, 1/\\sqrt H)`
in that order. ``forward(input, hx=None)`` takes ``(N, H_in)`` or unbatched ``(H_in,)``
input; a missing state is zeros. ``backward`` takes the upstream gradient of the forward's
output (for ``LSTMCell`` the pair ``(grad_h, grad_c)``, either ``None`` for zero),
accumulates the parameter gradients and returns ``(grad_input, grad_hx)``, the second
``(grad_h, grad_c)`` for ``LSTMCell``, shaped as the forward's input and state. The
layers name their parameters ``weight_ih_l{k}[_reverse]``... as torch, in its order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import functional as F
from .._validate import as_float_array, check_dtypes, check_positive_int
from .init import resolve_dtype, resolve_rng, uniform
from .module import Module, Parameter

__all__ = ["RNNCell", "LSTMCell", "GRUCell"]


class _RNNCellBase(Module):
    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_positive_int(input_size, name, "input_size")
        self.hidden_size = check_positive_int(hidden_size, name, "hidden_size")
        self.bias = bias
        rng, dtype = resolve_rng(rng), resolve_dtype(dtype)
        bound, gh = 1.0 / math.sqrt(hidden_size), self._gates * hidden_size
        self.weight_ih = Parameter(uniform(rng, (gh, input_size), bound, dtype))
        self.weight_hh = Parameter(uniform(rng, (gh, hidden_size), bound, dtype))
        if bias:
            self.bias_ih = Parameter(uniform(rng, (gh,), bound, dtype))
            self.bias_hh = Parameter(uniform(rng, (gh,), bound, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self._cache: tuple | None = None

    def _weights(self) -> tuple:
        b_ih = None if self.bias_ih is None else self.bias_ih.data
        b_hh = None if self.bias_hh is None else self.bias_hh.data
        return self.weight_ih.data, self.weight_hh.data, b_ih, b_hh

    def _check_input(self, input: Any) -> np.ndarray:
        input = as_float_array(input, repr(self))
        if input.ndim not in (1, 2):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.ndim}D "
                f"instead (shape {input.shape}; expected (N, {self.input_size}) or "
                f"({self.input_size},))"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"{self!r}: input has inconsistent input_size: got {input.shape[-1]} "
                f"expected {self.input_size} (input shape {input.shape})"
            )
        tensors = dict(zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), self._weights()))
        check_dtypes(input, tensors, repr(self), "mat1" if self.bias else "m1")
        return input

    def _check_state(self, hx: Any, input: np.ndarray, batched: bool, what: str) -> np.ndarray:
        """``hx`` as ``(N, H)`` (zeros if ``None``) for ``input`` already made ``(N, H_in)``;
        torch's checks and messages (``hidden0`` is its name for the state)."""
        n, size = input.shape[0], self.hidden_size
        if hx is None:
            return np.zeros((n, size), dtype=input.dtype)
        hx = as_float_array(hx, repr(self), what)
        if hx.ndim not in (1, 2):
            raise ValueError(
                f"{type(self).__name__}: Expected {what} to be 1D or 2D, got {hx.ndim}D instead "
                f"(shape {hx.shape}; expected ({n}, {size}), or ({size},) for unbatched input)"
            )
        if hx.ndim != (2 if batched else 1):
            raise RuntimeError(
                f"{self!r}: {what} of shape {hx.shape} does not fit the "
                f"{'batched' if batched else 'unbatched'} input; expected "
                f"{(n, size) if batched else (size,)}"
            )
        hx = hx.reshape(-1, hx.shape[-1])  # unbatched (H,) -> (1, H)
        if hx.shape[1] != size:
            raise RuntimeError(
                f"{self!r}: hidden0 has inconsistent hidden_size: got {hx.shape[1]}, "
                f"expected {size} ({what} shape {hx.shape})"
            )
        if hx.shape[0] != n:
            raise RuntimeError(
                f"{self!r}: Input batch size {n} doesn't match hidden0 batch size {hx.shape[0]}"
            )
        return hx.astype(input.dtype, copy=False)

    def _accumulate(self, grads: Sequence[Any]) -> None:
        for param, grad in zip((self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh), grads):
            if param is not None:
                param.accumulate_grad(grad)

    def _check_grad(self, grad: Any, shape: tuple, what: str) -> np.ndarray | None:
        if grad is None:
            return None
        grad = np.asarray(grad)
        if grad.shape != shape:
            raise ValueError(f"{self!r}.backward: {what} must have shape {shape}, got {grad.shape}")
        return grad.reshape(-1, self.hidden_size)  # unbatched (H,) -> (1, H)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        return s if self.bias else s + ", bias=False"


class _SingleStateCell(_RNNCellBase):
    """RNNCell and GRUCell: one state ``h``, ``forward`` returns ``h'``."""

    def _functions(self) -> tuple:
        raise NotImplementedError

    def forward(self, input: Any, hx: Any = None) -> np.ndarray:
        input = self._check_input(input)
        batched = input.ndim == 2
        if not batched:
            input = input[None]  # (H_in,) -> (1, H_in)
        h = self._check_state(hx, input, batched, "hx")
        fn, _ = self._functions()
        out = fn(input, h, *self._weights())
        self._cache = (input, h, batched)
        return out if batched else out[0]

    def backward(self, grad_output: Any) -> tuple[np.ndarray, np.ndarray]:
        input, h, batched = self._require_cache(self._cache)
        shape = h.shape if batched else h.shape[1:]
        grad = self._check_grad(grad_output, shape, "grad_output")
        _, backward = self._functions()
        grad_input, grad_hx, *grads = backward(grad, input, h, *self._weights())
        self._accumulate(grads)
        if not batched:
            return grad_input[0], grad_hx[0]
        return grad_input, grad_hx


class RNNCell(_SingleStateCell):
    r"""``torch.nn.RNNCell``: :math:`h' = \phi(x W_{ih}^\top + b_{ih} + h W_{hh}^\top + b_{hh})`
    with :math:`\phi` = ``tanh`` or ``relu`` (``nonlinearity``)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: Any = None,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}; use 'tanh' or 'relu'")
        super().__init__(input_size, hidden_size, bias, device, dtype, rng=rng)
        self.nonlinearity = nonlinearity

    def _functions(self) -> tuple:
        if self.nonlinearity == "tanh":
            return F.rnn_tanh_cell, F.rnn_tanh_cell_backward
        return F.rnn_relu_cell, F.rnn_relu_cell_backward

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.nonlinearity == "tanh" else s + ", nonlinearity='relu'"


class GRUCell(_SingleStateCell):
    """``torch.nn.GRUCell``: see :func:`reference.functional.gru_cell`."""

    _gates = 3

    def _functions(self) -> tuple:
        return F.gru_cell, F.gru_cell_backward


class LSTMCell(_RNNCellBase):
    """``torch.nn.LSTMCell``: ``forward(input, hx=None)`` with ``hx = (h, c)`` returns
    ``(h', c')``; ``backward((grad_h, grad_c))`` returns ``(grad_input, (grad_h, grad_c))``.
    See :func:`reference.functional.lstm_cell`."""

    _gates = 4

    def forward(self, input: Any, hx: Any = None) -> tuple[np.ndarray, np.ndarray]:
        input = self._check_input(input)
        batched = input.ndim == 2
        if not batched:
            input = input[None]  # (H_in,) -> (1, H_in)
        if hx is None:
            hx = (None, None)
        if len(hx) != 2:
            raise ValueError(f"{self!r}: hx must be the pair (h, c), got {len(hx)} arrays")
        h = self._check_state(hx[0], input, batched, "hx[0]")
        c = self._check_state(hx[1], input, batched, "hx[1]")
        h_new, c_new = F.lstm_cell(input, (h, c), *self._weights())
        self._cache = (input, h, c, batched)
        return (h_new, c_new) if batched else (h_new[0], c_new[0])

    def backward(self, grad_output: Any) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        input, h, c, batched = self._require_cache(self._cache)
        if not isinstance(grad_output, (tuple, list)) or len(grad_output) != 2:
            raise TypeError(f"{self!r}.backward: pass the pair (grad_h, grad_c); None is zero")
        shape = h.shape if batched else h.shape[1:]
        g_h = self._check_grad(grad_output[0], shape, "grad_h")
        g_c = self._check_grad(grad_output[1], shape, "grad_c")
        grad_input, grad_h, grad_c, *grads = F.lstm_cell_backward(
            (g_h, g_c), input, (h, c), *self._weights()
        )
        self._accumulate(grads)
        if not batched:
            return grad_input[0], (grad_h[0], grad_c[0])
        return grad_input, (grad_h, grad_c)
