r"""``Tensor``: a NumPy array that remembers how it was made (torch's ``torch.Tensor``).

A tensor made by the user is a *leaf*; if it ``requires_grad``, ``backward`` accumulates
:math:`\partial L/\partial x` into its ``grad``. A tensor made by an op that had an input
requiring a gradient carries that op's node in ``grad_fn`` (see :mod:`.graph`); its
``grad`` stays ``None`` unless ``retain_grad()`` was called, as in torch.

``data`` is the NumPy array itself (torch's is a Tensor sharing storage): reading or
writing it is never recorded. In-place methods (``add_``, ``-=`` and friends, ``zero_``)
bump ``_version``, so a backward that saved the old value refuses to run, and on a leaf
that requires a gradient they are allowed only under ``no_grad``, as in torch.

The ops (arithmetic, reductions, shapes, indexing) live in the ``ops_*`` modules; each
lists its methods in ``TENSOR_METHODS``, bound onto the class by :func:`bind_methods`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .graph import AccumulateGrad, Node, backward, is_grad_enabled

__all__ = ["Tensor", "tensor", "result_type", "unwrap"]

_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}
_DEFAULT = {0: np.dtype(bool), 1: np.dtype(np.int64), 2: np.dtype(np.float32)}


def unwrap(value: Any) -> Any:
    """A Tensor's array; anything else as it is (an ndarray's own ``.data`` is a buffer)."""
    return value._data if isinstance(value, Tensor) else value


def _category(dtype: np.dtype) -> int:
    return _CATEGORY[np.dtype(dtype).kind]


def result_type(*operands: Any) -> np.dtype:
    """torch's type promotion: tensors with dims outrank 0-d tensors, which outrank Python
    numbers, unless a lower group has a higher category (bool < integer < floating). So
    ``float32 (3,) + float64 0-d`` is float32, ``int64 (3,) + 2.5`` is the default float32,
    and ``int64 (3,) + float32 (3,)`` is float32 (NumPy would say float64)."""
    groups: list[list[np.dtype]] = [[], [], []]
    for x in operands:
        if isinstance(x, Tensor):
            groups[0 if x.ndim else 1].append(x.dtype)
        elif isinstance(x, np.ndarray):
            groups[0 if x.ndim else 1].append(x.dtype)
        else:
            kind = "b" if isinstance(x, (bool, np.bool_)) else np.asarray(x).dtype.kind
            scalar = {"b": bool, "i": np.int64, "u": np.int64}.get(kind, np.float64)
            groups[2].append(np.dtype(scalar))
    top = max(_category(d) for group in groups for d in group)
    for level, group in enumerate(groups):
        best = [d for d in group if _category(d) == top]
        if best:
            return _DEFAULT[top] if level == 2 else np.result_type(*best)
    raise ValueError("result_type needs an operand")


def _format(data: np.ndarray) -> str:
    """torch's print style: 4 decimals, ``27.`` for whole floats, scientific when wide."""
    fmt: Callable[[Any], str] = str
    if data.dtype.kind == "f":
        finite = np.abs(data[np.isfinite(data)])
        if finite.size and np.all(finite == np.round(finite)) and finite.max() < 1e8:
            fmt = lambda v: f"{v:.0f}." if np.isfinite(v) else str(v)  # noqa: E731
        elif finite.size and (finite.max() >= 1e8 or finite[finite > 0].min(initial=1.0) < 1e-4):
            fmt = lambda v: f"{v:.4e}"  # noqa: E731
        else:
            fmt = lambda v: f"{v:.4f}"  # noqa: E731
    kind = "float" if data.dtype.kind == "f" else "int" if data.dtype.kind in "iu" else "bool"
    formatter: Any = {kind: fmt}
    return np.array2string(data, separator=", ", prefix="tensor(", formatter=formatter)


class Tensor:
    """An array, its gradient, and the node that made it (``torch.Tensor``)."""

    __array_ufunc__ = None  # ndarray + Tensor defers to Tensor.__radd__: the result records
    __hash__ = object.__hash__  # hashable by identity although == is elementwise

    def __init__(self, data: Any, requires_grad: bool = False) -> None:
        self._data = np.asarray(unwrap(data))
        self.grad: Tensor | None = None
        self.grad_fn: Node | None = None
        self.output_nr = 0
        self._requires_grad = False
        self._retains_grad = False
        self._version = 0
        self._leaf_node: AccumulateGrad | None = None
        self.requires_grad = requires_grad

    # -- the array -------------------------------------------------------------------
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = np.asarray(unwrap(value))

    @property
    def shape(self) -> tuple[int, ...]:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return self._data.ndim

    def size(self, dim: int | None = None) -> Any:
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if not self.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def item(self) -> Any:
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return self._data.item()

    def numpy(self) -> np.ndarray:
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return self._data

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.numpy() if dtype is None else self.numpy().astype(dtype)

    def tolist(self) -> Any:
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with {self._data.size} values is ambiguous"
            )
        return bool(self._data.item())

    # -- autograd state ---------------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        if self.grad_fn is not None:
            if not flag:
                raise RuntimeError(
                    "you can only change requires_grad flags of leaf variables. If you want "
                    "to use a computed variable in a subgraph that doesn't require "
                    "differentiation use var_no_grad = var.detach()."
                )
            return
        if flag and self.dtype.kind not in "fc":
            raise RuntimeError("only Tensors of floating point dtype can require gradients")
        self._requires_grad = bool(flag)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    def _attach(self, node: Node, index: int) -> None:
        self.grad_fn, self.output_nr, self._requires_grad = node, index, True

    def _accumulator(self) -> AccumulateGrad:
        if self._leaf_node is None:
            self._leaf_node = AccumulateGrad(self)
        return self._leaf_node

    def retain_grad(self) -> None:
        """Keep this non-leaf's gradient in ``grad`` at the next backward."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is not None and not self._retains_grad:
            self._retains_grad = True
            self.grad_fn.retained[self.output_nr] = self

    @property
    def retains_grad(self) -> bool:
        return self._retains_grad

    def _retain(self, g: np.ndarray) -> None:
        g = np.asarray(g, self.dtype)
        self.grad = Tensor(g.copy()) if self.grad is None else Tensor(self.grad.data + g)

    def backward(self, gradient: Any = None, retain_graph: bool | None = None,
                 create_graph: bool = False, inputs: Any = None) -> None:  # fmt: skip
        """``L.backward()``: accumulate :math:`\\partial L/\\partial x` into each leaf's
        ``grad``; a non-scalar ``L`` needs ``gradient``, the upstream :math:`\\bar L`."""
        if inputs is not None:
            raise NotImplementedError("backward(inputs=...): use reference.autograd.grad")
        backward(self, gradient, retain_graph, create_graph)

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares the array, as torch's shares storage)."""
        return Tensor(self._data)

    def detach_(self) -> Tensor:
        self.grad_fn, self._requires_grad = None, False
        return self

    def clone_data(self) -> np.ndarray:
        return self._data.copy()

    # -- in place ---------------------------------------------------------------------
    def _write(self, result: Tensor | np.ndarray) -> Tensor:
        """Make ``result`` this tensor's value (and history), bumping the version."""
        recording = is_grad_enabled() and isinstance(result, Tensor) and result.requires_grad
        if recording and self.is_leaf and self.requires_grad:
            raise RuntimeError(
                "a leaf Variable that requires grad is being used in an in-place operation."
            )
        value = np.asarray(unwrap(result))
        self._data = value.astype(self.dtype, copy=False)
        self._version += 1
        if recording and isinstance(result, Tensor):
            if self._retains_grad and self.grad_fn is not None:  # the retained grad follows
                self.grad_fn.retained.pop(self.output_nr, None)
            self.grad_fn, self.output_nr = result.grad_fn, result.output_nr
            self._requires_grad = True
            if self._retains_grad and self.grad_fn is not None:
                self.grad_fn.retained[self.output_nr] = self
        return self

    def zero_(self) -> Tensor:
        return self._write(np.zeros_like(self._data))

    def fill_(self, value: Any) -> Tensor:
        return self._write(np.full_like(self._data, unwrap(value)))

    def copy_(self, src: Any) -> Tensor:
        src_data = np.asarray(unwrap(src))
        return self._write(np.broadcast_to(src_data, self.shape).astype(self.dtype))

    def _snapshot(self) -> Tensor:
        """This tensor as it is now, for the op an in-place method records: its node saves
        the snapshot, whose value and version the write below does not touch."""
        old = Tensor.__new__(Tensor)
        old.__dict__.update(self.__dict__)
        old._retains_grad = False
        return old

    def add_(self, other: Any, alpha: Any = 1) -> Tensor:
        old = self._snapshot()
        return self._write(old + other * alpha if alpha != 1 else old + other)

    def sub_(self, other: Any, alpha: Any = 1) -> Tensor:
        old = self._snapshot()
        return self._write(old - other * alpha if alpha != 1 else old - other)

    def mul_(self, other: Any) -> Tensor:
        return self._write(self._snapshot() * other)

    def div_(self, other: Any) -> Tensor:
        return self._write(self._snapshot() / other)

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    # -- printing ---------------------------------------------------------------------
    def __repr__(self) -> str:
        extras = []
        if self.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.dtype.name}")
        if self.grad_fn is not None:
            extras.append(f"grad_fn=<{self.grad_fn.name()}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        body = _format(self._data)
        return "tensor(" + ", ".join([body, *extras]) + ")"


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new leaf (``torch.tensor``). Python floats become float32, torch's default; a
    NumPy array keeps its dtype; ``dtype`` may be a NumPy dtype or its name."""
    if isinstance(data, Tensor):
        data = data.data
    array = np.array(data)
    if dtype is not None:
        array = array.astype(np.dtype(dtype))
    elif not isinstance(data, np.ndarray) and array.dtype == np.float64:
        array = array.astype(np.float32)
    return Tensor(array, requires_grad=requires_grad)


def bind_methods(modules: Iterable[Any]) -> None:
    """Attach each ops module's ``TENSOR_METHODS`` (name -> function) to ``Tensor``."""
    for module in modules:
        for name, function in module.TENSOR_METHODS.items():
            setattr(Tensor, name, function)
