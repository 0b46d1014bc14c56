"""LeNet-5 end to end: the reference against torch on every device, float64 and float32.

``Conv2d(1, 6, 5) -> ReLU -> MaxPool2d(2) -> Conv2d(6, 16, 5) -> ReLU -> MaxPool2d(2)
-> Flatten -> Linear(400, 120) -> ReLU -> Linear(120, 84) -> ReLU -> Linear(84, 10)``
on a 1x1x32x32 input: the output, the gradient wrt the input and every parameter's
gradient (``assert_twin`` on the whole Sequential), then an MSE loss against a
(1, 10) target, its gradients, and one SGD step (lr 0.01) must agree with torch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference.nn as rnn
from harness.compare import compare_arrays, tolerance
from harness.twin import assert_twin

LR = 0.01


def reference_lenet(seed: int) -> rnn.Sequential:
    rng = np.random.default_rng(seed)
    return rnn.Sequential(
        rnn.Conv2d(1, 6, 5, rng=rng), rnn.ReLU(), rnn.MaxPool2d(2),
        rnn.Conv2d(6, 16, 5, rng=rng), rnn.ReLU(), rnn.MaxPool2d(2),
        rnn.Flatten(),
        rnn.Linear(400, 120, rng=rng), rnn.ReLU(),
        rnn.Linear(120, 84, rng=rng), rnn.ReLU(),
        rnn.Linear(84, 10, rng=rng),
    )  # fmt: skip


def torch_lenet() -> torch.nn.Sequential:
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, 10),
    )  # fmt: skip


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return rng.standard_normal((1, 1, 32, 32)), rng.standard_normal((1, 10))


def _check(name: str, ours, theirs, dtype, device) -> None:
    comparison = compare_arrays(name, ours, theirs, tolerance(dtype, device))
    assert comparison.ok, str(comparison)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("seed", [0, 1])
def test_lenet_forward_backward_matches_torch(dtype, seed, device):
    x, _ = _data(seed)
    assert_twin(reference_lenet(seed), torch_lenet(), [x], dtype=dtype, device=device, seed=seed)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("seed", [0, 1])
def test_lenet_mse_loss_and_one_sgd_step_match_torch(dtype, seed, device):
    x, target = (a.astype(dtype) for a in _data(seed))
    model = reference_lenet(seed).to(dtype)
    twin = torch_lenet().to(device=device, dtype=getattr(torch, np.dtype(dtype).name))
    twin.load_state_dict({k: torch.as_tensor(v) for k, v in model.state_dict().items()})

    loss_fn = rnn.MSELoss()
    loss = loss_fn(model(x), target)
    model.backward(loss_fn.backward())

    optimizer = torch.optim.SGD(twin.parameters(), lr=LR)
    optimizer.zero_grad()
    t_loss = torch.nn.MSELoss()(twin(torch.as_tensor(x, device=device)),
                                torch.as_tensor(target, device=device))  # fmt: skip
    t_loss.backward()
    _check("loss", loss, t_loss, dtype, device)
    assert np.asarray(loss).dtype == dtype

    t_params = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        assert param.grad is not None and param.grad.dtype == dtype, name
        _check(f"grad {name}", param.grad, t_params[name].grad, dtype, device)

    optimizer.step()
    for param in model.parameters():
        param.data -= LR * param.grad  # plain SGD, in the parameter's dtype
    for name, param in model.named_parameters():
        _check(f"{name} after one step", param.data, t_params[name], dtype, device)
