r"""The allowance: how far each traced tensor may be from the float64 truth in a dtype.

One owner. Localization, attribution, known deviations and the report all read
:class:`Allowance` (its data model is in :mod:`harness.allowance`; this module draws
the samples it comes from); nothing else decides how much rounding a result may carry.

**The truth** is the float64 reference run on the case's data *rounded to the dtype*:
both sides receive exactly those inputs and weights, so the truth is what exact
arithmetic makes of what they were given.

**The allowance** comes from stochastic arithmetic (Monte Carlo arithmetic: Parker
1997; Verificarlo, CADNA, Verrou). The reference is rerun :data:`SAMPLES` times,
computing in the dtype itself where it can (float32, float64; in float64 for half
precision), each time with every stored value multiplied by :math:`1 + u\,\xi`,
:math:`\xi \sim U(-1, 1)`, where :math:`u` is the dtype's unit roundoff, and rounded
stochastically where the dtype's own grid cannot hold the move (plus an absolute
:math:`\tfrac12` subnormal step for half precision): the input, the weights,
every layer's output and buffers, the loss, every gradient, every parameter update and
the optimizer state (``harness.backends.reference.Site``). Each sample is one
plausible rounding history of a correct implementation in that dtype. Per element,

.. math::
    A = \mathrm{SAFETY}\cdot\max\big(\max_k |s_k - t|,\; u\,|t|,\; \tfrac12 s_{\min}\big)

is how far a correct side may be from the truth :math:`t` (:math:`s_{\min}`: the format's
subnormal step, below which rounding is absolute). Why this model and not
running error bounds (Higham's :math:`\gamma_n \sum |a_i|`, or its probabilistic
:math:`\sqrt n\,u` form): a bound needs a rule per operation, i.e. per layer type,
which is what this module exists to avoid. Perturbation needs nothing from a layer:
cancellations (normalization of a near-constant channel), near-ties in a max, inputs
on a kink and adaptive steps on rounding-level gradients all show up as spread,
because the samples really do cancel, pick the other element, take the other side
of the kink or step the other way. A new layer family gets its allowance for free.
The perturbation sits at layer boundaries; rounding *inside* a layer is sampled by
computing in the dtype: a formula whose float32 terms cancel (a normalization's
backward, :math:`\tfrac12(1 + \mathrm{erf})` for negative inputs) rounds differently
in every sample, since every sample starts from other inputs. Two roundings inside a
layer that no input moves are drawn as well. A statistic that a layer subtracts from
its data (a normalization's mean and variance, the means of its backward) gets one draw
of its sum's rounding, :math:`u\,\xi \sqrt{\sum_k S_k^2}/m` over the partial sums
:math:`S_k` (``reference.functional.rounding``): over a constant channel that *is* the
output. And a shape-preserving backward's result is moved by :math:`u` times the
gradient it came from, not only by :math:`u` times itself (an elementwise loss's
gradient too, by its upstream gradient): a backward that subtracts (softmax's
:math:`g - p \sum g` at a likely class) rounds at the size of its operands.
:data:`SAFETY` covers what differs between two algorithms for the same math.

Torch is judged on the spread around the truth. The reference, computing in float32,
is judged on the spread around its own unperturbed float32 run: a correct rounding
history is unbiased, so an implementation that sits far from the truth while its own
perturbed runs cluster around it has a bias, i.e. a bug. (Judging it on the spread
around the truth would let a float32-only fault in the reference carry its samples
with it and hide.) In float64 the reference is the truth.

A limit: the allowance is per element. Where the samples route a gradient to either
of two tied elements, each is allowed the whole gradient, so an error in the *total*
(a scaled max-pool backward at a near-tie) shows only at the first layer below that
sums the tied group.

It is computed lazily: only for a case whose fast pre-filter failed
(``harness.compare.prefilter``), so throughput stays where it was. A side found beyond
the allowance is re-judged with :data:`CONFIRM_SAMPLES` before it is blamed: a binary
event (a kink side, a tie) that all of the first samples happened to resolve one way
is then covered with probability :math:`1 - 2^{-64}`; a side a sample takes only once in
eight (the third of four near-tied elements, which stochastic rounding often leaves
exactly tied, so that the first index wins) with :math:`1 - (7/8)^{64} = 1 - 2\cdot10^{-4}`.

Known torch deviations (``harness.known``) enter the same model: for the torch side,
the site where torch is known to err (say, float64 hardsigmoid's backward) is
perturbed by the size of that error instead of :math:`u`, so the deviation is
allowed on its own tensor and on what inherits it, and nothing more.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reference.functional.rounding import partial_sum_magnitude

from .allowance import SAFETY, Allowance, _spread, _turned_nan, ratio
from .backends import Trace
from .backends.reference import Site
from .dtypes import subnormal_step, unit_roundoff
from .verdict import Kind, traced

__all__ = [
    "CONFIRM_SAMPLES",
    "FIRST_SAMPLES",
    "SAFETY",
    "SAMPLES",
    "Allowance",
    "Perturbation",
    "Sampler",
    "ratio",
]

# The samples, drawn as needed (Sampler): FIRST_SAMPLES clear most cases that fail the
# pre-filter (an allowance only grows with samples, so a pass on few is a pass); a side
# still beyond is judged on SAMPLES, which put the max of |N(0,1)| samples near 1.9 sigma
# (the chance that all 8 land within 0.3 sigma is 1e-5)...
FIRST_SAMPLES = 2
SAMPLES = 8
# ... and before it is blamed, on this many in all
CONFIRM_SAMPLES = 64
Key = tuple[Any, ...]  # (Kind, layer, tensor, step), harness.verdict.traced


@dataclass
class Perturbation:
    """A random rounding history: ``array * (1 + u * xi) (+ subnormal noise)`` at every site,
    in place, so that whatever a layer saved of the array for its backward is rounded too.

    ``extra`` maps ``(site, layer)`` (``layer`` None: every layer) to ``(relative, of_basis)``
    sizes added at that site (a known torch deviation's error): ``relative`` to the array's
    values, ``of_basis`` to the ``basis`` the backend passes (a layer's input at its output,
    the incoming gradient at its input gradient)."""

    dtype: str
    rng: np.random.Generator
    extra: Mapping[tuple[Site, int | None], tuple[float, float]] = field(default_factory=dict)
    plain: bool = True  # False: only the extra sites are perturbed
    # when set, (kind, layer): only where that tensor is made rounds, a history exact up
    # to it (local_sites)
    local: tuple[Kind, int | None] | None = None
    n_layers: int = 0
    # a graph-shaped network's inputs per node (harness.graph); None: a chain
    graph: tuple[tuple[int, ...], ...] | None = None
    # a known deviation's loss formula that leaves the dtype's range: (loss input,
    # target, dtype) -> where torch's loss is inf and its gradient NaN (harness.known)
    overflow: Callable[[np.ndarray, np.ndarray, str], np.ndarray] | None = None

    def __post_init__(self) -> None:
        self._u = unit_roundoff(self.dtype)
        self._local = (
            None if self.local is None else local_sites(*self.local, self.n_layers, self.graph)
        )

    def _rounds(self, site: Site, layer: int | None, *phase: bool) -> bool:
        if not self.plain or site in _SECOND_ROUNDINGS:
            return False
        return self._local is None or (site, layer, *phase) in self._local

    def _extra(self, site: Site, layer: int | None) -> tuple[float, float]:
        a = self.extra.get((site, layer), (0.0, 0.0))
        b = self.extra.get((site, None), (0.0, 0.0)) if layer is not None else (0.0, 0.0)
        return a[0] + b[0], a[1] + b[1]

    def __call__(
        self, array: np.ndarray, site: Site, layer: int | None, basis: Any = None
    ) -> np.ndarray:
        a = np.asarray(array)
        if a.dtype.kind != "f" or a.size == 0:
            return a
        relative, of_basis = self._extra(site, layer)
        plain = self._rounds(site, layer)
        size = (self._u if plain else 0.0) + relative
        if size == 0.0 and (of_basis == 0.0 or basis is None):
            return a
        if not a.flags.writeable:
            a = a.copy()
        # rounding never crosses a number the format holds: a value within [-1, 1] (a
        # sigmoid's, tanh's or softmax's) stays there (a probability stays one for a BCELoss)
        bounded = np.abs(a) <= 1.0
        # in place: a layer that saved its output for the backward (tanh, sigmoid, softmax)
        # must see the stored, rounded value, as a real implementation does
        if size <= _OWN_ROUNDOFF.get(a.dtype.type, 0.0):
            # a move below an ulp of a's own grid (float32 by u, float64 by its own u)
            self._add_stochastically(a, size * a * self.rng.uniform(-1.0, 1.0, a.shape))
        elif size:
            a *= 1.0 + size * self.rng.uniform(-1.0, 1.0, a.shape)
        if of_basis and basis is not None:
            magnitude = np.abs(np.asarray(basis, np.float64))
            if magnitude.shape != a.shape:
                magnitude = np.max(magnitude, initial=0.0)
            bound = of_basis * magnitude
            a += bound * self.rng.uniform(-1.0, 1.0, a.shape)
            # an error absolute in the basis may leave exactly 0 where the value is within it
            # of 0 (torch's float32 GELU is -0.0 at x = -6.6, whose value is -1.6e-10): half
            # of the samples take that outcome, so what sits at a kink downstream is sampled
            flush = (np.abs(a) <= bound) & (self.rng.uniform(0.0, 1.0, a.shape) < 0.5)
            a[flush] = 0.0
        incoming = _elementwise(basis, a.shape) if plain and site in _BACKWARDS else None
        if incoming is not None:
            # a backward that subtracts (softmax's g - p * sum(g), a BCEWithLogitsLoss's
            # p * sigmoid(x) - p, a smoothed CrossEntropyLoss's p - eps / C) rounds at the
            # size of the gradient it came from, however small its result: a product is
            # exact at 0
            noise = self._u * np.abs(incoming) * (a != 0)
            self._add_stochastically(a, noise * self.rng.uniform(-1.0, 1.0, a.shape))
        if plain and self.dtype in ("float16", "bfloat16"):
            # below the normal range rounding is absolute: half a subnormal step
            step = 0.5 * subnormal_step(self.dtype) * (a != 0)
            a += step * self.rng.uniform(-1.0, 1.0, a.shape)
        if bounded.any():
            np.clip(a, -1.0, 1.0, out=a, where=bounded)
        return a

    def statistic(
        self,
        mean: np.ndarray,
        terms: np.ndarray,
        axes: tuple[int, ...],
        layer: int | None = None,
        backward: bool = False,
    ) -> np.ndarray:
        """``mean`` (of a statistic computed in ``layer``'s forward or backward) with one
        rounding history of its sum (``reference.functional.rounding``):
        ``u * xi * sqrt(sum_k S_k^2) / m``, the partial sums' roundings, one draw per mean."""
        if mean.dtype.kind != "f" or mean.size == 0:
            return mean
        if not self._rounds(Site.STATISTIC, layer, backward):
            return mean
        size = self._u * partial_sum_magnitude(terms, axes)
        out = np.array(mean, copy=True)
        self._add_stochastically(out, size * self.rng.uniform(-1.0, 1.0, out.shape))
        return out

    def _add_stochastically(self, a: np.ndarray, noise: np.ndarray) -> None:
        """``a += noise`` in ``a``'s own grid, rounded stochastically (to the neighbour
        on either side with the probability of the distance), so that a move smaller
        than a grid step is not rounded away."""
        finite = np.isfinite(a)  # an overflowed value stays what it is (not inf - inf)
        step = np.where(finite, np.spacing(np.abs(a)), 0.0).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            steps = np.asarray(noise, np.float64) / step
        steps = np.where(finite & np.isfinite(steps), steps, 0.0)
        whole = np.floor(steps)
        whole += self.rng.uniform(0.0, 1.0, a.shape) < steps - whole
        with np.errstate(over="ignore"):
            a += (whole * step).astype(a.dtype)


def local_sites(
    kind: Kind,
    layer: int | None,
    n_layers: int,
    graph: tuple[tuple[int, ...], ...] | None = None,
) -> frozenset[tuple]:
    """The sites of a history that rounds only where a ``kind`` tensor of ``layer`` is
    made (``n_layers`` in the network; layer None: the loss): what that pass of the layer
    receives, computes and stores. Nothing else rounds, so neither does what the tensor's
    conditioning depends on (a forward rounded upstream of a backward would change the
    gradient's very size). A statistic's entry also says which pass:
    ``(Site.STATISTIC, layer, backward)``."""
    if kind is Kind.LOSS or layer is None:
        last = n_layers - 1
        sums = {(Site.STATISTIC, None, False), (Site.STATISTIC, None, True)}
        loss = {(Site.OUTPUT, last), (Site.LOSS, None), (Site.GRAD_OUTPUT, None)}
        return frozenset(loss | sums)
    if kind in (Kind.FORWARD, Kind.BUFFER):
        sources = graph[layer] if graph is not None else (layer - 1,)
        fed = {(Site.OUTPUT, j) if j >= 0 else (Site.INPUT, None) for j in sources}
        made = (Site.WEIGHT, Site.OUTPUT, Site.BUFFER)
        return frozenset(fed | {(Site.STATISTIC, layer, False)} | {(s, layer) for s in made})
    readers = (
        [i for i, sources in enumerate(graph) if layer in sources]
        if graph is not None
        else ([layer + 1] if layer < n_layers - 1 else [])
    )
    back: set[tuple[Site, int | None]] = {(Site.GRAD_INPUT, i) for i in readers}
    if layer == n_layers - 1:
        back.add((Site.GRAD_OUTPUT, None))
    own: tuple[Site, ...] = (Site.GRAD_INPUT, Site.GRAD_PARAM)
    if kind is Kind.STEP:
        own += (Site.OPTIMIZER_GRAD, Site.UPDATE, Site.STEPPED, Site.STATE)
    return frozenset(back | {(Site.STATISTIC, layer, True)} | {(s, layer) for s in own})


def _elementwise(basis: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """``basis`` per element of an array of ``shape``: itself when the shapes agree, or a
    per-sample loss's gradient ``(N, ...)`` spread over the class axis of ``(N, C, ...)``
    (each output element belongs to one loss element); None otherwise (a scalar loss)."""
    if basis is None or np.ndim(basis) == 0:
        return None
    b = np.asarray(basis, np.float64)
    if b.shape == shape:
        return b
    if len(shape) == b.ndim + 1 and shape[:1] + shape[2:] == b.shape:
        return np.broadcast_to(np.expand_dims(b, 1), shape)  # (N, ...) -> (N, 1, ...)
    return None


# the backward of a layer (its input gradient) or of an elementwise loss (the gradient
# wrt the network's output), whose basis is the gradient flowing into it
_BACKWARDS = frozenset({Site.GRAD_INPUT, Site.GRAD_OUTPUT})

# sites whose values a plain sample has rounded already: the gradient the optimizer reads
# (rounded where the backward stored it) and the update (rounded with the parameter it
# is added to); a known deviation may still enter there
_SECOND_ROUNDINGS = frozenset({Site.OPTIMIZER_GRAD, Site.UPDATE})

# the unit roundoff of an array's own dtype: a move below it needs stochastic rounding
_OWN_ROUNDOFF = {np.float16: 2.0**-11, np.float32: 2.0**-24, np.float64: 2.0**-53}


@dataclass
class Sampler:
    """The perturbed runs of one case in one dtype, drawn as they are needed.

    The spread is a maximum over samples, so it only grows as samples are added: a side
    within the allowance of the first few is within that of any more. The verdict
    therefore starts with :data:`FIRST_SAMPLES` and draws more only for a side found
    beyond (:data:`SAMPLES`, then :data:`CONFIRM_SAMPLES` before anyone is blamed)."""

    run: Callable[[Any], Trace]  # run(perturbation) -> the perturbed trace
    truth: Trace
    dtype: str
    seed: Any
    reference: Trace | None = None  # the reference's own run in the dtype, when judged
    extra: Mapping[tuple[Site, int | None], tuple[float, float]] | None = None
    plain: bool = True
    local: tuple[Kind, int | None] | None = None  # Perturbation.local
    n_layers: int = 0
    graph: tuple[tuple[int, ...], ...] | None = None  # Perturbation.graph
    overflow: Callable[[np.ndarray, np.ndarray, str], np.ndarray] | None = None
    runs: list[dict[Key, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)

    def allowance(self, samples: int) -> Allowance:
        self._draw(samples)
        runs = self.runs[:samples]
        # a sample run without the optimizer steps: only the tensors it has are judged
        center = {k: v for k, v in traced(self.truth).items() if k in runs[0]}
        around = None
        if self.reference is not None:
            mine = traced(self.reference)
            around = _spread({k: mine[k] for k in center if k in mine}, runs)
        nan = {k: _turned_nan(t, runs, k) for k, t in center.items()}
        return Allowance(self.dtype, self.truth, _spread(center, runs), samples, around, center,
                         nan_possible=nan)  # fmt: skip

    def _draw(self, samples: int) -> None:
        rejected = 0
        while len(self.runs) < samples:
            perturbation = Perturbation(
                self.dtype,
                self.rng,
                dict(self.extra or {}),
                self.plain,
                self.local,
                self.n_layers,
                self.graph,
                self.overflow,
            )
            try:
                with np.errstate(all="ignore"):
                    self.runs.append(traced(self.run(perturbation)))
            except (ValueError, FloatingPointError):
                # a layer refused the perturbed values (a check torch makes too): not a
                # rounding history a correct implementation can have; draw another
                rejected += 1
                if rejected > samples:
                    raise
