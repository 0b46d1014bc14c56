"""The training end of a generated spec: a loss with a valid target, and an optimizer.

``LOSSES`` maps a loss to a maker ``(chooser, classes) -> (LayerSpec, target, final)``
and whether it needs a ``(N, C)`` output; ``final`` names the layer the loss needs
in front of it (``LogSoftmax`` for NLL and KLDiv, ``Sigmoid`` for BCELoss).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .chooser import Chooser, Limits
from .spec import LayerSpec, _accepts

__all__ = ["LOSSES", "propose_optimizer"]


# -- losses and their targets -------------------------------------------------
def _reduction(ch: Chooser, extra: Sequence[str] = ()) -> str:
    return ch.choice(["mean", "sum", "none", *extra])


def _class_weights(ch: Chooser, n: int) -> list[float] | None:
    return [ch.real(0.1, 2.0) for _ in range(n)] if ch.boolean(0.3) else None


def _loss_cross_entropy(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    if ch.boolean(0.7):
        ignore = ch.choice([-100, ch.integer(0, classes - 1)])
        target = {
            "kind": "class_index",
            "num_classes": classes,
            "ignore_fraction": ch.choice([0.0, 0.25]),
        }
        kwargs = {"ignore_index": ignore}
    else:
        target, kwargs = {"kind": "probabilities", "dim": 1}, {}
    kwargs.update(
        reduction=_reduction(ch),
        label_smoothing=ch.choice([0.0, ch.real(0.0, 0.5)]),
        weight=_class_weights(ch, classes),
    )
    return LayerSpec("CrossEntropyLoss", kwargs), target, None


def _loss_nll(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    kwargs = {
        "reduction": _reduction(ch),
        "weight": _class_weights(ch, classes),
        "ignore_index": ch.choice([-100, ch.integer(0, classes - 1)]),
    }
    target = {
        "kind": "class_index",
        "num_classes": classes,
        "ignore_fraction": ch.choice([0.0, 0.25]),
    }
    return LayerSpec("NLLLoss", kwargs), target, "LogSoftmax"


def _loss_bce(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    kwargs = {"reduction": _reduction(ch), "weight": _class_weights(ch, classes)}
    return LayerSpec("BCELoss", kwargs), {"kind": "unit_interval"}, "Sigmoid"


def _loss_bce_logits(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    pos = [ch.real(0.2, 3.0) for _ in range(classes)] if ch.boolean(0.4) else None
    kwargs = {"reduction": _reduction(ch), "weight": _class_weights(ch, classes), "pos_weight": pos}
    return LayerSpec("BCEWithLogitsLoss", kwargs), {"kind": "binary"}, None


def _loss_kldiv(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    log_target = ch.boolean()
    kwargs = {"reduction": _reduction(ch, ["batchmean"]), "log_target": log_target}
    kind = "log_probabilities" if log_target else "probabilities"
    return LayerSpec("KLDivLoss", kwargs), {"kind": kind, "dim": 1}, "LogSoftmax"


def _loss_regression(name: str) -> Callable[[Chooser, int], tuple[LayerSpec, dict, str | None]]:
    def make(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
        kwargs: dict[str, Any] = {"reduction": _reduction(ch)}
        if name == "SmoothL1Loss":
            kwargs["beta"] = ch.choice([1.0, ch.real(0.1, 2.0)])
        if name == "HuberLoss":
            kwargs["delta"] = ch.choice([1.0, ch.real(0.1, 2.0)])
        return LayerSpec(name, kwargs), {"kind": "regression"}, None

    return make


def _loss_sign(name: str) -> Callable[[Chooser, int], tuple[LayerSpec, dict, str | None]]:
    """A loss of +-1 labels, any shape: SoftMarginLoss, HingeEmbeddingLoss (a margin)."""

    def make(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
        kwargs: dict[str, Any] = {"reduction": _reduction(ch)}
        if name == "HingeEmbeddingLoss":
            kwargs["margin"] = ch.choice([1.0, ch.real(0.1, 2.0)])
        return LayerSpec(name, kwargs), {"kind": "sign"}, None

    return make


def _loss_poisson(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    log_input = ch.boolean(0.7)
    kwargs = {"log_input": log_input, "full": ch.boolean(0.3), "reduction": _reduction(ch)}
    # a rate itself (log_input=False) must be positive: a Softplus in front
    final = None if log_input else "Softplus"
    return LayerSpec("PoissonNLLLoss", kwargs), {"kind": "counts"}, final


def _loss_multi_margin(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
    kwargs = {
        "p": ch.choice([1, 2]),
        "margin": ch.choice([1.0, ch.real(0.1, 2.0)]),
        "weight": _class_weights(ch, classes),
        "reduction": _reduction(ch),
    }
    target = {"kind": "class_index", "num_classes": classes, "ignore_fraction": 0.0}
    return LayerSpec("MultiMarginLoss", kwargs), target, None


def _loss_multilabel(name: str) -> Callable[[Chooser, int], tuple[LayerSpec, dict, str | None]]:
    """MultiLabelMarginLoss (class lists ended by -1), MultiLabelSoftMarginLoss (0/1)."""

    def make(ch: Chooser, classes: int) -> tuple[LayerSpec, dict, str | None]:
        kwargs: dict[str, Any] = {"reduction": _reduction(ch)}
        if name == "MultiLabelSoftMarginLoss":
            kwargs["weight"] = _class_weights(ch, classes)
            return LayerSpec(name, kwargs), {"kind": "binary"}, None
        return LayerSpec(name, kwargs), {"kind": "label_lists"}, None

    return make


# name -> (maker, needs a (N, C) output)
LOSSES: dict[str, tuple[Callable[[Chooser, int], tuple[LayerSpec, dict, str | None]], bool]] = {
    "MSELoss": (_loss_regression("MSELoss"), False),
    "L1Loss": (_loss_regression("L1Loss"), False),
    "SmoothL1Loss": (_loss_regression("SmoothL1Loss"), False),
    "HuberLoss": (_loss_regression("HuberLoss"), False),
    "CrossEntropyLoss": (_loss_cross_entropy, True),
    "NLLLoss": (_loss_nll, True),
    "BCELoss": (_loss_bce, True),
    "BCEWithLogitsLoss": (_loss_bce_logits, True),
    "KLDivLoss": (_loss_kldiv, True),
    "SoftMarginLoss": (_loss_sign("SoftMarginLoss"), False),
    "HingeEmbeddingLoss": (_loss_sign("HingeEmbeddingLoss"), False),
    "PoissonNLLLoss": (_loss_poisson, False),
    "MultiMarginLoss": (_loss_multi_margin, True),
    "MultiLabelMarginLoss": (_loss_multilabel("MultiLabelMarginLoss"), True),
    "MultiLabelSoftMarginLoss": (_loss_multilabel("MultiLabelSoftMarginLoss"), True),
}


# -- optimizers -----------------------------------------------------------------
def propose_optimizer(ch: Chooser, limits: Limits) -> LayerSpec | None:
    import reference.optim as ropt

    names = [
        n
        for n in (
            "SGD",
            "Adam",
            "AdamW",
            "RMSprop",
            "Adagrad",
            "Adadelta",
            "Adamax",
            "NAdam",
            "RAdam",
            "ASGD",
            "Rprop",
            "Adafactor",
        )
        if getattr(ropt, n, None) is not None
        and (limits.optimizers is None or n in limits.optimizers)
        and n not in limits.exclude
    ]
    if not names or limits.max_steps < 1 or ch.boolean(0.15):
        return None
    name = ch.choice(names)
    wd = ch.choice([0.0, ch.real(1e-4, 0.1)])
    maximize = ch.boolean(0.2)
    if name == "SGD":
        momentum = ch.choice([0.0, 0.9, ch.real(0.1, 0.99)])
        kwargs: dict[str, Any] = {
            "lr": ch.real(1e-3, 0.1),
            "momentum": momentum,
            "weight_decay": wd,
            "maximize": maximize,
        }
        if momentum and ch.boolean(0.3):
            kwargs["nesterov"] = True  # needs momentum > 0 and dampening 0 (the default)
    elif name == "RMSprop":
        kwargs = {
            "lr": ch.real(1e-4, 0.05),
            "alpha": ch.choice([0.99, ch.real(0.5, 0.99)]),
            "weight_decay": wd,
            "momentum": ch.choice([0.0, 0.9]),
            "centered": ch.boolean(0.3),
            "maximize": maximize,
        }
    elif name == "Adagrad":
        kwargs = {
            "lr": ch.real(1e-3, 0.1),
            "lr_decay": ch.choice([0.0, 0.01]),
            "weight_decay": wd,
            "initial_accumulator_value": ch.choice([0.0, 0.1]),
            "maximize": maximize,
        }
    elif name in _MORE:
        kwargs = _MORE[name](ch, wd, maximize)
    elif name == "Adadelta":
        kwargs = {
            "lr": ch.choice([1.0, ch.real(0.1, 1.0)]),
            "rho": ch.choice([0.9, 0.5]),
            "weight_decay": wd,
            "maximize": maximize,
        }
    else:  # the Adam family
        betas = (ch.choice([0.9, ch.real(0.5, 0.95)]), ch.choice([0.999, ch.real(0.9, 0.999)]))
        kwargs = {
            "lr": ch.real(1e-4, 0.05),
            "betas": betas,
            "eps": ch.choice([1e-8, 1e-3]),
            "weight_decay": wd if name != "AdamW" else ch.choice([0.01, ch.real(0, 0.1)]),
            "maximize": maximize,
        }
        if name in ("Adam", "AdamW"):
            kwargs["amsgrad"] = ch.boolean(0.3)
    # torch's implementation paths: the for-loop, foreach and (where it has one) fused;
    # the reference has one path and takes the flags so the same spec runs on both
    path = ch.choice([None, "foreach", "fused"])
    if path is not None:
        kwargs[path] = True
    cls = getattr(ropt, name)
    kwargs = {k: v for k, v in kwargs.items() if _accepts(cls, k)}
    return LayerSpec(name, kwargs)


def _asgd(ch: Chooser, wd: float, maximize: bool) -> dict[str, Any]:
    return {
        "lr": ch.real(1e-3, 0.1),
        "lambd": ch.choice([1e-4, ch.real(1e-4, 0.1)]),
        "alpha": ch.choice([0.75, ch.real(0.5, 1.0)]),
        "t0": ch.choice([1e6, float(ch.integer(0, 2))]),  # averaging from step t0 on
        "weight_decay": wd,
        "maximize": maximize,
    }


def _rprop(ch: Chooser, wd: float, maximize: bool) -> dict[str, Any]:
    return {
        "lr": ch.real(1e-3, 0.1),
        "etas": (ch.choice([0.5, ch.real(0.1, 0.9)]), ch.choice([1.2, ch.real(1.05, 2.0)])),
        "step_sizes": (1e-6, ch.choice([50.0, ch.real(0.01, 1.0)])),
        "maximize": maximize,
    }


def _adafactor(ch: Chooser, wd: float, maximize: bool) -> dict[str, Any]:
    return {
        "lr": ch.real(1e-3, 0.1),
        "beta2_decay": ch.choice([-0.8, ch.real(-1.0, -0.5)]),
        "d": ch.choice([1.0, ch.real(1.0, 2.0)]),  # torch: a clipping threshold >= 1
        "weight_decay": wd,
        "maximize": maximize,
    }


_MORE = {"ASGD": _asgd, "Rprop": _rprop, "Adafactor": _adafactor}


def propose_sparse_adam(ch: Chooser, limits: Limits) -> LayerSpec | None:
    """SparseAdam, for a network whose only parameters are a sparse Embedding's (torch's
    SparseAdam refuses a dense gradient); None where the limits leave it out."""
    import reference.optim as ropt

    allowed = limits.optimizers is None or "SparseAdam" in limits.optimizers
    if getattr(ropt, "SparseAdam", None) is None or not allowed or "SparseAdam" in limits.exclude:
        return None
    return LayerSpec(
        "SparseAdam",
        {
            "lr": ch.real(1e-3, 0.1),
            "betas": ch.choice([(0.9, 0.999), (ch.real(0.5, 0.95), ch.real(0.9, 0.999))]),
            "maximize": ch.boolean(0.2),
        },
    )
