"""``ModuleList``, ``ModuleDict``, ``ParameterList``, ``ParameterDict`` (``torch.nn``'s).

They hold modules or parameters so that ``parameters()``, ``state_dict()`` (keys
``"0.weight"``, ``"name.weight"``, ``"0"``...), ``to()`` and ``zero_grad()`` find them;
they compose modules and have no forward or backward of their own. As in torch, a
``ParameterList``/``ParameterDict`` wraps a plain array into a :class:`Parameter` and
keeps any other object as a plain attribute.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from operator import index as as_index
from typing import Any

import numpy as np

from .._validate import _torch_names
from .module import Module, Parameter

__all__ = ["ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _add_module(owner: Module, name: Any, module: Any) -> None:
    """torch's ``add_module`` checks, then the registration."""
    if module is not None and not isinstance(module, Module):
        raise TypeError(f"{type(module).__name__} is not a Module subclass")
    if not isinstance(name, str):
        raise TypeError(f"module name should be a string. Got {type(name).__name__}")
    if "." in name:
        raise KeyError(f'module name can\'t contain ".", got: {name}')
    if name == "":
        raise KeyError('module name can\'t be empty string ""')
    if name not in owner._modules and hasattr(owner, name):
        raise KeyError(f"attribute '{name}' already exists")
    owner._modules[name] = module


def _store(owner: Module, name: str, value: Any) -> None:
    """torch's ``setattr``: an array becomes a Parameter; a Parameter or Module registers
    (keeping its place when the name is already one); anything else is an attribute."""
    if isinstance(value, np.ndarray):
        value = Parameter(value)
    if name in owner._parameters and not (value is None or isinstance(value, Parameter)):
        raise TypeError(
            f"cannot assign {type(value).__name__!r} as parameter {name!r} "
            "(a Parameter, an array or None is required)"
        )
    if isinstance(value, Parameter) or name in owner._parameters:
        if "." in name or name == "":
            raise KeyError(f'parameter name can\'t contain "." or be empty, got: {name!r}')
        if name not in owner._parameters and hasattr(owner, name):
            raise KeyError(f"attribute '{name}' already exists")
        owner.__dict__.pop(name, None)
        owner._modules.pop(name, None)
        owner._parameters[name] = value
    elif isinstance(value, Module):
        owner.__dict__.pop(name, None)
        _add_module(owner, name, value)
    else:
        owner._modules.pop(name, None)
        object.__setattr__(owner, name, value)


def _absolute(idx: Any, length: int) -> str:
    idx = as_index(idx)
    if not -length <= idx < length:
        raise IndexError(f"index {idx} is out of range")
    return str(idx % length)


def _entries_repr(module: Module, entries: Iterable[tuple[Any, Any]], dtype_name: Any) -> str:
    """torch's repr of a ParameterList/Dict: one ``(key): Parameter containing: [torch.float32
    of size 2x3]`` line per entry; a single line stays on the first, as torch's does."""
    lines = []
    for key, value in entries:
        text = f"Object of type: {type(value).__name__}"
        if isinstance(value, Parameter):
            size = "x".join(str(s) for s in value.shape)
            text = f"Parameter containing: [{dtype_name(value.dtype)} of size {size}]"
        lines.append(f"  ({key}): {text}")
    if len(lines) <= 1:
        return f"{type(module).__name__}({''.join(lines)})"
    return f"{type(module).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """Modules in a list (``torch.nn.ModuleList``), registered as ``"0"``, ``"1"``...

    Indexing, slicing (a new ModuleList), ``append``, ``extend``, ``insert``, ``pop``,
    ``del``, ``+``, ``+=``, ``len`` and iteration as for a list. ``insert`` takes any
    index as ``list.insert`` does (torch's raises a ``KeyError`` for a negative one).
    """

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[_absolute(idx, len(self))]

    def __setitem__(self, idx: int, module: Module) -> None:
        _add_module(self, _absolute(idx, len(self)), module)

    def __delitem__(self, idx: int | slice) -> None:
        keys = list(self._modules)
        doomed = keys[idx] if isinstance(idx, slice) else [_absolute(idx, len(self))]
        for key in doomed:
            del self._modules[key]
        # renumbered, as torch's: the keys stay 0..len-1
        renumbered = OrderedDict(zip(map(str, range(len(self._modules))), self._modules.values()))
        object.__setattr__(self, "_modules", renumbered)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return ModuleList(chain(self, other))

    def append(self, module: Module) -> ModuleList:
        _add_module(self, str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        if not isinstance(modules, Iterable):
            raise TypeError(
                f"ModuleList.extend should be called with an iterable, but got "
                f"{type(modules).__name__}"
            )
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        modules = list(self._modules.values())
        modules.insert(as_index(index), module)
        object.__setattr__(self, "_modules", OrderedDict())
        self.extend(modules)

    def pop(self, key: int) -> Module:
        value = self[key]
        del self[key]
        return value

    def __repr__(self) -> str:
        """torch's: runs of equal entries compressed to ``(1-2): 2 x Tanh()``."""
        reprs = [repr(m) for m in self]
        if not reprs:
            return "ModuleList()"
        blocks: list[list[Any]] = []  # [start, end, repr]
        for i, text in enumerate(reprs):
            if blocks and blocks[-1][2] == text:
                blocks[-1][1] = i
            else:
                blocks.append([i, i, text])
        lines = [f"({s}): {t}" if s == e else f"({s}-{e}): {e - s + 1} x {t}" for s, e, t in blocks]
        body = "\n".join("  " + line for block in lines for line in block.split("\n"))
        return f"ModuleList(\n{body}\n)"


class ModuleDict(Module):
    """Modules by name (``torch.nn.ModuleDict``), in insertion order (also for ``update``
    from a plain dict, as torch's); ``keys``/``items``/``values``/``update``/``pop``/``clear``."""

    def __init__(self, modules: Mapping[str, Module] | Iterable[Any] | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        _add_module(self, key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def clear(self) -> None:
        self._modules.clear()

    def pop(self, key: str) -> Module:
        value = self[key]
        del self[key]
        return value

    def keys(self) -> Any:
        return self._modules.keys()

    def items(self) -> Any:
        return self._modules.items()

    def values(self) -> Any:
        return self._modules.values()

    def update(self, modules: Mapping[str, Module] | Iterable[Any]) -> None:
        for key, module in _pairs(modules, "ModuleDict", sort_plain_mappings=False):
            self[key] = module


def _pairs(values: Any, name: str, sort_plain_mappings: bool) -> list[tuple[Any, Any]]:
    """``(key, value)`` pairs of a mapping or an iterable of pairs, with torch's checks."""
    if not isinstance(values, Iterable):
        raise TypeError(
            f"{name}.update should be called with an iterable of key/value pairs, but got "
            f"{type(values).__name__}"
        )
    if isinstance(values, (OrderedDict, Module)) or (
        isinstance(values, Mapping) and not sort_plain_mappings
    ):
        return list(values.items())
    if isinstance(values, Mapping):  # torch's ParameterDict sorts a plain dict's keys
        return sorted(values.items())
    pairs = []
    for j, pair in enumerate(values):
        if not isinstance(pair, Iterable):
            raise TypeError(
                f"{name} update sequence element #{j} should be Iterable; is {type(pair).__name__}"
            )
        pair = list(pair)
        if len(pair) != 2:
            raise ValueError(
                f"{name} update sequence element #{j} has length {len(pair)}; 2 is required"
            )
        pairs.append((pair[0], pair[1]))
    return pairs


class ParameterList(Module):
    """Parameters in a list (``torch.nn.ParameterList``), registered as ``"0"``, ``"1"``...

    An array appended or assigned becomes a :class:`Parameter`; other objects are kept
    as they are (not registered). Indexing, slicing, ``append``, ``extend``, ``+=``,
    ``len`` and iteration; like torch's, it has no ``del``. Calling it raises.
    """

    def __init__(self, values: Iterable[Any] | None = None):
        super().__init__()
        self._size = 0
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx: int | slice) -> Any:
        if isinstance(idx, slice):
            return type(self)(self[i] for i in range(*idx.indices(len(self))))
        return getattr(self, _absolute(idx, len(self)))

    def __setitem__(self, idx: int, value: Any) -> None:
        _store(self, _absolute(idx, len(self)), value)

    def __len__(self) -> int:
        return self._size

    def __iter__(self) -> Iterator[Any]:
        return iter([self[i] for i in range(len(self))])

    def __iadd__(self, values: Iterable[Any]) -> ParameterList:
        return self.extend(values)

    def append(self, value: Any) -> ParameterList:
        self._size += 1
        self[self._size - 1] = value
        return self

    def extend(self, values: Iterable[Any]) -> ParameterList:
        if not isinstance(values, Iterable) or isinstance(values, (np.ndarray, Parameter)):
            raise TypeError(
                f"ParameterList.extend should be called with an iterable, but got "
                f"{type(values).__name__}"
            )
        for value in values:
            self.append(value)
        return self

    def __repr__(self) -> str:
        return _entries_repr(self, enumerate(self), lambda d: f"torch.{d.name}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterList should not be called.")


class ParameterDict(Module):
    """Parameters by string key (``torch.nn.ParameterDict``); arrays become Parameters.

    The dict methods (``keys``, ``items``, ``values``, ``update``, ``get``, ``pop``,
    ``popitem``, ``setdefault``, ``copy``, ``clear``, ``fromkeys``, ``|``, ``|=``).
    torch's ``update`` sorts the keys of a plain ``dict`` (an ``OrderedDict``, a
    ParameterDict or pairs keep their order), and so does this one.
    """

    def __init__(self, parameters: Any = None):
        super().__init__()
        self._keys: dict[str, None] = {}
        if parameters is not None:
            self.update(parameters)

    def _attr(self, key: Any) -> str:
        if not isinstance(key, str):
            raise TypeError(
                "Index given to ParameterDict cannot be used as a key as it is not a string "
                f"(type is '{type(key).__name__}')"
            )
        return key

    def __getitem__(self, key: str) -> Any:
        return getattr(self, self._attr(key))

    def __setitem__(self, key: str, value: Any) -> None:
        _store(self, self._attr(key), value)
        self._keys[key] = None

    def __delitem__(self, key: str) -> None:
        del self._keys[key]
        for table in (self._parameters, self._modules, self.__dict__):
            table.pop(key, None)

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[str]:
        return reversed(list(self._keys))

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def copy(self) -> ParameterDict:
        return ParameterDict(OrderedDict((k, self[k]) for k in self._keys))

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def clear(self) -> None:
        for key in list(self._keys):
            del self[key]

    def pop(self, key: str) -> Any:
        value = self[key]
        del self[key]
        return value

    def popitem(self) -> tuple[str, Any]:
        key = next(reversed(list(self._keys)))
        return key, self.pop(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def fromkeys(self, keys: Iterable[str], default: Any = None) -> ParameterDict:
        return ParameterDict([(k, default) for k in keys])

    def keys(self) -> Any:
        return self._keys.keys()

    def items(self) -> Iterator[tuple[str, Any]]:
        return ((k, self[k]) for k in self._keys)

    def values(self) -> Iterator[Any]:
        return (self[k] for k in self._keys)

    def update(self, parameters: Any) -> None:
        for key, value in _pairs(parameters, "ParameterDict", sort_plain_mappings=True):
            self[key] = value

    def __or__(self, other: ParameterDict) -> ParameterDict:
        merged = self.copy()
        merged.update(other)
        return merged

    def __ror__(self, other: ParameterDict) -> ParameterDict:
        merged = other.copy()
        merged.update(self)
        return merged

    def __ior__(self, other: ParameterDict) -> ParameterDict:
        self.update(other)
        return self

    def __repr__(self) -> str:
        return _entries_repr(self, self.items(), lambda d: f"torch.{_torch_names(d)[2]}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("ParameterDict should not be called.")
