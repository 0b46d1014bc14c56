"""PixelShuffle, PixelUnshuffle, ChannelShuffle: gradcheck, the functionals and modules
against torch (float64 and float32, unbatched and extra leading dims), inverses, bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

from harness.compare import GRADCHECK
from harness.twin import assert_twin
from reference.functional import shuffle as S
from reference.gradcheck import gradcheck
from reference.nn.shuffle import ChannelShuffle, PixelShuffle, PixelUnshuffle
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

Case = tuple[np.ndarray, dict[str, int]]


@st.composite
def pixel_shuffle_cases(draw: Any) -> Case:
    """``(*lead, C r^2, H, W)`` with 0 to 2 leading dims (none: unbatched)."""
    rng = draw_rng(draw)
    r = draw(st.integers(1, 3), label="r")
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=2), label="lead"))
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return rng.standard_normal((*lead, c * r * r, h, w)), {"upscale_factor": r}


@st.composite
def pixel_unshuffle_cases(draw: Any) -> Case:
    rng = draw_rng(draw)
    r = draw(st.integers(1, 3), label="r")
    lead = tuple(draw(st.lists(st.integers(1, 2), max_size=2), label="lead"))
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return rng.standard_normal((*lead, c, h * r, w * r)), {"downscale_factor": r}


@st.composite
def channel_shuffle_cases(draw: Any) -> Case:
    """``(N, C, *)`` with 1 to 3 trailing dims."""
    rng = draw_rng(draw)
    groups, per_group = draw(st.integers(1, 4), label="groups"), draw(st.integers(1, 3))
    spatial = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=3), label="spatial"))
    shape = (draw(st.integers(1, 2)), groups * per_group, *spatial)
    return rng.standard_normal(shape), {"groups": groups}


@dataclass(frozen=True)
class Op:
    name: str
    cases: Callable[[], st.SearchStrategy[Case]]
    module: Callable[..., Any]
    torch_module: Callable[..., Any]

    def __repr__(self) -> str:
        return self.name

    @property
    def forward(self) -> Callable[..., np.ndarray]:
        return getattr(S, self.name)

    @property
    def backward(self) -> Callable[..., np.ndarray]:
        return getattr(S, f"{self.name}_backward")


OPS = [
    Op("pixel_shuffle", pixel_shuffle_cases, PixelShuffle, torch.nn.PixelShuffle),
    Op("pixel_unshuffle", pixel_unshuffle_cases, PixelUnshuffle, torch.nn.PixelUnshuffle),
    Op("channel_shuffle", channel_shuffle_cases, ChannelShuffle, torch.nn.ChannelShuffle),
]


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_backward_passes_gradcheck(op: Op, data: st.DataObject) -> None:
    x, kwargs = data.draw(op.cases(), label="case")
    result = gradcheck(
        lambda x: op.forward(x, **kwargs),
        x,
        backward=lambda g, x: op.backward(g, x, **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_functional_and_module_match_torch(
    op: Op, dtype: Any, device: str, data: st.DataObject
) -> None:
    x, kwargs = data.draw(op.cases(), label="case")
    assert_twin(op.forward, getattr(TF, op.name), [x], dtype=dtype, device=device, **kwargs)
    (factor,) = kwargs.values()
    assert_twin(op.module(factor), op.torch_module(factor), [x], dtype=dtype, device=device)


@given(case=pixel_shuffle_cases())
def test_pixel_unshuffle_undoes_pixel_shuffle_and_backward_is_exact(case: Case) -> None:
    x, kwargs = case
    r = kwargs["upscale_factor"]
    y = S.pixel_shuffle(x, r)
    np.testing.assert_array_equal(S.pixel_unshuffle(y, r), x)
    np.testing.assert_array_equal(S.pixel_shuffle_backward(y, x, r), x)  # a permutation


def test_channel_shuffle_interleaves_the_groups_like_torch() -> None:
    x = np.arange(6.0).reshape(1, 6, 1)
    np.testing.assert_array_equal(S.channel_shuffle(x, 2)[0, :, 0], [0, 3, 1, 4, 2, 5])
    np.testing.assert_array_equal(
        TF.channel_shuffle(torch.tensor(x), 2)[0, :, 0], [0, 3, 1, 4, 2, 5]
    )
    np.testing.assert_array_equal(S.channel_shuffle_backward(S.channel_shuffle(x, 2), x, 2), x)


def test_pixel_shuffle_layout_and_integer_input_like_torch() -> None:
    x = np.arange(2 * 8 * 2 * 3).reshape(2, 8, 2, 3)  # int64: torch shuffles any dtype
    ours = PixelShuffle(2)(x)
    np.testing.assert_array_equal(ours, torch.nn.PixelShuffle(2)(torch.tensor(x)).numpy())
    assert ours.dtype == np.int64 and ours.shape == (2, 2, 4, 6)
    assert ours[0, 0, 1, 0] == x[0, 2, 0, 0]  # y[c, h r + i, w r + j] = x[c r^2 + i r + j, h, w]


def test_repr_and_empty_state_dict_match_torch() -> None:
    for ours, theirs in [
        (PixelShuffle(3), torch.nn.PixelShuffle(3)),
        (PixelUnshuffle(2), torch.nn.PixelUnshuffle(2)),
        (ChannelShuffle(4), torch.nn.ChannelShuffle(4)),
    ]:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and not theirs.state_dict()


ERRORS = [
    (lambda: S.pixel_shuffle(np.ones((4, 2)), 2), r"at least 3 dimensions, got \(4, 2\)"),
    (
        lambda: PixelShuffle(2)(np.ones((1, 6, 2, 2))),
        r"\(1, 6, 2, 2\) must be divisible by upscale_factor\*\*2 = 4",
    ),
    (lambda: PixelShuffle(0), "upscale_factor must be a positive integer"),
    (lambda: S.pixel_shuffle(np.ones((4, 2, 2)), -2), "upscale_factor must be a positive"),
    (
        lambda: PixelUnshuffle(2)(np.ones((1, 4, 3, 2))),
        r"divisible by downscale_factor = 2, got 3 x 2",
    ),
    (lambda: S.pixel_unshuffle(np.ones((4, 2)), 2), "at least 3 dimensions"),
    (lambda: ChannelShuffle(3)(np.ones((2, 6))), r"more than 2 dimensions, got \(2, 6\)"),
    (lambda: ChannelShuffle(3)(np.ones((2, 5, 2))), r"channels \(5, .*divisible by groups \(3\)"),
    (lambda: ChannelShuffle(0), "groups must be a positive integer"),
    (
        lambda: S.pixel_shuffle_backward(np.ones((1, 1, 2, 2)), np.ones((1, 4, 2, 2)), 2),
        r"grad_output must have the output's shape \(1, 1, 4, 4\)",
    ),
]


@pytest.mark.parametrize(("call", "message"), ERRORS, ids=[m for _, m in ERRORS])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_torch_raises_for_the_same_inputs() -> None:
    with pytest.raises(RuntimeError, match="at least 3 dimensions"):
        TF.pixel_shuffle(torch.ones(4, 2), 2)
    with pytest.raises(RuntimeError, match="divisible by the square of upscale_factor"):
        TF.pixel_shuffle(torch.ones(1, 6, 2, 2), 2)
    with pytest.raises(RuntimeError, match="divisible by downscale_factor"):
        TF.pixel_unshuffle(torch.ones(1, 4, 3, 2), 2)
    with pytest.raises(RuntimeError, match="expects input with > 2 dims"):
        TF.channel_shuffle(torch.ones(2, 6), 3)
    with pytest.raises(RuntimeError, match="must be divisible by groups"):
        TF.channel_shuffle(torch.ones(2, 5, 2), 3)


def test_backward_before_forward() -> None:
    with pytest.raises(RuntimeError, match="before forward"):
        ChannelShuffle(2).backward(np.ones((1, 2, 2)))
