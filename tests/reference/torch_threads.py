"""One torch thread for a test module's tiny tensors.

Import :func:`one_torch_thread` into a test module (an autouse fixture, so the
import alone applies it to every test there).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors: with two workers on two cores, torch's thread pool costs ~20 ms per op."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
