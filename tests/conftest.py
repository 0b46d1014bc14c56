"""Shared test helpers. The pytest plugin (profiles, ``device``) is in harness/pytest_plugin.py."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)
