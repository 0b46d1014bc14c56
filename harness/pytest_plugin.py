"""backprop-oracle's pytest plugin: options ``--device`` and ``--dtype``, the fixtures they
parametrize, the markers, and hypothesis profiles.

Installing the package installs the plugin (the ``pytest11`` entry point
``backprop_oracle``), in any project; ``-p no:backprop_oracle`` turns it off.

- ``--device cpu,cuda``: a test taking a ``device`` argument runs once per device
  (default: cpu, and cuda, which skips without a GPU);
- ``--dtype float32,float64``: a test taking ``dtype`` runs once per dtype (default:
  float32 and float64; any name ``harness.dtypes.parse_dtype`` accepts);
  a test that parametrizes ``device`` or ``dtype`` itself, or a project's own fixture of
  that name, is left alone;
- markers ``gpu`` (needs CUDA) and ``slow``;
- hypothesis profiles, *registered* and never loaded over your choice (select one with
  ``--hypothesis-profile NAME``): ``ci``: derandomized, 40 examples a test;
  ``dev``: 12 random examples; ``thorough``: 400 examples, for a long hunt.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from .dtypes import parse_dtype

__all__ = ["cuda_available", "selected_devices", "selected_dtypes"]

_COMMON: dict[str, Any] = {
    "deadline": None,  # torch's first call on a shape can take 100 ms; time is not a property
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=12, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)

_DEFAULT_DEVICES = ("cpu", "cuda")
_DEFAULT_DTYPES = ("float32", "float64")


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("backprop-oracle")
    group.addoption(
        "--device",
        default=None,
        help="comma-separated devices for tests taking `device` (default: cpu,cuda; "
        "cuda skips without a GPU)",
    )
    group.addoption(
        "--dtype",
        default=None,
        help="comma-separated dtypes for tests taking `dtype` (default: float32,float64; "
        "also float16, bfloat16)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA device (skipped when none is present)")
    config.addinivalue_line("markers", "slow: long-running; deselect with -m 'not slow'")
    selected_dtypes(config)  # a misspelt --dtype is a usage error now, not in every test


def _listed(option: str | None, default: tuple[str, ...]) -> list[str]:
    if not option:
        return list(default)
    return [item.strip() for item in option.split(",") if item.strip()]


def selected_devices(config: pytest.Config) -> list[str]:
    return _listed(config.getoption("--device"), _DEFAULT_DEVICES)


def selected_dtypes(config: pytest.Config) -> list[str]:
    """The ``--dtype`` names, canonical; a name not understood is a usage error."""
    try:
        return [parse_dtype(d) for d in _listed(config.getoption("--dtype"), _DEFAULT_DTYPES)]
    except ValueError as exc:
        raise pytest.UsageError(f"--dtype: {exc}") from None


def _device_param(device: str) -> Any:
    marks: list[Any] = []
    if device.startswith("cuda"):
        marks = [
            pytest.mark.gpu,
            pytest.mark.skipif(not cuda_available(), reason="no CUDA device"),
        ]
    elif device != "cpu":
        marks = [pytest.mark.skipif(not _torch_has(device), reason=f"no {device} device")]
    return pytest.param(device, marks=marks, id=device)


def _torch_has(device: str) -> bool:
    try:
        import torch

        torch.empty(0, device=device)
    except Exception:  # noqa: BLE001 - an unknown or absent device: skip, with the reason
        return False
    return True


def _ours(metafunc: pytest.Metafunc, name: str) -> bool:
    """Whether ``name`` is for this plugin to parametrize: the test asks for it, does not
    parametrize it itself, and no fixture of the project's has that name."""
    if name not in metafunc.fixturenames:
        return False
    for marker in metafunc.definition.iter_markers("parametrize"):
        names = marker.args[0] if marker.args else marker.kwargs.get("argnames", "")
        if isinstance(names, str):
            names = [n.strip() for n in names.split(",")]
        if name in names:
            return False
    infos = getattr(metafunc.definition, "_fixtureinfo", None)
    defs = infos.name2fixturedefs.get(name) if infos is not None else None
    return not defs or getattr(defs[-1].func, "__module__", None) == __name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if _ours(metafunc, "device"):
        devices = selected_devices(metafunc.config)
        params = [_device_param(d) for d in devices]
        metafunc.parametrize("device", params, indirect=True, scope="session")
    if _ours(metafunc, "dtype"):
        dtypes = selected_dtypes(metafunc.config)
        params = [pytest.param(d, id=d) for d in dtypes]
        metafunc.parametrize("dtype", params, indirect=True, scope="session")


# session-scoped: a plain name, and hypothesis's @given refuses function-scoped fixtures
@pytest.fixture(scope="session")
def device(request: pytest.FixtureRequest) -> str:
    """A device name from ``--device`` (one test per device; CUDA skips without a GPU)."""
    return str(request.param)


@pytest.fixture(scope="session")
def dtype(request: pytest.FixtureRequest) -> str:
    """A canonical dtype name from ``--dtype`` (one test per dtype)."""
    return str(request.param)
