"""Convolution workloads, float32: reference vs torch-cpu (and torch-cuda when present).

The ``device`` argument comes from the project's pytest plugin (cpu, and cuda when a
GPU is present). Two groups, so pytest-benchmark prints each workload's
implementations side by side:

- ``conv2d``: one ``Conv2d(64, 64, 3, padding=1)`` forward + backward (grad input,
  weight and bias) on a (32, 64, 32, 32) batch with a fixed upstream gradient.
- ``lenet-step``: LeNet-5 forward + ``MSELoss`` + backward on a (64, 1, 32, 32) batch.

``extra_info['gflop_per_step']`` counts the convolutions' multiply-adds (x2): the
forward and the two backward products (grad input, grad weight).
"""

from __future__ import annotations

import numpy as np
import torch

import reference.nn as rnn

CONV_SHAPE = (32, 64, 32, 32)
CONV_FLOPS = 3 * 2 * 32 * 64 * 64 * 9 * 32 * 32
CONV_GROUP = "conv2d 64->64 3x3 pad1 N32 32x32 fwd+bwd float32"

LENET_BATCH = 64
LENET_GROUP = "lenet-step batch64 MSELoss fwd+bwd float32"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


# -- conv2d -----------------------------------------------------------------
def _conv_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(CONV_SHAPE).astype(np.float32)
    grad = rng.standard_normal(CONV_SHAPE).astype(np.float32)
    return x, grad


def test_conv2d_reference(benchmark):
    benchmark.group = CONV_GROUP
    benchmark.extra_info["gflop_per_step"] = CONV_FLOPS / 1e9
    layer, (x, grad) = rnn.Conv2d(64, 64, 3, padding=1, rng=0), _conv_data()

    def step():
        layer.zero_grad()
        layer(x)
        return layer.backward(grad)

    benchmark(step)


def test_conv2d_torch(benchmark, device):
    benchmark.group = CONV_GROUP
    benchmark.extra_info["gflop_per_step"] = CONV_FLOPS / 1e9
    if device == "cuda":  # a true float32 convolution, as the harness compares them
        torch.backends.cudnn.allow_tf32 = False
    layer = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    x, grad = (torch.as_tensor(a).to(device) for a in _conv_data())
    x.requires_grad_(True)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).backward(grad)
        _sync(device)

    benchmark(step)


# -- LeNet training step -------------------------------------------------------
def _lenet_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((LENET_BATCH, 1, 32, 32)).astype(np.float32)
    return x, rng.standard_normal((LENET_BATCH, 10)).astype(np.float32)


def test_lenet_step_reference(benchmark):
    from tests.differential.test_lenet import reference_lenet

    benchmark.group = LENET_GROUP
    model, loss_fn, (x, target) = reference_lenet(0), rnn.MSELoss(), _lenet_data()

    def step():
        model.zero_grad()
        loss = loss_fn(model(x), target)
        model.backward(loss_fn.backward())
        return loss

    benchmark(step)


def test_lenet_step_torch(benchmark, device):
    from tests.differential.test_lenet import torch_lenet

    benchmark.group = LENET_GROUP
    if device == "cuda":
        torch.backends.cudnn.allow_tf32 = False
    model, loss_fn = torch_lenet().to(device), torch.nn.MSELoss()
    x, target = (torch.as_tensor(a).to(device) for a in _lenet_data())
    x.requires_grad_(True)  # the reference returns the gradient wrt the input too

    def step():
        model.zero_grad(set_to_none=True)
        x.grad = None
        loss = loss_fn(model(x), target)
        loss.backward()
        _sync(device)
        return loss

    benchmark(step)
