"""Where one side first parts from the truth: localization under the allowance.

A side (torch on a device, or the reference, in one dtype) is walked through its
trace in the order the computation ran, and each tensor is judged against the
float64 truth under ``harness.bounds``' allowance. Only the first tensor beyond it
in each stage is reported; what follows it inherits its error and is counted as
``downstream``:

- forward: the first layer whose output is beyond while its input is within (its
  input is the previous layer's output, or the network input, which is exact);
- loss: the loss is beyond though the network output is within;
- backward, walking from the loss toward the input: the loss's gradient, then the
  first layer whose input gradient is beyond while its output gradient is within;
  a parameter gradient beyond while its layer's output gradient is within is that
  layer's own finding (the layer that is itself the first divergence included);
- buffers (running statistics) after the forward, whatever the backward did;
- optimizer steps, when the backward and buffers are within: the first step ``k``
  after which a parameter or buffer is beyond.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .bounds import Allowance
from .verdict import Kind

__all__ = ["Finding", "first_divergences", "worst_ratio"]

Key = tuple[Any, ...]


@dataclass
class Finding:
    key: Key  # (kind, layer, tensor, step)
    ratio: float  # max |side - truth| / allowance over the tensor
    downstream: int = 0


def worst_ratio(
    values: Any, allowance: Allowance, key: Key, side: str = "torch", torch: Any = None
) -> float:
    """The largest ``|values - truth| / allowance`` over tensor ``key`` (inf: wrong shape);
    ``side`` and ``torch`` pick the allowance (``Allowance.of``)."""
    truth = allowance.tensors[key]
    if values is None or np.shape(values) != np.shape(truth):
        return float("inf")
    if np.size(truth) == 0:
        return 0.0
    return float(np.max(allowance.ratio(key, values, side, torch)))


def first_divergences(
    values: Mapping[Key, Any],
    allowance: Allowance,
    side: str = "torch",
    torch: Mapping[Key, Any] | None = None,
) -> list[Finding]:
    """Each stage's first tensor of ``values`` beyond ``allowance`` (module doc); ``torch``:
    torch's tensors, when the reference is judged (``Allowance.of``)."""
    keys = list(allowance.tensors)
    other = torch or {}
    beyond = {
        k: r
        for k in keys
        if (r := worst_ratio(values.get(k), allowance, k, side, other.get(k))) > 1.0
    }
    if not beyond:
        return []
    by_kind: dict[Kind, list[Key]] = {}
    for k in keys:
        by_kind.setdefault(Kind(k[0]), []).append(k)
    forward = [k for k in by_kind.get(Kind.FORWARD, []) if k in beyond]
    if forward:
        return [Finding(forward[0], beyond[forward[0]], len(forward) - 1)]
    loss = by_kind[Kind.LOSS][0]
    if loss in beyond:
        return [Finding(loss, beyond[loss])]
    found = _backward(by_kind, beyond)
    found += [Finding(k, beyond[k]) for k in by_kind.get(Kind.BUFFER, []) if k in beyond]
    if found:
        return found
    return _first_step(by_kind.get(Kind.STEP, []), beyond)


def _backward(by_kind: dict[Kind, list[Key]], beyond: dict[Key, float]) -> list[Finding]:
    """The first gradient beyond, walking from the loss, and the parameter gradients of
    the layers whose output gradient is within."""
    found: list[Finding] = []
    lowest_within = 0  # layers >= this have their output gradient within
    grad_output = by_kind.get(Kind.GRAD_OUTPUT, [])
    explained = 0
    if grad_output and grad_output[0] in beyond:
        found.append(Finding(grad_output[0], beyond[grad_output[0]]))
        lowest_within = 1 << 30
    else:
        inputs = by_kind.get(Kind.GRAD_INPUT, [])  # from the last layer down
        bad = [k for k in inputs if k in beyond]
        if bad:
            found.append(Finding(bad[0], beyond[bad[0]]))
            lowest_within = bad[0][1]
            explained = len(bad) - 1
    for k in by_kind.get(Kind.GRAD_PARAM, []):
        if k not in beyond:
            continue
        if k[1] >= lowest_within:
            found.append(Finding(k, beyond[k]))
        else:
            explained += 1
    if found:
        found[0].downstream += explained
    return found


def _first_step(steps: list[Key], beyond: dict[Key, float]) -> list[Finding]:
    bad_steps = sorted({k[3] for k in steps if k in beyond})
    if not bad_steps:
        return []
    first = bad_steps[0]
    found = [Finding(k, beyond[k]) for k in steps if k[3] == first and k in beyond]
    found[0].downstream = sum(1 for k in steps if k[3] > first and k in beyond)
    return found
