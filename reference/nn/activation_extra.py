"""The remaining activation modules: ``PReLU`` (with its learned ``weight``), ``GLU``,
``Threshold``, ``Hardshrink``, ``Softshrink``, ``Tanhshrink``, ``Softmin``, ``Softmax2d``,
and ``RReLU`` (random slopes in training, :mod:`reference.functional.rrelu`).

Names, constructor arguments, defaults, attributes and ``repr`` are torch's; the
backward of each calls its functional pair in :mod:`reference.functional.activation_extra`
(``Softmax2d``: :func:`reference.functional.softmax` over the channel dim).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validate import as_float_array, check_ndim
from ..functional import activation_extra as FX
from ..functional.rrelu import check_bounds, rrelu, rrelu_backward, rrelu_noise
from ..functional.softmax import softmax, softmax_backward
from .activation import _Activation, _inplace_repr
from .init import resolve_dtype, resolve_rng
from .module import Module, Parameter

__all__ = [
    "PReLU", "GLU", "Threshold", "Hardshrink", "Softshrink", "Tanhshrink", "Softmin",
    "Softmax2d", "RReLU",
]  # fmt: skip


class PReLU(Module):
    r"""``torch.nn.PReLU``: :math:`\max(x, 0) + a \min(x, 0)` with a learned slope ``a``.

    ``weight`` has shape ``(num_parameters,)``, every entry ``init``. With one parameter
    it is shared by every element; with ``num_parameters = C`` the input needs ``C``
    channels in dim 1 (as torch: a 1-D input counts as one channel). ``backward``
    accumulates into ``weight.grad``; at x = 0 the input's gradient is ``a``, as torch's.
    """

    def __init__(
        self, num_parameters: int = 1, init: float = 0.25, device: Any = None, dtype: Any = None
    ):
        super().__init__()
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, (int, np.integer)):
            raise TypeError(f"PReLU: num_parameters must be an int, got {num_parameters!r}")
        if num_parameters < 0:
            raise ValueError(f"PReLU: num_parameters must be >= 0, got {num_parameters}")
        self.num_parameters = int(num_parameters)
        self.init = init
        self.weight = Parameter(np.full(self.num_parameters, init, dtype=resolve_dtype(dtype)))
        self._input: np.ndarray | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        FX.prelu_weight(input, self.weight.data, repr(self))  # torch's checks, naming us
        output = FX.prelu(input, self.weight.data)
        self._input = input
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input = self._require_cache(self._input)
        if np.shape(grad_output) != input.shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape {input.shape}, "
                f"got {np.shape(grad_output)}"
            )
        grad_input, grad_weight = FX.prelu_backward(grad_output, input, self.weight.data)
        self.weight.accumulate_grad(grad_weight)
        return grad_input

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class GLU(_Activation):
    """``torch.nn.GLU(dim)``: halves ``a, b`` of the input along ``dim``, ``a * sigmoid(b)``.

    The output is half the input along ``dim``; ``backward`` takes a gradient of that shape.
    """

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, output = self._require_cache(self._cache)
        if np.shape(grad_output) != output.shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape {output.shape}, "
                f"got {np.shape(grad_output)}"
            )
        return FX.glu_backward(np.asarray(grad_output), input, self.dim)

    def _forward(self, input):
        return FX.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Threshold(_Activation):
    """``torch.nn.Threshold``: ``x`` where ``x > threshold``, else ``value``; gradient 0 at
    x = threshold."""

    def __init__(self, threshold: float, value: float, inplace: bool = False):
        super().__init__()
        self.threshold = threshold
        self.value = value
        self.inplace = inplace

    def _forward(self, input):
        return FX.threshold(input, self.threshold, self.value)

    def _backward(self, grad_output, input, output):
        return FX.threshold_backward(grad_output, input, self.threshold, self.value)

    def extra_repr(self) -> str:
        return (
            f"threshold={self.threshold}, value={self.value}"
            f"{_inplace_repr(self.inplace, leading_comma=True)}"
        )


class Hardshrink(_Activation):
    """``torch.nn.Hardshrink``: ``x`` where ``|x| > lambd``, else 0; gradient 0 at
    x = +-lambd."""

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        self.lambd = lambd

    def _forward(self, input):
        return FX.hardshrink(input, self.lambd)

    def _backward(self, grad_output, input, output):
        return FX.hardshrink_backward(grad_output, input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(_Activation):
    """``torch.nn.Softshrink``: shrink toward 0 by ``lambd >= 0``; gradient 0 at x = +-lambd.

    torch accepts a negative ``lambd`` here and refuses it at the first forward; we
    refuse it at once.
    """

    def __init__(self, lambd: float = 0.5):
        super().__init__()
        if not lambd >= 0:
            raise ValueError(f"Softshrink: lambd must be >= 0, got {lambd}")
        self.lambd = lambd

    def _forward(self, input):
        return FX.softshrink(input, self.lambd)

    def _backward(self, grad_output, input, output):
        return FX.softshrink_backward(grad_output, input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Tanhshrink(_Activation):
    """``torch.nn.Tanhshrink``: :math:`x - \\tanh x`, accurate near 0 (see the functional)."""

    def _forward(self, input):
        return FX.tanhshrink(input)

    def _backward(self, grad_output, input, output):
        return FX.tanhshrink_backward(grad_output, input)


class Softmin(_Activation):
    """``torch.nn.Softmin(dim)``: ``softmax(-x, dim)``; ``dim=None`` takes torch's legacy
    implicit dim, with its deprecation warning. Backward reuses the output."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _forward(self, input):
        return FX.softmin(input, self.dim)

    def _backward(self, grad_output, input, output):
        return FX.softmin_backward(grad_output, input, self.dim, output=output)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax2d(_Activation):
    """``torch.nn.Softmax2d``: softmax over the channels (dim -3) of a ``(N, C, H, W)`` or
    ``(C, H, W)`` input, at every pixel; torch refuses any other rank, and so do we."""

    def _forward(self, input):
        check_ndim(input, (3, 4), repr(self), "(N, C, H, W) or (C, H, W)")
        return softmax(input, -3)

    def _backward(self, grad_output, input, output):
        return softmax_backward(grad_output, input, -3, output=output)


class RReLU(Module):
    r"""``torch.nn.RReLU``: :math:`x` for :math:`x > 0`, else :math:`a x`, with :math:`a`
    uniform on ``[lower, upper]`` per element in training and ``(lower + upper) / 2`` in
    evaluation (:func:`reference.functional.rrelu`).

    Each training forward draws its slopes from the module's own generator (``rng``,
    keyword-only: a Generator or a seed) unless some were imposed: set ``module.noise``
    to an array of the input's shape (torch's ``noise``, read with
    ``harness.dropout_masks.torch_rrelu_noise``) and the next training forward uses it,
    then clears it back to ``None``. ``last_noise`` keeps the slopes that forward used
    (1 where ``x > 0``, as torch's; ``None`` after an evaluation forward). torch checks
    ``lower <= upper`` at the first forward; we check at once.
    """

    def __init__(
        self,
        lower: float = 1.0 / 8,
        upper: float = 1.0 / 3,
        inplace: bool = False,
        *,
        rng: np.random.Generator | int | None = None,
    ):
        super().__init__()
        check_bounds(lower, upper, "RReLU")
        self.lower = lower
        self.upper = upper
        self.inplace = inplace
        self.rng = resolve_rng(rng)
        self.noise: np.ndarray | None = None
        self.last_noise: np.ndarray | None = None
        self._cache: tuple | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        noise = None
        if self.training:
            noise = self.noise
            if noise is None:
                noise = rrelu_noise(input, self.lower, self.upper, self.rng)
        output = rrelu(input, self.lower, self.upper, self.training, noise=noise)
        if self.training:
            # torch's noise: the slope where x <= 0, 1 elsewhere, in the input's dtype
            noise = np.where(input <= 0, np.asarray(noise, dtype=input.dtype), 1)
            self.noise = None
        self.last_noise = noise
        self._cache = (input, self.training, noise)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, training, noise = self._require_cache(self._cache)
        if np.shape(grad_output) != input.shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape {input.shape}, "
                f"got {np.shape(grad_output)}"
            )
        return rrelu_backward(grad_output, input, self.lower, self.upper, training, noise=noise)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace_repr(self.inplace, True)}"
