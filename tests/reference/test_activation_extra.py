"""The remaining activations (PReLU, GLU, Threshold, the shrinks, Softmin, Softmax2d):
gradcheck of every functional backward, the modules against torch in float64 and float32,
torch's exact gradients at the kinks, PReLU's weight and state_dict, and bad input.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.extra.numpy as hnp
import mpmath
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reference.functional.activation_extra as FX
import reference.nn.activation_extra as NX
from harness.compare import GRADCHECK, compare_arrays, to_numpy, tolerance
from harness.twin import assert_twin
from reference import gradcheck
from tests.reference.test_activation import away_from_kinks, functional_kwargs

DTYPES = [np.float64, np.float32]
dtype_ids = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
# width=32: every value is exact in float32 too, so a kink stays a kink after casting
ELEMENTS = st.floats(-4.0, 4.0, allow_nan=False, allow_infinity=False, width=32)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)


def _choices(group: list[dict]) -> Callable[[int], st.SearchStrategy[dict]]:
    return lambda ndim: st.sampled_from(group)


def _dim(ndim: int) -> st.SearchStrategy[dict]:
    size = max(ndim, 1)
    return st.fixed_dictionaries({"dim": st.integers(-size, size - 1)})


@dataclass(frozen=True)
class Op:
    name: str
    forward: Callable[..., np.ndarray]
    backward: Callable[..., np.ndarray]
    module: type
    torch_module: Callable[..., torch.nn.Module]
    kwargs: Callable[[int], st.SearchStrategy[dict]] = lambda ndim: st.just({})  # noqa: E731
    kinks: Callable[[dict], list[float]] = lambda kw: []  # noqa: E731
    kink_kwargs: list[dict] = field(default_factory=list)
    lift: float = 0.0  # twin tests move |x| < lift out to |x| + lift (see tanhshrink)
    defaults: dict = field(default_factory=dict)
    even: bool = False  # the drawn dim must have an even size (glu)

    def __repr__(self) -> str:
        return self.name


THRESHOLDS = [{"threshold": t, "value": v} for t, v in [(0.5, 20.0), (-1.0, 0.0), (0.0, -2.5)]]
LAMBDAS = [0.5, 0.25, 1.5, 0.0]
SHRINK_KINKS = lambda kw: [-kw.get("lambd", 0.5), kw.get("lambd", 0.5)]  # noqa: E731

# fmt: off
OPS = [
    Op("glu", FX.glu, FX.glu_backward, NX.GLU, torch.nn.GLU, _dim, even=True,
       defaults={"dim": -1}),
    Op("threshold", FX.threshold, FX.threshold_backward, NX.Threshold, torch.nn.Threshold,
       lambda ndim: st.sampled_from(THRESHOLDS).map(lambda kw: {**kw, "inplace": False}),
       kinks=lambda kw: [kw["threshold"]], kink_kwargs=THRESHOLDS, defaults=THRESHOLDS[0]),
    Op("hardshrink", FX.hardshrink, FX.hardshrink_backward, NX.Hardshrink, torch.nn.Hardshrink,
       _choices([{"lambd": v} for v in [*LAMBDAS, -0.5]]), kinks=SHRINK_KINKS,
       kink_kwargs=[{}, {"lambd": 1.5}, {"lambd": -0.5}]),
    Op("softshrink", FX.softshrink, FX.softshrink_backward, NX.Softshrink, torch.nn.Softshrink,
       _choices([{"lambd": v} for v in LAMBDAS]), kinks=SHRINK_KINKS,
       kink_kwargs=[{}, {"lambd": 1.5}, {"lambd": 0.0}]),
    # torch's x - tanh(x) (and its gradient) cancels near 0, ours does not: see below
    Op("tanhshrink", FX.tanhshrink, FX.tanhshrink_backward, NX.Tanhshrink, torch.nn.Tanhshrink,
       lift=0.25),
    Op("softmin", FX.softmin, FX.softmin_backward, NX.Softmin, torch.nn.Softmin, _dim,
       defaults={"dim": -1}),
]
# fmt: on


def draw_case(op: Op, data: st.DataObject) -> tuple[np.ndarray, dict]:
    """An input and module kwargs; for glu the halved dim is made even."""
    shape = list(data.draw(SHAPES, label="shape"))
    if op.even and not shape:
        shape = [2]
    kwargs = data.draw(op.kwargs(len(shape)), label="kwargs")
    if op.even:
        shape[kwargs["dim"]] *= 2
    x = data.draw(hnp.arrays(np.float64, tuple(shape), elements=ELEMENTS), label="input")
    return x, kwargs


# -- the elementwise ops, GLU and Softmin ---------------------------------------------


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_backward_passes_gradcheck(op: Op, data: st.DataObject) -> None:
    x, kwargs = draw_case(op, data)
    kwargs = functional_kwargs(kwargs)
    x = away_from_kinks(x, op.kinks(kwargs))
    result = gradcheck(
        lambda x: op.forward(x, **kwargs),
        x,
        backward=lambda g, x: op.backward(g, x, **kwargs),
        **GRADCHECK,
    )
    assert result.ok, str(result)


@dtype_ids
@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_module_matches_torch(op: Op, dtype: Any, device: str, data: st.DataObject) -> None:
    x, kwargs = draw_case(op, data)
    x = np.where(np.abs(x) < op.lift, x + np.copysign(op.lift, x), x)
    twin = op.torch_module(**kwargs)
    assert_twin(op.module(**kwargs), twin, [x], dtype=dtype, device=device)


@pytest.mark.parametrize("op", OPS, ids=repr)
@given(data=st.data())
def test_repr_matches_torch(op: Op, data: st.DataObject) -> None:
    kwargs = data.draw(op.kwargs(2), label="kwargs")
    assert repr(op.module(**kwargs)) == repr(op.torch_module(**kwargs))


KINK_CASES = [pytest.param(op, kw, id=f"{op.name}-{kw}") for op in OPS for kw in op.kink_kwargs]


@dtype_ids
@pytest.mark.parametrize(("op", "kwargs"), KINK_CASES)
def test_gradient_at_kinks_matches_torch(op: Op, kwargs: dict, dtype: Any, device: str) -> None:
    kinks = op.kinks(kwargs)
    x = np.array(kinks + [k + 0.5 for k in kinks] + [k - 0.5 for k in kinks], dtype=dtype)
    ref = op.backward(np.ones_like(x), x, **kwargs)
    t = torch.tensor(x, device=device, requires_grad=True)
    op.torch_module(**kwargs)(t).sum().backward()
    comparison = compare_arrays(op.name, ref, t.grad, tolerance(dtype, device))
    assert comparison.ok, f"{comparison}\nreference {ref}, torch {to_numpy(t.grad)}"
    # each of these kinks passes nothing; a negative lambd makes hardshrink the identity
    assert (ref[: len(kinks)] == (1 if kwargs.get("lambd", 0) < 0 else 0)).all()
    assert_twin(op.module(**kwargs), op.torch_module(**kwargs), [x], dtype=dtype, device=device)


@dtype_ids
@pytest.mark.parametrize("op", OPS, ids=repr)
def test_dtype_and_empty_input(op: Op, dtype: Any, rng: np.random.Generator) -> None:
    x = rng.uniform(-3, 3, size=(2, 4)).astype(dtype)
    module = op.module(**op.defaults)
    y = module(x)
    assert y.dtype == dtype and module.backward(np.ones_like(y)).dtype == dtype
    empty = op.module(**op.defaults)
    assert empty(np.zeros((0, 4), dtype)).shape[0] == 0
    assert empty.backward(np.zeros((0, y.shape[1]), dtype)).shape == (0, 4)


@pytest.mark.parametrize("op", OPS, ids=repr)
def test_bad_input_is_refused(op: Op) -> None:
    with pytest.raises(TypeError, match="floating"):
        op.forward(np.arange(8).reshape(2, 4), **functional_kwargs(op.defaults))
    module = op.module(**op.defaults)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((2, 4)))
    y = module(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=rf"output's shape \({y.shape[0]}, {y.shape[1]}\)"):
        module.backward(np.ones((4, 2)))


def test_tanhshrink_is_accurate_near_zero_where_torch_cancels() -> None:
    """x - tanh(x) ~ x^3/3 loses ~3u/x^2 of its digits when subtracted: torch 2.13's
    float32 result is 5% off at x = 1e-3 (its gradient, 1 - tanh', 1%). Ours sums the
    series there: within a rounding or two of mpmath's, float32 and float64 alike."""
    mpmath.mp.dps = 40
    x = np.concatenate([-np.geomspace(1e-8, 4, 200), np.geomspace(1e-8, 4, 200), [0.0]])
    exact = np.array([float(mpmath.mpf(v) - mpmath.tanh(mpmath.mpf(v))) for v in x])
    for dtype, ulps in [(np.float64, 4e-14), (np.float32, 2.0**-23)]:
        xd = x.astype(dtype)
        want = np.array([float(mpmath.mpf(float(v)) - mpmath.tanh(float(v))) for v in xd])
        got = FX.tanhshrink(xd).astype(np.float64)
        assert np.all(np.abs(got - want) <= ulps * np.abs(want) + 1e-300), dtype
    assert np.allclose(FX.tanhshrink(x), exact, rtol=4e-14, atol=0)
    grad = FX.tanhshrink_backward(np.ones_like(x), x)
    assert np.allclose(grad, [float(mpmath.tanh(v) ** 2) for v in x], rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: FX.glu(np.zeros((2, 3))), ValueError, r"must be even.*\(2, 3\) has size 3"),
        (lambda: NX.GLU(0)(np.zeros(())), ValueError, "0-d input has no dimension"),
        (lambda: FX.glu(np.zeros((2, 4)), 2), ValueError, "dim 2 is out of range"),
        (lambda: FX.softshrink(np.zeros(2), -0.5), ValueError, r"lambd must be in \[0, "),
        (lambda: NX.Softshrink(-0.5), ValueError, "lambd must be >= 0"),
        (lambda: FX.softmin(np.zeros((2, 3)), 2), ValueError, "dim 2 is out of range"),
    ],
    ids=["glu-odd", "GLU-scalar", "glu-dim", "softshrink-lambd", "Softshrink-lambd", "softmin"],
)
def test_bad_arguments(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_torch_refuses_the_same_arguments() -> None:
    """The cases above, in torch: it raises for each (though not always at construction)."""
    f = torch.nn.functional
    for call in [
        lambda: f.glu(torch.zeros(2, 3)),
        lambda: torch.nn.GLU(0)(torch.zeros(())),
        lambda: f.glu(torch.zeros(2, 4), 2),
        lambda: torch.nn.Softshrink(-0.5)(torch.zeros(2)),
        lambda: f.softmin(torch.zeros(2, 3), 2),
    ]:
        with pytest.raises((RuntimeError, IndexError)):
            call()


@pytest.mark.parametrize("ndim", [0, 1, 2, 3, 4])
def test_softmin_without_dim_takes_torchs_legacy_dim_and_warns(ndim: int) -> None:
    """torch 2.13 still resolves dim=None (0 for 0-, 1- and 3-D input, else 1) and warns."""
    x = np.random.default_rng(ndim).standard_normal((2, 3, 4, 5)[:ndim])
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        assert_twin(NX.Softmin(), torch.nn.Softmin(), [x])
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        FX.softmin(x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the backward does not warn again
        FX.softmin_backward(np.ones_like(x), x)


def test_softmin_dtype_argument_casts_first() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = FX.softmin(x, 1, dtype=np.float64)
    assert out.dtype == np.float64
    expected = torch.nn.functional.softmin(torch.from_numpy(x), 1, dtype=torch.float64)
    assert compare_arrays("output", out, expected, tolerance(np.float64)).ok
    assert FX.softmin_backward(np.ones((3, 4)), x, 1, np.float64).dtype == np.float32


# -- Softmax2d -------------------------------------------------------------------------

SHAPES_2D = hnp.array_shapes(min_dims=3, max_dims=4, min_side=1, max_side=4)


@dtype_ids
@given(data=st.data())
def test_softmax2d_matches_torch_and_passes_gradcheck(
    dtype: Any, device: str, data: st.DataObject
) -> None:
    x = data.draw(hnp.arrays(np.float64, SHAPES_2D, elements=ELEMENTS), label="input")
    assert_twin(NX.Softmax2d(), torch.nn.Softmax2d(), [x], dtype=dtype, device=device)
    if dtype == np.float64:
        assert gradcheck(NX.Softmax2d(), x, **GRADCHECK).ok


@pytest.mark.parametrize("shape", [(), (3,), (2, 3), (1, 2, 3, 4, 5)])
def test_softmax2d_refuses_other_ranks_as_torch(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=rf"Softmax2d\(\): expected 3-D or 4-D.*{shape}"):
        NX.Softmax2d()(np.zeros(shape))
    with pytest.raises(ValueError, match="expected input to be 3D or 4D"):
        torch.nn.Softmax2d()(torch.zeros(shape))


# -- PReLU -----------------------------------------------------------------------------

SLOPES = st.floats(-2.0, 2.0, allow_nan=False, width=32)


@st.composite
def prelu_cases(draw: Any) -> tuple[np.ndarray, np.ndarray]:
    """An input of 0 to 4 dims and a weight of 1 element, or one per channel (dim 1)."""
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=1, max_side=4))
    per_channel = len(shape) >= 2 and draw(st.booleans())
    x = draw(hnp.arrays(np.float64, shape, elements=ELEMENTS))
    weight = draw(hnp.arrays(np.float64, (shape[1] if per_channel else 1,), elements=SLOPES))
    return x, weight


def prelu_modules(weight: np.ndarray, dtype: Any = np.float32) -> tuple[Any, torch.nn.Module]:
    module = NX.PReLU(weight.size, dtype=dtype)
    module.load_state_dict({"weight": weight})
    return module, torch.nn.PReLU(weight.size)


@given(case=prelu_cases())
def test_prelu_backward_passes_gradcheck(case: tuple[np.ndarray, np.ndarray]) -> None:
    x, weight = case
    x = away_from_kinks(x, [0.0])
    result = gradcheck(FX.prelu, x, weight, backward=FX.prelu_backward, **GRADCHECK)
    assert result.ok, str(result)
    module, _ = prelu_modules(weight, np.float64)
    assert gradcheck(module, x, **GRADCHECK).ok  # the input and weight.grad


@dtype_ids
@given(case=prelu_cases())
def test_prelu_matches_torch(case: tuple[np.ndarray, np.ndarray], dtype: Any, device: str) -> None:
    x, weight = case
    assert_twin(*prelu_modules(weight), [x], dtype=dtype, device=device)  # grad weight too
    assert_twin(FX.prelu, torch.nn.functional.prelu, [x, weight], dtype=dtype, device=device)


@dtype_ids
@pytest.mark.parametrize("slope", [0.25, -0.5])
def test_prelu_gradient_at_zero_is_the_slope(slope: float, dtype: Any, device: str) -> None:
    x = np.array([[0.0, -1.0], [0.0, 2.0], [-0.0, 0.0]], dtype=dtype)
    grad_input, grad_weight = FX.prelu_backward(np.ones_like(x), x, np.array([slope], dtype))
    np.testing.assert_array_equal(grad_input, [[slope, slope], [slope, 1], [slope, slope]])
    np.testing.assert_array_equal(grad_weight, [-1.0])
    assert_twin(*prelu_modules(np.array([slope, slope])), [x], dtype=dtype, device=device)


def test_prelu_module_state_repr_and_accumulation() -> None:
    module, twin = NX.PReLU(3, init=0.1), torch.nn.PReLU(3, init=0.1)
    assert list(module.state_dict()) == list(twin.state_dict()) == ["weight"]
    assert repr(module) == repr(twin) and repr(NX.PReLU()) == repr(torch.nn.PReLU())
    assert module.weight.dtype == np.float32 and module.num_parameters == 3
    np.testing.assert_array_equal(module.weight.data, np.full(3, 0.1, np.float32))
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    for _ in range(2):  # the weight's gradient accumulates, as torch's does
        module.backward(np.ones_like(module(x)))
        twin(torch.from_numpy(x)).sum().backward()
    assert compare_arrays("grad", module.weight.grad, twin.weight.grad, tolerance(np.float32)).ok
    assert NX.PReLU(0)(np.zeros((2, 0), np.float32)).shape == (
        2,
        0,
    )  # torch allows an empty channel dim


@pytest.mark.parametrize(
    ("num", "shape", "message"),
    [
        (3, (2, 4), r"weight has 3 elements but the input has 4 channel\(s\) in dim 1"),
        (3, (3,), r"weight has 3 elements but the input has 1 channel\(s\)"),  # 1-D: 1 channel
        (3, (), "a 0-d input takes a weight of one element"),
    ],
)
def test_prelu_refuses_a_channel_mismatch_as_torch(num: int, shape: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=rf"PReLU\(num_parameters={num}\): {message}"):
        NX.PReLU(num)(np.zeros(shape, np.float32))
    with pytest.raises(RuntimeError):
        torch.nn.PReLU(num)(torch.zeros(shape))


@pytest.mark.parametrize(
    ("module_dtype", "input_dtype"), [("float32", "float64"), ("float64", "float32")]
)
def test_prelu_refuses_a_dtype_mismatch_with_torchs_message(module_dtype, input_dtype) -> None:
    twin = torch.nn.PReLU().to(getattr(torch, module_dtype))
    with pytest.raises(RuntimeError) as expected:
        twin(torch.zeros(2, 3, dtype=getattr(torch, input_dtype)))
    with pytest.raises(RuntimeError) as info:
        NX.PReLU(dtype=module_dtype)(np.zeros((2, 3), input_dtype))
    message = str(info.value)
    assert message.startswith(str(expected.value)), message
    assert "PReLU(num_parameters=1) got an input of dtype" in message
    assert f".to(np.{input_dtype})" in message


def test_prelu_functional_refuses_a_2d_weight_and_integer_input() -> None:
    with pytest.raises(ValueError, match=r"prelu: weight must be 0-d or 1-D, got shape \(3, 1\)"):
        FX.prelu(np.zeros((2, 3)), np.zeros((3, 1)))
    with pytest.raises(TypeError, match=r"PReLU\(num_parameters=1\).*floating"):
        NX.PReLU()(np.arange(3))
    assert FX.prelu(np.array(-2.0), np.array(0.5)).shape == ()  # 0-d input and weight
    assert FX.prelu_backward(np.array(1.0), np.array(-2.0), np.ones(1))[1].shape == (1,)
