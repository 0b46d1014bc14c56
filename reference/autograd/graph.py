r"""The tape: grad mode, ``Function`` (the unit that records itself), its nodes, and the
engine that runs ``backward``.

Every op is a :class:`Function`: ``forward(ctx, *inputs)`` computes the value on NumPy
arrays and saves what its backward needs; ``backward(ctx, *grad_outputs)`` maps
:math:`\partial L/\partial \text{out}` to :math:`\partial L/\partial \text{in}`, one per
input, on NumPy arrays. ``Function.apply`` runs the forward and, when an input requires
a gradient, records a :class:`Node` (torch's ``grad_fn``) whose ``next_functions`` point
at the nodes that made the inputs (an :class:`AccumulateGrad` for a leaf).

``backward`` walks the recorded graph once, in reverse topological order: a node runs when
every gradient flowing into it has been summed (the multivariate chain rule,
:math:`\bar x = \sum_{y \in \text{users}(x)} \bar y \, \partial y / \partial x`), and a
leaf's ``grad`` accumulates across calls, as in torch. Unless ``retain_graph``, each node
frees its saved tensors after it runs, so a second backward through them raises torch's
error. Gradients are NumPy arrays inside the engine; ``Tensor.grad`` wraps them.
Higher-order gradients (``create_graph``) are not supported: the rules are written on
arrays, not on Tensors.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

if TYPE_CHECKING:
    from .tensor import Tensor

__all__ = [
    "Function",
    "FunctionCtx",
    "Node",
    "AccumulateGrad",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "is_grad_enabled",
    "backward",
    "grad",
]

FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward."
)

_F = TypeVar("_F", bound=Callable[..., Any])
_state = {"enabled": True}


def is_grad_enabled() -> bool:
    """Whether ops record themselves (``torch.is_grad_enabled``)."""
    return _state["enabled"]


class set_grad_enabled:
    """Turn recording on or off; as a context manager, restore it on exit."""

    def __init__(self, mode: bool) -> None:
        self.prev = _state["enabled"]
        _state["enabled"] = bool(mode)

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        _state["enabled"] = self.prev


class _GradMode:
    mode = True

    def __enter__(self) -> None:
        self.prev = _state["enabled"]
        _state["enabled"] = self.mode

    def __exit__(self, *exc: object) -> None:
        _state["enabled"] = self.prev

    def __call__(self, func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with type(self)():
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(_GradMode):
    """Nothing inside records a node (``torch.no_grad``): a context manager or a decorator."""

    mode = False


class enable_grad(_GradMode):
    """Recording on inside, even within ``no_grad`` (``torch.enable_grad``)."""

    mode = True


class FunctionCtx:
    """What a forward leaves for its backward (torch's ``ctx``).

    ``save_for_backward(*tensors)`` keeps Tensors with their version (an array the
    forward returns is kept as the output Tensor it becomes, as torch saves a result):
    reading
    ``saved_tensors`` after an in-place change to one of them, or after the graph was
    freed, raises torch's error. Anything else can be stored as an attribute.
    ``needs_input_grad`` says, per input, whether its gradient is wanted.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...] = ()) -> None:
        self.needs_input_grad = needs_input_grad
        self._saved: tuple[tuple[Any, int], ...] = ()
        self._freed = False
        self._node: Node | None = None

    if TYPE_CHECKING:  # a forward stores what its backward needs as attributes

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    def save_for_backward(self, *tensors: Any) -> None:
        self._saved = tuple((t, getattr(t, "_version", 0)) for t in tensors)

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self._freed:
            raise RuntimeError(FREED)
        for index, (t, version) in enumerate(self._saved):
            if t is not None and getattr(t, "_version", 0) != version:
                name = self._node.name() if self._node else "the backward"
                raise RuntimeError(
                    "one of the variables needed for gradient computation has been modified "
                    f"by an inplace operation: [{t.dtype} {list(t.shape)}], saved at index "
                    f"{index} of {name}, is at version {t._version}; expected version "
                    f"{version} instead."
                )
        return tuple(t for t, _ in self._saved)

    def _adopt(self, raw: Sequence[Any], outputs: Sequence[Tensor]) -> None:
        """Saved values the forward returned become the output Tensors made of them."""
        by_id = {id(r): o for r, o in zip(raw, outputs)}
        self._saved = tuple((by_id.get(id(t), t), v) for t, v in self._saved)

    def free(self) -> None:
        self._freed = True
        self._saved = ()


class Node:
    """One recorded op (torch's ``grad_fn``): ``next_functions`` has one ``(node, index)``
    per input (``(None, 0)`` for an input that needs no gradient); the node knows the
    shape and dtype of each output, to stand in zeros for an unused one."""

    def __init__(self, function: type[Function], ctx: FunctionCtx,
                 next_functions: tuple[tuple[Node | None, int], ...],
                 outputs: Sequence[tuple[tuple[int, ...], np.dtype]]) -> None:  # fmt: skip
        self.function, self.ctx = function, ctx
        self.next_functions = next_functions
        self.outputs = list(outputs)
        self.retained: dict[int, Tensor] = {}  # output index -> a tensor that retain_grad()

    def name(self) -> str:
        return self.function.backward_name()

    def apply(self, grad_outputs: list[np.ndarray | None]) -> tuple[np.ndarray | None, ...]:
        """The input gradients from the output gradients (zeros for an unused output)."""
        grads = [g if g is not None else np.zeros(shape, dtype)
                 for g, (shape, dtype) in zip(grad_outputs, self.outputs)]  # fmt: skip
        result = self.function.backward(self.ctx, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        if len(result) != len(self.next_functions):
            raise RuntimeError(
                f"function {self.name()} returned an incorrect number of gradients "
                f"(expected {len(self.next_functions)}, got {len(result)})"
            )
        return tuple(None if g is None else _as_array(g) for g in result)

    def release(self) -> None:
        self.ctx.free()

    def __repr__(self) -> str:
        return f"<{self.name()} object at {hex(id(self))}>"


class AccumulateGrad(Node):
    """The node of a leaf that requires a gradient: ``leaf.grad += incoming``."""

    def __init__(self, variable: Tensor) -> None:
        super().__init__(Function, FunctionCtx(), (), [(variable.shape, variable.dtype)])
        self.variable = variable

    def name(self) -> str:
        return "AccumulateGrad"

    def accumulate(self, grad: np.ndarray) -> None:
        from .tensor import Tensor

        leaf = self.variable
        grad = np.asarray(grad, dtype=leaf.dtype)
        if leaf.grad is None:
            leaf.grad = Tensor(grad.copy())  # copy: the engine may add into its buffer
        else:
            leaf.grad.data = leaf.grad.data + grad


class Function:
    """Base of every op, and of a user's own (``torch.autograd.Function``).

    Subclasses write ``forward(ctx, *args)`` (on the inputs as given; read arrays with
    ``.data``) returning an array or a tuple of arrays, and ``backward(ctx, *grads)``
    returning one gradient (array or ``None``) per ``forward`` argument.
    """

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a Function must implement forward(ctx, *args)")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a Function must implement backward(ctx, *grad_outputs)")

    @classmethod
    def backward_name(cls) -> str:
        """torch's ``grad_fn`` name: ``MulBackward0`` for ``Mul``, as torch prints it."""
        return getattr(cls, "torch_name", f"{cls.__name__}Backward0")

    @classmethod
    def records(cls, args: tuple[Any, ...], needs: tuple[bool, ...]) -> bool:
        """Whether a call records a node: when an input requires a gradient (a module
        with parameters records one always, :mod:`reference.autograd.modules`)."""
        return any(needs)

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        from .tensor import Tensor

        needs = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        ctx = FunctionCtx(needs)
        with no_grad():
            raw = cls.forward(ctx, *args, **kwargs)
        several = isinstance(raw, tuple)
        raws = raw if several else (raw,)
        outputs = [Tensor(_as_array(r)) for r in raws]
        if is_grad_enabled() and cls.records(args, needs):
            edges = tuple(_edge(a) if need else (None, 0) for a, need in zip(args, needs))
            node = Node(cls, ctx, edges, [(o.shape, o.dtype) for o in outputs])
            ctx._node = node
            ctx._adopt(raws, outputs)
            for index, out in enumerate(outputs):
                if out.dtype.kind in "fc":  # integer outputs (indices) carry no gradient
                    out._attach(node, index)
        return tuple(outputs) if several else outputs[0]


def _as_array(value: Any) -> np.ndarray:
    from .tensor import unwrap

    return np.asarray(unwrap(value))


def _edge(tensor: Tensor) -> tuple[Node, int]:
    """Where the gradient of an input goes: its grad_fn, or its leaf accumulator."""
    if tensor.grad_fn is not None:
        return tensor.grad_fn, tensor.output_nr
    return tensor._accumulator(), 0


def _topological(roots: Iterable[Node]) -> list[Node]:
    """Every node reachable from the roots, each before the nodes it feeds (iterative DFS)."""
    order: list[Node] = []
    seen: set[int] = set()
    for root in roots:
        stack: list[tuple[Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((n, False) for n, _ in node.next_functions if n is not None)
    return order[::-1]


def _run(roots: list[tuple[Node, int, np.ndarray]], retain_graph: bool,
         capture: dict[tuple[int, int], np.ndarray | None] | None) -> None:  # fmt: skip
    """Propagate the roots' gradients. ``capture`` (for :func:`grad`) collects the
    gradients arriving at the keyed ``(id(node), index)`` edges instead of accumulating."""
    pending: dict[int, list[np.ndarray | None]] = {}

    def add(node: Node, index: int, g: np.ndarray) -> None:
        slots = pending.setdefault(id(node), [None] * len(node.outputs))
        slots[index] = g if slots[index] is None else slots[index] + g

    for node, index, g in roots:
        add(node, index, g)
    for node in _topological(n for n, _, _ in roots):
        grads = pending.pop(id(node), None)
        if grads is None:
            continue
        if capture is not None:
            for index, arrived in enumerate(grads):
                if (id(node), index) in capture and arrived is not None:
                    held = capture[(id(node), index)]
                    capture[(id(node), index)] = arrived if held is None else held + arrived
        if isinstance(node, AccumulateGrad):
            if capture is None and grads[0] is not None:
                node.accumulate(grads[0])
            continue
        for index, tensor in node.retained.items():
            retained = grads[index]
            if capture is None and retained is not None:
                tensor._retain(retained)
        for (target, index), flowing in zip(node.next_functions, node.apply(grads)):
            if target is not None and flowing is not None:
                add(target, index, _checked(flowing, target, index, node))
        if not retain_graph:
            node.release()


def _checked(g: np.ndarray, target: Node, index: int, source: Node) -> np.ndarray:
    shape, dtype = target.outputs[index]
    if g.shape != tuple(shape):
        raise RuntimeError(
            f"Function {source.name()} returned an invalid gradient at index {index} - got "
            f"{list(g.shape)} but expected shape compatible with {list(shape)}"
        )
    return g.astype(dtype, copy=False)


def _roots(tensors: Sequence[Tensor], grads: Sequence[Any]) -> list[tuple[Node, int, np.ndarray]]:
    roots = []
    for t, g in zip(tensors, grads):
        if not t.requires_grad:
            raise RuntimeError(
                "element 0 of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if t.data.size != 1:
                raise RuntimeError("grad can be implicitly created only for scalar outputs")
            g = np.ones(t.shape, t.dtype)
        g = _as_array(g)
        if g.shape != t.shape:
            raise RuntimeError(
                f"Mismatch in shape: grad_output[0] has a shape of {g.shape} and output[0] "
                f"has a shape of {t.shape}."
            )
        roots.append((*_edge(t), g.astype(t.dtype, copy=False)))
    return roots


def _as_list(value: Any) -> list:
    from .tensor import Tensor

    if value is None or isinstance(value, Tensor) or isinstance(value, np.ndarray):
        return [value]
    return list(value)


def backward(tensors: Any, grad_tensors: Any = None, retain_graph: bool | None = None,
             create_graph: bool = False) -> None:  # fmt: skip
    """Accumulate the gradients of ``tensors`` into every leaf's ``grad``
    (``torch.autograd.backward``)."""
    if create_graph:
        raise NotImplementedError(
            "create_graph=True: the reference's backward rules work on NumPy arrays, so "
            "higher-order gradients are not recorded; differentiate twice by hand instead"
        )
    tensors = _as_list(tensors)
    grads = _as_list(grad_tensors) if grad_tensors is not None else [None] * len(tensors)
    _run(_roots(tensors, grads), bool(retain_graph), None)


def grad(outputs: Any, inputs: Any, grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool | None = None) -> tuple:  # fmt: skip
    """The gradients of ``outputs`` wrt ``inputs``, returned rather than accumulated
    (``torch.autograd.grad``)."""
    from .tensor import Tensor

    if create_graph:
        raise NotImplementedError("create_graph=True: higher-order gradients are not supported")
    outputs, inputs = _as_list(outputs), _as_list(inputs)
    grads = _as_list(grad_outputs) if grad_outputs is not None else [None] * len(outputs)
    for t in inputs:
        if not t.requires_grad:
            raise RuntimeError("One of the differentiated Tensors does not require grad")
    edges = [_edge(t) for t in inputs]
    capture: dict[tuple[int, int], np.ndarray | None] = {(id(n), i): None for n, i in edges}
    _run(_roots(outputs, grads), bool(retain_graph), capture)
    result = []
    for position, (t, (node, index)) in enumerate(zip(inputs, edges)):
        g = capture[(id(node), index)]
        if g is None and not allow_unused:
            raise RuntimeError(
                f"The differentiated Tensor at index {position} appears to not have been "
                "used in the graph. Set allow_unused=True if this is the desired behavior."
            )
        result.append(None if g is None else Tensor(np.asarray(g, t.dtype)))
    return tuple(result)
