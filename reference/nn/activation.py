"""Activation modules: thin wrappers that save input and output for the functional backward.

Names, constructor arguments, defaults, attributes and ``repr`` are torch's
(``torch.nn.ReLU`` ... ``torch.nn.LogSoftmax``). ``inplace`` is accepted where torch
takes it and stored, but we never write in place. None of them has parameters.
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .._validate import as_float_array
from .module import Module

__all__ = [
    "ReLU", "ReLU6", "LeakyReLU", "Hardtanh", "Hardsigmoid", "Hardswish",
    "ELU", "CELU", "SELU", "GELU", "SiLU", "Mish",
    "Sigmoid", "Tanh", "LogSigmoid", "Softplus", "Softsign", "Softmax", "LogSoftmax",
]  # fmt: skip


class _Activation(Module):
    """Shared plumbing: ``forward`` validates and caches ``(input, output)``, ``backward``
    checks ``grad_output`` and hands both to the subclass's functional backward.

    A subclass implements ``_forward(input)`` and ``_backward(grad_output, input, output)``.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: tuple[np.ndarray, np.ndarray] | None = None

    def forward(self, input: np.ndarray) -> np.ndarray:
        input = as_float_array(input, repr(self))
        output = self._forward(input)
        self._cache = (input, output)
        return output

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        input, output = self._require_cache(self._cache)
        if np.shape(grad_output) != input.shape:
            raise ValueError(
                f"{self!r}.backward: grad_output must have the output's shape {input.shape}, "
                f"got {np.shape(grad_output)}"
            )
        return self._backward(np.asarray(grad_output), input, output)

    def _forward(self, input: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(
        self, grad_output: np.ndarray, input: np.ndarray, output: np.ndarray
    ) -> np.ndarray:
        raise NotImplementedError


def _inplace_repr(inplace: bool, leading_comma: bool = False) -> str:
    """torch prints ``inplace=True`` only when it is set."""
    if not inplace:
        return ""
    return ", inplace=True" if leading_comma else "inplace=True"


class ReLU(_Activation):
    """``torch.nn.ReLU``: :math:`\\max(x, 0)`; gradient 0 at x = 0, as torch."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def _forward(self, input):
        return F.relu(input)

    def _backward(self, grad_output, input, output):
        return F.relu_backward(grad_output, input)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Hardtanh(_Activation):
    """``torch.nn.Hardtanh``: clip to ``[min_val, max_val]``; gradient 0 at both bounds."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False):
        super().__init__()
        if not max_val > min_val:  # torch's module insists on a non-empty interval
            raise ValueError(
                f"Hardtanh: max_val must be greater than min_val, got min_val={min_val}, "
                f"max_val={max_val}"
            )
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def _forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def _backward(self, grad_output, input, output):
        return F.hardtanh_backward(grad_output, input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return (
            f"min_val={self.min_val}, max_val={self.max_val}"
            f"{_inplace_repr(self.inplace, leading_comma=True)}"
        )


class ReLU6(Hardtanh):
    """``torch.nn.ReLU6``: ``Hardtanh(0.0, 6.0)``, as in torch; gradient 0 at 0 and at 6."""

    def __init__(self, inplace: bool = False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class LeakyReLU(_Activation):
    """``torch.nn.LeakyReLU``: slope ``negative_slope`` for x <= 0 (x = 0 included)."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    def _forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def _backward(self, grad_output, input, output):
        return F.leaky_relu_backward(grad_output, input, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}{_inplace_repr(self.inplace, True)}"


class Hardsigmoid(_Activation):
    """``torch.nn.Hardsigmoid``: ``relu6(x + 3) / 6``; gradient 0 at x = -3 and x = 3."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace  # torch's repr never shows it

    def _forward(self, input):
        return F.hardsigmoid(input)

    def _backward(self, grad_output, input, output):
        return F.hardsigmoid_backward(grad_output, input)


class Hardswish(_Activation):
    """``torch.nn.Hardswish``: ``x * relu6(x + 3) / 6``; gradient 0 at -3, 1 at 3."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace  # torch's repr never shows it

    def _forward(self, input):
        return F.hardswish(input)

    def _backward(self, grad_output, input, output):
        return F.hardswish_backward(grad_output, input)


class ELU(_Activation):
    """``torch.nn.ELU``: ``alpha * (exp(x) - 1)`` for x <= 0; gradient alpha at x = 0."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def _forward(self, input):
        return F.elu(input, self.alpha)

    def _backward(self, grad_output, input, output):
        return F.elu_backward(grad_output, input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace, True)}"


class CELU(_Activation):
    """``torch.nn.CELU``: ``alpha * (exp(x / alpha) - 1)`` for x <= 0; gradient 1 at 0."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha
        self.inplace = inplace

    def _forward(self, input):
        return F.celu(input, self.alpha)

    def _backward(self, grad_output, input, output):
        return F.celu_backward(grad_output, input, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace, True)}"


class SELU(_Activation):
    """``torch.nn.SELU``: ``scale * elu(x, alpha)`` with SELU's fixed constants."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def _forward(self, input):
        return F.selu(input)

    def _backward(self, grad_output, input, output):
        return F.selu_backward(grad_output, input)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class GELU(_Activation):
    """``torch.nn.GELU``: :math:`x\\,\\Phi(x)`, exact (``'none'``) or tanh-approximated."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        self.approximate = approximate

    def _forward(self, input):
        return F.gelu(input, self.approximate)

    def _backward(self, grad_output, input, output):
        return F.gelu_backward(grad_output, input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(_Activation):
    """``torch.nn.SiLU``: :math:`x\\,\\sigma(x)`."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def _forward(self, input):
        return F.silu(input)

    def _backward(self, grad_output, input, output):
        return F.silu_backward(grad_output, input)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Mish(_Activation):
    """``torch.nn.Mish``: :math:`x \\tanh(\\mathrm{softplus}(x))`."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    def _forward(self, input):
        return F.mish(input)

    def _backward(self, grad_output, input, output):
        return F.mish_backward(grad_output, input)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace)


class Sigmoid(_Activation):
    """``torch.nn.Sigmoid``: :math:`1/(1 + e^{-x})`; backward reuses the output."""

    def _forward(self, input):
        return F.sigmoid(input)

    def _backward(self, grad_output, input, output):
        return F.sigmoid_backward(grad_output, input, output=output)


class Tanh(_Activation):
    """``torch.nn.Tanh``; backward reuses the output: :math:`1 - y^2`."""

    def _forward(self, input):
        return F.tanh(input)

    def _backward(self, grad_output, input, output):
        return F.tanh_backward(grad_output, input, output=output)


class LogSigmoid(_Activation):
    """``torch.nn.LogSigmoid``: :math:`\\log \\sigma(x)`, stable for large :math:`|x|`."""

    def _forward(self, input):
        return F.logsigmoid(input)

    def _backward(self, grad_output, input, output):
        return F.logsigmoid_backward(grad_output, input)


class Softplus(_Activation):
    """``torch.nn.Softplus``: :math:`\\log(1 + e^{\\beta x})/\\beta`, or x where
    :math:`\\beta x > \\text{threshold}`."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0):
        super().__init__()
        self.beta = beta
        self.threshold = threshold

    def _forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def _backward(self, grad_output, input, output):
        return F.softplus_backward(grad_output, input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softsign(_Activation):
    """``torch.nn.Softsign``: :math:`x/(1 + |x|)`."""

    def _forward(self, input):
        return F.softsign(input)

    def _backward(self, grad_output, input, output):
        return F.softsign_backward(grad_output, input)


class Softmax(_Activation):
    """``torch.nn.Softmax(dim)``; ``dim=None`` takes torch's legacy implicit dim, with a
    warning (see :mod:`reference.functional.softmax`). Backward reuses the output."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _forward(self, input):
        return F.softmax(input, self.dim)

    def _backward(self, grad_output, input, output):
        return F.softmax_backward(grad_output, input, self.dim, output=output)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(_Activation):
    """``torch.nn.LogSoftmax(dim)``; ``dim=None`` as :class:`Softmax`. Backward reuses
    the output."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _forward(self, input):
        return F.log_softmax(input, self.dim)

    def _backward(self, grad_output, input, output):
        return F.log_softmax_backward(grad_output, input, self.dim, output=output)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
