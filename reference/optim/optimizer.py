"""``Optimizer``: parameter groups, per-parameter state and their ``state_dict``.

An optimizer holds the ``Parameter`` objects of a model in *parameter groups*:
a list of dicts, each with its ``"params"`` and its own options (``lr``,
``momentum``...); options a group leaves out come from the constructor's
``defaults``. ``step()`` visits every parameter whose ``grad`` is not ``None``
(a parameter that took no part in the loss is skipped, as in torch) and updates
``param.data`` in place from ``param.grad`` and the parameter's entry in
``state`` (moment estimates, step counters). The update itself is one method per
optimizer, ``_update(param, grad, state, group)``: the rule for a single tensor,
written in the order torch's ``_single_tensor_*`` functions apply it.

``state_dict()`` is torch's format, so a learner can read both side by side::

    {"state": {0: {"step": 3.0, "exp_avg": ..., ...}, ...},
     "param_groups": [{"lr": 0.001, ..., "params": [0, 1]}, ...]}

Parameters are numbered in group order; ``state`` only lists parameters that
have state. One difference from torch: torch keeps ``step`` (and NAdam's
``mu_product``, ASGD's ``eta`` and ``mu``) as 0-d tensors; here they are Python
floats (``SCALAR_STATE_KEYS``). Every other array in the state is a buffer shaped
like its parameter, a 0-d parameter's included, and stays an array.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd.tensor import Tensor
from ..nn.module import Parameter

__all__ = ["Optimizer"]

# The state entries that are scalar bookkeeping, not buffers: Python numbers here,
# 0-d tensors (or ints: L-BFGS's counters) in torch. ``load_state_dict`` turns a
# saved 0-d value under one of these keys into a Python number and leaves every
# other array an array, so a 0-d parameter's moments stay 0-d arrays updated in place.
SCALAR_STATE_KEYS = frozenset({"step", "eta", "mu", "mu_product", "func_evals", "n_iter"})


def check_option(ok: bool, optimizer: str, message: str) -> None:
    """Raise ``ValueError("<optimizer>: <message>")`` unless ``ok`` (torch's argument checks)."""
    if not ok:
        raise ValueError(f"{optimizer}: {message}")


def check_lr(lr: float, optimizer: str) -> None:
    check_option(lr >= 0.0, optimizer, f"Invalid learning rate: {lr} (lr must be >= 0)")


def check_nonnegative(value: float, name: str, optimizer: str) -> None:
    check_option(value >= 0.0, optimizer, f"Invalid {name} value: {value} ({name} must be >= 0)")


def check_betas(betas: tuple[float, float], optimizer: str) -> None:
    for index, beta in enumerate(betas):
        check_option(
            0.0 <= beta < 1.0,
            optimizer,
            f"Invalid beta parameter at index {index}: {beta} (each beta must be in [0, 1))",
        )


def lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start += weight * (end - start)`` in place, as ``torch.Tensor.lerp_`` rounds it.

    Torch switches to ``end - (end - start) * (1 - weight)`` for ``weight >= 0.5``
    so that ``weight = 1`` lands on ``end`` exactly; the two are the same number
    up to rounding.
    """
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1.0 - weight)


def init_state(state: dict[str, Any], param: Parameter, *buffers: str, **scalars: float) -> None:
    r""":math:`t = 0`, then ``scalars``, then zero ``buffers`` shaped like :math:`\theta`.

    Torch's lazy state initialisation at a parameter's first step, keys in torch's order.
    """
    state["step"] = 0.0
    state.update(scalars)
    for name in buffers:
        state[name] = np.zeros_like(param.data)


def decay_weight(
    param: Parameter, grad: np.ndarray, lr: float, weight_decay: float, decoupled: bool
) -> np.ndarray:
    r""":math:`g + \lambda\theta` (L2, coupled) or :math:`\theta \leftarrow \theta(1 - \eta\lambda)`
    (decoupled, AdamW).

    Returns the gradient to use from here on (unchanged when decoupled or
    ``weight_decay == 0``); decoupled decay scales ``param.data`` in place.
    """
    if weight_decay != 0:
        if decoupled:
            param.data *= 1 - lr * weight_decay
        else:
            grad = grad + weight_decay * param.data
    return grad


def square_avg_(avg: np.ndarray, value: np.ndarray, beta: float) -> None:
    r""":math:`v \leftarrow \beta v + (1-\beta) x^2`, in place on ``avg`` (:math:`v`)."""
    avg *= beta
    with np.errstate(over="ignore"):  # a gradient past sqrt(max) squares to inf, as in torch
        avg += (1 - beta) * value * value


def update_moments(
    state: dict[str, Any], grad: np.ndarray, beta1: float, beta2: float
) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`m \leftarrow \beta_1 m + (1-\beta_1) g,\ v \leftarrow \beta_2 v + (1-\beta_2) g^2`.

    In place on ``state["exp_avg"]`` (:math:`m`) and ``state["exp_avg_sq"]``
    (:math:`v`); returns ``(m, v)``.
    """
    exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
    lerp_(exp_avg, grad, 1 - beta1)
    square_avg_(exp_avg_sq, grad, beta2)
    return exp_avg, exp_avg_sq


def grad_of(param: Any) -> Any:
    """A parameter's gradient as the update rules read it: a ``Parameter``'s array (or
    SparseRows), a leaf Tensor's ``grad.data``; ``None`` if it has none. The step writes
    ``param.data`` in place either way."""
    grad = param.grad
    return grad.data if isinstance(grad, Tensor) else grad


class Optimizer:
    """Base class of every optimizer (``torch.optim.Optimizer``).

    ``params`` is an iterable of ``Parameter`` (a generator such as
    ``model.parameters()`` works) or of dicts, one per parameter group, each
    with a ``"params"`` entry and any options that override ``defaults``.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]):
        if isinstance(params, Parameter):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Parameters or of dicts, "
                "got a single Parameter; pass [param] instead"
            )
        self.defaults = dict(defaults)
        # keyed by the Parameter object itself, as torch keys by the tensor
        self.state: defaultdict[Parameter, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(
                f"{type(self).__name__}: optimizer got an empty parameter list; pass the "
                "model's parameters, e.g. model.parameters()"
            )
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Append a group; options it does not set are taken from ``defaults``."""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: a parameter group must be a dict, got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"{name}: parameters must be in an ordered collection (a list), not a set: the "
                "order of a set changes between runs"
            )
        group = dict(param_group)
        group["params"] = list(params)
        for param in group["params"]:
            if isinstance(param, Tensor) and not param.is_leaf:
                raise ValueError(f"{name}: can't optimize a non-leaf Tensor")
            if not isinstance(param, (Parameter, Tensor)):
                raise TypeError(
                    f"{name} can only optimize Parameters (or leaf Tensors), but one of the "
                    f"params is a {type(param).__name__}"
                )
        for key, default in self.defaults.items():
            group.setdefault(key, default)
        if len({id(p) for p in group["params"]}) != len(group["params"]):
            warnings.warn(
                f"{name}: a parameter group contains a parameter twice; it will be updated "
                "twice per step (torch warns the same and will make this an error)",
                UserWarning,
                stacklevel=3,
            )
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in seen for p in group["params"]):
            raise ValueError(f"{name}: some parameters appear in more than one parameter group")
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every gradient: ``None`` (default, as torch) or zeros of the same shape."""
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if set_to_none:
                    param.grad = None
                else:
                    grad_of(param)[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.

        ``closure`` (optional) re-evaluates the model: zero the gradients, run
        forward and backward, return the loss. It is called before the update.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                self._update(param, grad_of(param), self.state[param], group)
        return loss

    def _update(
        self, param: Parameter, grad: Any, state: dict[str, Any], group: dict[str, Any]
    ) -> None:  # grad: an ndarray (SparseAdam's: a SparseRows)
        raise NotImplementedError(f"{type(self).__name__} does not implement _update()")

    # -- checkpoints ----------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Torch's layout with parameters replaced by their index (deep copies, not views)."""
        index: dict[int, int] = {}
        param_groups = []
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            for param in group["params"]:
                index.setdefault(id(param), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            param_groups.append(packed)
        state = {
            index[id(param)]: copy.deepcopy(value)
            for param, value in self.state.items()
            if value and id(param) in index
        }
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore groups and state saved by ``state_dict()`` (ours or torch's).

        The saved groups must match this optimizer's in number and size.
        The scalar bookkeeping (``SCALAR_STATE_KEYS``: ``step``, ASGD's ``eta``...)
        becomes Python numbers; every other array, 0-d or not, stays an array
        (floating ones cast to their parameter's dtype, as torch casts all but
        ``step``).
        """
        name = type(self).__name__
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}: loaded state dict has {len(saved_groups)} parameter group(s), the "
                f"optimizer has {len(self.param_groups)}"
            )
        for i, (saved, own) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(own["params"]):
                raise ValueError(
                    f"{name}: loaded state dict's parameter group {i} has "
                    f"{len(saved['params'])} parameters, the optimizer's has {len(own['params'])}"
                )
        by_index = {
            saved_id: param
            for saved, own in zip(saved_groups, self.param_groups)
            for saved_id, param in zip(saved["params"], own["params"])
        }
        self.state = defaultdict(dict)
        for key, value in state_dict["state"].items():
            param = by_index.get(key)
            if param is not None:
                self.state[param] = _restore(value, param.dtype)
        for saved, own in zip(saved_groups, self.param_groups):
            saved["params"] = own["params"]
        self.param_groups = saved_groups

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {key}: {group[key]}" for key in sorted(group) if key != "params"]
        return "\n".join(lines) + "\n)"


def _restore(value: Any, dtype: np.dtype, key: Any = None) -> Any:
    """A deep copy of one saved state value, arrays (or torch tensors) as NumPy.

    ``key`` is the state entry's name (torch's ``_cast`` passes it the same way:
    a dict's keys to its values, none into lists); a 0-d value under a
    ``SCALAR_STATE_KEYS`` key becomes a Python number, any other array keeps its
    shape (0-d included) and takes ``dtype`` if floating.
    """
    if isinstance(value, dict):
        return {k: _restore(v, dtype, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_restore(v, dtype) for v in value)
    if hasattr(value, "__array__"):
        array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
        if array.ndim == 0 and key in SCALAR_STATE_KEYS:
            return array.item()
        return np.array(array, dtype=dtype if array.dtype.kind == "f" else array.dtype)
    return copy.deepcopy(value)
