"""Early, readable errors at the API boundary.

Each check names the layer, what it received and what it expected, so a user
never has to decode a NumPy broadcast error from deep inside a backward.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def as_float_array(x: Any, layer: str, name: str = "input") -> np.ndarray:
    """``x`` as a floating ndarray; integers and bools are refused, as torch refuses them."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise TypeError(
            f"{layer}: {name} must be a floating array (float32 or float64), got dtype "
            f"{array.dtype} with shape {array.shape}; cast it with .astype(np.float32)"
        )
    return array


def as_target_array(target: Any, input: np.ndarray, layer: str, name: str = "target") -> np.ndarray:
    """A loss's target as a floating ndarray: an integer target is promoted to the input's
    dtype, as torch's type promotion does for the losses whose formula is arithmetic in the
    target (``MSELoss(x, y)`` with ``y`` int64). A bool target is refused: torch takes one
    in some losses and raises in others (those that subtract it), kernel by kernel. The
    losses that refuse integers in torch (BCE, KL divergence) use :func:`as_float_array`."""
    array = np.asarray(target)
    if array.dtype.kind in "iu":
        return array.astype(input.dtype)
    return as_float_array(array, layer, name)


def check_ndim(x: np.ndarray, allowed: Sequence[int], layer: str, layout: str = "") -> None:
    """Raise if ``x.ndim`` is not one of ``allowed`` (e.g. Conv2d takes 3-D or 4-D input)."""
    if x.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        hint = f" ({layout})" if layout else ""
        raise ValueError(f"{layer}: expected {dims} input{hint}, got shape {x.shape}")


def check_size(x: np.ndarray, dim: int, expected: int, layer: str, what: str) -> None:
    """Raise if ``x.shape[dim] != expected``, naming what that size means."""
    if x.ndim == 0 or x.shape[dim] != expected:
        got = x.shape[dim] if x.ndim else "a scalar"
        raise ValueError(
            f"{layer}: expected input with {what} = {expected} in dim {dim}, got {got} "
            f"(input shape {x.shape})"
        )


def check_same_shape(
    a: np.ndarray, b: np.ndarray, layer: str, names: str = "input, target"
) -> None:
    if a.shape != b.shape:
        first, second = (n.strip() for n in names.split(","))
        raise ValueError(
            f"{layer}: {first} and {second} must have the same shape, got {first} {a.shape} "
            f"and {second} {b.shape}"
        )


def normalize_dim(dim: int, ndim: int, layer: str) -> int:
    """A possibly negative ``dim`` as an index into ``range(ndim)``; scalars count as 1-D."""
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise ValueError(
            f"{layer}: dim {dim} is out of range for an input with {ndim} dimension(s) "
            f"(expected a value in [{-size}, {size - 1}])"
        )
    return dim % size


def check_positive_int(value: Any, layer: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def check_reduction(
    reduction: str, layer: str, allowed: tuple[str, ...] = ("none", "mean", "sum")
) -> str:
    if reduction not in allowed:
        raise ValueError(f"{layer}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


# torch spells a dtype two ways in its errors: the ScalarType name ("Double", in
# "expected scalar type Double but found Float") and the C++ type ("double", in
# "Input type (double) and bias type (float)"); a legacy path names the tensor type
_TORCH_NAMES = {
    "float64": ("Double", "double", "DoubleTensor"),
    "float32": ("Float", "float", "FloatTensor"),
    "float16": ("Half", "c10::Half", "HalfTensor"),
}

# torch's message for each path a dtype mismatch takes (CPU, torch 2.x); {X}/{x}/{T} name
# the input's dtype, {P}/{p}/{PT} the parameter's
TORCH_DTYPE_ERRORS = {
    "mat1": "mat1 and mat2 must have the same dtype, but got {X} and {P}",  # addmm (bias)
    "m1": "expected m1 and m2 to have the same dtype, but got: {x} != {p}",  # mm (no bias)
    "bias type": "Input type ({x}) and bias type ({p}) should be the same",  # conv + bias
    "scalar type": "expected scalar type {X} but found {P}",  # conv, nll_loss
    "tensor type": (
        "Input type (torch.{T}) and weight type (torch.{PT}) should be the same or input "
        "should be a MKLDNN tensor and weight is a dense tensor"
    ),  # half input to a convolution without the bias path
    "not float": "mixed dtype (CPU): expect parameter to have scalar type of Float",
    "not shared": "mixed dtype (CPU): all inputs must share same datatype.",
}


def _torch_names(dtype: np.dtype) -> tuple[str, str, str]:
    """torch's three spellings of ``dtype`` (NumPy's name where torch has no such dtype)."""
    return _TORCH_NAMES.get(dtype.name, (dtype.name, dtype.name, dtype.name))


def check_dtypes(
    input: np.ndarray,
    tensors: Mapping[str, np.ndarray | None],
    layer: str,
    torch_error: str,
) -> None:
    """Raise torch's ``RuntimeError`` if ``input`` and the module's ``tensors`` differ in dtype.

    torch never promotes between an input and a module's parameters or buffers:
    ``Linear(3, 2)(x.double())`` fails where NumPy would quietly compute in float64.

    Parameters
    ----------
    input
        The floating input of the forward.
    tensors
        The module's parameters and buffers the kernel reads, by name (``None`` ones are
        skipped); the first is the one torch's message names (the bias for a convolution
        with one, else the weight).
    layer
        The module, as its error should name it (``repr(self)``).
    torch_error
        A key of :data:`TORCH_DTYPE_ERRORS`: the path torch's kernel takes. ``"mixed"``
        is the normalizations' rule: a float16 input to float32 parameters is allowed
        (computed in float32, torch's CPU mixed-type kernels); otherwise a parameter
        that is not float32 gives ``"not float"``, an input that is not float16
        ``"not shared"``.
    """
    present = {name: t.dtype for name, t in tensors.items() if t is not None}
    if all(dtype == input.dtype for dtype in present.values()):
        return
    reported = next(iter(present.values()))
    if torch_error == "mixed":
        if any(dtype != np.float32 for dtype in present.values()):
            torch_error = "not float"
        elif input.dtype == np.float16:
            return
        else:
            torch_error = "not shared"
    names = dict(zip(("X", "x", "T"), _torch_names(input.dtype)))
    names.update(zip(("P", "p", "PT"), _torch_names(reported)))
    message = TORCH_DTYPE_ERRORS[torch_error].format(**names)
    held = ", ".join(f"{name} {dtype}" for name, dtype in present.items())
    raise RuntimeError(
        f"{message}\n{layer} got an input of dtype {input.dtype} and shape {input.shape}, but "
        f"holds {held}; torch does not promote between a module and its input: "
        f".to(np.{input.dtype}) the module, or cast the input with .astype(np.{reported})"
    )
