"""Fold and Unfold: gradcheck of both backwards, the functionals and modules against torch
(float64 and float32, batched, unbatched and an empty batch, every geometry argument as an
int or a pair), the adjoint identity, and bad input raising where torch raises.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import GRADCHECK, Tolerance, compare_arrays
from harness.twin import assert_twin, upstream_gradient
from reference.gradcheck import gradcheck
from reference.nn.fold import Fold, Unfold
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# the module, not the function ``fold`` that reference.functional's star import exports
FO = importlib.import_module("reference.functional.fold")
TIGHT = Tolerance(rtol=1e-10, atol=1e-10)  # float64: a sum of at most kh*kw terms

Geometry = dict[str, Any]


def _int_or_pair(draw: Any, low: int, high: int, label: str) -> Any:
    first = draw(st.integers(low, high), label=label)
    if draw(st.booleans(), label=f"{label} is a pair"):
        return (first, draw(st.integers(low, high)))
    return first


def _pair(value: Any) -> tuple[int, int]:
    return tuple(value) if isinstance(value, tuple) else (value, value)


@st.composite
def geometries(draw: Any) -> tuple[Geometry, tuple[int, int]]:
    """Kernel, dilation, padding, stride and an image size with at least one block."""
    geometry = {
        "kernel_size": _int_or_pair(draw, 1, 3, "kernel_size"),
        "dilation": _int_or_pair(draw, 1, 2, "dilation"),
        "padding": _int_or_pair(draw, 0, 2, "padding"),
        "stride": _int_or_pair(draw, 1, 3, "stride"),
    }
    k, d, p = (_pair(geometry[n]) for n in ("kernel_size", "dilation", "padding"))
    size = []
    for a in (0, 1):
        smallest = max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a])
        size.append(draw(st.integers(smallest, smallest + 4), label=f"size {a}"))
    return geometry, (size[0], size[1])


@st.composite
def unfold_cases(draw: Any) -> tuple[np.ndarray, Geometry]:
    """An image ``(N, C, H, W)``, ``(C, H, W)`` (unbatched) or ``(0, C, H, W)``."""
    rng = draw_rng(draw)
    geometry, size = draw(geometries())
    lead = draw(st.sampled_from([(), (1,), (2,), (0,)]), label="batch")
    return rng.standard_normal((*lead, draw(st.integers(1, 2)), *size)), geometry


@st.composite
def fold_cases(draw: Any) -> tuple[np.ndarray, Geometry]:
    """Columns ``(N, C*kh*kw, L)`` or ``(C*kh*kw, L)`` for an ``output_size`` that fits."""
    image, geometry = draw(unfold_cases())
    columns = FO.unfold(image, **geometry)  # the right shape; fresh values below
    rng = draw_rng(draw)
    return rng.standard_normal(columns.shape), {**geometry, "output_size": image.shape[-2:]}


@given(case=unfold_cases())
def test_unfold_backward_passes_gradcheck(case: tuple[np.ndarray, Geometry]) -> None:
    x, geometry = case
    result = gradcheck(
        lambda x: FO.unfold(x, **geometry),
        x,
        backward=lambda g, x: FO.unfold_backward(g, x, **geometry),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@given(case=fold_cases())
def test_fold_backward_passes_gradcheck(case: tuple[np.ndarray, Geometry]) -> None:
    x, geometry = case
    result = gradcheck(
        lambda x: FO.fold(x, **geometry),
        x,
        backward=lambda g, x: FO.fold_backward(g, x, **geometry),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@given(case=unfold_cases(), data=st.data())
def test_fold_is_the_adjoint_of_unfold(case: tuple[np.ndarray, Geometry], data: Any) -> None:
    """<unfold(x), c> = <x, fold(c)>: why each is the other's backward."""
    x, geometry = case
    columns = draw_rng(data.draw).standard_normal(FO.unfold(x, **geometry).shape)
    folded = FO.fold(columns, x.shape[-2:], **geometry)
    np.testing.assert_allclose(
        np.sum(FO.unfold(x, **geometry) * columns), np.sum(x * folded), rtol=1e-12, atol=1e-12
    )


def _torch_pair(fn: Callable, x: np.ndarray, g: np.ndarray, **kwargs: Any):
    t = torch.tensor(x, requires_grad=True)
    y = fn(t, **kwargs)
    y.backward(torch.tensor(g))
    return y.detach().numpy(), t.grad.numpy()


@given(case=unfold_cases())
def test_unfold_matches_torch_in_float64(case: tuple[np.ndarray, Geometry]) -> None:
    """A copy: the forward is exact; the backward sums at most kh*kw terms per pixel."""
    x, geometry = case
    ours = FO.unfold(x, **geometry)
    g = upstream_gradient(ours.shape, np.float64)
    theirs, grad = _torch_pair(TF.unfold, x, g, **geometry)
    np.testing.assert_array_equal(ours, theirs)
    comparison = compare_arrays("grad", FO.unfold_backward(g, x, **geometry), grad, TIGHT)
    assert comparison.ok, str(comparison)


@given(case=fold_cases())
def test_fold_matches_torch_in_float64(case: tuple[np.ndarray, Geometry]) -> None:
    x, geometry = case
    ours = FO.fold(x, **geometry)
    g = upstream_gradient(ours.shape, np.float64)
    theirs, grad = _torch_pair(TF.fold, x, g, **geometry)
    assert compare_arrays("output", ours, theirs, TIGHT).ok
    np.testing.assert_array_equal(FO.fold_backward(g, x, **geometry), grad)  # a copy


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(unfolds=unfold_cases(), folds=fold_cases())
def test_functionals_and_modules_match_torch(
    dtype: Any, device: str, unfolds: tuple, folds: tuple
) -> None:
    """float32 too, through the harness's twin (weights none, random upstream gradient)."""
    x, geometry = unfolds
    assert_twin(FO.unfold, TF.unfold, [x], dtype=dtype, device=device, **geometry)
    assert_twin(Unfold(**geometry), torch.nn.Unfold(**geometry), [x], dtype=dtype, device=device)
    cols, fold_geometry = folds
    assert_twin(FO.fold, TF.fold, [cols], dtype=dtype, device=device, **fold_geometry)
    assert_twin(
        Fold(**fold_geometry), torch.nn.Fold(**fold_geometry), [cols], dtype=dtype, device=device
    )


def test_dtype_follows_the_input_and_layout_is_torchs() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # unbatched (C, H, W)
    cols = FO.unfold(x, (2, 3))
    assert cols.dtype == np.float32 and cols.shape == (2 * 2 * 3, 2 * 2)
    # row (c, i, j), column (h, w): x[c, h + i, w + j]
    assert cols[1 * 6 + 1 * 3 + 2, 1 * 2 + 1] == x[1, 1 + 1, 1 + 2]
    assert FO.fold(cols, (3, 4), (2, 3)).dtype == np.float32
    assert FO.fold_backward(np.ones((2, 3, 4), np.float32), cols, (3, 4), (2, 3)).dtype == (
        np.float32
    )


def test_overlapping_blocks_add_up() -> None:
    """fold(unfold(x)) multiplies each pixel by the number of blocks covering it."""
    x = np.ones((1, 1, 3, 3))
    counts = FO.fold(FO.unfold(x, 2), (3, 3), 2)
    np.testing.assert_array_equal(counts[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])


def test_repr_and_empty_state_dict_match_torch() -> None:
    for ours, theirs in [
        (Fold(3, 2), torch.nn.Fold(3, 2)),
        (Fold((4, 5), (2, 3), 1, (1, 0), 2), torch.nn.Fold((4, 5), (2, 3), 1, (1, 0), 2)),
        (Unfold((2, 3), padding=1), torch.nn.Unfold((2, 3), padding=1)),
    ]:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and not theirs.state_dict()


def _both(ours: Callable, theirs: Callable, message: str, error: type = ValueError) -> None:
    with pytest.raises(error, match=message):
        ours()
    with pytest.raises((RuntimeError, ValueError, IndexError, TypeError, NotImplementedError)):
        theirs()


def _ones(*shape: int) -> tuple[np.ndarray, torch.Tensor]:
    return np.ones(shape), torch.ones(shape)


x4, t4 = _ones(1, 1, 3, 3)
c3, tc3 = _ones(1, 4, 4)

# fmt: off
ERRORS = [
    (lambda: FO.unfold(np.ones((3, 3)), 2), lambda: TF.unfold(torch.ones(3, 3), 2),
     r"\(C, H, W\) or \(N, C, H, W\) .* got shape \(3, 3\)"),
    (lambda: FO.unfold(np.ones((1, 1, 1, 3, 3)), 2),
     lambda: TF.unfold(torch.ones(1, 1, 1, 3, 3), 2),
     r"got shape \(1, 1, 1, 3, 3\)"),
    (lambda: FO.unfold(np.ones((1, 0, 3, 3)), 2), lambda: TF.unfold(torch.ones(1, 0, 3, 3), 2),
     "every other dim non-zero"),
    (lambda: FO.unfold(x4, 4), lambda: TF.unfold(t4, 4), r"has \(0, 0\) sliding blocks"),
    (lambda: FO.unfold(x4, (2, 3), padding=(1, 0), dilation=(1, 2)),
     lambda: TF.unfold(t4, (2, 3), padding=(1, 0), dilation=(1, 2)), r"\(4, -1\) sliding blocks"),
    (lambda: FO.unfold(x4, 0), lambda: TF.unfold(t4, 0), "kernel_size must be greater than zero"),
    (lambda: FO.unfold(x4, 2, stride=0), lambda: TF.unfold(t4, 2, stride=0), "stride must be"),
    (lambda: FO.unfold(x4, 2, dilation=0), lambda: TF.unfold(t4, 2, dilation=0), "dilation must"),
    (lambda: FO.unfold(x4, 2, padding=-1), lambda: TF.unfold(t4, 2, padding=-1),
     "padding must be non-negative"),
    (lambda: FO.unfold(x4, (2, 2, 2)), lambda: TF.unfold(t4, (2, 2, 2)), "got .* with 3 entries"),
    (lambda: FO.fold(np.ones((1, 4, 5)), 3, 2), lambda: TF.fold(torch.ones(1, 4, 5), 3, 2),
     r"last dim must be 2 \* 2; got input shape \(1, 4, 5\)"),
    (lambda: FO.fold(np.ones((1, 5, 4)), 3, 2), lambda: TF.fold(torch.ones(1, 5, 4), 3, 2),
     r"must be divisible by the product of kernel_size \(2, 2\)"),
    (lambda: FO.fold(x4, 3, 2), lambda: TF.fold(t4, 3, 2), r"\(C\*kh\*kw, L\) or \(N, C\*kh\*kw"),
    (lambda: FO.fold(np.ones((1, 0, 4)), 3, 2), lambda: TF.fold(torch.ones(1, 0, 4), 3, 2),
     "every other dim non-zero"),
    (lambda: FO.fold(c3, 1, 2), lambda: TF.fold(tc3, 1, 2), r"\(0, 0\) sliding blocks"),
    (lambda: FO.fold(np.ones((1, 4, 1)), 0, 2), lambda: TF.fold(torch.ones(1, 4, 1), 0, 2),
     r"\(-1, -1\) sliding blocks \(each must be at least 1\)"),
    (lambda: FO.fold(c3, 3, 2, padding=-1), lambda: TF.fold(tc3, 3, 2, padding=-1), "padding"),
    (lambda: FO.fold(c3, (3, 3, 3), 2), lambda: TF.fold(tc3, (3, 3, 3), 2), "output_size"),
    (lambda: FO.fold_backward(np.ones((1, 1, 3, 2)), c3, 3, 2),
     lambda: TF.fold(tc3.clone().requires_grad_(), 3, 2).backward(torch.ones(1, 1, 3, 2)),
     r"grad_output must have the forward output's shape \(1, 1, 3, 3\)"),
    (lambda: FO.unfold_backward(np.ones((1, 4, 3)), x4, 2),
     lambda: TF.unfold(t4.clone().requires_grad_(), 2).backward(torch.ones(1, 4, 3)),
     r"grad_output must have the forward output's shape \(1, 4, 4\)"),
    (lambda: Fold(3, 0), lambda: torch.nn.Fold(3, 0)(tc3), "kernel_size must be greater"),
    (lambda: Unfold(2, stride=0), lambda: torch.nn.Unfold(2, stride=0)(t4), "stride must be"),
]
# fmt: on


@pytest.mark.parametrize(("ours", "theirs", "message"), ERRORS, ids=[m for *_, m in ERRORS])
def test_bad_input_raises_where_torch_raises(ours: Callable, theirs: Callable, message: str):
    _both(ours, theirs, message)


def test_integer_input_and_kernel_size_types_raise_like_torch() -> None:
    _both(lambda: FO.unfold(np.ones((1, 1, 3, 3), np.int64), 2),
          lambda: TF.unfold(torch.ones(1, 1, 3, 3, dtype=torch.long), 2),
          "must be a floating array", TypeError)  # fmt: skip
    _both(lambda: FO.fold(np.ones((1, 4, 4), np.int64), 3, 2),
          lambda: TF.fold(torch.ones(1, 4, 4, dtype=torch.long), 3, 2),
          "must be a floating array", TypeError)  # fmt: skip
    _both(lambda: FO.unfold(x4, 2.0), lambda: TF.unfold(t4, 2.0), "an int or a tuple", TypeError)


def test_empty_batch_like_torch() -> None:
    x = np.ones((0, 2, 3, 3))
    assert FO.unfold(x, 2).shape == tuple(TF.unfold(torch.ones(0, 2, 3, 3), 2).shape)
    cols = np.ones((0, 8, 4))
    assert FO.fold(cols, 3, 2).shape == tuple(TF.fold(torch.ones(0, 8, 4), 3, 2).shape)
    assert FO.unfold_backward(np.ones((0, 8, 4)), x, 2).shape == x.shape


def test_backward_before_forward() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        Fold(3, 2).backward(np.ones((1, 1, 3, 3)))
    with pytest.raises(RuntimeError, match="before forward"):
        Unfold(2).backward(np.ones((1, 4, 4)))
