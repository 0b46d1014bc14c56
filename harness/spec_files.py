"""Spec files as a user hands them over: checked, with one-line errors.

:func:`load_spec_file` reads a ``spec.json`` (or a case folder holding one) and checks
its structure (``NetworkSpec.from_dict``), its type names against torch and the
reference (:func:`check_known_types`), its constructors and its shapes. Every failure
is a :class:`harness.spec.SpecFileError`: the file and the problem, on one line.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from .spec import (
    NetworkSpec,
    SpecError,
    SpecFileError,
    _did_you_mean,
    build_reference_layers,
    infer_shapes,
)

__all__ = ["check_known_types", "load_spec_file"]


# -- type names: torch's, and the reference's --------------------------------
@functools.cache
def _class_names(family: str, source: str) -> tuple[str, ...] | None:
    """The class names of ``family`` (``layer``, ``loss``, ``optimizer``) in ``source``
    (``torch`` or ``reference``); ``None`` where it cannot be imported. Imported here,
    not at the top: a spec is plain data, and the reference never needs torch."""
    try:
        if source == "torch":
            import torch.nn as nn
            import torch.optim as optim
        else:
            import reference.nn as nn  # type: ignore[no-redef]
            import reference.optim as optim  # type: ignore[no-redef]
    except ImportError:
        return None
    space, base = (optim, optim.Optimizer) if family == "optimizer" else (nn, nn.Module)
    names = [
        name
        for name, value in vars(space).items()
        if isinstance(value, type) and issubclass(value, base) and value is not base
    ]
    if family != "optimizer":  # every torch loss, and only a loss, ends in Loss
        names = [n for n in names if n.endswith("Loss") == (family == "loss")]
    return tuple(sorted(n for n in names if not n.startswith("_")))


def _type_problem(name: str, family: str) -> str:
    """Why ``name`` cannot be a ``family``'s type; ``''`` when the reference has it (a
    graph op, ``harness.graph.Op``, is a layer's type too)."""
    from .graph import OP_TYPES

    if name in (_class_names(family, "reference") or ()) or (
        family == "layer" and name in OP_TYPES
    ):
        return ""
    space = "torch.optim" if family == "optimizer" else "torch.nn"
    torch_names = _class_names(family, "torch")
    if torch_names is not None and name in torch_names:
        return f"{name!r} is in {space}, but the reference does not implement it yet"
    other = {"layer": "loss", "loss": "layer"}.get(family, "")
    if other and name in (_class_names(other, "torch") or _class_names(other, "reference") or ()):
        return f"{name!r} is a {other} in torch.nn, not a {family}"
    guess = _did_you_mean(name, torch_names or _class_names(family, "reference") or ())
    return f"unknown type {name!r} (not in {space}{'; ' + guess if guess else ''})"


def check_known_types(spec: NetworkSpec) -> None:
    """Raise :class:`SpecError` for a layer, loss or optimizer type that torch does not
    have (naming the closest one it has), or that the reference does not implement."""
    named = [(f"layer {i}", layer.type, "layer") for i, layer in enumerate(spec.layers)]
    named.append(("loss", spec.loss.type, "loss"))
    if spec.optimizer is not None:
        named.append(("optimizer", spec.optimizer.type, "optimizer"))
    for where, name, family in named:
        problem = _type_problem(name, family)
        if problem:
            raise SpecError(f"{where}: {problem}")


def load_spec_file(path: str | Path) -> NetworkSpec:
    """The spec in ``path``: a spec.json file, or a case folder that holds one; checked
    (structure, type names, shapes). Every failure is a :class:`SpecFileError`, one line
    naming the file and the problem."""
    path = Path(path)
    file = path / "spec.json" if path.is_dir() else path
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if path.is_dir():
            raise SpecFileError(
                path,
                "a folder without spec.json (expected a saved case folder, "
                "or the path of a spec.json file)",
            ) from None
        raise SpecFileError(path, "no such file or folder") from None
    except UnicodeDecodeError as exc:
        raise SpecFileError(file, f"not text: {exc.reason} at byte {exc.start}") from None
    except OSError as exc:
        raise SpecFileError(file, f"cannot be read: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        empty = " (the file is empty)" if not text.strip() else ""
        raise SpecFileError(
            file, f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}{empty}"
        ) from None
    try:
        spec = NetworkSpec.from_dict(data)
        check_known_types(spec)
    except (SpecError, ValueError, TypeError, KeyError) as exc:
        problem = str(exc) if isinstance(exc, SpecError) else f"{type(exc).__name__}: {exc}"
        raise SpecFileError(file, problem) from exc
    try:
        build_reference_layers(spec)  # a constructor's complaint is not about shapes
    except SpecError as exc:
        raise SpecFileError(file, str(exc)) from exc
    try:
        infer_shapes(spec)
    except SpecError as exc:
        raise SpecFileError(file, f"shapes do not work: {exc}") from exc
    return spec
