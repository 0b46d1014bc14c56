"""Dropout: gradcheck with a fixed mask, torch's masks reproduced by re-seeding
(``harness/dropout_masks.py``), the reference against torch's real dropout kernel with
that mask imposed, the statistics of the reference's own masks, and bad input.

One table (``KINDS``) drives it: the reference functional and module, the torch
module, and the input shapes each kind takes.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import GRADCHECK
from harness.dropout_masks import Reseeded, dropout_kind, seed_torch, torch_dropout_mask
from harness.twin import assert_twin
from reference.gradcheck import gradcheck

DTYPES = [np.float64, np.float32]
P_VALUES = [0.0, 0.2, 0.5, 0.9, 1.0]


@dataclass(frozen=True)
class Kind:
    name: str  # the functional's name
    module: str  # the class name in reference.nn and torch.nn
    shapes: list[tuple[int, ...]]  # shapes that run without a warning
    mask_shapes: list[tuple[int, ...]]  # the keep-mask shape for each

    @property
    def forward(self) -> Callable[..., np.ndarray]:
        return getattr(F, self.name)

    def __repr__(self) -> str:
        return self.name


KINDS = [
    Kind("dropout", "Dropout", [(), (5,), (3, 4), (2, 3, 4)], [(), (5,), (3, 4), (2, 3, 4)]),
    Kind("dropout1d", "Dropout1d", [(3, 4), (2, 3, 4)], [(3, 1), (2, 3, 1)]),
    Kind("dropout2d", "Dropout2d", [(2, 3, 2, 3)], [(2, 3, 1, 1)]),
    Kind("dropout3d", "Dropout3d", [(3, 2, 2, 2), (2, 2, 2, 1, 3)],
         [(3, 1, 1, 1), (2, 2, 1, 1, 1)]),
]  # fmt: skip
SHAPE_CASES = [
    pytest.param(kind, shape, mask_shape, id=f"{kind.name}-{shape}")
    for kind in KINDS
    for shape, mask_shape in zip(kind.shapes, kind.mask_shapes)
]


def _input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Standard normal values, none of them 0 (so output != 0 reads the mask)."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return np.where(x == 0, 1.0, x)


# -- the functional pair -----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "shape", "mask_shape"), SHAPE_CASES)
@given(p=st.sampled_from(P_VALUES), seed=st.integers(0, 2**32 - 1))
def test_backward_passes_gradcheck_with_a_fixed_mask(
    kind: Kind, shape: tuple, mask_shape: tuple, p: float, seed: int
) -> None:
    mask = F.dropout_mask(mask_shape, p, np.random.default_rng(seed))
    result = gradcheck(
        lambda x: kind.forward(x, p, mask=mask),
        _input(shape, seed),
        backward=lambda g, x: F.dropout_backward(g, mask, p),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize(("kind", "shape", "mask_shape"), SHAPE_CASES)
def test_forward_zeroes_dropped_units_and_scales_kept_ones(
    kind: Kind, shape: tuple, mask_shape: tuple
) -> None:
    x, p = _input(shape), 0.25
    mask = F.dropout_mask(mask_shape, p, 1)
    assert F.dropout_mask_shape(shape, kind.name) == mask_shape
    y = kind.forward(x, p, mask=mask)
    np.testing.assert_allclose(y, np.where(mask, x / 0.75, 0.0), rtol=1e-15)
    # the same mask from the same seed: rng= draws what dropout_mask draws
    np.testing.assert_array_equal(kind.forward(x, p, rng=1), y)


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_p_one_gives_zeros_p_zero_and_eval_the_identity(kind: Kind) -> None:
    x = _input(kind.shapes[-1])
    ones_mask = np.ones(F.dropout_mask_shape(x.shape, kind.name), dtype=bool)
    np.testing.assert_array_equal(kind.forward(x, 1.0, rng=0), np.zeros_like(x))
    np.testing.assert_array_equal(kind.forward(x, 1.0, mask=ones_mask), np.zeros_like(x))
    np.testing.assert_array_equal(F.dropout_backward(np.ones_like(x), ones_mask, 1.0), 0 * x)
    np.testing.assert_array_equal(kind.forward(x, 0.0, rng=0), x)
    np.testing.assert_array_equal(kind.forward(x, 0.7, training=False), x)
    module = getattr(rnn, kind.module)(0.7).eval()
    np.testing.assert_array_equal(module(x), x)
    np.testing.assert_array_equal(module.backward(np.ones_like(x)), np.ones_like(x))
    assert module.last_mask is None


# -- torch's masks, reproduced by re-seeding ----------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("kind", "shape", "mask_shape"), SHAPE_CASES)
@pytest.mark.parametrize("p", [0.3, 0.6])
def test_reseeding_reproduces_torchs_mask(
    kind: Kind, shape: tuple, mask_shape: tuple, p: float, dtype: Any, device: str
) -> None:
    """The mask read from a forward on ones is the one the real forward draws after
    re-seeding: torch's dropout runs unchanged, on the real input."""
    module = getattr(torch.nn, kind.module)(p)
    masks = [torch_dropout_mask(module, shape, dtype, device, seed) for seed in (11, 12)]
    assert masks[0].shape == mask_shape and masks[0].dtype == np.bool_
    if math.prod(mask_shape) >= 8:  # another seed draws another mask
        assert not np.array_equal(masks[0], masks[1])
    x = torch.tensor(_input(shape).astype(dtype), device=device, requires_grad=True)
    seed_torch(11)
    output = module(x)
    np.testing.assert_array_equal((output != 0).cpu().numpy(), np.broadcast_to(masks[0], shape))
    # the functional form reads the same mask
    functional = functools.partial(getattr(torch.nn.functional, kind.name), p=p)
    np.testing.assert_array_equal(
        torch_dropout_mask(functional, shape, dtype, device, 11), masks[0]
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("kind", "shape", "mask_shape"), SHAPE_CASES)
@given(p=st.sampled_from(P_VALUES), seed=st.integers(0, 2**31 - 1))
def test_module_with_torchs_mask_matches_torch(
    kind: Kind, shape: tuple, mask_shape: tuple, dtype: Any, device: str, p: float, seed: int
) -> None:
    """Forward and backward against torch's real dropout, the reference given torch's mask."""
    twin = getattr(torch.nn, kind.module)(p)
    mask = torch_dropout_mask(twin, shape, dtype, device, seed)
    module = getattr(rnn, kind.module)(p, rng=0)
    module.mask = mask
    assert_twin(module, Reseeded(twin, seed), [_input(shape, seed)], dtype=dtype, device=device)
    assert module.mask is None  # used once, then cleared
    np.testing.assert_array_equal(module.last_mask, mask)


def test_the_mask_helper_knows_the_kinds_and_refuses_others() -> None:
    assert dropout_kind(torch.nn.Dropout2d()) == "dropout2d"
    assert dropout_kind(torch.nn.functional.dropout1d) == "dropout1d"
    with pytest.raises(TypeError, match="cannot tell the dropout kind"):
        torch_dropout_mask(torch.nn.AlphaDropout(0.5), (2, 3), np.float64, "cpu", 0)
    module = torch.nn.Dropout(0.5).eval()
    torch_dropout_mask(module, (2, 3), np.float32, "cpu", 0)
    assert not module.training  # its mode is restored


# -- the reference's own masks ---------------------------------------------------------------


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_keep_rate_is_within_a_binomial_bound(kind: Kind, p: float) -> None:
    """With a fixed seed, the fraction kept is 1 - p within 5 standard deviations
    (a false alarm has probability < 1e-6), and a channel is kept or dropped whole."""
    shape = {
        "dropout": (50, 80),
        "dropout1d": (40, 100, 3),
        "dropout2d": (40, 100, 2, 2),
        "dropout3d": (40, 100, 1, 2, 2),
    }[kind.name]
    module = getattr(rnn, kind.module)(p, rng=2024)
    y = module(np.ones(shape))
    mask = module.last_mask
    n = mask.size
    assert n == 4000
    assert abs(mask.mean() - (1 - p)) <= 5 * math.sqrt(p * (1 - p) / n)
    np.testing.assert_array_equal(y != 0, np.broadcast_to(mask, shape))  # whole channels
    np.testing.assert_allclose(y[y != 0], 1 / (1 - p))
    # each forward draws a new mask
    module(np.ones(shape))
    assert not np.array_equal(module.last_mask, mask)


def test_a_seed_makes_the_module_reproducible() -> None:
    a, b = rnn.Dropout(0.5, rng=7), rnn.Dropout(0.5, rng=7)
    x = np.ones((4, 5))
    np.testing.assert_array_equal(a(x), b(x))
    np.testing.assert_array_equal(a.backward(x), b.backward(x))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dtype_follows_the_input(dtype: Any) -> None:
    x = np.ones((2, 3, 4), dtype=dtype)
    for name in ["Dropout", "Dropout1d"]:
        module = getattr(rnn, name)(0.3, rng=0)
        assert module(x).dtype == dtype and module.backward(x).dtype == dtype


def test_repr_matches_torch() -> None:
    for name in ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]:
        assert repr(getattr(rnn, name)(0.3)) == repr(getattr(torch.nn, name)(0.3))
        assert repr(getattr(rnn, name)()) == repr(getattr(torch.nn, name)())
        assert getattr(rnn, name)().state_dict() == {}


# -- torch's rank rules and warnings -----------------------------------------------------


def test_dropout2d_on_3d_input_is_channelwise_1d_with_torchs_warning() -> None:
    x = _input((2, 3, 4))
    with pytest.warns(UserWarning, match=r"3D input.* interpreted as \(N, C, L\)"):
        module = rnn.Dropout2d(0.5, rng=0)
        module(x)
    assert module.last_mask.shape == (2, 3, 1)
    twin = torch.nn.Dropout2d(0.5)
    # torch's warning ("Received a 3D input to dropout2d ...") and ours, both
    with pytest.warns(UserWarning, match=r"dropout2d: [Rr]eceived a 3D input") as record:
        mask = torch_dropout_mask(twin, (2, 3, 4), np.float64, "cpu", 5)
        assert mask.shape == (2, 3, 1)
        module.mask = mask
        assert_twin(module, Reseeded(twin, 5), [x])
    assert {str(w.message)[:25] for w in record} == {
        "dropout2d: Received a 3D ",
        "dropout2d: received a 3D ",
    }


@pytest.mark.parametrize(
    ("name", "shape", "mask_shape"),
    [
        ("Dropout2d", (4, 3), (4, 3)),
        ("Dropout2d", (2, 3, 1, 2, 2), (2, 3, 1, 1, 1)),
        ("Dropout3d", (3, 4), (3, 1)),
        ("Dropout3d", (2, 3, 4), (2, 1, 1)),
    ],
)
def test_deprecated_ranks_warn_and_follow_torch(name: str, shape: tuple, mask_shape: tuple) -> None:
    module, twin = getattr(rnn, name)(0.5), getattr(torch.nn, name)(0.5)
    with pytest.warns(UserWarning, match=f"{name.lower()}: .*-D input"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own wording differs from ours
            mask = torch_dropout_mask(twin, shape, np.float64, "cpu", 3)
        assert mask.shape == mask_shape
        module.mask = mask
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*dropout", module="torch")
            assert_twin(module, Reseeded(twin, 3), [_input(shape)])


# -- bad input -------------------------------------------------------------------------------

ERRORS = [
    (lambda: rnn.Dropout(-0.1), ValueError, r"between 0 and 1, but got -0.1"),
    (lambda: rnn.Dropout2d(1.5), ValueError, r"between 0 and 1, but got 1.5"),
    (lambda: F.dropout(np.ones(3), 2.0), ValueError, "between 0 and 1"),
    (lambda: F.dropout_backward(np.ones(3), np.ones(3, bool), -1), ValueError, "between 0 and 1"),
    (
        lambda: rnn.Dropout1d()(np.ones((2, 3, 4, 5))),
        ValueError,
        r"dropout1d: expected 2-D \(C, L\) or 3-D \(N, C, L\) input, got shape \(2, 3, 4, 5\)",
    ),
    (lambda: rnn.Dropout1d()(np.ones(3)), ValueError, "dropout1d: expected 2-D"),
    (lambda: rnn.Dropout2d()(np.ones(3)), ValueError, "dropout2d: expected at least 2 dim"),
    (lambda: F.dropout(np.ones((2, 3)), mask=np.ones((2, 3))), TypeError, "must be a bool array"),
    (
        lambda: F.dropout2d(np.ones((2, 3, 4, 4)), mask=np.ones((2, 3, 4, 4), bool)),
        ValueError,
        r"does not broadcast to the keep-mask shape \(2, 3, 1, 1\)",
    ),
    (
        lambda: F.dropout(np.ones((2, 3)), mask=np.ones((3, 2), bool)),
        ValueError,
        "does not broadcast",
    ),
    (lambda: rnn.Dropout()(np.ones(3, dtype=np.int64)), TypeError, "floating"),
]


@pytest.mark.parametrize(("call", "error", "message"), ERRORS, ids=[m for *_, m in ERRORS])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_torch_refuses_the_same() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        torch.nn.Dropout(-0.1)
    with pytest.raises(RuntimeError, match="Expected 2D or 3D input"):
        torch.nn.Dropout1d()(torch.ones(2, 3, 4, 5))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch first warns that 1-D input is deprecated
        torch.nn.Dropout2d()(torch.ones(3))


def test_an_imposed_mask_of_the_wrong_shape_is_refused_and_kept() -> None:
    module = rnn.Dropout2d(0.5)
    module.mask = np.ones((2, 3, 4, 4), dtype=bool)
    with pytest.raises(ValueError, match="does not broadcast"):
        module(np.ones((2, 3, 4, 4)))
    assert module.mask is not None  # not consumed by a failed forward


def test_backward_before_forward_and_wrong_gradient_shape() -> None:
    module = rnn.Dropout(0.5)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((2, 3)))
    module(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(2, 3\)"):
        module.backward(np.ones((3, 2)))
