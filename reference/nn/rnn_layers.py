"""``RNN``, ``LSTM``, ``GRU``: stacked recurrent layers over time, around
:mod:`reference.functional.recurrent_layers` (the cells are in :mod:`.rnn`; see
``_RNNBase`` for ``forward``, ``backward`` and the masks of dropout between layers).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validate import as_float_array, check_dtypes, check_positive_int
from ..functional import recurrent_layers as F_layers
from ..functional.dropout import dropout_mask
from ..functional.recurrent_layers import RNNMode
from .init import resolve_dtype, resolve_rng, uniform
from .module import Module, Parameter
from .utils.rnn import PackedSequence, pad_packed_sequence, pad_packed_sequence_backward

__all__ = ["RNN", "LSTM", "GRU"]


class _RNNBase(Module):
    """The stacked layers. ``forward(input, hx=None)``: ``input (L, N, H_in)`` (``(N, L,
    H_in)`` with ``batch_first``) or unbatched ``(L, H_in)``; ``hx`` the initial state
    ``(num_layers * D, N, H_out)`` (zeros if ``None``), for the LSTM the pair ``(h0, c0)``.

    ``backward(grad_output, grad_h_n=None, grad_c_n=None)``: the gradients of ``output``
    and of the final state(s), each ``None`` for zero and shaped as the forward returned
    it; accumulates every parameter's gradient and returns the gradient wrt ``input``.
    The gradient wrt the initial state is stored in ``grad_hx`` (``(grad_h0, grad_c0)``
    for the LSTM). Dropout between layers (training, ``dropout > 0``, ``num_layers > 1``)
    uses ``num_layers - 1`` bool keep-masks in the time-major layout ``(L, N, D H_out)``
    (``N = 1`` unbatched): imposed by setting ``module.mask`` to that list (the next
    training forward uses then clears it) or drawn from ``rng``; ``last_mask`` keeps them,
    as :mod:`reference.nn.dropout` does.

    A :class:`~reference.nn.utils.rnn.PackedSequence` input (``data (sum(lengths),
    H_in)``; ``batch_first`` does not apply) gives a ``PackedSequence`` output with the
    input's ``batch_sizes`` and indices, and final states holding each sequence's state at
    its own last step (the reverse direction: after its first element); ``hx``, ``h_n``,
    ``c_n``, their gradients and ``grad_hx`` are in the original batch order, as in torch.
    ``backward`` then takes the gradient of ``output.data`` (or a ``PackedSequence``) and
    returns that of ``input.data``. The dropout keep-masks are shaped as the packed data,
    ``(sum(lengths), D H_out)`` each, since torch drops out the packed data of every layer
    but the last.
    """

    _mode = RNNMode.GRU
    # what forward returns beside the output sequence, flattened, by torch's names
    extra_outputs: tuple[str, ...] = ("h_n",)

    def _setup(self, input_size, hidden_size, num_layers, bias, batch_first, dropout,
               bidirectional, proj_size, dtype, rng) -> None:  # fmt: skip
        name = type(self).__name__
        self.input_size = check_positive_int(input_size, name, "input_size")
        self.hidden_size = check_positive_int(hidden_size, name, "hidden_size")
        self.num_layers = check_positive_int(num_layers, name, "num_layers")
        if not 0 <= dropout <= 1 or isinstance(dropout, bool):
            raise ValueError(f"{name}: dropout should be a number in range [0, 1], got {dropout}")
        if proj_size < 0 or (proj_size and proj_size >= hidden_size):
            raise ValueError(f"{name}: proj_size has to be in [0, hidden_size), got {proj_size}")
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size = bidirectional, proj_size
        rng, dtype, d = resolve_rng(rng), resolve_dtype(dtype), 2 if bidirectional else 1
        gates = {RNNMode.LSTM: 4, RNNMode.GRU: 3}.get(self._mode, 1) * hidden_size
        out, bound = proj_size or hidden_size, 1.0 / math.sqrt(hidden_size)
        shapes: list[tuple[str, Callable[[int], tuple[int, ...]]]]
        shapes = [("weight_ih", lambda i: (gates, input_size if i == 0 else d * out)),
                  ("weight_hh", lambda i: (gates, out))]  # fmt: skip
        if bias:
            shapes += [("bias_ih", lambda i: (gates,)), ("bias_hh", lambda i: (gates,))]
        if proj_size:
            shapes.append(("weight_hr", lambda i: (proj_size, hidden_size)))
        self._names: list[list[str | None]] = []
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:d]:
                names = dict.fromkeys(("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hr"))
                for key, shape in shapes:
                    name = names[key] = f"{key}_l{layer}{suffix}"
                    setattr(self, name, Parameter(uniform(rng, shape(layer), bound, dtype)))
                self._names.append(list(names.values()))
        self._cache: tuple | None = None
        self.grad_hx: Any = None
        self.mask: list[np.ndarray] | None = None
        self.last_mask: list[np.ndarray] | None = None
        self.rng = rng

    def _dropout_masks(self, shape: tuple) -> list | None:
        """The keep-masks between layers: imposed (``mask``, then cleared) or drawn."""
        if not (self.training and self.dropout > 0 and self.num_layers > 1):
            self.mask, self.last_mask = None, None
            return None
        masks = self.mask
        if masks is None:
            masks = [
                dropout_mask(shape, self.dropout, self.rng) for _ in range(self.num_layers - 1)
            ]
        if len(masks) != self.num_layers - 1:
            raise ValueError(f"{self!r}: mask must hold num_layers - 1 = {self.num_layers - 1} "
                             f"keep-masks, got {len(masks)}")  # fmt: skip
        self.mask, self.last_mask = None, list(masks)
        return self.last_mask

    def _weights(self) -> list[tuple]:
        return [tuple(None if n is None else getattr(self, n).data for n in k) for k in self._names]

    def _state(self, hx: Any, x: np.ndarray, batched: bool, i: int) -> np.ndarray:
        size = (self.hidden_size, self.proj_size or self.hidden_size)[
            i == 0 or self._mode is not RNNMode.LSTM
        ]
        expected = (len(self._names), x.shape[1], size)
        if hx is None:
            return np.zeros(expected, dtype=x.dtype)
        hx = as_float_array(hx, repr(self), "hx")
        if hx.ndim != (3 if batched else 2):
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(f"{self!r}: For {kind} input, hx should also be "
                               f"{kind[-3:]} but got {hx.ndim}-D tensor")  # fmt: skip
        hx = hx if batched else hx[:, None]  # (K, H_out) -> (K, 1, H_out)
        if hx.shape != expected:
            what = f"hidden[{i}]" if self._mode is RNNMode.LSTM else "hidden"
            raise RuntimeError(f"{self!r}: Expected {what} size {expected}, got {hx.shape}")
        return hx.astype(x.dtype, copy=False)

    def forward(self, input: Any, hx: Any = None) -> tuple:
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        input, name = as_float_array(input, repr(self)), type(self).__name__
        if input.ndim not in (2, 3):
            raise ValueError(f"{name}: Expected input to be 2D or 3D, got {input.ndim}D instead")
        batched = input.ndim == 3
        x = input if batched else input[:, None]  # (L, H_in) -> (L, 1, H_in)
        x = x.transpose(1, 0, 2) if batched and self.batch_first else x  # (N, L, .) -> (L, N, .)
        if x.shape[2] != self.input_size:
            raise RuntimeError(f"{self!r}: input.size(-1) must be equal to input_size. "
                               f"Expected {self.input_size}, got {x.shape[2]}")  # fmt: skip
        out, finals = self._run(x, hx, batched, None)
        out = out.transpose(1, 0, 2) if batched and self.batch_first else out
        if not batched:  # (L, 1, .) -> (L, .), (K, 1, .) -> (K, .)
            out, finals = out[:, 0], tuple(s[:, 0] for s in finals)
        return out, (finals if self._mode is RNNMode.LSTM else finals[0])

    def _forward_packed(self, input: PackedSequence, hx: Any) -> tuple:
        """A packed input runs as its padded, sorted, time-major ``(T, B, H_in)`` batch with
        step ``t`` on its first ``batch_sizes[t]`` rows; ``hx`` and the final states are in
        the original batch order (permuted by ``sorted_indices`` / ``unsorted_indices``)."""
        data = as_float_array(input.data, repr(self), "input.data")
        if data.ndim != 2 or data.shape[1] != self.input_size:
            raise RuntimeError(f"{self!r}: packed input.data must be (sum(lengths), "
                               f"input_size={self.input_size}), got {data.shape}")  # fmt: skip
        sorted_only = PackedSequence(data, input.batch_sizes)  # the sorted order, no indices
        if sorted_only.batch_sizes.sum() != data.shape[0]:
            raise RuntimeError(f"{self!r}: batch_sizes sum to {sorted_only.batch_sizes.sum()}, "
                               f"but input.data has {data.shape[0]} rows")  # fmt: skip
        x = pad_packed_sequence(sorted_only)[0]  # (sum L, H_in) -> (T, B, H_in)
        out, finals = self._run(x, hx, True, input)
        out = pad_packed_sequence_backward(out, sorted_only)  # packing: (T, B, .) -> (sum L, .)
        if input.unsorted_indices is not None:
            finals = tuple(s[:, input.unsorted_indices] for s in finals)  # sorted -> original
        finals = finals if self._mode is RNNMode.LSTM else finals[0]
        return PackedSequence(out, *input[1:]), finals

    def _run(self, x: np.ndarray, hx: Any, batched: bool, packed: PackedSequence | None):
        """The layers on the time-major ``x (L, N, H_in)``; saves the cache."""
        named = dict(zip(map(str, self._names[0]), self._weights()[0]))
        check_dtypes(x, named, repr(self), "mat1")
        lstm = self._mode is RNNMode.LSTM
        if lstm and hx is not None and len(hx) != 2:
            raise ValueError(f"{self!r}: hx must be the pair (h0, c0)")
        hx = (hx,) if not lstm else (None, None) if hx is None else hx
        states = tuple(self._state(h, x, batched, i) for i, h in enumerate(hx))
        order = None if packed is None else packed.sorted_indices
        if order is not None:  # original -> sorted batch order
            states = tuple(s[:, order] for s in states)
        d, out_size = 2 if self.bidirectional else 1, self.proj_size or self.hidden_size
        batch_sizes = None if packed is None else packed.batch_sizes
        masks = self._dropout_masks(
            (*x.shape[:2], d * out_size) if packed is None else (len(packed.data), d * out_size)
        )  # (L, N, D H_out), or packed (sum L, D H_out)
        grid = masks if packed is None or masks is None else self._padded_masks(masks, packed)
        out, finals, cache = F_layers.rnn_layers(
            self._mode, x, states, self._weights(), self.bidirectional, self.dropout, grid,
            batch_sizes,
        )  # fmt: skip
        self._cache = (cache, batched, out.shape, [s.shape for s in states], grid, packed)
        return out, finals

    def _padded_masks(self, masks: list, packed: PackedSequence) -> list:
        """Packed keep-masks ``(sum L, D H_out)`` on the padded sorted grid (False at pads)."""
        expected = (len(packed.data), (2 if self.bidirectional else 1) * self._out_size())
        if any(np.shape(m) != expected for m in masks):
            raise ValueError(f"{self!r}: with packed input each dropout mask must be shaped "
                             f"as the packed data {expected}, got "
                             f"{[np.shape(m) for m in masks]}")  # fmt: skip
        return [pad_packed_sequence(PackedSequence(m, packed.batch_sizes), False, False)[0]
                for m in masks]  # fmt: skip

    def _out_size(self) -> int:
        return self.proj_size or self.hidden_size

    def _layout(self, grad: Any, shape: tuple, batched: bool, time_major: bool) -> np.ndarray:
        if grad is None:
            return np.zeros(shape)
        grad = np.asarray(grad)
        grad = grad if batched else grad[:, None]  # unbatched (A, B) -> (A, 1, B)
        grad = grad.transpose(1, 0, 2) if time_major and batched and self.batch_first else grad
        if grad.shape != shape:
            raise ValueError(f"{self!r}.backward: gradient of shape {grad.shape} does not fit "
                             f"the forward's output (time-major shape {shape})")  # fmt: skip
        return grad

    def _packed_grad_output(self, grad: Any, packed: PackedSequence, shape: tuple) -> np.ndarray:
        """The packed output's gradient (its data, or a PackedSequence) on the padded sorted
        grid ``(T, B, D H_out)``, zero at the pads."""
        grad = np.asarray(grad.data if isinstance(grad, PackedSequence) else grad)
        expected = (len(packed.data), shape[2])
        if grad.shape != expected:
            raise ValueError(f"{self!r}.backward: with packed input grad_output must be "
                             f"shaped as output.data {expected}, got {grad.shape}")  # fmt: skip
        return pad_packed_sequence(PackedSequence(grad, packed.batch_sizes))[0]

    def backward(self, grad_output: Any, grad_h_n: Any = None, grad_c_n: Any = None) -> np.ndarray:
        cache, batched, out_shape, state_shapes, masks, packed = self._require_cache(self._cache)
        if packed is None:
            g_out = self._layout(grad_output, out_shape, batched, True)
        else:
            g_out = self._packed_grad_output(grad_output, packed, out_shape)
        finals = (grad_h_n, grad_c_n)[: len(state_shapes)]
        g_fin = tuple(self._layout(g, s, batched, False) for g, s in zip(finals, state_shapes))
        order = None if packed is None else packed.sorted_indices
        if order is not None:  # original -> sorted batch order
            g_fin = tuple(g[:, order] for g in g_fin)
        d = 2 if self.bidirectional else 1
        dtype = cache[0][0].dtype
        g_out, g_fin = g_out.astype(dtype), tuple(g.astype(dtype) for g in g_fin)
        grad_x, grad_hx, grad_w = F_layers.rnn_layers_backward(
            self._mode, g_out, g_fin, cache, self._weights(), d, self.dropout, masks,
            None if packed is None else packed.batch_sizes,
        )  # fmt: skip
        for names, grads in zip(self._names, grad_w):
            for n, g in zip(names, grads):
                if n is not None:
                    getattr(self, n).accumulate_grad(g)
        if not batched:  # (L, 1, .) -> (L, .)
            grad_x, grad_hx = grad_x[:, 0], tuple(g[:, 0] for g in grad_hx)
        if packed is not None and packed.unsorted_indices is not None:
            grad_hx = tuple(g[:, packed.unsorted_indices] for g in grad_hx)  # sorted -> original
        self.grad_hx = grad_hx if self._mode is RNNMode.LSTM else grad_hx[0]
        if packed is not None:  # (T, B, H_in) -> (sum L, H_in)
            return pad_packed_sequence_backward(grad_x, PackedSequence(packed.data, packed[1]))
        return grad_x.transpose(1, 0, 2) if batched and self.batch_first else grad_x

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}"


class RNN(_RNNBase):
    """``torch.nn.RNN``: stacked Elman layers, ``nonlinearity`` ``'tanh'`` or ``'relu'``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        self.nonlinearity = nonlinearity
        self._mode = RNNMode.RNN_TANH if nonlinearity == "tanh" else RNNMode.RNN_RELU
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                    bidirectional, 0, dtype, rng)  # fmt: skip


class LSTM(_RNNBase):
    """``torch.nn.LSTM``, with ``proj_size > 0`` the projected LSTM (``weight_hr_l*``)."""

    _mode = RNNMode.LSTM
    extra_outputs = ("h_n", "c_n")

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, device: Any = None,
                 dtype: Any = None, *, rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                    bidirectional, proj_size, dtype, rng)  # fmt: skip


class GRU(_RNNBase):
    """``torch.nn.GRU``: stacked GRU layers (:func:`reference.functional.gru_cell`)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, device: Any = None, dtype: Any = None,
                 *, rng: np.random.Generator | int | None = None):  # fmt: skip
        super().__init__()
        self._setup(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                    bidirectional, 0, dtype, rng)  # fmt: skip
