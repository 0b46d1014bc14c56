"""FractionalMaxPool2d/3d: gradcheck with the samples fixed, the functionals against torch's
kernels with the same ``_random_samples`` (indices bit for bit, float64 and float32,
unbatched included), the modules against torch's own draws read by
``harness.dropout_masks.torch_fractional_samples`` and imposed, torch's float32 rounding of
the window starts, ties and NaN, torch's size rules, and bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as F
import reference.nn as rnn
from harness.compare import GRADCHECK
from harness.dropout_masks import Reseeded, torch_fractional_samples
from harness.twin import assert_twin, upstream_gradient
from reference.functional.fractional_pooling import fractional_intervals
from reference.gradcheck import gradcheck
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

DTYPE_IDS = lambda d: np.dtype(d).name  # noqa: E731


@st.composite
def cases(draw: Any, nd: int) -> dict:
    """A legal call: input ``(N, C, *size)`` or unbatched, kernel, output size, samples."""
    rng = draw_rng(draw)
    size = draw(st.lists(st.integers(2, 7 if nd == 2 else 5), min_size=nd, max_size=nd))
    kernel = tuple(draw(st.integers(1, n - 1 if nd == 3 else n)) for n in size)
    # torch: out + k - 1 <= n in 2-d, < n in 3-d
    out = tuple(draw(st.integers(1, n - k + (1 if nd == 2 else 0))) for n, k in zip(size, kernel))
    batched = draw(st.booleans(), label="batched")
    lead = (draw(st.integers(1, 2)),) if batched else ()
    shape = (*lead, draw(st.integers(1, 3)), *size)
    # distinct values far apart (>> gradcheck's eps), so every window has one clear maximum
    x = rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1 + rng.uniform(-1, 1)
    samples = rng.random((lead[0] if batched else 1, shape[-nd - 1], nd))
    return {"x": x, "kernel": kernel, "out": out, "samples": samples, "nd": nd}


def _pair(nd: int) -> tuple[Callable, Callable]:
    return getattr(F, f"fractional_max_pool{nd}d"), getattr(F, f"fractional_max_pool{nd}d_backward")


@pytest.mark.parametrize("nd", [2, 3])
@given(data=st.data())
def test_backward_passes_gradcheck_with_fixed_samples(nd: int, data: st.DataObject) -> None:
    c = data.draw(cases(nd), label="case")
    forward, backward = _pair(nd)
    kwargs = {"output_size": c["out"], "_random_samples": c["samples"]}
    result = gradcheck(
        lambda x: forward(x, c["kernel"], **kwargs),
        c["x"],
        backward=lambda g, x: backward(g, x, c["kernel"], **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("nd", [2, 3])
@given(data=st.data(), ties=st.booleans())
def test_functional_with_the_same_samples_matches_torch(
    nd: int, dtype: Any, device: str, data: st.DataObject, ties: bool
) -> None:
    """Output and indices identical to torch's (the windows bit for bit), the gradient
    close (overlapping windows sum in another order)."""
    c = data.draw(cases(nd), label="case")
    x = np.round(c["x"] * 3) / 7 if ties else c["x"]  # ties: many equal values
    x, samples = x.astype(dtype), c["samples"].astype(dtype)
    forward, backward = _pair(nd)
    y, indices = forward(x, c["kernel"], c["out"], None, True, samples)
    tx = torch.tensor(x, device=device, requires_grad=True)
    ty, tindices = getattr(TF, f"fractional_max_pool{nd}d")(
        tx, c["kernel"], c["out"], return_indices=True,
        _random_samples=torch.tensor(samples, device=device),
    )  # fmt: skip
    np.testing.assert_array_equal(indices, tindices.cpu().numpy())
    np.testing.assert_array_equal(y, ty.detach().cpu().numpy())
    assert y.dtype == dtype and indices.dtype == np.int64
    g = upstream_gradient(y.shape, dtype)
    ty.backward(torch.tensor(g, device=device))
    grad = backward(g, x, c["kernel"], c["out"], indices=indices)
    np.testing.assert_allclose(grad, tx.grad.cpu().numpy(), rtol=1e-5 if dtype == np.float32
                               else 1e-12, atol=0)  # fmt: skip
    # without indices, the backward recomputes them from the samples
    np.testing.assert_array_equal(backward(g, x, c["kernel"], c["out"], None, False, samples), grad)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("nd", [2, 3])
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_module_with_torchs_own_draw_matches_torch(
    nd: int, dtype: Any, device: str, data: st.DataObject, seed: int
) -> None:
    """torch's module draws its samples itself (no ``_random_samples``); the samples read by
    re-seeding are imposed on the reference, and the re-seeded torch module pools over the
    same windows: forward and backward against torch."""
    c = data.draw(cases(nd), label="case")
    shape = c["x"].shape
    twin = getattr(torch.nn, f"FractionalMaxPool{nd}d")(c["kernel"], output_size=c["out"])
    samples = torch_fractional_samples(shape, dtype, device, seed, nd)
    assert samples.shape == (shape[0] if len(shape) == nd + 2 else 1, shape[-nd - 1], nd)
    assert samples.dtype == dtype and ((samples >= 0) & (samples < 1)).all()
    module = getattr(rnn, f"FractionalMaxPool{nd}d")(c["kernel"], output_size=c["out"], rng=0)
    module.random_samples = samples
    assert_twin(module, Reseeded(twin, seed), [c["x"]], dtype=dtype, device=device)
    assert module.random_samples is None  # used once, then cleared
    np.testing.assert_array_equal(module.last_random_samples, samples)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("nd", [2, 3])
def test_reseeding_reproduces_the_windows_of_torchs_own_draw(nd: int, dtype: Any) -> None:
    """The check behind the extractor: after re-seeding, torch's functional without samples
    picks exactly the indices it picks with the extracted samples passed explicitly."""
    shape = (2, 3, 9, 8, 7)[: nd + 2]
    x = torch.randn(shape, dtype=getattr(torch, np.dtype(dtype).name))
    pool = getattr(TF, f"fractional_max_pool{nd}d")
    for seed in (1, 2):
        samples = torch_fractional_samples(shape, dtype, "cpu", seed, nd)
        torch.manual_seed(seed)
        _, drawn = pool(x, 2, output_size=4, return_indices=True)
        _, given_ = pool(x, 2, output_size=4, return_indices=True,
                         _random_samples=torch.tensor(samples))  # fmt: skip
        np.testing.assert_array_equal(drawn.numpy(), given_.numpy())
    unbatched = torch_fractional_samples(shape[1:], dtype, "cpu", 1, nd)
    assert unbatched.shape == (1, 3, nd)


# (n, k, out, u) where the window starts computed in float32 and in float64 differ; found by
# searching fractional_intervals, checked against torch below in each dtype
ROUNDING_CASES = [(31, 1, 14, 0.5), (30, 6, 20, 0.875), (38, 10, 24, 0.5)]


@pytest.mark.parametrize(("n", "k", "out", "u"), ROUNDING_CASES)
def test_window_starts_round_in_the_input_dtype_as_torch(
    n: int, k: int, out: int, u: float
) -> None:
    """``-arange`` makes each window's maximum its first element, so torch's indices are its
    window starts: torch's float32 starts are ours in float32, its float64 ones ours in
    float64, and the two differ (a float64-only computation would fail one dtype)."""
    starts = {}
    for dtype in DTYPES:
        ours = fractional_intervals(np.array(u, dtype=dtype), n, out, k)
        x = -torch.arange(n * n, dtype=getattr(torch, np.dtype(dtype).name)).reshape(1, 1, n, n)
        samples = torch.full((1, 1, 2), u, dtype=x.dtype)
        _, indices = TF.fractional_max_pool2d(x, k, out, return_indices=True,
                                              _random_samples=samples)  # fmt: skip
        np.testing.assert_array_equal(indices[0, 0, :, 0].numpy() // n, ours)
        y, our_indices = F.fractional_max_pool2d(x.numpy(), k, out, None, True, samples.numpy())
        np.testing.assert_array_equal(our_indices, indices.numpy())
        starts[dtype] = ours
    assert not np.array_equal(starts[np.float32], starts[np.float64])


def test_the_sample_components_are_w_h_in_2d_and_t_h_w_in_3d() -> None:
    """One sample per axis, in torch's order: moving only the first component moves the
    width windows in 2-d and the time windows in 3-d."""
    x2 = -np.arange(100.0).reshape(1, 1, 10, 10)
    a = F.fractional_max_pool2d(x2, 2, 4, None, True, np.array([[[0.9, 0.0]]]))[1]
    b = F.fractional_max_pool2d(x2, 2, 4, None, True, np.array([[[0.0, 0.0]]]))[1]
    assert (a // 10 == b // 10).all() and not (a % 10 == b % 10).all()
    x3 = -np.arange(1000.0).reshape(1, 1, 10, 10, 10)
    a = F.fractional_max_pool3d(x3, 2, 4, None, True, np.array([[[0.9, 0.0, 0.0]]]))[1]
    b = F.fractional_max_pool3d(x3, 2, 4, None, True, np.array([[[0.0, 0.0, 0.0]]]))[1]
    assert (a % 100 == b % 100).all() and not (a // 100 == b // 100).all()


@pytest.mark.parametrize("nd", [2, 3])
def test_ties_nan_and_minus_inf_follow_torchs_scan(nd: int) -> None:
    """Equal values: the first in scan order; NaN wins (the last NaN); all -inf: the first."""
    rng = np.random.default_rng(5)
    shape = (2, 2) + (6,) * nd
    x = rng.integers(0, 2, shape).astype(np.float64)  # many ties
    x.reshape(-1)[rng.random(x.size) < 0.1] = np.nan
    x[1, 1] = -np.inf
    samples = rng.random((2, 2, nd))
    forward = getattr(F, f"fractional_max_pool{nd}d")
    y, indices = forward(x, 2, 3, None, True, samples)
    ty, tindices = getattr(TF, f"fractional_max_pool{nd}d")(
        torch.tensor(x), 2, 3, return_indices=True, _random_samples=torch.tensor(samples)
    )
    np.testing.assert_array_equal(indices, tindices.numpy())
    np.testing.assert_array_equal(y, ty.numpy())


@pytest.mark.parametrize("nd", [2, 3])
def test_module_db_like_samples_buffer_ratio_and_return_indices(nd: int) -> None:
    """The constructor's ``_random_samples`` is torch's buffer (in ``state_dict``, used by
    every forward); ``output_ratio`` gives ``int(n * r)``; ``return_indices`` returns both."""
    shape = (2, 4) + (7,) * nd
    samples = np.random.default_rng(0).random((2, 4, nd))
    name = f"FractionalMaxPool{nd}d"
    module = getattr(rnn, name)(2, output_ratio=0.5, _random_samples=samples)
    twin = getattr(torch.nn, name)(2, output_ratio=0.5, _random_samples=torch.tensor(samples))
    assert list(module.state_dict()) == list(twin.state_dict()) == ["_random_samples"]
    x = np.random.default_rng(1).standard_normal(shape)
    assert_twin(module, twin, [x])
    np.testing.assert_array_equal(module(x), module(x))  # the buffer again
    assert module(x).shape == (2, 4) + (3,) * nd
    module.return_indices = twin.return_indices = True
    (y, indices), (ty, tindices) = module(x), twin(torch.tensor(x))
    np.testing.assert_array_equal(indices, tindices.numpy())
    np.testing.assert_array_equal(y, ty.numpy())
    # an imposed draw takes precedence over the buffer, once
    other = np.random.default_rng(2).random(samples.shape)
    module.random_samples = other
    forward = getattr(F, f"fractional_max_pool{nd}d")
    np.testing.assert_array_equal(module(x)[1], forward(x, 2, None, 0.5, True, other)[1])
    np.testing.assert_array_equal(module(x)[1], indices)


def test_own_draws_are_in_0_1_in_the_input_dtype_and_reproducible() -> None:
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8)).astype(np.float32)
    a, b = rnn.FractionalMaxPool2d(2, 4, rng=3), rnn.FractionalMaxPool2d(2, 4, rng=3)
    np.testing.assert_array_equal(a(x), b(x))
    samples = a.last_random_samples
    assert samples.shape == (3, 2, 2) and samples.dtype == np.float32
    assert ((samples >= 0) & (samples < 1)).all()
    a(x)
    assert not np.array_equal(a.last_random_samples, samples)  # a new draw each forward
    unbatched = rnn.FractionalMaxPool3d(2, 2, rng=0)
    unbatched(np.ones((2, 5, 5, 5)))
    assert unbatched.last_random_samples.shape == (1, 2, 3)


def test_an_empty_output_and_batch_as_torch() -> None:
    x = np.ones((1, 2, 5, 5))
    y = F.fractional_max_pool2d(x, 2, 0, _random_samples=np.zeros((1, 2, 2)))
    assert y.shape == TF.fractional_max_pool2d(torch.tensor(x), 2, 0).shape == (1, 2, 0, 0)
    grad = F.fractional_max_pool2d_backward(np.ones(y.shape), x, 2, 0, indices=y.astype(int))
    np.testing.assert_array_equal(grad, 0 * x)
    y = F.fractional_max_pool3d(np.ones((0, 1, 4, 5, 4)), (2, 2, 1), 2, rng=0)
    assert y.shape == (0, 1, 2, 2, 2)


def test_repr_and_state_dict_like_torch() -> None:
    for ours, theirs in [
        (rnn.FractionalMaxPool2d(2, 3), torch.nn.FractionalMaxPool2d(2, 3)),
        (rnn.FractionalMaxPool3d(2, output_ratio=0.5), torch.nn.FractionalMaxPool3d(2, None, 0.5)),
    ]:
        assert repr(ours) == repr(theirs)
        assert ours.state_dict() == {} and not theirs.state_dict()
        assert ours.kernel_size == theirs.kernel_size and ours.output_size == theirs.output_size
        assert ours.output_ratio == theirs.output_ratio


# -- torch's size rules and bad input --------------------------------------------------------------

X2, X3 = np.ones((1, 2, 5, 5)), np.ones((1, 2, 5, 5, 5))
S2, S3 = np.zeros((1, 2, 2)), np.zeros((1, 2, 3))
T2, T3, tzeros = torch.ones(1, 2, 5, 5), torch.ones(1, 2, 5, 5, 5), torch.zeros
# (ours, torch's, our error, our message, torch's error)
RAISES = [
    (lambda: rnn.FractionalMaxPool2d(2, output_ratio=1.5),
     lambda: torch.nn.FractionalMaxPool2d(2, output_ratio=1.5),
     ValueError, "output_ratio must be between 0 and 1", ValueError),
    (lambda: rnn.FractionalMaxPool3d(2, output_ratio=(0.5, 1.0, 0.5)),
     lambda: torch.nn.FractionalMaxPool3d(2, output_ratio=(0.5, 1.0, 0.5)),
     ValueError, "output_ratio must be between 0 and 1", ValueError),
    (lambda: rnn.FractionalMaxPool2d(2, output_ratio=0.0),
     lambda: torch.nn.FractionalMaxPool2d(2, output_ratio=0.0),
     ValueError, "output_ratio must be between 0 and 1", ValueError),
    (lambda: rnn.FractionalMaxPool2d(2), lambda: torch.nn.FractionalMaxPool2d(2),
     ValueError, "requires specifying either an output size, or a pooling ratio", ValueError),
    (lambda: rnn.FractionalMaxPool3d(2, 3, 0.5), lambda: torch.nn.FractionalMaxPool3d(2, 3, 0.5),
     ValueError, "only one of output_size and output_ratio", ValueError),
    (lambda: F.fractional_max_pool2d(X2, 2), lambda: TF.fractional_max_pool2d(T2, 2),
     ValueError, "either an output_size or an output_ratio", ValueError),
    (lambda: rnn.FractionalMaxPool3d(0, 2), lambda: torch.nn.FractionalMaxPool3d(0, 2),
     ValueError, "kernel_size must be positive", ValueError),
    (lambda: F.fractional_max_pool2d(X2, 2, 5, _random_samples=S2),
     lambda: TF.fractional_max_pool2d(T2, 2, 5),
     ValueError, "pool height 2 too large relative to input height 5", RuntimeError),
    (lambda: F.fractional_max_pool3d(X3, 2, 4, _random_samples=S3),  # 3-d: out + k - 1 < n
     lambda: TF.fractional_max_pool3d(T3, 2, 4),
     ValueError, "pool time 2 too large relative to input time 5", RuntimeError),
    (lambda: F.fractional_max_pool3d(X3, 2, (3, 3, 4), _random_samples=S3),
     lambda: TF.fractional_max_pool3d(T3, 2, (3, 3, 4)),
     ValueError, "pool width 2 too large relative to input width 5", RuntimeError),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=np.zeros((2, 2))),
     lambda: TF.fractional_max_pool2d(T2, 2, 3, _random_samples=tzeros(2, 2)),
     ValueError, r"_random_samples must have shape \(N, C, 2\) = \(1, 2, 2\)", RuntimeError),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=np.zeros((1, 3, 2))),
     lambda: TF.fractional_max_pool2d(T2, 2, 3, _random_samples=tzeros(1, 3, 2)),
     ValueError, r"got \(1, 3, 2\)", RuntimeError),
    (lambda: F.fractional_max_pool3d(X3, 2, 3, _random_samples=np.zeros((1, 2, 2))),
     lambda: TF.fractional_max_pool3d(T3, 2, 3, _random_samples=tzeros(1, 2, 2)),
     ValueError, r"_random_samples must have shape \(N, C, 3\)", RuntimeError),
    (lambda: F.fractional_max_pool2d(np.ones((2, 2, 5, 5)), 2, 3, _random_samples=S2),
     lambda: TF.fractional_max_pool2d(torch.ones(2, 2, 5, 5), 2, 3,
                                      _random_samples=tzeros(1, 2, 2)),
     ValueError, r"more rows than the batch are ignored", RuntimeError),
    (lambda: F.fractional_max_pool2d(X2, 2, 3, _random_samples=S2.astype(np.float32)),
     lambda: TF.fractional_max_pool2d(torch.ones(1, 2, 5, 5, dtype=torch.float64), 2, 3,
                                      _random_samples=tzeros(1, 2, 2)),
     TypeError, "must have the input's dtype float64, got float32", RuntimeError),
    (lambda: F.fractional_max_pool2d(np.ones((5, 5)), 2, 3, rng=0),
     lambda: TF.fractional_max_pool2d(torch.ones(5, 5), 2, 3),
     ValueError, r"expected a 3-D \(unbatched\) or 4-D \(batched\) input", IndexError),
    (lambda: F.fractional_max_pool2d(np.ones((1, 0, 5, 5)), 2, 3, rng=0),
     lambda: TF.fractional_max_pool2d(torch.ones(1, 0, 5, 5), 2, 3),
     ValueError, "non-empty except for the batch", RuntimeError),
]  # fmt: skip


@pytest.mark.parametrize(("ours", "theirs", "error", "message", "torch_error"), RAISES,
                         ids=[case[3] for case in RAISES])  # fmt: skip
def test_bad_input_raises_where_torch_raises(
    ours: Callable, theirs: Callable, error: type, message: str, torch_error: type
) -> None:
    with pytest.raises(error, match=message):
        ours()
    with pytest.raises(torch_error):
        theirs()


def test_more_sample_rows_than_the_batch_are_ignored_as_torch() -> None:
    x = np.random.default_rng(0).standard_normal((2, 4, 5, 5, 5))
    samples = np.random.default_rng(1).random((3, 4, 3))
    y = F.fractional_max_pool3d(x[0], 2, 2, _random_samples=samples)  # unbatched: row 0
    expected = TF.fractional_max_pool3d(torch.tensor(x[0]), 2, 2,
                                        _random_samples=torch.tensor(samples))  # fmt: skip
    np.testing.assert_array_equal(y, expected.numpy())


def test_the_backward_needs_the_windows_and_the_module_keeps_a_bad_draw() -> None:
    with pytest.raises(ValueError, match="the windows are random; pass indices="):
        F.fractional_max_pool2d_backward(np.ones((1, 2, 3, 3)), X2, 2, 3)
    module = rnn.FractionalMaxPool2d(2, 3)
    module.random_samples = np.zeros((1, 3, 2))
    with pytest.raises(ValueError, match="_random_samples must have shape"):
        module(X2)
    assert module.random_samples is not None  # not consumed by a failed forward
    with pytest.raises(RuntimeError, match="before forward"):
        rnn.FractionalMaxPool2d(2, 3).backward(np.ones((1, 2, 3, 3)))
