"""A fuzz campaign: cases drawn from a run seed, checked in one process or many.

Case ``i`` of a run with seed ``S`` is drawn from ``np.random.default_rng(case_seed(S, i))``,
so a case does not depend on the cases before it: ``--jobs`` (a process pool) and
``--shard k/N`` (one slice of the cases, for a CI matrix or a cluster's array jobs) run
exactly the cases a one-process run would, and their summaries agree.

Each case runs in :func:`run_case`, which checks it, saves it when it fails (after
shrinking it to the smallest case that shows the same finding, ``harness.shrink``), and
returns a :class:`CaseResult`: plain data, cheap to send back from a worker process.
"""

from __future__ import annotations

import concurrent.futures as futures
import multiprocessing
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CaseResult",
    "Campaign",
    "case_seed",
    "run_case",
    "run_cases",
    "run_cases_ray",
    "connect_ray",
]


# NumPy's floating-point errors while a case runs: a division by zero in the reference is
# a crash worth a look; an overflow is not raised, as a training run that diverges (a
# PoissonNLLLoss's exp, a step on a huge gradient) overflows to inf in torch too, and an
# inf is judged by the verdict like any value (a reference that overflows where torch
# does not is a mismatch); nor is an invalid operation, for NaN, and because BLAS's matmul
# can flag one spuriously (seen with torch on two threads in the same process)
def _errstate() -> Any:
    return np.errstate(over="ignore", divide="raise", invalid="ignore", under="ignore")


def case_seed(run_seed: int, index: int) -> int:
    """The seed of case ``index`` of a run seeded ``run_seed`` (independent of the others)."""
    return int(np.random.SeedSequence([run_seed, index]).generate_state(1)[0])


@dataclass(frozen=True)
class Campaign:
    """What every case of a run shares (sent to each worker once per case: it is small)."""

    seed: int
    limits: dict[str, Any]
    devices: tuple[str, ...] | None
    dtypes: tuple[str, ...]
    strict_known: bool
    out: str  # the run's folder
    shrink_s: float  # the time one failing case may spend shrinking (0: none)
    backends: tuple[str, ...] = ("torch",)  # by name (harness.backends.protocol)


@dataclass
class CaseResult:
    """One case's verdict, as the summary needs it."""

    index: int
    spec_seed: int
    ok: bool
    layers: list[str]  # layer classes, for the coverage table
    loss: str
    optimizer: str
    warnings: list[tuple[str, str, str]] = field(default_factory=list)
    known: list[tuple[str, str, str]] = field(default_factory=list)
    findings: list[tuple[str, str, str]] = field(default_factory=list)
    message: str = ""  # the first finding, one line (for JUnit)
    saved: str | None = None  # the case's folder
    minimal: str | None = None  # the shrunk case's folder, when smaller
    minimal_layers: int | None = None
    shrink_s: float = 0.0
    seconds: float = 0.0
    skipped: bool = False  # no backend could run any of it (Report.skipped says why)


def _where(m: Any) -> tuple[str, str, str]:
    run = m.dtype if m.backend == "torch" else f"{m.backend} {m.dtype}"
    return (m.layer_type, str(m.kind), f"{run}, blame {m.blamed}")


def _backends(names: tuple[str, ...]) -> list[Any]:
    from .backends.protocol import backend_named

    return [backend_named(name) for name in names]


def run_case(campaign: Campaign, index: int) -> CaseResult:
    """Draw case ``index``, check it, save (and shrink) it when it fails."""
    from .checking import check
    from .generate import random_spec

    start = time.perf_counter()
    spec = random_spec(np.random.default_rng(case_seed(campaign.seed, index)), **campaign.limits)
    with _errstate():
        backends = _backends(campaign.backends)
        report = check(spec, devices=campaign.devices, dtypes=campaign.dtypes, backends=backends)
    optimizer = spec.optimizer.type if spec.optimizer is not None and spec.steps else "none"
    result = CaseResult(
        index,
        spec.seed,
        report.ok and not (campaign.strict_known and report.known),
        [layer.type for layer in spec.layers],
        spec.loss.type,
        optimizer,
        warnings=[(w.layer_type, str(w.kind), w.dtype) for w in report.warnings],
        known=[(k.layer_type, str(k.kind), k.dtype) for k in report.known],
        skipped=report.skipped_whole,
    )
    if campaign.strict_known:
        report.mismatches += report.known
    if not result.ok:
        _save(campaign, report, result)
    result.seconds = time.perf_counter() - start
    return result


def _save(campaign: Campaign, report: Any, result: CaseResult) -> None:
    """Save the failing case and, first, its smallest form with the same finding."""
    from .report import save_repro

    result.findings = [_where(m) for m in report.mismatches]
    if report.errors:
        result.findings.append(("(crash)", "error", report.errors[0].split("]")[0][1:]))
    result.message = (str(report.mismatches[0]).splitlines()[0] if report.mismatches else "") or (
        report.errors[0] if report.errors else "failed"
    )
    folder = Path(campaign.out)
    result.saved = str(save_repro(report, folder))
    if campaign.shrink_s <= 0:
        return
    from .shrink import shrink_report

    start = time.perf_counter()
    with _errstate():
        spec, minimal = shrink_report(
            report, budget_s=campaign.shrink_s, backends=_backends(campaign.backends)
        )
    result.shrink_s = time.perf_counter() - start
    if len(spec.layers) < len(report.spec.layers) or spec != report.spec:
        result.minimal = str(save_repro(minimal, folder / "minimal"))
        result.minimal_layers = len(spec.layers)


def _run_serially(
    campaign: Campaign, indices: Iterator[int], keep_going: Callable[[], bool]
) -> Iterator[CaseResult]:
    """The cases in this process, with torch on one thread as in the workers: the rounding
    of a reduction depends on how torch splits it, and the verdicts must not depend on
    ``--jobs`` (a 5,000-case run gave 2 differences between 1 job and 2)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for index in indices:
            if not keep_going():
                return
            yield run_case(campaign, index)
    finally:
        torch.set_num_threads(threads)


def _quiet_worker() -> None:
    """Workers leave Ctrl-C to the driver, which stops handing out cases, and run torch
    on one thread each: N workers of the machine's N threads would oversubscribe the
    cores (OpenMP spins), and a run was 2x slower on 2 jobs than on 1."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    torch.set_num_threads(1)


def run_cases(
    campaign: Campaign,
    indices: Iterator[int],
    jobs: int,
    keep_going: Callable[[], bool],
) -> Iterator[CaseResult]:
    """The results of the cases ``indices`` (in order of index), ``jobs`` at a time;
    ``keep_going()`` is asked before each new case (a deadline, Ctrl-C)."""
    if jobs <= 1:
        yield from _run_serially(campaign, indices, keep_going)
        return
    # spawned, not forked: a fork of a process whose torch has started its OpenMP threads
    # can hang in the child's first parallel op
    context = multiprocessing.get_context("spawn")
    with futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_quiet_worker) as pool:

        def finished(pending: dict[int, Any]) -> list[int]:
            ready, _ = futures.wait(pending.values(), return_when=futures.FIRST_COMPLETED)
            return [i for i, f in pending.items() if f in ready]

        def submit(index: int) -> futures.Future:
            return pool.submit(run_case, campaign, index)

        yield from _in_order(indices, keep_going, jobs, submit, finished, futures.Future.result)


def _in_order(
    indices: Iterator[int],
    keep_going: Callable[[], bool],
    width: int,
    submit: Callable[[int], Any],
    finished: Callable[[dict[int, Any]], list[int]],
    result: Callable[[Any], CaseResult],
) -> Iterator[CaseResult]:
    """The cases ``indices`` with up to ``2 * width`` in flight (``submit`` starts one,
    ``finished`` waits until some are done, ``result`` fetches one), yielded in order of
    index, so that a summary does not depend on which worker was quicker."""
    pending: dict[int, Any] = {}
    done: dict[int, CaseResult] = {}
    order: list[int] = []

    def collect() -> Iterator[CaseResult]:
        for index in finished(pending):
            done[index] = result(pending.pop(index))
        while order and order[0] in done:
            yield done.pop(order.pop(0))

    for index in indices:
        if not keep_going():
            break
        pending[index] = submit(index)
        order.append(index)
        while len(pending) >= 2 * width:
            yield from collect()
    while pending:
        yield from collect()


def connect_ray(address: str) -> None:
    """Join the Ray cluster at ``address`` (``local``: start one here), unless this process
    has one already; ``ConnectionError`` when there is none to join."""
    import ray

    if ray.is_initialized():
        return
    try:
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    except ConnectionError:
        raise
    except Exception as exc:  # noqa: BLE001 - ray raises several kinds for "no cluster"
        raise ConnectionError(str(exc).splitlines()[0]) from exc


def run_cases_ray(
    campaign: Campaign, indices: Iterator[int], address: str, keep_going: Callable[[], bool]
) -> Iterator[CaseResult]:
    """As :func:`run_cases`, each case a Ray task on the cluster at ``address`` (``auto``:
    the one this machine belongs to; ``local``: a fresh one on this machine; a Ray
    instance already started in this process is used as it is). The driver keeps as many
    tasks in flight as the cluster has CPUs, and yields results in order of index."""
    import ray

    connect_ray(address)
    task = ray.remote(num_cpus=1)(run_case)
    width = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def finished(pending: dict[int, Any]) -> list[int]:
        ready, _ = ray.wait(list(pending.values()), num_returns=1)
        return [i for i, ref in pending.items() if ref in ready]

    def submit(index: int) -> Any:
        return task.remote(campaign, index)

    yield from _in_order(indices, keep_going, width, submit, finished, ray.get)
