r"""``torch.nn.init``'s public functions, drawing from a NumPy Generator.

Each fills its ``tensor`` (a :class:`~reference.nn.module.Parameter`, whose ``data`` is
filled, or an ``ndarray``, a view included) **in place** and returns it, as torch's
do. ``generator`` takes what torch's does, as NumPy: a ``numpy.random.Generator``,
an int seed, or ``None`` (fresh entropy). Values differ from torch's (another random
stream); bounds, standard deviations, fans and gains are torch's, computed with the
same formulas in the same order, so the same floats come out:

.. math::

    \text{xavier: } \sigma = \text{gain}\sqrt{\frac{2}{\text{fan\_in} + \text{fan\_out}}},
    \qquad \text{kaiming: } \sigma = \frac{\text{gain}}{\sqrt{\text{fan}}},
    \qquad \text{uniform bound } = \sqrt 3\,\sigma

with :math:`\text{fan\_in} = C_\text{in} \prod k`, :math:`\text{fan\_out} = C_\text{out}
\prod k` for a weight :math:`(C_\text{out}, C_\text{in}, *k)`. Draws are made in float64
and rounded to the tensor's dtype (``orthogonal_`` factors in the tensor's dtype).
"""

from __future__ import annotations

import math
import warnings
from enum import Enum
from typing import Any, TypeVar

import numpy as np

from .module import Parameter

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
]

T = TypeVar("T", np.ndarray, Parameter)

_LINEAR_FNS: tuple[str, ...] = ("linear", "conv1d", "conv2d", "conv3d")
_LINEAR_FNS += ("conv_transpose1d", "conv_transpose2d", "conv_transpose3d")


class FanMode(Enum):
    FAN_IN = "fan_in"
    FAN_OUT = "fan_out"


def resolve_rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A Generator from a Generator, a seed, or ``None`` (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def _array(tensor: Any, name: str) -> np.ndarray:
    """The array to fill in place: a Parameter's ``data``, or the ndarray itself."""
    if isinstance(tensor, Parameter):
        return tensor.data
    if isinstance(tensor, np.ndarray):
        return tensor
    raise TypeError(
        f"{name}: tensor must be a Parameter or a numpy.ndarray (filled in place), got "
        f"{type(tensor).__name__}"
    )


def _floating(array: np.ndarray, kernel: str, name: str) -> None:
    # torch: NotImplementedError('"normal_kernel_cpu" not implemented for \'Long\'')
    if array.dtype.kind != "f":
        raise NotImplementedError(
            f'{name}: "{kernel}" not implemented for dtype {array.dtype}: random values need '
            "a floating array; cast it with .astype(np.float32) first"
        )


def _draw_uniform(array: np.ndarray, a: float, b: float, rng: np.random.Generator) -> None:
    if a > b:
        raise RuntimeError(
            f"uniform_ expects to return a [from, to) range, but found from={a} > to={b}"
        )
    array[...] = rng.uniform(a, b, size=array.shape)  # float64, rounded to the dtype


def _draw_normal(array: np.ndarray, mean: float, std: float, rng: np.random.Generator) -> None:
    if std < 0:
        raise RuntimeError(f"normal expects std >= 0.0, but found std {std}")
    array[...] = rng.normal(mean, std, size=array.shape)


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    r"""The recommended gain for a nonlinearity (``torch.nn.init.calculate_gain``).

    1 for ``linear``, the ``conv*``/``conv_transpose*`` names and ``sigmoid``;
    :math:`5/3` for ``tanh``; :math:`\sqrt 2` for ``relu``;
    :math:`\sqrt{2 / (1 + s^2)}` for ``leaky_relu`` with negative slope ``param``
    (default 0.01; an int or float, not a bool, else ``ValueError``); :math:`3/4` for
    ``selu``. Anything else raises ``ValueError``.
    """
    if nonlinearity in _LINEAR_FNS or nonlinearity == "sigmoid":
        return 1  # an int, as torch returns
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif (not isinstance(param, bool) and isinstance(param, int)) or isinstance(param, float):
            negative_slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4  # torch's empirical value (pytorch PR 50664)
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(tensor: T, a: float = 0.0, b: float = 1.0, generator: Any = None) -> T:
    r"""Fill with :math:`\mathcal U(a, b)`; ``a > b`` raises ``RuntimeError``."""
    array = _array(tensor, "uniform_")
    _floating(array, "check_uniform_bounds", "uniform_")
    _draw_uniform(array, a, b, resolve_rng(generator))
    return tensor


def normal_(tensor: T, mean: float = 0.0, std: float = 1.0, generator: Any = None) -> T:
    r"""Fill with :math:`\mathcal N(\text{mean}, \text{std}^2)`; ``std < 0`` raises."""
    array = _array(tensor, "normal_")
    _floating(array, "normal_kernel_cpu", "normal_")
    _draw_normal(array, mean, std, resolve_rng(generator))
    return tensor


def trunc_normal_(
    tensor: T,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator: Any = None,
) -> T:
    r"""Fill with :math:`\mathcal N(\text{mean}, \text{std}^2)` truncated to :math:`[a, b]`.

    Torch's two rejection samplers, by the mass :math:`p` of :math:`[a, b]`: for
    :math:`p > 0.3`, draw normals and redraw those outside :math:`[a, b]` (the bounds
    rounded to the dtype) until none is; else draw :math:`x \sim \mathcal U(a, b)` and
    accept it with probability :math:`\varphi(x) / \varphi(\text{mode})`, redrawing the
    rejected. Warns when the mean is more than 2 std outside :math:`[a, b]`, as torch.
    """
    array = _array(tensor, "trunc_normal_")
    _floating(array, "normal_kernel_cpu", "trunc_normal_")
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn(
            "mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
            "The distribution of values may be incorrect.",
            stacklevel=2,
        )

    def norm_cdf(x: float) -> float:
        return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0

    p = norm_cdf((b - mean) / std) - norm_cdf((a - mean) / std)  # std = 0: ZeroDivisionError
    rng = resolve_rng(generator)
    if p > 0.3:
        array[...] = _redraw_outside(array, mean, std, a, b, rng)
    else:
        array[...] = _accept_uniform(array, mean, std, a, b, rng)
    return tensor


def _redraw_outside(
    array: np.ndarray, mean: float, std: float, a: float, b: float, rng: np.random.Generator
) -> np.ndarray:
    """Normals, the ones outside [a, b] redrawn (a whole fresh draw each round, as torch)."""
    lo, hi = array.dtype.type(a), array.dtype.type(b)  # the bounds the dtype can hold
    result = np.empty_like(array)
    _draw_normal(result, mean, std, rng)
    while True:
        mask = (result < lo) | (result > hi)
        if not mask.any():
            return result
        fresh = np.empty_like(array)
        _draw_normal(fresh, mean, std, rng)
        result = np.where(mask, fresh, result)


def _accept_uniform(
    array: np.ndarray, mean: float, std: float, a: float, b: float, rng: np.random.Generator
) -> np.ndarray:
    r"""Uniform proposals on [a, b] kept with probability phi(x) / phi(mode), in log space."""
    mode = max(a, min(mean, b))
    log_peak = -0.5 * ((mode - mean) / std) ** 2

    def log_ratio(x: np.ndarray) -> np.ndarray:
        return -0.5 * ((x - mean) / std) ** 2 - log_peak  # <= 0

    def rejected(x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):  # log(0) = -inf: accepted, as in torch
            return np.log(rng.random(x.shape).astype(x.dtype)) > log_ratio(x)

    result = np.empty_like(array)
    _draw_uniform(result, a, b, rng)
    pending = rejected(result)
    while pending.any():
        candidates = np.empty_like(array)
        _draw_uniform(candidates, a, b, rng)
        result = np.where(pending, candidates, result)
        pending = np.where(pending, rejected(candidates), pending)
    return result


def constant_(tensor: T, val: float) -> T:
    """Fill with ``val`` (cast to the dtype as NumPy casts: an int array truncates)."""
    _array(tensor, "constant_")[...] = val
    return tensor


def ones_(tensor: T) -> T:
    return constant_(tensor, 1.0)


def zeros_(tensor: T) -> T:
    return constant_(tensor, 0.0)


def eye_(tensor: T) -> T:
    """The identity in a 2-d tensor: ones on the main diagonal, as many as fit."""
    array = _array(tensor, "eye_")
    if array.ndim != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported (got shape {array.shape})")
    array[...] = np.eye(*array.shape)
    return tensor


def dirac_(tensor: T, groups: int = 1) -> T:
    r"""The identity convolution in a ``(C_out, C_in, *k)`` weight with 1 to 3 spatial dims.

    Zeros, then a 1 at the kernel's centre (``k // 2`` along each dim) of output
    channel :math:`g \cdot C_\text{out}/\text{groups} + d`, input channel :math:`d`, for
    every group :math:`g` and :math:`d < \min(C_\text{out}/\text{groups}, C_\text{in})`.
    """
    array = _array(tensor, "dirac_")
    if array.ndim not in (3, 4, 5):
        raise ValueError(
            f"Only tensors with 3, 4, or 5 dimensions are supported (got shape {array.shape})"
        )
    if array.shape[0] % groups != 0:
        raise ValueError(
            f"dim 0 must be divisible by groups (dim 0 = {array.shape[0]}, groups = {groups})"
        )
    out_per_group = array.shape[0] // groups
    d = np.arange(min(out_per_group, array.shape[1]))  # (min_dim,)
    out_channels = (np.arange(groups)[:, None] * out_per_group + d).reshape(-1)  # (G * min_dim,)
    in_channels = np.tile(d, groups)  # (G * min_dim,)
    centre = tuple(k // 2 for k in array.shape[2:])
    array[...] = 0
    array[(out_channels, in_channels) + tuple(centre)] = 1
    return tensor


def _calculate_fan_in_and_fan_out(tensor: Any) -> tuple[int, int]:
    r"""``(fan_in, fan_out) = (C_in \prod k, C_out \prod k)`` of a ``(C_out, C_in, *k)`` tensor."""
    shape = _array(tensor, "_calculate_fan_in_and_fan_out").shape
    if len(shape) < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions "
            f"(got shape {shape})"
        )
    receptive_field_size = math.prod(shape[2:])
    return shape[1] * receptive_field_size, shape[0] * receptive_field_size


def _calculate_correct_fan(tensor: Any, mode: str) -> int:
    mode = mode.lower()
    valid_modes = [m.value for m in FanMode]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if FanMode(mode) is FanMode.FAN_IN else fan_out


def _xavier_std(tensor: Any, gain: float) -> float:
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return gain * math.sqrt(2.0 / float(fan_in + fan_out))


def xavier_uniform_(tensor: T, gain: float = 1.0, generator: Any = None) -> T:
    r"""Glorot: :math:`\mathcal U(-\sqrt 3\sigma, \sqrt 3\sigma)`, :math:`\sigma` xavier's."""
    a = math.sqrt(3.0) * _xavier_std(tensor, gain)
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: T, gain: float = 1.0, generator: Any = None) -> T:
    r"""Glorot normal: :math:`\mathcal N(0, \sigma^2)`, :math:`\sigma` xavier's."""
    return normal_(tensor, 0.0, _xavier_std(tensor, gain), generator)


def _kaiming_std(tensor: Any, a: float, mode: str, nonlinearity: str) -> float | None:
    """Kaiming's sigma, or ``None`` (with torch's warning) for a zero-element tensor."""
    if 0 in _array(tensor, "kaiming").shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    return gain / math.sqrt(fan)


def kaiming_uniform_(
    tensor: T,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> T:
    r"""He uniform: :math:`\mathcal U(-\sqrt 3\sigma, \sqrt 3\sigma)`,
    :math:`\sigma = \text{gain}(\text{nonlinearity}, a) / \sqrt{\text{fan}}`
    (``mode``: ``'fan_in'`` or ``'fan_out'``, any case). A tensor with no element is
    left as it is, with torch's warning."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: T,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator: Any = None,
) -> T:
    r"""He normal: :math:`\mathcal N(0, \sigma^2)`, :math:`\sigma` as :func:`kaiming_uniform_`'s."""
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor if std is None else normal_(tensor, 0, std, generator)


def orthogonal_(tensor: T, gain: float = 1, generator: Any = None) -> T:
    r"""A (semi-)orthogonal matrix times ``gain``, trailing dims flattened.

    :math:`G \sim \mathcal N(0, 1)^{r \times c}` (``r`` = dim 0, ``c`` the rest; taken
    transposed when :math:`r < c`), :math:`G = QR`, and :math:`Q \operatorname{diag}
    (\operatorname{sign} R_{ii})`: the sign fix makes :math:`Q` Haar-distributed
    (Mezzadri 2007). Then :math:`W^\top W = \text{gain}^2 I` (:math:`r \ge c`) or
    :math:`W W^\top = \text{gain}^2 I`. Factored in the tensor's dtype, as torch's.
    """
    array = _array(tensor, "orthogonal_")
    if array.ndim < 2:
        raise ValueError(
            f"Only tensors with 2 or more dimensions are supported (got shape {array.shape})"
        )
    if array.size == 0:
        return tensor
    _floating(array, "normal_kernel_cpu", "orthogonal_")
    rows = array.shape[0]
    cols = array.size // rows
    flattened = resolve_rng(generator).normal(0, 1, size=(rows, cols)).astype(array.dtype)
    if rows < cols:
        flattened = flattened.T  # (rows, cols) -> (cols, rows): QR of the tall one
    q, r = np.linalg.qr(flattened)  # reduced: q (tall, short), r (short, short)
    q = q * np.sign(np.diag(r))  # (short,) scales q's columns
    if rows < cols:
        q = q.T  # (cols, rows) -> (rows, cols)
    array[...] = q.reshape(array.shape)  # (rows, cols) -> the tensor's shape
    array *= gain
    return tensor


def sparse_(tensor: T, sparsity: float, std: float = 0.01, generator: Any = None) -> T:
    r"""A 2-d :math:`\mathcal N(0, \text{std}^2)` matrix with
    :math:`\lceil \text{sparsity}\cdot\text{rows} \rceil` zeros in each column, at rows
    drawn at random (Martens 2010).

    Torch draws the zeroed rows from its global generator even when given one
    (``torch.randperm(rows)``); here both come from ``generator``, so a seed fixes all.
    """
    array = _array(tensor, "sparse_")
    if array.ndim != 2:
        raise ValueError(f"Only tensors with 2 dimensions are supported (got shape {array.shape})")
    _floating(array, "normal_kernel_cpu", "sparse_")
    rng = resolve_rng(generator)
    rows, cols = array.shape
    num_zeros = math.ceil(sparsity * rows)
    _draw_normal(array, 0, std, rng)
    # a random permutation of the rows in each column, as torch's randperm per column
    order = np.argsort(rng.random((rows, cols)), axis=0)  # (rows, cols)
    zero_rows = order[:num_zeros]  # torch's row_indices[:num_zeros], a negative count included
    array[zero_rows, np.arange(cols)] = 0  # (num_zeros, cols) against (cols,)
    return tensor
