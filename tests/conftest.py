"""This repository's own test settings; the plugin every project gets (``--device``,
``--dtype``, hypothesis profiles registered) is ``harness/pytest_plugin.py``.

Here, and only here: the hypothesis profile ``ci`` unless ``--hypothesis-profile`` or
``HYPOTHESIS_PROFILE`` says otherwise, and NumPy's floating-point errors raise.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import settings

import harness.pytest_plugin  # noqa: F401 - registers the profiles, when not installed

# loaded while conftests load, before hypothesis's own plugin reads --hypothesis-profile
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    # Overflow, 0/0 and x/0 in a "stable" formula are bugs; underflow to 0 is expected
    # (exp of a very negative number) and is not.
    np.seterr(over="raise", divide="raise", invalid="raise", under="ignore")


@pytest.fixture(autouse=True)
def _floating_point_errors_raise():
    """Re-assert the error state per test: a library may have changed it."""
    old = np.seterr(over="raise", divide="raise", invalid="raise", under="ignore")
    yield
    np.seterr(**old)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
