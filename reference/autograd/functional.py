r"""Every ``reference.functional`` forward/backward pair, called on Tensors, records itself.

``reference.functional.conv2d(x, w, b, stride=2)`` with any of ``x, w, b`` a
:class:`~reference.autograd.Tensor` runs ``conv2d`` on the arrays and records one node
whose backward calls the hand-written ``conv2d_backward`` with the same arguments: the
tape composes the pairs, it never re-derives them. On plain arrays the function is the
pair's forward itself, behind one type check per argument.

What a backward returns is mapped onto the forward's parameters by :data:`GRADIENTS`
(``linear_backward`` returns ``(grad_input, grad_weight, grad_bias)``, so ``linear`` ->
``("input", "weight", "bias")``); a backward that returns one array gives ``input``'s.
A nested argument is named by its path: ``lstm_cell``'s ``hx = (h, c)`` is
``"hx.0", "hx.1"``. A loss whose target requires a gradient gets it from
``<loss>_target_backward`` where the family has one. A Tensor that requires a gradient
the pair does not compute raises at the call, never a silent zero.

A few pairs need more than the forward's arguments: the forward's output (softmax,
sigmoid, tanh), its indices (max pooling), the random mask or noise it drew (dropout,
alpha dropout, rrelu, attention dropout: drawn once, used by forward and backward), the
input's shape (flatten). :data:`ADAPTERS` names them; ``rnn_layers`` stays array-only
(:data:`ARRAY_ONLY`): call ``reference.nn.RNN``/``LSTM``/``GRU`` on Tensors instead.

Imports: ``reference.autograd``'s ops import ``reference.functional`` submodules, whose
package ``__init__`` calls :func:`tape_pairs`; so this module imports only the tape core
(``.graph``, ``.tensor``) at the top, and the family files inside the adapters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .graph import Function, FunctionCtx
from .tensor import Tensor

__all__ = ["GRADIENTS", "NO_GRADIENT", "NESTED", "ARRAY_ONLY", "ADAPTERS", "taped", "tape_pairs",
           "paired_names"]  # fmt: skip

_IWB = ("input", "weight", "bias")
_CELL = ("input", "hx", "w_ih", "w_hh", "b_ih", "b_hh")

GRADIENTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(
        (
            "linear conv1d conv2d conv3d conv_transpose1d conv_transpose2d "
            "conv_transpose3d batch_norm instance_norm group_norm layer_norm"
        ).split(),
        _IWB,
    ),  # fmt: skip
    "rms_norm": ("input", "weight"),
    "prelu": ("input", "weight"),
    "bilinear": ("input1", "input2", "weight", "bias"),
    "embedding": ("input", "weight"),
    "embedding_bag": ("input", "weight", "per_sample_weights"),
    "cosine_similarity": ("x1", "x2"),
    "pairwise_distance": ("x1", "x2"),
    "cosine_embedding_loss": ("input1", "input2"),
    "margin_ranking_loss": ("input1", "input2"),
    "triplet_margin_loss": ("anchor", "positive", "negative"),
    "triplet_margin_with_distance_loss": ("anchor", "positive", "negative"),
    "gaussian_nll_loss": ("input", "target", "var"),
    "ctc_loss": ("log_probs",),
    "scaled_dot_product_attention": ("query", "key", "value"),
    "adaptive_log_softmax_with_loss": ("input", "head_weight", "head_bias", "tail_weights"),
    "rnn_tanh_cell": _CELL,
    "rnn_relu_cell": _CELL,
    "gru_cell": _CELL,
    "lstm_cell": ("input", "hx.0", "hx.1", "w_ih", "w_hh", "b_ih", "b_hh"),
}

# Arguments torch reads only through comparisons: a Tensor there that requires grad is
# fine and gets none (``grad`` stays ``None``, as torch leaves it; measured).
NO_GRADIENT: dict[str, tuple[str, ...]] = {
    "cosine_embedding_loss": ("target",),
    "hinge_embedding_loss": ("target",),
}

# The argument that may hold Tensors inside a list or tuple (checked on the fast path too)
NESTED: dict[str, str] = {"lstm_cell": "hx", "adaptive_log_softmax_with_loss": "tail_weights"}

ARRAY_ONLY: dict[str, str] = {
    "rnn_layers": "reference.nn.RNN, reference.nn.LSTM or reference.nn.GRU",
}


class _Call:
    """One taped call: the pair, the bound arguments (arrays), the Tensors' paths."""

    def __init__(self, name: str, forward: Callable, backward: Callable, module: Any,
                 bound: inspect.BoundArguments, paths: list[tuple]) -> None:  # fmt: skip
        self.name, self.forward, self.backward, self.module = name, forward, backward, module
        self.bound, self.paths = bound, paths
        self.extra: dict[str, Any] = {}  # keyword arguments only the backward takes
        self.kind: Any = None  # the forward's tuple type (a namedtuple), if several outputs

    def arg(self, name: str) -> Any:
        return self.bound.arguments[name]

    def run_forward(self) -> Any:
        return self.forward(*self.bound.args, **self.bound.kwargs)

    def run_backward(self, grad: Any, **extra: Any) -> Any:
        """The backward on the forward's arguments, by name: it takes them all but the
        forward-only ``inplace`` and ``rng`` (:func:`_check_signatures`)."""
        takes = inspect.signature(self.backward).parameters
        kwargs = {k: v for k, v in self.bound.arguments.items() if k in takes}
        return self.backward(grad, **kwargs, **extra)


# -- adapters: (forward(call) -> raw outputs, backward(call, grads) -> what the pair returns)
def _plain_forward(call: _Call) -> Any:
    out = call.run_forward()
    if "output" in inspect.signature(call.backward).parameters:
        call.extra["output"] = out  # softmax, sigmoid, tanh: the backward reuses it
    return out


def _plain_backward(call: _Call, grads: tuple[np.ndarray, ...]) -> Any:
    return call.run_backward(grads[0] if len(grads) == 1 else grads, **call.extra)


def _indices_forward(call: _Call) -> Any:
    """Max pooling: always ask for the indices, so the backward needs no second search."""
    wanted = call.arg("return_indices")
    call.bound.arguments["return_indices"] = True
    out, indices = call.run_forward()
    call.bound.arguments["return_indices"] = wanted
    call.extra["indices"] = indices
    return (out, indices) if wanted else out


def _indices_backward(call: _Call, grads: tuple[np.ndarray, ...]) -> Any:
    return call.run_backward(grads[0], **call.extra)


def _dropout_forward(call: _Call) -> Any:
    from ..functional.dropout import check_p, dropout_mask

    p, training = check_p(call.arg("p"), call.name), call.arg("training")
    if training and call.arg("mask") is None:  # draw here, so the backward has the same
        call.bound.arguments["mask"] = dropout_mask(call.arg("input").shape, p, call.arg("rng"))
    return call.run_forward()


def _dropout_backward(call: _Call, grads: tuple[np.ndarray, ...]) -> Any:
    mask = call.arg("mask") if call.arg("training") else None
    return call.backward(grads[0], mask, call.arg("p"))


def _alpha_forward(call: _Call) -> Any:
    from ..functional.alpha_dropout import alpha_dropout_mask_shape
    from ..functional.dropout import check_p, dropout_mask

    x, p = call.arg("input"), check_p(call.arg("p"), call.name)
    draws = call.arg("training") and 0 < p < 1 and np.size(x) > 0  # when the forward draws
    if draws and call.arg("mask") is None:
        feature = call.name == "feature_alpha_dropout"
        shape = alpha_dropout_mask_shape(np.shape(x), feature)
        call.bound.arguments["mask"] = dropout_mask(shape, p, call.arg("rng"))
    return call.run_forward()


def _without_rng_backward(call: _Call, grads: tuple[np.ndarray, ...]) -> Any:
    return call.run_backward(grads[0])  # the mask or noise, drawn in the forward, is bound


def _rrelu_forward(call: _Call) -> Any:
    from ..functional.rrelu import rrelu_noise

    if call.arg("training") and call.arg("noise") is None:
        lower, upper = call.arg("lower"), call.arg("upper")
        call.bound.arguments["noise"] = rrelu_noise(call.arg("input"), lower, upper,
                                                    call.arg("rng"))  # fmt: skip
    return call.run_forward()


def _attention_forward(call: _Call) -> Any:
    """Attention dropout draws inside the forward and again inside the backward: hand the
    backward a generator in the state the forward's started from, so both draw alike."""
    if call.arg("dropout_p") > 0 and call.arg("dropout_mask") is None:
        rng = call.arg("rng")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        replay = np.random.Generator(type(rng.bit_generator)())
        replay.bit_generator.state = rng.bit_generator.state
        call.bound.arguments["rng"] = rng
        call.extra["rng"] = replay
    return call.run_forward()


def _attention_backward(call: _Call, grads: tuple[np.ndarray, ...]) -> Any:
    if "rng" in call.extra:
        call.bound.arguments["rng"] = call.extra["rng"]
    return call.run_backward(grads[0])


def _flatten_backward(call: _Call, grads: tuple[np.ndarray, ...]) -> Any:
    return call.backward(grads[0], np.shape(call.arg("input")))


_Adapter = tuple[Callable[[_Call], Any], Callable[[_Call, tuple], Any]]
_INDICES: _Adapter = (_indices_forward, _indices_backward)

ADAPTERS: dict[str, _Adapter] = {
    **dict.fromkeys(
        (
            "max_pool1d max_pool2d max_pool3d adaptive_max_pool1d adaptive_max_pool2d "
            "adaptive_max_pool3d fractional_max_pool2d fractional_max_pool3d"
        ).split(),
        _INDICES,
    ),  # fmt: skip
    "dropout": (_dropout_forward, _dropout_backward),
    "alpha_dropout": (_alpha_forward, _without_rng_backward),
    "feature_alpha_dropout": (_alpha_forward, _without_rng_backward),
    "rrelu": (_rrelu_forward, _without_rng_backward),  # noise=, drawn in the forward
    "scaled_dot_product_attention": (_attention_forward, _attention_backward),
    "flatten": (_plain_forward, _flatten_backward),
}


# -- recording ---------------------------------------------------------------------------
def _unwrap(value: Any, path: tuple, found: list[tuple[tuple, Tensor]]) -> Any:
    """``value`` with every Tensor (also inside lists and tuples) replaced by its array;
    each Tensor's path (``("hx", 0)``) and itself appended to ``found``."""
    if isinstance(value, Tensor):
        found.append((path, value))
        return value.data
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        items = [_unwrap(v, (*path, i), found) for i, v in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    return value


def _paths(name: str, grad: Any) -> list[tuple[tuple, Any]]:
    """``"hx.0"`` -> ``("hx", 0)``; a nested gradient (``tail_weights``' list of pairs)
    flattened to one path per array, as :func:`_unwrap` names the Tensors."""
    head, *rest = name.split(".")
    return _paths_of(grad, (head, *(int(i) for i in rest)))


def _paths_of(grad: Any, path: tuple) -> list[tuple[tuple, Any]]:
    if isinstance(grad, (list, tuple)):
        return [(p, g) for i, item in enumerate(grad) for p, g in _paths_of(item, (*path, i))]
    return [(path, grad)]


def _label(path: tuple) -> str:
    return ".".join(str(p) for p in path)


class PairCall(Function):
    """One call of a pair: its forward on arrays, its own backward on the way back."""

    @staticmethod
    def forward(ctx: FunctionCtx, call: _Call, *tensors: Tensor) -> Any:
        ctx.save_for_backward(*tensors)
        ctx.call = call
        raw = ADAPTERS.get(call.name, (_plain_forward,))[0](call)
        if isinstance(raw, tuple):
            call.kind = type(raw)
            return tuple(np.asarray(r) for r in raw)
        return raw

    @staticmethod
    def backward(ctx: FunctionCtx, *grads: np.ndarray) -> tuple[Any, ...]:
        _ = ctx.saved_tensors  # raises if a Tensor was changed in place, or the graph freed
        call: _Call = ctx.call
        result = ADAPTERS.get(call.name, (None, _plain_backward))[1](call, grads)
        result = result if isinstance(result, tuple) else (result,)
        names = GRADIENTS.get(call.name, ("input",))
        if len(result) != len(names):
            raise RuntimeError(
                f"{call.name}_backward returned {len(result)} gradients; GRADIENTS names "
                f"{len(names)} ({names}): the table in reference/autograd/functional.py is wrong"
            )
        by_path = dict(p for name, g in zip(names, result) for p in _paths(name, g))
        target = getattr(call.module, f"{call.name}_target_backward", None)
        out: list[Any] = [None]  # the call itself
        for path, need in zip(call.paths, ctx.needs_input_grad[1:]):
            g: Any = by_path.get(path) if need else None
            if need and path == ("target",) and "target" not in names and target:
                g = target(grads[0], *call.bound.args, **call.bound.kwargs)
            out.append(g.to_dense() if hasattr(g, "to_dense") else g)  # sparse=True's rows
        return tuple(out)


@functools.cache
def _function_for(name: str) -> type[PairCall]:
    """A PairCall subclass per pair, so ``grad_fn`` names the backward it runs."""
    return type(f"{name}_call", (PairCall,), {"torch_name": f"{name}_backward"})


def _check_gradients(call: _Call, found: list[tuple[tuple, Tensor]]) -> None:
    """A Tensor that requires a gradient the pair does not give raises now, not later."""
    names = GRADIENTS.get(call.name, ("input",))
    given = {n.split(".")[0] for n in names} | set(NO_GRADIENT.get(call.name, ()))
    if hasattr(call.module, f"{call.name}_target_backward"):
        given.add("target")
    for path, t in found:
        if t.requires_grad and path[0] not in given:
            raise RuntimeError(
                f"reference.functional.{call.name}: argument '{_label(path)}' requires grad, "
                f"but {call.name}_backward gives gradients only for {sorted(given)}; pass "
                f"it without requires_grad (or .detach() it)"
            )


def _record(name: str, forward: Callable, backward: Callable, module: Any,
            signature: inspect.Signature, args: tuple, kwargs: dict) -> Any:  # fmt: skip
    bound = signature.bind(*args, **kwargs)
    bound.apply_defaults()
    if bound.arguments.get("inplace"):
        raise RuntimeError(
            f"reference.functional.{name}(..., inplace=True) on a Tensor is not recorded on "
            "the tape; call it with inplace=False"
        )
    found: list[tuple[tuple, Tensor]] = []
    for key, value in bound.arguments.items():
        bound.arguments[key] = _unwrap(value, (key,), found)
    call = _Call(name, forward, backward, module, bound, [p for p, _ in found])
    _check_gradients(call, found)
    out = _function_for(name).apply(call, *(t for _, t in found))
    if call.kind is not None and hasattr(call.kind, "_fields"):
        return call.kind(*out)  # a namedtuple (adaptive_log_softmax's _ASMoutput)
    return out


_FORWARD_ONLY = {"inplace", "rng"}  # what a backward never takes
_OWN_BACKWARD = {"dropout", "flatten"}  # adapters that call the backward their own way


def _check_signatures(name: str, signature: inspect.Signature, backward: Callable) -> None:
    """The convention ``foo_backward(grad_output, *what foo took)``, checked once: the
    backward takes every argument of the forward but the forward-only ones."""
    takes = set(inspect.signature(backward).parameters)
    missing = set(signature.parameters) - takes - _FORWARD_ONLY
    if missing and name not in _OWN_BACKWARD:
        raise TypeError(f"{name}_backward does not take {sorted(missing)}: add an adapter")


def _has_tensor(value: Any) -> bool:
    if isinstance(value, Tensor):
        return True
    return isinstance(value, (list, tuple)) and any(_has_tensor(v) for v in value)


def taped(forward: Callable, backward: Callable, module: Any = None) -> Callable:
    """``forward`` made Tensor-aware (see the module docstring); on arrays, ``forward``.

    ``module``: where ``<name>_target_backward`` may live (the pair's family file).
    """
    name = forward.__name__
    signature = inspect.signature(forward)
    _check_signatures(name, signature, backward)
    nested = NESTED.get(name)
    position = list(signature.parameters).index(nested) if nested else 0
    record = functools.partial(_record, name, forward, backward, module, signature)

    @functools.wraps(forward)
    def function(*args: Any, **kwargs: Any) -> Any:
        for a in args:
            if isinstance(a, Tensor):
                return record(args, kwargs)
        if kwargs:
            for a in kwargs.values():
                if isinstance(a, Tensor):
                    return record(args, kwargs)
        if nested:  # a Tensor inside a list or tuple argument
            value = args[position] if position < len(args) else kwargs.get(nested)
            if _has_tensor(value):
                return record(args, kwargs)
        return forward(*args, **kwargs)

    function.__taped__ = True  # type: ignore[attr-defined]
    return function


def array_only(forward: Callable, instead: str) -> Callable:
    """``forward`` on arrays; a clear TypeError when given a Tensor."""

    @functools.wraps(forward)
    def function(*args: Any, **kwargs: Any) -> Any:
        if _has_tensor(args) or _has_tensor(list(kwargs.values())):
            raise TypeError(
                f"reference.functional.{forward.__name__} does not record on the tape yet; "
                f"call the module {instead} instead (its forward/backward record one node)"
            )
        return forward(*args, **kwargs)

    return function


def paired_names(namespace: dict[str, Any]) -> list[str]:
    """The public ``foo`` with a ``foo_backward`` beside it."""
    return sorted(n for n in namespace if not n.startswith("_") and f"{n}_backward" in namespace
                  and callable(namespace[n]))  # fmt: skip


def tape_pairs(namespace: dict[str, Any]) -> None:
    """Replace each paired ``foo`` in ``namespace`` (``reference.functional``'s globals)
    by its Tensor-aware version; the ``_backward`` functions stay array-only."""
    import sys

    for name in paired_names(namespace):
        forward, backward = namespace[name], namespace[f"{name}_backward"]
        if getattr(forward, "__taped__", False):
            continue
        if name in ARRAY_ONLY:
            namespace[name] = array_only(forward, ARRAY_ONLY[name])
            namespace[name].__taped__ = True
            continue
        module = sys.modules.get(forward.__module__)
        namespace[name] = taped(forward, backward, module)
