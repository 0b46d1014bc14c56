"""MLP training step (784-1024-1024-10, batch 256, ReLU, CrossEntropyLoss), float32.

Forward + backward (gradients of every parameter), reference vs torch-cpu (and
torch-cuda when present) in one group, so pytest-benchmark prints them side by side.
``extra_info['gflops']`` is the step's floating-point work: 3 matmuls forward and
6 backward (grad input and grad weight per layer; the first layer's grad input
is computed too, as the reference's Sequential always returns it).
"""

from __future__ import annotations

import numpy as np
import torch

import reference.nn as rnn

SIZES = (784, 1024, 1024, 10)
BATCH = 256
FLOPS = 3 * 2 * BATCH * sum(a * b for a, b in zip(SIZES[:-1], SIZES[1:]))  # fwd + 2 bwd matmuls
GROUP = "mlp-step 784-1024-1024-10 batch256 float32"


def _data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)
    return x, y


def _reference_model():
    return rnn.Sequential(
        rnn.Linear(784, 1024, rng=0),
        rnn.ReLU(),
        rnn.Linear(1024, 1024, rng=1),
        rnn.ReLU(),
        rnn.Linear(1024, 10, rng=2),
    )


def _record(benchmark):
    benchmark.group = GROUP
    benchmark.extra_info["gflop_per_step"] = FLOPS / 1e9


def test_mlp_step_reference(benchmark):
    _record(benchmark)
    model, loss_fn = _reference_model(), rnn.CrossEntropyLoss()
    x, y = _data()

    def step():
        model.zero_grad()
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        return loss

    benchmark(step)
    benchmark.extra_info["gflops"] = FLOPS / 1e9 / benchmark.stats.stats.median


def test_mlp_step_torch(benchmark, device):
    # ``device`` comes from harness.pytest_plugin: cpu, and cuda (skipped without a GPU)
    _record(benchmark)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 1024),
        torch.nn.ReLU(),
        torch.nn.Linear(1024, 10),
    ).to(device)
    x, y = (torch.as_tensor(a).to(device) for a in _data())
    x.requires_grad_(True)  # the reference computes grad wrt the input too; so does this
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        model.zero_grad(set_to_none=True)
        x.grad = None
        loss = loss_fn(model(x), y)
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return loss

    benchmark(step)
    benchmark.extra_info["gflops"] = FLOPS / 1e9 / benchmark.stats.stats.median
