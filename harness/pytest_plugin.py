"""pytest wiring: hypothesis profiles, the ``device`` parametrization, warnings as errors.

Loaded by ``-p harness.pytest_plugin`` in pyproject's addopts.

Profiles (choose with ``--hypothesis-profile NAME`` or ``HYPOTHESIS_PROFILE``):
``ci`` (default): derandomized, 40 examples a test, the whole suite in about a minute on 2 cores;
``dev``: 12 random examples, a quick look while editing;
``thorough``: many examples, for a long hunt.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

_COMMON: dict[str, Any] = {
    "deadline": None,  # torch's first call on a shape can take 100 ms; time is not a property
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=40, derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=12, **_COMMON)
settings.register_profile("thorough", max_examples=400, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


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
        help="comma-separated devices for differential tests (default: cpu, and "
        "cuda when available)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Overflow, 0/0 and x/0 in a "stable" formula are bugs; underflow to 0 is expected
    # (exp of a very negative number) and is not.
    np.seterr(over="raise", divide="raise", invalid="raise", under="ignore")


def selected_devices(config: pytest.Config) -> list[str]:
    option = config.getoption("--device")
    if option:
        return [d.strip() for d in option.split(",") if d.strip()]
    return ["cpu", "cuda"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking a ``device`` argument runs once per device; CUDA skips without a GPU."""
    if "device" in metafunc.fixturenames:
        params = []
        for device in selected_devices(metafunc.config):
            marks = []
            if device.startswith("cuda"):
                marks = [
                    pytest.mark.gpu,
                    pytest.mark.skipif(not cuda_available(), reason="no CUDA device"),
                ]
            params.append(pytest.param(device, marks=marks, id=device))
        metafunc.parametrize("device", params)


@pytest.fixture(autouse=True)
def _floating_point_errors_raise():
    """Re-assert the error state per test: a library may have changed it."""
    old = np.seterr(over="raise", divide="raise", invalid="raise", under="ignore")
    yield
    np.seterr(**old)
