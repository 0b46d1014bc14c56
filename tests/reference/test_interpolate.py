"""interpolate (every mode), the deprecated upsample* functionals and the Upsample modules:
gradcheck, forward and backward against torch (float64 and float32) over sizes and scale
factors (non-integer ones, downsampling, recompute_scale_factor), aten's coordinate rules
at their exact points, where torch's own backward is not the gradient of its forward,
repr, and bad input.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import assume, given
from hypothesis import strategies as st

from harness.compare import GRADCHECK, compare_arrays, tolerance
from harness.twin import assert_twin
from reference.functional.interpolate import (
    interpolate,
    interpolate_backward,
    upsample,
    upsample_backward,
    upsample_bilinear,
    upsample_bilinear_backward,
    upsample_nearest,
    upsample_nearest_backward,
)
from reference.gradcheck import gradcheck
from reference.nn.upsampling import Upsample, UpsamplingBilinear2d, UpsamplingNearest2d
from tests.reference.test_normalization import DTYPES, draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

RANKS = {"nearest": (3, 4, 5), "nearest-exact": (3, 4, 5), "area": (3, 4, 5), "linear": (3,),
         "bilinear": (4,), "bicubic": (4,), "trilinear": (5,)}  # fmt: skip
CORNERLESS = ("nearest", "nearest-exact", "area")
FACTORS = [0.3, 0.5, 0.6, 0.75, 1.0, 1.2, 1.5, 1.7, 2.0, 2.1, 2.5, 3.0]

Case = tuple[np.ndarray, dict[str, Any]]


@st.composite
def cases(draw: Any, modes: tuple[str, ...] = tuple(RANKS), batch: int = 0) -> Case:
    """An input and interpolate's keyword arguments (torch accepts every one drawn)."""
    rng = draw_rng(draw)
    mode = draw(st.sampled_from(modes), label="mode")
    nd = draw(st.sampled_from(RANKS[mode]), label="rank") - 2
    spatial = draw(st.lists(st.integers(1, 5), min_size=nd, max_size=nd), label="spatial")
    shape = (draw(st.integers(batch, 2)), draw(st.integers(1, 2)), *spatial)
    kwargs: dict[str, Any] = {"mode": mode}
    if draw(st.booleans(), label="by size"):
        sizes = draw(st.lists(st.integers(1, 8), min_size=nd, max_size=nd))
        kwargs["size"] = sizes[0] if nd == 1 and draw(st.booleans()) else tuple(sizes)
        if draw(st.booleans()):
            kwargs["recompute_scale_factor"] = False
    else:
        factors = draw(st.lists(st.sampled_from(FACTORS), min_size=nd, max_size=nd))
        assume(all(int(s * f) >= 1 for s, f in zip(spatial, factors)))
        single = len(set(factors)) == 1 and draw(st.booleans())
        kwargs["scale_factor"] = factors[0] if single else tuple(factors)
        kwargs["recompute_scale_factor"] = draw(st.sampled_from([None, False, True]))
    if mode not in CORNERLESS:
        kwargs["align_corners"] = draw(st.sampled_from([None, False, True]), label="corners")
    return rng.standard_normal(shape) * rng.uniform(0.5, 3), kwargs


# -- where torch's CPU backward recomputes the positions otherwise (see the tests below) ---


def torch_backward_index(mode: str, length: int, n: int, factor: float | None) -> np.ndarray:
    """aten's nearest_idx / nearest_exact_idx, which torch's CPU nearest backward uses."""
    f32, o = np.float32, np.arange(n)
    scale = f32(1.0 / factor) if factor else f32(length) / f32(n)
    if mode == "nearest":
        if n in (length, 2 * length):
            return o // (n // length)
        position = scale * o.astype(f32)
    else:
        position = ((o + 0.5) * np.float64(scale)).astype(f32)
    return np.minimum(np.floor(position), length - 1).astype(np.int64)


def _kernel_factors(x: np.ndarray, kwargs: dict) -> list[float | None]:
    factor = kwargs.get("scale_factor")
    if factor is None or kwargs.get("recompute_scale_factor") or kwargs["mode"] == "area":
        return [None] * (x.ndim - 2)
    return list(factor) if isinstance(factor, tuple) else [factor] * (x.ndim - 2)


def forward_index(x: np.ndarray, kwargs: dict, axis: int) -> np.ndarray:
    """The input position each output of ``axis`` copies in a nearest mode (from a ramp)."""
    shape, full = [1] * x.ndim, (1, 1, *x.shape[2:])  # one sample (the batch may be empty)
    shape[2 + axis] = x.shape[2 + axis]
    ramp = np.broadcast_to(np.arange(x.shape[2 + axis], dtype=x.dtype).reshape(shape), full)
    y = interpolate(ramp, **kwargs)
    line = np.moveaxis(y, 2 + axis, -1).reshape(-1, y.shape[2 + axis])[0]
    return line.astype(np.int64)


def torch_backward_deviates(x: np.ndarray, kwargs: dict) -> bool:
    """Whether torch's CPU backward is not the gradient of its forward for this case."""
    mode, factors = kwargs["mode"], _kernel_factors(x, kwargs)
    if mode == "bicubic":  # torch's backward copies when both sizes are kept
        out = interpolate(x, **kwargs).shape[2:]
        return out == x.shape[2:] and not kwargs.get("align_corners") and factors[0] is not None
    if mode not in ("nearest", "nearest-exact") or x.ndim == 4:  # 4-D is self-consistent
        return False
    out = interpolate(x, **kwargs).shape[2:]
    return any(
        not np.array_equal(
            torch_backward_index(mode, x.shape[2 + k], out[k], factors[k]),
            forward_index(x, kwargs, k),
        )
        for k in range(x.ndim - 2)
    )


# -- the functional pair ---------------------------------------------------------------


@given(case=cases())
def test_backward_passes_gradcheck(case: Case) -> None:
    x, kwargs = case
    result = gradcheck(
        lambda x: interpolate(x, **kwargs),
        x,
        backward=lambda g, x: interpolate_backward(g, x, **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=cases())
def test_functional_matches_torch(case: Case, dtype: Any, device: str) -> None:
    x, kwargs = case
    if torch_backward_deviates(x.astype(dtype), kwargs):
        ours = interpolate(x.astype(dtype), **kwargs)
        theirs = TF.interpolate(torch.tensor(x.astype(dtype), device=device), **kwargs)
        assert compare_arrays("output", theirs, ours, tolerance(dtype, device)).ok
        return  # the gradients: test_torch_backward_deviations_are_torchs_not_ours
    assert_twin(interpolate, TF.interpolate, [x], dtype=dtype, device=device, **kwargs)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=cases(modes=("nearest", "nearest-exact"), batch=1))
def test_nearest_modes_copy_exactly(case: Case, dtype: Any) -> None:
    """A copy, bit for bit, in the input's dtype: the same positions as torch's forward."""
    x, kwargs = case
    x = x.astype(dtype)
    ours = interpolate(x, **kwargs)
    assert ours.dtype == dtype
    np.testing.assert_array_equal(ours, TF.interpolate(torch.tensor(x), **kwargs).numpy())


def test_nearest_indices_match_torch_on_a_grid() -> None:
    """Every length 1..24 to every size 1..40 and by every factor, each rank and dtype:
    the floors where float32 and float64 round differently (e.g. 6 -> 74) included."""
    for mode in ("nearest", "nearest-exact"):
        for ndim, dtype in ((3, np.float64), (4, np.float32), (4, np.float64), (5, np.float32)):
            for length in range(1, 25):
                ramp = np.arange(length, dtype=dtype).reshape((1, 1) + (1,) * (ndim - 3) + (-1,))
                for spec in [{"size": n} for n in range(1, 41)] + [
                    {"scale_factor": f} for f in FACTORS if int(length * f) >= 1
                ]:
                    kwargs = {"mode": mode, **spec}
                    if "size" in spec:
                        kwargs["size"] = (1,) * (ndim - 3) + (spec["size"],)
                    else:
                        kwargs["scale_factor"] = (1.0,) * (ndim - 3) + (spec["scale_factor"],)
                    theirs = TF.interpolate(torch.tensor(ramp), **kwargs).numpy()
                    np.testing.assert_array_equal(interpolate(ramp, **kwargs), theirs)


# -- aten's coordinate rules, by hand ------------------------------------------------------


def _linear_by_hand(x: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Linear interpolation of a 1-d ``x`` at ``source`` (clamped to [0, L-1])."""
    return np.interp(np.clip(source, 0, len(x) - 1), np.arange(len(x)), x)


def test_a_scale_factor_reaches_the_kernel_unless_recomputed() -> None:
    """4 -> floor(4 * 1.7) = 6 outputs; the kernel scales by 1/1.7, or by 4/6 when
    recompute_scale_factor=True: two different resamplings of the same size."""
    x = np.random.default_rng(0).standard_normal(4)
    o = np.arange(6)
    expected = {None: _linear_by_hand(x, (o + 0.5) / 1.7 - 0.5),
                True: _linear_by_hand(x, (o + 0.5) * 4 / 6 - 0.5)}  # fmt: skip
    assert not np.allclose(expected[None], expected[True])
    for recompute, want in expected.items():
        kwargs = {"scale_factor": 1.7, "mode": "linear", "recompute_scale_factor": recompute}
        ours = interpolate(x[None, None], **kwargs)[0, 0]
        np.testing.assert_allclose(ours, want, rtol=1e-14, atol=1e-14)
        theirs = TF.interpolate(torch.tensor(x[None, None]), **kwargs)[0, 0].numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-14, atol=1e-14)


def test_align_corners_maps_corner_to_corner() -> None:
    x = np.random.default_rng(1).standard_normal((1, 1, 3, 4))
    ours = interpolate(x, size=(5, 7), mode="bilinear", align_corners=True)
    np.testing.assert_allclose(ours[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]],
                               x[0, 0, [0, 0, -1, -1], [0, -1, 0, -1]], rtol=1e-15)  # fmt: skip
    rows = _linear_by_hand(x[0, 0, :, 0], np.arange(5) * 2 / 4)  # (L-1)/(n-1) = 2/4
    np.testing.assert_allclose(ours[0, 0, :, 0], rows, rtol=1e-14)
    one = interpolate(x, size=(1, 1), mode="bilinear", align_corners=True)  # n = 1: scale 0
    np.testing.assert_array_equal(one[0, 0], x[0, 0, :1, :1])


def test_nearest_floors_and_nearest_exact_rounds() -> None:
    """4 -> 3: nearest floor(o 4/3) = 0, 1, 2; nearest-exact floor((o + 1/2) 4/3) = 0, 2, 3."""
    x = np.arange(4.0)[None, None]
    for mode, want in (("nearest", [0, 1, 2]), ("nearest-exact", [0, 2, 3])):
        np.testing.assert_array_equal(interpolate(x, size=3, mode=mode)[0, 0], want)
        np.testing.assert_array_equal(TF.interpolate(torch.tensor(x), size=3, mode=mode)[0, 0],
                                      want)  # fmt: skip


def _keys(d: np.ndarray, a: float = -0.75) -> np.ndarray:
    """Keys' cubic convolution kernel W(d)."""
    d = np.abs(d)
    near = (a + 2) * d**3 - (a + 3) * d**2 + 1
    far = a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
    return np.where(d <= 1, near, np.where(d < 2, far, 0.0))


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize(("length", "n"), [(3, 7), (5, 2), (4, 4), (2, 5)])
def test_bicubic_clamps_its_taps_at_the_border(length: int, n: int, align_corners: bool) -> None:
    x = np.random.default_rng(2).standard_normal(length)
    o = np.arange(n)
    if align_corners:
        source = o * ((length - 1) / (n - 1) if n > 1 else 0.0)
    else:
        source = (o + 0.5) * length / n - 0.5  # not clamped at 0, unlike linear
    taps = np.floor(source)[:, None] + np.arange(-1, 3)  # (n, 4)
    want = (_keys(source[:, None] - taps) * x[np.clip(taps, 0, length - 1).astype(int)]).sum(1)
    image = x[None, None, None]  # (1, 1, 1, L)
    kwargs = {"size": (1, n), "mode": "bicubic", "align_corners": align_corners}
    np.testing.assert_allclose(interpolate(image, **kwargs)[0, 0, 0], want, rtol=1e-13, atol=1e-14)
    theirs = TF.interpolate(torch.tensor(image), **kwargs)[0, 0, 0].numpy()
    np.testing.assert_allclose(theirs, want, rtol=1e-13, atol=1e-14)


def test_a_kept_size_is_a_copy_in_linear_modes_whatever_the_factor() -> None:
    """3 * 1.2 -> 3: aten's linear kernels copy (a scale of 1/1.2 would not)."""
    x = np.random.default_rng(3).standard_normal((1, 2, 3))
    np.testing.assert_array_equal(interpolate(x, scale_factor=1.2, mode="linear"), x)
    np.testing.assert_array_equal(TF.interpolate(torch.tensor(x), scale_factor=1.2,
                                                 mode="linear").numpy(), x)  # fmt: skip


def test_4d_nearest_takes_the_older_index_rules() -> None:
    """5 -> floor(5 * 2.1) = 10: a 3-D (and 5-D) input floors o / 2.1, a 4-D one halves o."""
    x = np.arange(5.0)
    flat = interpolate(x[None, None], scale_factor=2.1)[0, 0]
    image = interpolate(x[None, None, None], scale_factor=(1.0, 2.1))[0, 0, 0]
    np.testing.assert_array_equal(flat, np.floor(np.arange(10) / 2.1))
    np.testing.assert_array_equal(image, np.arange(10) // 2)
    theirs = TF.interpolate(torch.tensor(x[None, None]), scale_factor=2.1)[0, 0]
    np.testing.assert_array_equal(theirs, flat)
    theirs = TF.interpolate(torch.tensor(x[None, None, None]), scale_factor=(1.0, 2.1))
    np.testing.assert_array_equal(theirs[0, 0, 0], image)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_area_is_adaptive_average_pooling(nd: int) -> None:
    x = np.random.default_rng(4).standard_normal((2, 2, *(5,) * nd))
    pool = {1: TF.adaptive_avg_pool1d, 2: TF.adaptive_avg_pool2d, 3: TF.adaptive_avg_pool3d}[nd]
    ours = interpolate(x, size=3, mode="area")
    np.testing.assert_allclose(ours, pool(torch.tensor(x), 3).numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(ours[(0, 0) + (0,) * nd], x[(0, 0) + (slice(0, 2),) * nd].mean())
    # a factor only sets the size: 5 * 0.7 -> 3
    np.testing.assert_array_equal(interpolate(x, scale_factor=0.7, mode="area"), ours)


# -- torch's backward is not the gradient of its forward here -----------------------------

DEVIATIONS = [  # (input shape, kwargs, dtype): the rule torch's backward uses instead
    ((1, 2, 3), {"scale_factor": 1.2}, np.float64),  # kept size: nearest_idx copies
    ((1, 1, 5), {"scale_factor": 2.1}, np.float32),  # doubled size: nearest_idx halves
    ((1, 1, 2, 2, 5), {"scale_factor": (1.0, 1.0, 2.1)}, np.float64),  # the same in 5-D
    ((1, 1, 6), {"size": 74}, np.float64),  # float32 scale: floor(73 * 6/74) differs
    ((1, 1, 2), {"size": 41, "mode": "nearest-exact"}, np.float64),
    ((1, 1, 2), {"size": 41, "mode": "nearest-exact"}, np.float32),
    ((1, 1, 3, 3), {"scale_factor": 1.2, "mode": "bicubic"}, np.float64),  # copies
]


def _torch_rule_gradient(g: np.ndarray, x: np.ndarray, kwargs: dict) -> np.ndarray:
    """What torch's CPU backward computes (the transpose of its backward's own positions)."""
    if kwargs["mode"] == "bicubic":
        return g
    factors, grad = _kernel_factors(x, kwargs), g
    for k in range(x.ndim - 2):
        index = torch_backward_index(kwargs["mode"], x.shape[2 + k], g.shape[2 + k], factors[k])
        onehot = np.eye(x.shape[2 + k])[index]  # (n, L)
        grad = np.moveaxis(np.tensordot(onehot.T, grad, axes=(1, 2 + k)), 0, 2 + k)
    return grad


@pytest.mark.parametrize(("shape", "kwargs", "dtype"), DEVIATIONS, ids=str)
def test_torch_backward_deviations_are_torchs_not_ours(shape, kwargs, dtype) -> None:
    """Same forward; torch's gradient is the transpose of other positions (predicted
    exactly), fails torch's own float64 gradcheck, and differs from ours, which passes."""
    kwargs = {"mode": "nearest", **kwargs}
    x = np.random.default_rng(5).standard_normal(shape).astype(dtype)
    assert torch_backward_deviates(x, kwargs)
    t = torch.tensor(x, requires_grad=True)
    y = TF.interpolate(t, **kwargs)
    np.testing.assert_allclose(interpolate(x, **kwargs), y.detach().numpy(), rtol=1e-6)
    g = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(t.grad.numpy(), _torch_rule_gradient(g, x, kwargs), rtol=1e-6)
    ours = interpolate_backward(g, x, **kwargs)
    assert np.abs(ours - t.grad.numpy()).max() > 0.1 * np.abs(g).max()
    x64 = x.astype(np.float64)
    result = gradcheck(
        lambda x: interpolate(x, **kwargs),
        x64,
        backward=lambda g, x: interpolate_backward(g, x, **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)
    if dtype == np.float64:  # float64 kernels: torch's own check sees it
        wrapped = torch.tensor(x64, requires_grad=True)
        assert not torch.autograd.gradcheck(lambda t: TF.interpolate(t, **kwargs), (wrapped,),
                                            raise_exception=False)  # fmt: skip


# -- the deprecated functionals and the modules -------------------------------------------


@pytest.mark.parametrize(
    ("ours", "backward", "theirs", "kwargs"),
    [
        (upsample, upsample_backward, TF.upsample, {"scale_factor": 1.7, "mode": "bilinear"}),
        (upsample_nearest, upsample_nearest_backward, TF.upsample_nearest, {"size": (5, 3)}),
        (upsample_bilinear, upsample_bilinear_backward, TF.upsample_bilinear,
         {"scale_factor": 0.6}),
    ],
    ids=["upsample", "upsample_nearest", "upsample_bilinear"],
)  # fmt: skip
def test_deprecated_functionals_are_interpolate(ours, backward, theirs, kwargs) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 2, 4, 5))
    t = torch.tensor(x, requires_grad=True)
    with pytest.warns(UserWarning, match="deprecated"):
        y = theirs(t, **kwargs)
    np.testing.assert_allclose(ours(x, **kwargs), y.detach().numpy(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    y.backward(torch.tensor(g))
    np.testing.assert_allclose(backward(g, x, **kwargs), t.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=cases())
def test_upsample_matches_torch(case: Case, dtype: Any, device: str) -> None:
    x, kwargs = case
    ours, theirs = Upsample(**kwargs), torch.nn.Upsample(**kwargs)
    if torch_backward_deviates(x.astype(dtype), kwargs):
        expected = theirs(torch.tensor(x.astype(dtype), device=device))
        assert compare_arrays("output", expected, ours(x.astype(dtype)), tolerance(dtype)).ok
        return
    assert_twin(ours, theirs, [x], dtype=dtype, device=device)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("cls", ["UpsamplingNearest2d", "UpsamplingBilinear2d"])
@pytest.mark.parametrize(
    ("shape", "kwargs"),
    [((2, 3, 4, 5), {"scale_factor": 2}), ((1, 2, 5, 3), {"size": (3, 7)}),
     ((2, 1, 4, 4), {"scale_factor": (0.6, 1.7)}), ((1, 2, 6), {"size": 4})],
)  # fmt: skip
def test_upsampling_2d_modules_match_torch(cls, shape, kwargs, dtype, device) -> None:
    ours, theirs = globals()[cls](**kwargs), getattr(torch.nn, cls)(**kwargs)
    x = np.random.default_rng(8).standard_normal(shape)
    if len(shape) == 3 and cls == "UpsamplingBilinear2d":  # torch does not check the rank
        with pytest.raises(NotImplementedError, match="bilinear mode needs a 4-D input"):
            ours(x)
        with pytest.raises(NotImplementedError, match="bilinear mode needs 4D input"):
            theirs(torch.tensor(x))
        return
    assert_twin(ours, theirs, [x], dtype=dtype, device=device)


@pytest.mark.parametrize(
    "args",
    [{"scale_factor": 2}, {"size": (3, 4), "mode": "bilinear", "align_corners": True},
     {"scale_factor": (2, 3)}, {"scale_factor": 0, "size": 3}, {"size": 5, "mode": "area"}],
    ids=str,
)  # fmt: skip
def test_repr_attributes_and_state_dict_match_torch(args: dict) -> None:
    for ours, theirs in [(Upsample(**args), torch.nn.Upsample(**args))] + (
        [(UpsamplingNearest2d(args.get("size"), args.get("scale_factor")),
          torch.nn.UpsamplingNearest2d(args.get("size"), args.get("scale_factor")))]
        if "mode" not in args else []
    ):  # fmt: skip
        assert repr(ours) == repr(theirs)
        for name in ("size", "scale_factor", "mode", "align_corners", "recompute_scale_factor"):
            assert getattr(ours, name) == getattr(theirs, name), name
        assert ours.state_dict() == {} and not theirs.state_dict()
    assert repr(UpsamplingBilinear2d(scale_factor=2)) == repr(
        torch.nn.UpsamplingBilinear2d(scale_factor=2)
    )


def test_module_cache_and_gradient_shape() -> None:
    layer = Upsample(scale_factor=2, mode="linear")
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones((1, 1, 4)))
    with pytest.raises(ValueError, match=r"Upsample\(scale_factor=2.0, mode='linear'\)"):
        layer(np.ones((1, 1, 0)))  # refused: no cache left
    layer(np.ones((1, 1, 2)))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(1, 1, 4\)"):
        layer.backward(np.ones((1, 1, 2)))


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16], ids=str)
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area"])
def test_dtype_follows_the_input(mode: str, dtype: Any) -> None:
    x = np.random.default_rng(9).standard_normal((1, 2, 3, 4)).astype(dtype)
    y = interpolate(x, scale_factor=1.5, mode=mode)
    assert y.dtype == dtype
    assert interpolate_backward(np.ones_like(y), x, scale_factor=1.5, mode=mode).dtype == dtype


def test_empty_batch_like_torch() -> None:
    x = np.zeros((0, 2, 3, 3))
    y = interpolate(x, size=5, mode="bicubic")
    assert y.shape == tuple(TF.interpolate(torch.tensor(x), size=5, mode="bicubic").shape)
    assert interpolate_backward(y, x, size=5, mode="bicubic").shape == x.shape


# -- bad input: the reference raises where torch raises -----------------------------------

x3, x4, x5 = np.zeros((1, 2, 4)), np.zeros((1, 2, 4, 4)), np.zeros((1, 1, 2, 2, 2))

# fmt: off
BAD: list[tuple[dict, Any, type[Exception], str]] = [
    ({"size": 3, "align_corners": False}, x3, ValueError, "align_corners can only be set"),
    ({"size": 3, "mode": "area", "align_corners": True}, x3, ValueError, "align_corners can only"),
    ({"size": 3, "scale_factor": 2.0}, x3, ValueError, "only one of size or scale_factor"),
    ({}, x3, ValueError, "either size or scale_factor should be defined"),
    ({"size": (3, 3)}, x3, ValueError, r"input and size must have the same number of spatial"),
    ({"scale_factor": (2.0, 2.0)}, x3, ValueError, "input and scale_factor must have the same"),
    ({"size": (3.0,)}, x3, TypeError, r"size must be an int or a tuple of ints, got \(3.0,\)"),
    ({"size": (None, 3)}, x4, TypeError, "size must be an int or a tuple of ints"),
    ({"size": 3, "recompute_scale_factor": True}, x3, ValueError, "not meaningful with an"),
    ({"size": 3, "antialias": True}, x4, ValueError, "antialias is restricted to the bilinear"),
    ({"size": 3, "mode": "linear", "antialias": True}, x3, ValueError, "antialias is restricted"),
    ({"size": 3, "mode": "lanczos"}, x4, ValueError, "lanczos mode needs antialias=True"),
    ({"size": 3, "mode": "bilinear"}, x3, NotImplementedError, "bilinear mode needs a 4-D input"),
    ({"size": 3, "mode": "linear"}, x4, NotImplementedError, "linear mode needs a 3-D input"),
    ({"size": 3, "mode": "trilinear"}, x4, NotImplementedError, "trilinear mode needs a 5-D"),
    ({"size": 3, "mode": "bicubic"}, x5, NotImplementedError, r"only 3-D, 4-D and 5-D .*got 'bic"),
    ({"size": 3, "mode": "foo"}, x3, NotImplementedError, r"for the modes .* \(got 'foo'\)"),
    ({"size": 3}, np.zeros((2, 4)), NotImplementedError, r"only 3-D, 4-D and 5-D inputs .*2-D"),
    ({"size": 3}, np.zeros((1,) * 6), NotImplementedError, r"supported \(got 6-D\)"),
    ({"size": 0}, x3, ValueError, r"output sizes should be greater than 0.*\[0\]"),
    ({"scale_factor": 0.2}, x3, ValueError, r"greater than 0.*output size \[0\]"),
    ({"scale_factor": -2.0, "mode": "linear"}, x3, ValueError, r"output size \[-8\]"),
    ({"size": -1, "mode": "area"}, x3, ValueError, r"output size \[-1\]"),
    ({"size": 3}, np.zeros((1, 0, 4)), ValueError, r"non-empty except for the batch.*\(1, 0, 4\)"),
    ({"size": 3, "mode": "area"}, np.zeros((1, 2, 0)), ValueError, "non-empty except for the"),
]
# fmt: on


@pytest.mark.parametrize(("kwargs", "x", "error", "match"), BAD, ids=[m for *_, m in BAD])
def test_bad_input_raises_like_torch(kwargs: dict, x: np.ndarray, error: type, match: str):
    with pytest.raises(error, match=match):
        interpolate(x, **kwargs)
    with pytest.raises(error, match=match):
        interpolate_backward(np.zeros((1, 2, 3)), x, **kwargs)
    with pytest.raises((RuntimeError, ValueError, NotImplementedError, TypeError)):
        TF.interpolate(torch.tensor(x), **kwargs)


def test_non_finite_factors_integers_and_antialias() -> None:
    for factor in (float("inf"), float("nan")):
        with pytest.raises(ValueError, match="scale_factor must be finite"):
            interpolate(x3, scale_factor=factor)
        with pytest.raises(RuntimeError, match="cannot be converted to type int64_t"):
            TF.interpolate(torch.tensor(x3), scale_factor=factor)
    with pytest.raises(TypeError, match="interpolate: input must be a floating array"):
        interpolate(np.zeros((1, 1, 4), np.int64), size=3)
    with pytest.raises(NotImplementedError, match="antialias=True .* not implemented"):
        interpolate(x4, size=3, mode="bilinear", antialias=True)
    assert TF.interpolate(torch.tensor(x4), size=3, mode="bilinear", antialias=True).shape[-1] == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert interpolate(x4, size=0, mode="area").shape == (1, 2, 0, 0)  # torch: empty too
