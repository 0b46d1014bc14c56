"""The rest of torch.nn's workloads, float32, forward + backward: reference vs torch-cpu
(and torch-cuda when present), one pytest-benchmark group per workload.

Each workload builds the same module on both sides (torch's weights copied into the
reference), runs its forward and sends a fixed random upstream gradient back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch

import reference.nn as rnn


@dataclass(frozen=True)
class Workload:
    group: str
    layer: str
    kwargs: dict[str, Any]
    shape: tuple[int, ...]

    def __repr__(self) -> str:
        return self.layer


WORKLOADS = [
    Workload("conv3d 4->8 3^3 pad1 N8 16^3 fwd+bwd float32", "Conv3d",
             {"in_channels": 4, "out_channels": 8, "kernel_size": 3, "padding": 1},
             (8, 4, 16, 16, 16)),
    Workload("maxpool3d k2 N8 C8 16^3 fwd+bwd float32", "MaxPool3d", {"kernel_size": 2},
             (8, 8, 16, 16, 16)),
    Workload("avgpool3d k2 N8 C8 16^3 fwd+bwd float32", "AvgPool3d", {"kernel_size": 2},
             (8, 8, 16, 16, 16)),
    Workload("upsample bilinear x2 N8 C16 64^2 fwd+bwd float32", "Upsample",
             {"scale_factor": 2.0, "mode": "bilinear"}, (8, 16, 64, 64)),
    Workload("unfold k3 N16 C16 32^2 fwd+bwd float32", "Unfold", {"kernel_size": 3},
             (16, 16, 32, 32)),
]  # fmt: skip


def _data(work: Workload) -> tuple[np.ndarray, Callable[[Any], np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(work.shape).astype(np.float32)
    out = getattr(torch.nn, work.layer)(**work.kwargs)(torch.from_numpy(x))
    grad = rng.standard_normal(tuple(out.shape)).astype(np.float32)
    return x, grad


@pytest.mark.parametrize("work", WORKLOADS, ids=repr)
def test_layer_reference(benchmark, work: Workload) -> None:
    benchmark.group = work.group
    theirs = getattr(torch.nn, work.layer)(**work.kwargs)
    ours = getattr(rnn, work.layer)(**work.kwargs)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x, grad = _data(work)

    def step():
        ours.zero_grad()
        ours(x)
        return ours.backward(grad)

    benchmark(step)


@pytest.mark.parametrize("work", WORKLOADS, ids=repr)
def test_layer_torch(benchmark, work: Workload, device: str) -> None:
    benchmark.group = work.group
    layer = getattr(torch.nn, work.layer)(**work.kwargs).to(device)
    x, grad = (torch.as_tensor(a).to(device) for a in _data(work))
    x.requires_grad_(True)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).backward(grad)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark(step)


# -- issue 10's LSTM workload: 2 layers, hidden 256, sequence 64, batch 32 ----------------
LSTM_GROUP = "lstm 2x256 L64 N32 fwd+bwd float32"


def _lstm_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 32, 256)).astype(np.float32)
    return x, rng.standard_normal((64, 32, 256)).astype(np.float32)


def test_lstm_reference(benchmark) -> None:
    benchmark.group = LSTM_GROUP
    theirs = torch.nn.LSTM(256, 256, num_layers=2)
    ours = rnn.LSTM(256, 256, num_layers=2)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, grad = _lstm_data()

    def step():
        ours.zero_grad()
        ours(x)
        return ours.backward(grad)

    benchmark(step)


def test_lstm_torch(benchmark, device: str) -> None:
    benchmark.group = LSTM_GROUP
    layer = torch.nn.LSTM(256, 256, num_layers=2).to(device)
    x, grad = (torch.as_tensor(a).to(device) for a in _lstm_data())
    x.requires_grad_(True)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x)[0].backward(grad)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark(step)


# -- issue 10's Transformer workload: TransformerEncoderLayer(256, 4) (dim_feedforward torch's
# default 2048), sequence 128, batch 16; dropout 0 and training mode, so torch takes its
# autograd path (not the fused inference kernel) --------------------------------------------
TRANSFORMER_GROUP = "transformer encoder layer 256x4h ff2048 L128 N16 fwd+bwd float32"


def _transformer_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((128, 16, 256)).astype(np.float32)
    return x, rng.standard_normal((128, 16, 256)).astype(np.float32)


def test_transformer_reference(benchmark) -> None:
    benchmark.group = TRANSFORMER_GROUP
    theirs = torch.nn.TransformerEncoderLayer(256, 4, dropout=0.0)
    ours = rnn.TransformerEncoderLayer(256, 4, dropout=0.0)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x, grad = _transformer_data()

    def step():
        ours.zero_grad()
        ours(x)
        return ours.backward(grad)

    benchmark(step)


def test_transformer_torch(benchmark, device: str) -> None:
    benchmark.group = TRANSFORMER_GROUP
    layer = torch.nn.TransformerEncoderLayer(256, 4, dropout=0.0).to(device).train()
    x, grad = (torch.as_tensor(a).to(device) for a in _transformer_data())
    x.requires_grad_(True)

    def step():
        layer.zero_grad(set_to_none=True)
        x.grad = None
        layer(x).backward(grad)
        if device == "cuda":
            torch.cuda.synchronize()

    benchmark(step)
