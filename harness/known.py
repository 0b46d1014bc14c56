"""Where torch itself departs from the math: found by this harness, verified by hand.

Each deviation is part of the error model, not an exemption: it names the dtype, the
site of torch's run where the error enters (``harness.backends.reference.Site``: a
layer's backward, an optimizer's moments) and its size, relative to the values there.
``harness.bounds`` perturbs that site by that size when it samples the torch side's
allowance, so the deviation is allowed on its own tensor and on everything that
inherits it (the gradients below, the steps), and not a bit more: a CELU whose alpha is
off by 3e-5, or an Adam step 1e-5 too long after a CELU, is still a finding.

A tensor that torch gets beyond the plain allowance but within the one widened by a
deviation goes to ``Report.known``: printed, counted apart, not a failure.
tests/differential/test_networks.py pins each one with its minimal case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backends.reference import Site
from .dtypes import max_finite
from .spec import LayerSpec, NetworkSpec

__all__ = [
    "KNOWN_TORCH_DEVIATIONS",
    "KNOWN_TORCH_LOSS_DEVIATIONS",
    "KNOWN_TORCH_OPTIMIZER_DEVIATIONS",
    "KnownDeviation",
    "deviations",
    "extra_sites",
    "overflow_of",
]

# float32's unit roundoff: the size of an error made by rounding a constant to float32
_FLOAT32_ROUNDING = 2.0**-24


@dataclass(frozen=True)
class KnownDeviation:
    why: str
    example: LayerSpec  # a minimal layer (or optimizer) showing it
    sites: tuple[Site, ...]  # where torch's error enters its run
    size: dict[str, float]  # by dtype: relative to the values at those sites...
    # ... or, when set, to the layer's input (at its output) and to the gradient flowing
    # into it (at its input gradient): an error that is absolute, not relative
    of_basis: bool = False
    # torch's value may be NaN or inf where the dtype's own rounding histories are (the
    # formula, computed in the dtype, divides 0 by 0): nothing bounds the error there
    non_finite: bool = False
    # whether it applies to a layer's or an optimizer's arguments in a dtype (default:
    # the example's string arguments, which select a code path, match)
    applies: Callable[[dict[str, Any], str], bool] | None = None
    # a loss formula that leaves the dtype's range where the math does not: (loss input,
    # target, dtype) -> where torch's loss is inf and its gradient NaN
    overflows: Callable[[np.ndarray, np.ndarray, str], np.ndarray] | None = None
    # in the case that pins it (tests/differential/test_networks.py), the layer before the
    # example, which brings its input to where the deviation shows
    before: LayerSpec = field(default_factory=lambda: LayerSpec("LogSoftmax", {"dim": 1}))

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(self.size)


KNOWN_TORCH_DEVIATIONS = {
    "Hardsigmoid": KnownDeviation(
        "torch's float64 hardsigmoid backward multiplies by the float32 constant 1.0f/6.0f "
        "(0.1666666716337204): 3e-8 relative (aten/src/ATen/native/cpu/Activation.cpp)",
        LayerSpec("Hardsigmoid"),
        (Site.GRAD_INPUT,),
        {"float64": 3e-8},  # |6 * fl32(1/6) - 1| = 2.98e-8
    ),
    "CELU": KnownDeviation(
        "torch's celu backward is elu_backward(grad, alpha, 1, 1.0/alpha.toFloat(), ...): "
        "alpha is rounded to float32 before inverting (tools/autograd/derivatives.yaml); "
        "up to 6e-8 relative for an alpha that float32 cannot represent",
        LayerSpec("CELU", {"alpha": 1.137}),
        (Site.GRAD_INPUT,),
        {"float64": _FLOAT32_ROUNDING},
    ),
    "GELU": KnownDeviation(
        "torch's GELU is x * 0.5 * (1 + erf(x / sqrt(2))) (approximate='none') or "
        "x * 0.5 * (1 + tanh(...)) ('tanh'), with an erf or tanh accurate to a few units of "
        "1.0, so for x < 0, where the sum cancels, its error is absolute in x, not relative: "
        "measured over x in [-12, 12] against mpmath, forward at most 4.95 u|x| ('none') and "
        "1.6 u|x| ('tanh') in float32, 2.0 u|x| in float64; backward at most 4.0 u|grad| "
        "('none') and 17 u|grad| ('tanh') in float32, 2.0 and 44 u|grad| in float64 (the "
        "reference rounds the CDF once, after the sum)",
        LayerSpec("GELU"),
        (Site.OUTPUT, Site.GRAD_INPUT),
        {"float32": 17 * _FLOAT32_ROUNDING, "float64": 44 * 2.0**-53},
        of_basis=True,
    ),
    "Tanhshrink": KnownDeviation(
        "torch's tanhshrink is input - input.tanh() (torch/nn/functional.py), so near 0, "
        "where the two cancel, its error is absolute in x, not relative: measured over x in "
        "[-12, 12] and |x| in [1e-6, 1] against mpmath, forward at most 0.97 u|x| in "
        "float32, 0.98 u|x| in float16 and 1.78 u|x| in float64 (1.7e7 u of the output in "
        "float32 at x = 1e-6; the reference sums the series there); its backward, "
        "g * tanh(x)^2, is accurate",
        LayerSpec("Tanhshrink"),
        (Site.OUTPUT,),
        {"float32": 2 * _FLOAT32_ROUNDING, "float16": 2 * 2.0**-11, "float64": 2 * 2.0**-53},
        of_basis=True,
        # inputs of +-0.01 (and between): where the difference cancels, over the whole tensor
        before=LayerSpec("Hardtanh", {"min_val": -0.01, "max_val": 0.01}),
    ),
}


def _eps_vanishes(kwargs: dict[str, Any], dtype: str, default: float = 1e-8) -> bool:
    """The optimizer's eps rounds to 0 in ``dtype`` (float16: below 3e-8)."""
    return dtype == "float16" and float(np.float16(kwargs.get("eps", default))) == 0.0


def _eps_underflow(optimizer: str, default: float = 1e-8) -> KnownDeviation:
    return KnownDeviation(
        f"torch's {optimizer} adds eps to the denominator in the parameter's dtype, and in "
        f"float16 eps={default:g} rounds to 0 (float16's smallest subnormal is 6e-8): an "
        "element whose second moment is 0 (a zero gradient: an unused embedding row, a "
        "dead unit) or underflows (|grad| < 2.4e-4) steps by 0/0 = NaN or m/0 = inf "
        "(pytorch/pytorch#147437, open; the reference in float16 does the same: it is the "
        "formula in that dtype)",
        LayerSpec(optimizer, {"eps": default}),
        (Site.UPDATE,),
        {"float16": 0.0},
        non_finite=True,
        applies=lambda kwargs, dtype: _eps_vanishes(kwargs, dtype, default),
    )


# in float16, an eps that rounds to 0 (RAdam's rectified steps and Adadelta's 1e-6 do not)
_EPS_UNDERFLOW = {
    name: (_eps_underflow(name, default),)
    for name, default in (
        ("Adam", 1e-8),
        ("AdamW", 1e-8),
        ("Adamax", 1e-8),
        ("RMSprop", 1e-8),
        ("Adagrad", 1e-10),
    )
}


KNOWN_TORCH_OPTIMIZER_DEVIATIONS: dict[str, tuple[KnownDeviation, ...]] = {
    **_EPS_UNDERFLOW,
    "NAdam": (
        _eps_underflow("NAdam"),
        KnownDeviation(
            "torch keeps NAdam's mu_product (and step) in torch's *default* dtype, float32, "
            "even for float64 parameters (torch/optim/optimizer.py _get_scalar_dtype): "
            "each term of the update off by up to 1.3e-8 relative (measured over 200 steps)",
            LayerSpec("NAdam", {"lr": 0.03}),
            # the coefficients of the gradient and of the first moment in the update: at
            # step 1 the update itself (Adam-type normalization makes it blind to a relative
            # change of the gradient), later the gradient and the moments it reads
            (Site.UPDATE, Site.OPTIMIZER_GRAD, Site.STATE),
            {"float64": 2e-8},
        ),
    ),
    "ASGD": (
        KnownDeviation(
            "torch keeps ASGD's eta (the step size, lr / (1 + lambd lr t)^alpha) and mu (the "
            "averaging weight) as tensors of torch's *default* dtype, float32, even for "
            "float64 parameters (torch/optim/asgd.py, _get_scalar_dtype): the update, "
            "param * (1 - lambd eta) - eta grad, and the average ax are off by up to 6e-8 "
            "relative; found by the fuzz (seed 31: 197 of 2,987 cases), the update's "
            "relative error 3.6e-8 at lr = 0.0731",
            LayerSpec("ASGD", {"lr": 0.0731}),
            (Site.UPDATE, Site.STATE),
            {"float64": 2 * _FLOAT32_ROUNDING},
        ),
    ),
}


def _soft_margin_overflows(input: np.ndarray, target: np.ndarray, dtype: str) -> np.ndarray:
    """Where exp(-y x) is past the dtype's largest finite value."""
    with np.errstate(over="ignore", invalid="ignore"):
        return -np.asarray(target, np.float64) * np.asarray(input, np.float64) > np.log(
            max_finite(dtype)
        )


KNOWN_TORCH_LOSS_DEVIATIONS = {
    "SoftMarginLoss": KnownDeviation(
        "torch's soft_margin_loss is log1p(exp(-y x)) unstabilized (aten's SoftMarginLoss "
        "kernels), so for y x below -log(max) (-88.7 in float32, -709.8 in float64) its "
        "loss is inf where the math gives about -y x, and its gradient -y z / (1 + z), "
        "z = inf, is NaN where the math gives -y: F.soft_margin_loss(tensor([-100.]), "
        "tensor([1.])) is inf, gradient nan, in float32 (100.0 and -1.0 in float64); found "
        "by the fuzz after a diverging SGD run (seed 35)",
        LayerSpec("SoftMarginLoss"),
        (),
        {"float32": 0.0, "float16": 0.0, "float64": 0.0},
        non_finite=True,
        overflows=_soft_margin_overflows,
    ),
}


def overflow_of(spec: NetworkSpec, dtype: str) -> Callable[..., np.ndarray] | None:
    """The loss formula's overflow mask of a known deviation of ``spec``'s loss in
    ``dtype``, if one applies (``KnownDeviation.overflows``)."""
    known = KNOWN_TORCH_LOSS_DEVIATIONS.get(spec.loss.type)
    if known is None or known.overflows is None or not _applies(known, spec.loss, dtype):
        return None
    return known.overflows


def deviations(spec: NetworkSpec, dtype: str) -> list[tuple[KnownDeviation, int | None]]:
    """The known deviations that apply to torch's run of ``spec`` in ``dtype``, each with
    the layer it sits at (``None``: the optimizer, at every layer)."""
    found: list[tuple[KnownDeviation, int | None]] = []
    for index, layer in enumerate(spec.layers):
        known = KNOWN_TORCH_DEVIATIONS.get(layer.type)
        if known and _applies(known, layer, dtype):
            found.append((known, index))
    loss = KNOWN_TORCH_LOSS_DEVIATIONS.get(spec.loss.type)
    if loss is not None and _applies(loss, spec.loss, dtype):
        found.append((loss, None))
    if spec.optimizer is not None and spec.steps > 0:
        for known in KNOWN_TORCH_OPTIMIZER_DEVIATIONS.get(spec.optimizer.type, ()):
            if _applies(known, spec.optimizer, dtype):
                found.append((known, None))
    return found


def _applies(known: KnownDeviation, layer: LayerSpec, dtype: str) -> bool:
    """``known`` is scoped to ``dtype``, and its own test passes (by default: the example's
    arguments that select the code path, GELU's ``approximate``, match)."""
    if dtype not in known.dtypes:
        return False
    if known.applies is not None:
        return known.applies(dict(layer.kwargs), dtype)
    return all(
        layer.kwargs.get(k, v) == v for k, v in known.example.kwargs.items() if isinstance(v, str)
    )


def extra_sites(spec: NetworkSpec, dtype: str) -> dict[tuple[Site, int | None], tuple]:
    """``harness.bounds.Perturbation.extra`` for torch's known deviations in ``spec``:
    ``(site, layer) -> (relative size, size relative to the basis)``."""
    extra: dict[tuple[Site, int | None], tuple] = {}
    for known, layer in deviations(spec, dtype):
        for site in known.sites:
            relative, of_basis = extra.get((site, layer), (0.0, 0.0))
            if known.of_basis:
                of_basis += known.size[dtype]
            else:
                relative += known.size[dtype]
            extra[(site, layer)] = (relative, of_basis)
    return extra
