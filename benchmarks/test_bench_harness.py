"""Harness throughput: ``check`` cases per second on default-size random networks.

Each case: build both models from the spec, reference + torch-cpu in float32,
forward + backward + the spec's optimizer steps (up to 3), compare and localize.
``extra_info['cases_per_s']`` is the figure to read (one round = BATCH cases).
"""

from __future__ import annotations

import numpy as np

from harness.checking import check
from harness.generate import random_spec

BATCH = 50
SPECS = [random_spec(np.random.default_rng(1000 + i)) for i in range(BATCH)]


def test_check_cases_per_second(benchmark):
    benchmark.group = "harness check, default random networks, reference + torch-cpu float32"

    def run():
        for spec in SPECS:
            check(spec, devices=["cpu"], dtypes=("float32",), attribute=False)

    benchmark.pedantic(run, rounds=3, iterations=1, warmup_rounds=1)
    benchmark.extra_info["cases_per_s"] = BATCH / benchmark.stats.stats.mean
