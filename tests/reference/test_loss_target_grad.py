"""The gradient wrt a loss's target: ``<name>_target_backward`` and the modules'
``target_grad`` against torch's ``target.grad`` (float64 and float32, a random upstream
gradient, every reduction), gradcheck of each in float64, torch's special points
(kinks, the BCE clamp, zero counts and probabilities), and the losses whose target
torch leaves without a gradient or refuses to differentiate.

One table (``OPS``) drives the per-op tests: the module and functional names (the same
in the reference and in torch), the reference module holding the functional, a
strategy drawing ``(inputs, kwargs)`` (``smooth=True``: a case where the loss is
differentiable in the target, for central differences), and the target's position.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given
from hypothesis import strategies as st

import reference.functional as RF
from harness.compare import GRADCHECK, compare_arrays, tolerance
from reference.functional import likelihood_loss as LF
from reference.functional import margin_loss as MF
from reference.gradcheck import gradcheck
from reference.nn import loss as loss_modules
from reference.nn import loss_extra as loss_extra_modules
from reference.nn.loss import _Loss
from tests.reference.test_normalization import draw_rng
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

REDUCTIONS = ["none", "mean", "sum"]
Case = tuple[list[Any], dict[str, Any]]


def _shape(draw: Any, min_dims: int = 0) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, 3), min_size=min_dims, max_size=3)))


def _class_shape(draw: Any, spatial: bool = False) -> tuple[int, ...]:
    """(C,) unbatched, (N, C), and (``spatial``) (N, C, d1) or (N, C, d1, d2)."""
    classes = draw(st.integers(1, 4))
    extra = draw(st.integers(-1, 2 if spatial else 0))
    if extra < 0:
        return (classes,)
    dims = draw(st.lists(st.integers(1, 3), min_size=extra, max_size=extra))
    return (draw(st.integers(1, 3)), classes, *dims)


def _weight(draw: Any, rng: np.random.Generator, shapes: list) -> np.ndarray | None:
    """None or a positive weight of one of ``shapes`` (broadcast to the input's)."""
    chosen = draw(st.sampled_from([None, *shapes]))
    return None if chosen is None else rng.uniform(0.2, 2.0, chosen)


def _reduction(draw: Any, extra: tuple[str, ...] = ()) -> str:
    return draw(st.sampled_from([*REDUCTIONS, *extra]))


@st.composite
def regression_cases(draw: Any, smooth: bool = False, option: str | None = None) -> Case:
    rng, shape = draw_rng(draw), _shape(draw)
    kwargs: dict[str, Any] = {"reduction": _reduction(draw)}
    if option is not None:  # beta 0 is L1; each is positive for central differences
        kwargs[option] = draw(st.sampled_from([0.5, 1.0, 2.0] + [0.0] * (option == "beta")))
    return [rng.standard_normal(shape), rng.standard_normal(shape)], kwargs


@st.composite
def kl_div_cases(draw: Any, smooth: bool = False) -> Case:
    rng, shape = draw_rng(draw), _shape(draw)
    log_target = draw(st.booleans())
    if log_target:
        target = rng.standard_normal(shape)
    else:  # probabilities; torch's gradient at an exact 0 is nan (compared, not gradchecked)
        target = rng.uniform(0.05, 1.0, shape)
        if not smooth:
            target = np.where(rng.random(shape) < 0.2, 0.0, target)
    kwargs = {"reduction": _reduction(draw, ("batchmean",)), "log_target": log_target}
    return [rng.standard_normal(shape), target], kwargs


@st.composite
def bce_cases(draw: Any, smooth: bool = False) -> Case:
    rng, shape = draw_rng(draw), _shape(draw)
    target = np.where(rng.random(shape) < 0.3, rng.integers(0, 2, shape), rng.random(shape))
    if smooth:  # central differences step past a target of 0 or 1, out of [0, 1]
        target = rng.uniform(0.01, 0.99, shape)
    weight = _weight(draw, rng, [shape, shape[-1:], (1,) * len(shape)])
    kwargs = {"weight": weight, "reduction": _reduction(draw)}
    return [rng.uniform(0.05, 0.95, shape), target.astype(np.float64)], kwargs


@st.composite
def bce_logits_cases(draw: Any, smooth: bool = False) -> Case:
    rng, shape = draw_rng(draw), _shape(draw)
    target = np.where(rng.random(shape) < 0.5, rng.integers(0, 2, shape), rng.random(shape))
    kwargs = {
        "weight": _weight(draw, rng, [shape, shape[-1:], (1,) * len(shape)]),
        "reduction": _reduction(draw),
        "pos_weight": _weight(draw, rng, [shape[-1:], shape]),
    }
    return [4 * rng.standard_normal(shape), target.astype(np.float64)], kwargs


@st.composite
def cross_entropy_cases(draw: Any, smooth: bool = False) -> Case:
    """Class probabilities (rows need not sum to 1: torch does not ask), every layout."""
    rng = draw_rng(draw)
    shape = _class_shape(draw, spatial=True)
    kwargs = {
        "weight": _weight(draw, rng, [(shape[0 if len(shape) == 1 else 1],)]),
        "reduction": _reduction(draw),
        "label_smoothing": draw(st.sampled_from([0.0, 0.2, 1.0])),
    }
    return [3 * rng.standard_normal(shape), rng.random(shape)], kwargs


@st.composite
def multilabel_soft_margin_cases(draw: Any, smooth: bool = False) -> Case:
    rng, shape = draw_rng(draw), _class_shape(draw)
    target = np.where(rng.random(shape) < 0.6, rng.integers(0, 2, shape), rng.random(shape))
    kwargs = {"weight": _weight(draw, rng, [shape[-1:], shape]), "reduction": _reduction(draw)}
    return [3 * rng.standard_normal(shape), target.astype(np.float64)], kwargs


@st.composite
def poisson_cases(draw: Any, smooth: bool = False) -> Case:
    """Counts with 0 and 1 (torch's nan and the jump of ``full``'s Stirling term at 1),
    or (``smooth``) positive values away from 1."""
    rng, shape = draw_rng(draw), _shape(draw)
    log_input = draw(st.booleans())
    input = rng.standard_normal(shape) if log_input else rng.uniform(0.1, 3.0, shape)
    if smooth:
        target = np.where(rng.random(shape) < 0.5, rng.uniform(0.1, 0.9), rng.uniform(1.1, 5))
    else:
        target = np.where(rng.random(shape) < 0.5, rng.poisson(1.5, shape), 5 * rng.random(shape))
    kwargs = {
        "log_input": log_input,
        "full": draw(st.booleans()),
        "eps": draw(st.sampled_from([1e-8, 0.1])),
        "reduction": _reduction(draw),
    }
    return [input, target.astype(np.float64)], kwargs


@st.composite
def gaussian_cases(draw: Any, smooth: bool = False) -> Case:
    """var of the input's shape, without its last dim, with a dim of size 1, or a float."""
    rng, shape = draw_rng(draw), _shape(draw, min_dims=1)
    layout = draw(st.sampled_from(["same", "drop_last", "one", "float"]))
    var_shape = {"same": shape, "drop_last": shape[:-1]}.get(layout)
    if layout == "one":
        one = draw(st.integers(0, len(shape) - 1))
        var_shape = tuple(1 if i == one else n for i, n in enumerate(shape))
    var = float(rng.uniform(0.4, 2)) if layout == "float" else rng.uniform(0.4, 2, var_shape)
    kwargs = {
        "full": draw(st.booleans()),
        "eps": draw(st.sampled_from([1e-6, 0.3])),
        "reduction": _reduction(draw),
    }
    return [rng.standard_normal(shape), rng.standard_normal(shape), var], kwargs


@st.composite
def margin_ranking_cases(draw: Any, smooth: bool = False) -> Case:
    rng, shape = draw_rng(draw), _shape(draw)
    x1, x2 = rng.standard_normal((2, *shape))
    kwargs = {"margin": draw(st.sampled_from([0.0, 0.5])), "reduction": _reduction(draw)}
    return [x1, x2, rng.choice([-1.0, 1.0], shape)], kwargs


@dataclass(frozen=True)
class Op:
    module: str  # the same name in reference.nn and torch.nn
    functional: str  # the same name in the reference's functional module and torch's
    home: Any  # the reference module holding the functional
    cases: Any  # a strategy factory: cases(smooth=...)
    target: int = 1  # the target's position among the inputs

    def forward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return getattr(self.home, self.functional)(*args, **kwargs)

    def target_backward(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return getattr(self.home, f"{self.functional}_target_backward")(*args, **kwargs)

    def __str__(self) -> str:
        return self.module


# fmt: off
OPS = [
    Op("MSELoss", "mse_loss", RF, regression_cases),
    Op("L1Loss", "l1_loss", RF, regression_cases),
    Op("SmoothL1Loss", "smooth_l1_loss", RF,
       lambda smooth=False: regression_cases(smooth, "beta")),
    Op("HuberLoss", "huber_loss", RF, lambda smooth=False: regression_cases(smooth, "delta")),
    Op("KLDivLoss", "kl_div", RF, kl_div_cases),
    Op("BCELoss", "binary_cross_entropy", RF, bce_cases),
    Op("BCEWithLogitsLoss", "binary_cross_entropy_with_logits", RF, bce_logits_cases),
    Op("CrossEntropyLoss", "cross_entropy", RF, cross_entropy_cases),
    Op("MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss", LF,
       multilabel_soft_margin_cases),
    Op("PoissonNLLLoss", "poisson_nll_loss", LF, poisson_cases),
    Op("GaussianNLLLoss", "gaussian_nll_loss", LF, gaussian_cases),
    Op("MarginRankingLoss", "margin_ranking_loss", MF, margin_ranking_cases, target=2),
]
# fmt: on
# torch leaves target.grad None (class indices, selecting ±1 labels, no target at all)
# fmt: off
NO_TARGET_GRAD = {"NLLLoss", "MultiMarginLoss", "MultiLabelMarginLoss", "HingeEmbeddingLoss",
                  "CosineEmbeddingLoss", "TripletMarginLoss"}
# fmt: on
REFUSED = {"SoftMarginLoss"}  # torch refuses a target that requires grad


TORCH_DTYPE = {np.float64: torch.float64, np.float32: torch.float32}


def _cast(value: Any, dtype: Any) -> Any:
    """Arrays (NumPy scalars included: a 0-d draw) to ``dtype``; a float var stays a float."""
    return np.asarray(value, dtype) if isinstance(value, (np.ndarray, np.generic)) else value


def _tensors(kwargs: dict[str, Any], dtype: Any) -> dict[str, Any]:
    return {
        k: torch.as_tensor(v, dtype=dtype) if isinstance(v, np.ndarray) else v
        for k, v in kwargs.items()
    }


def torch_target_grad(module: Any, inputs: list[Any], target: int, g: np.ndarray) -> np.ndarray:
    """torch's ``target.grad`` after ``module(*inputs).backward(g)``; the input, too, requires
    grad (the usual case: the target's gradient must not depend on it)."""
    ts = [torch.tensor(x) if isinstance(x, np.ndarray) else x for x in inputs]
    for i in (0, target):
        ts[i].requires_grad_(True)
    with warnings.catch_warnings():
        # torch warns that KLDivLoss 'mean' is not the KL divergence: known, not a bug
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        out = module(*ts)
    out.backward(torch.as_tensor(g))
    return ts[target].grad.numpy()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_target_grad_matches_torch(op: Op, dtype: Any, data: st.DataObject) -> None:
    """The module's ``target_grad`` after a backward with a random upstream gradient is
    torch's ``target.grad``, in the input's dtype, and it is the functional's value."""
    inputs, kwargs = data.draw(op.cases())
    inputs = [_cast(x, dtype) for x in inputs]
    kwargs = {k: _cast(v, dtype) for k, v in kwargs.items()}
    ref = getattr(rnn_home(op.module), op.module)(**kwargs)
    out = ref(*inputs)
    g = data.draw(st.integers(0, 2**32 - 1), label="g seed")
    g = np.random.default_rng(g).standard_normal(np.shape(out)).astype(dtype)
    ref.backward(g.copy())
    ours = ref.target_grad
    assert ours.dtype == dtype and ours.shape == np.shape(inputs[op.target])
    torch_module = getattr(torch.nn, op.module)(**_tensors(kwargs, TORCH_DTYPE[dtype]))
    theirs = torch_target_grad(torch_module, inputs, op.target, g)
    comparison = compare_arrays("target grad", ours, theirs, tolerance(dtype))
    assert comparison.ok, str(comparison)
    np.testing.assert_array_equal(ours, op.target_backward(g, *inputs, **kwargs))


def rnn_home(name: str) -> Any:
    return loss_modules if hasattr(loss_modules, name) else loss_extra_modules


@pytest.mark.parametrize("op", OPS, ids=str)
@given(data=st.data())
def test_target_backward_gradcheck(op: Op, data: st.DataObject) -> None:
    """``<name>_target_backward`` against central differences of the forward in the
    target, in float64, with a random upstream gradient."""
    inputs, kwargs = data.draw(op.cases(smooth=True))

    def with_target(t: np.ndarray) -> list[Any]:
        return [t if i == op.target else x for i, x in enumerate(inputs)]

    result = gradcheck(
        lambda t: op.forward(*with_target(t), **kwargs),
        inputs[op.target],
        backward=lambda g, t: op.target_backward(g, *with_target(t), **kwargs),
        wrt=(0,),
        **GRADCHECK,
    )
    assert result.ok, str(result)


# -- special points, compared with torch exactly there ----------------------------------

_Y = np.array([1.0, 1.0, 1.0, 1.0, 1.0, -2.0])
_KINK = _Y + np.array([0.0, 0.5, -0.5, 0.25, -3.0, 0.0])  # x = y, |x - y| = 0.5
_BIG = np.array([0.0, 800.0, -800.0, 30.0, -30.0, 1e-9])
_SOFT = np.array([0.3, 0.0, 1.0, 0.5, 0.9, 0.2])
# fmt: off
SPECIAL = {  # name: (functional, its home, inputs, kwargs, the target's position)
    "l1_kink": ("l1_loss", RF, [_KINK, _Y], {}, 1),
    "smooth_l1_kinks": ("smooth_l1_loss", RF, [_KINK, _Y], {"beta": 0.5}, 1),
    "smooth_l1_beta0": ("smooth_l1_loss", RF, [_KINK, _Y], {"beta": 0.0}, 1),
    "huber_kinks": ("huber_loss", RF, [_KINK, _Y], {"delta": 0.5}, 1),
    "kl_zero_and_negative_target": ("kl_div", RF, [-np.ones(4), np.array([0.0, -0.5, 0.5, 1])],
                                    {}, 1),
    "kl_log_target_extremes": ("kl_div", RF, [np.array([-1.0, 2, 0]),
                               np.array([-700.0, 0, 5])], {"log_target": True}, 1),
    "bce_clamp_region": ("binary_cross_entropy", RF, [np.array([0.0, 1e-50, 1e-44, 1 - 1e-17,
                         1.0, 0.5, 0.3]), np.array([0.3, 0.7, 1.0, 0.9, 0.0, 0.5, 1.0])], {}, 1),
    "bce_clamp_weighted": ("binary_cross_entropy", RF, [np.array([0.0, 1.0, 1e-50, 0.7]),
                           np.array([0.5, 0.5, 0.5, 0.5])],
                           {"weight": np.array([0.5, 2.0, 1.5, 1.0])}, 1),
    "bce_logits_extremes": ("binary_cross_entropy_with_logits", RF, [_BIG, _SOFT], {}, 1),
    "bce_logits_pos_weight": ("binary_cross_entropy_with_logits", RF, [_BIG, _SOFT],
                              {"pos_weight": np.array([2.0, 0.5, 3.0, 1.0, 0.2, 4.0]),
                               "weight": np.linspace(0.5, 2, 6)}, 1),
    "cross_entropy_extremes": ("cross_entropy", RF, [_BIG.reshape(2, 3), _SOFT.reshape(2, 3)],
                               {"label_smoothing": 0.2, "weight": np.array([1.0, 2, 0.5])}, 1),
    "cross_entropy_all_smoothed": ("cross_entropy", RF, [_BIG.reshape(2, 3),
                                   _SOFT.reshape(2, 3)], {"label_smoothing": 1.0}, 1),
    "multilabel_soft_margin_extremes": ("multilabel_soft_margin_loss", LF,
                                        [_BIG.reshape(2, 3), _SOFT.reshape(2, 3)], {}, 1),
    "poisson_full_small_counts": ("poisson_nll_loss", LF, [np.array([0.5, -1, 0, 2, 1, 0.3]),
                                  np.array([0.0, 0.5, 1.0, 2.0, -1.0, 1 + 1e-9])],
                                  {"full": True}, 1),
    "poisson_rate_at_minus_eps": ("poisson_nll_loss", LF, [np.array([0.0, -1e-8, -1.0, 1.0]),
                                  np.array([1.0, 2.0, 0.0, 3.0])], {"log_input": False}, 1),
    "poisson_rate_full": ("poisson_nll_loss", LF, [np.array([0.5, 1, 2, 3]),
                          np.array([0.0, 1.0, 1.5, 4.0])], {"log_input": False, "full": True}, 1),
    "gaussian_clamped_var": ("gaussian_nll_loss", LF, [np.array([1.0, 2, 0.5]), np.zeros(3),
                             np.array([0.0, 1e-9, 0.5])], {}, 1),
    "ranking_at_zero": ("margin_ranking_loss", MF, [np.array([1.0, 1, 2, 0]),
                        np.array([1.0, 0.5, 1.5, 0]), np.array([1.0, -1, 1, -1])],
                        {"margin": 0.5}, 2),
}
# fmt: on


def _torch_functional_target_grad(name, inputs, kwargs, target, g) -> tuple[Any, np.ndarray]:
    ts = [torch.tensor(x, requires_grad=i in (0, target)) for i, x in enumerate(inputs)]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        out = getattr(TF, name)(*ts, **_tensors(kwargs, torch.float64))
    out.backward(torch.as_tensor(g))
    return out.detach().numpy(), ts[target].grad.numpy()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("case", sorted(SPECIAL))
def test_special_points_follow_torch(case: str, reduction: str) -> None:
    """Kinks (torch's sign(0) = 0, the hinge passing at exactly 0), BCE's unclamped
    target gradient (inf at 0 and 1, past 100 under e^-100), the nan of a zero KL
    probability and of ``full`` Poisson counts <= 0, inf/nan rates, extreme logits."""
    name, home, inputs, kwargs, target = SPECIAL[case]
    kwargs = {**kwargs, "reduction": reduction}
    out = getattr(home, name)(*inputs, **kwargs)
    g = np.random.default_rng(5).standard_normal(np.shape(out))
    ours = getattr(home, f"{name}_target_backward")(g, *inputs, **kwargs)
    _, theirs = _torch_functional_target_grad(name, inputs, kwargs, target, g)
    comparison = compare_arrays("target grad", ours, theirs, tolerance(np.float64))
    assert comparison.ok, str(comparison)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))


def test_bce_target_grad_at_the_clamp_is_torch_exactly() -> None:
    """At x = 0 and 1 torch's target gradient is -logit(x) g: inf, and nan where g = 0;
    for x = 1e-50 it is 115.13 g where the clamped forward's slope is 100 g."""
    x = np.array([0.0, 0.0, 1.0, 1e-50, 0.25])
    y = np.array([0.5, 0.5, 0.5, 0.5, 0.5])
    g = np.array([1.5, 0.0, 0.7, 1.0, -2.0])
    ours = RF.binary_cross_entropy_target_backward(g, x, y, reduction="none")
    _, theirs = _torch_functional_target_grad("binary_cross_entropy", [x, y], {"reduction":
                                              "none"}, 1, g)  # fmt: skip
    np.testing.assert_array_equal(ours, theirs)
    assert ours[0] == np.inf and np.isnan(ours[1]) and ours[2] == -np.inf
    assert ours[3] == pytest.approx(-np.log(1e-50))  # not the clamped forward's 100


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_zero_counts_and_probabilities_give_torchs_nan(dtype: Any) -> None:
    """Where torch's target gradient is nan (KL at p = 0, full Poisson at y <= 0), ours is
    nan, in float32 as well, with no floating-point error raised."""
    x = np.array([-1.0, 0.5, 2.0], dtype)
    y = np.array([0.0, 0.5, 3.0], dtype)
    g = np.array([0.3, -1.1, 0.8], dtype)
    for home, name, kwargs in ((RF, "kl_div", {}), (LF, "poisson_nll_loss", {"full": True})):
        ours = getattr(home, f"{name}_target_backward")(g, x, y, reduction="none", **kwargs)
        assert ours.dtype == dtype and np.isnan(ours[0]) and np.isfinite(ours[1:]).all()


# -- targets without a gradient, and the one torch refuses --------------------------------


def _torch_refusal(module: Any, inputs: list[np.ndarray], target: int) -> str:
    ts = [torch.tensor(x, requires_grad=i == target) for i, x in enumerate(inputs)]
    with pytest.raises(RuntimeError) as refused:
        module(*ts).backward()
    return str(refused.value)


def test_soft_margin_target_is_refused_like_torch() -> None:
    """torch refuses a SoftMarginLoss target that requires grad; ``target_grad`` raises
    torch's RuntimeError (its first sentence word for word), before and after backward,
    while backward still returns the input's gradient."""
    x, y = np.array([[0.5, -1.0], [2.0, 0.1]]), np.array([[1.0, -1.0], [-1.0, 1.0]])
    message = _torch_refusal(torch.nn.SoftMarginLoss(), [x, y], 1)
    first_sentence = re.escape(message.split(". ")[0])
    assert "target" in first_sentence
    loss = loss_extra_modules.SoftMarginLoss()
    loss(x, y)
    with pytest.raises(RuntimeError, match=first_sentence):
        _ = loss.target_grad
    np.testing.assert_array_equal(loss.backward(), LF.soft_margin_loss_backward(1.0, x, y))
    with pytest.raises(RuntimeError, match=first_sentence):
        _ = loss.target_grad
    assert not hasattr(LF, "soft_margin_loss_target_backward")


_X = np.random.default_rng(8).standard_normal((3, 4))
# fmt: off
NO_GRAD_CASES = {  # module: (constructor kwargs, inputs, the target's position or None)
    "NLLLoss": ({}, [_X, np.array([0, 3, 1])], 1),
    "CrossEntropyLoss": ({"label_smoothing": 0.1}, [_X, np.array([0, 3, 1])], 1),
    "MultiMarginLoss": ({}, [_X, np.array([2, 0, 1])], 1),
    "MultiLabelMarginLoss": ({}, [_X, np.array([[0, 2, -1, 1]] * 3)], 1),
    "HingeEmbeddingLoss": ({}, [_X, np.sign(_X)], 1),
    "CosineEmbeddingLoss": ({"margin": -0.5}, [_X, _X[::-1].copy(), np.array([1.0, -1, 1])], 2),
    "TripletMarginLoss": ({}, [_X, _X[::-1].copy(), _X[:, ::-1].copy()], None),
}
# fmt: on


@pytest.mark.parametrize("name", sorted(NO_GRAD_CASES))
def test_targets_without_a_gradient_are_none_like_torch(name: str) -> None:
    """Class indices (torch: an integer tensor cannot require grad), ±1 labels that only
    select a branch (torch: ``target.grad`` stays None) and no target at all: None."""
    kwargs, inputs, target = NO_GRAD_CASES[name]
    loss = getattr(rnn_home(name), name)(**kwargs)
    loss(*inputs)
    loss.backward()
    assert loss.target_grad is None
    if target is None:
        return
    ts = [torch.tensor(x) for x in inputs]
    if ts[target].is_floating_point():
        ts[0].requires_grad_(True)
        ts[target].requires_grad_(True)
        getattr(torch.nn, name)(**kwargs)(*ts).backward()
        assert ts[0].grad is not None and ts[target].grad is None
    else:
        with pytest.raises(RuntimeError, match="floating point"):
            ts[target].requires_grad_(True)


def test_every_loss_module_is_covered() -> None:
    """Each loss module is in exactly one table: target gradient, none, or refused."""
    names = {
        n
        for home in (loss_modules, loss_extra_modules)
        for n in home.__all__
        if issubclass(getattr(home, n), _Loss)
    }
    tables = [{op.module for op in OPS}, NO_TARGET_GRAD, REFUSED]
    assert sum(len(t) for t in tables) == len(set().union(*tables))
    assert names == set().union(*tables)
    assert NO_TARGET_GRAD | {"CrossEntropyLoss"} == set(NO_GRAD_CASES)  # class indices too


# -- the module's plumbing ---------------------------------------------------------------


def test_target_grad_plumbing() -> None:
    """Read after backward only (a new forward clears it); the last backward's, not
    accumulated; a copy of the upstream gradient is kept; backward's return unchanged."""
    rng = np.random.default_rng(9)
    x, y, y2 = rng.standard_normal((3, 2, 3))
    loss = loss_modules.MSELoss(reduction="none")
    with pytest.raises(RuntimeError, match="before backward"):
        _ = loss.target_grad
    loss(x, y)
    with pytest.raises(RuntimeError, match="before backward"):
        _ = loss.target_grad
    g = rng.standard_normal((2, 3))
    np.testing.assert_array_equal(loss.backward(g), RF.mse_loss_backward(g, x, y, "none"))
    expected = RF.mse_loss_target_backward(g, x, y, "none")
    g[...] = 0  # the caller reuses its array
    np.testing.assert_array_equal(loss.target_grad, expected)
    loss.backward(2 * expected)  # a second backward: its gradient, not a sum
    np.testing.assert_array_equal(loss.target_grad, -2 * (x - y) * 2 * expected)
    loss(x, y2)
    with pytest.raises(RuntimeError, match="before backward"):
        _ = loss.target_grad
    mean = loss_modules.CrossEntropyLoss()
    probs = rng.random((2, 3))
    mean(x, probs)
    mean.backward()  # the implied upstream 1 of a scalar loss
    np.testing.assert_array_equal(
        mean.target_grad, RF.cross_entropy_target_backward(np.ones(()), x, probs)
    )
    gaussian = loss_extra_modules.GaussianNLLLoss()
    var = rng.uniform(0.5, 2, (2, 3))
    gaussian(x, y, var)
    grads = gaussian.backward()
    np.testing.assert_array_equal(gaussian.target_grad, grads[1])


def test_cross_entropy_target_backward_refuses_class_indices() -> None:
    with pytest.raises(TypeError, match="class-index targets"):
        RF.cross_entropy_target_backward(np.ones(()), _X, np.array([0, 1, 2]))
