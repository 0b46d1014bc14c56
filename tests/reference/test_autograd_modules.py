"""reference.nn modules and reference.optim optimizers on the tape: the five-step loop runs
line for line as in torch, and matches torch's numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import reference.autograd as ag
import reference.nn as rnn
import reference.optim as ropt
from tests.reference.torch_threads import one_torch_thread  # noqa: F401


def _blobs(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs in the plane, labels 0 and 1, float64."""
    labels = rng.integers(0, 2, (n, 1)).astype(np.float64)
    points = rng.standard_normal((n, 2)) + 2.0 * labels - 1.0
    return points, labels


def _twins(seed: int) -> tuple[rnn.Sequential, torch.nn.Sequential]:
    ours = rnn.Sequential(rnn.Linear(2, 8, rng=seed), rnn.Tanh(), rnn.Linear(8, 1, rng=seed + 1),
                          rnn.Sigmoid()).double()  # fmt: skip
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1),
                                 torch.nn.Sigmoid()).double()  # fmt: skip
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    return ours, theirs


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_the_five_step_loop_matches_torch_for_200_epochs(optimizer):
    points, labels = _blobs(np.random.default_rng(0))
    ours, theirs = _twins(3)
    opt = getattr(ropt, optimizer)(ours.parameters(), lr=0.05)
    topt = getattr(torch.optim, optimizer)(theirs.parameters(), lr=0.05)
    criterion, tcriterion = rnn.BCELoss(), torch.nn.BCELoss()
    x, y = ag.tensor(points), ag.tensor(labels)
    tx, ty = torch.tensor(points), torch.tensor(labels)
    for epoch in range(200):
        opt.zero_grad()
        out = ours(x)
        loss = criterion(out, y)
        loss.backward()
        opt.step()

        topt.zero_grad()
        tloss = tcriterion(theirs(tx), ty)
        tloss.backward()
        topt.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-10, err_msg=f"epoch {epoch}")
    assert loss.item() < 0.5 * np.log(2)  # it learned


def test_a_module_called_twice_before_one_backward_keeps_both_caches():
    rng = np.random.default_rng(1)
    ours = rnn.Linear(4, 4, rng=0).double()
    theirs = torch.nn.Linear(4, 4).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((3, 4))
    target = rng.standard_normal((3, 4))
    xt = ag.tensor(x, requires_grad=True)
    rnn.MSELoss()(ours(rnn.Tanh()(ours(xt))), ag.tensor(target)).backward()
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.MSELoss()(theirs(torch.tanh(theirs(tx))), torch.tensor(target)).backward()
    np.testing.assert_allclose(xt.grad.data, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-12)


def test_an_lstm_on_the_tape_differentiates_its_final_state():
    rng = np.random.default_rng(2)
    ours = rnn.LSTM(3, 5, num_layers=2, batch_first=True, rng=0).double()
    theirs = torch.nn.LSTM(3, 5, num_layers=2, batch_first=True).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    x, target = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 2, 5))
    xt = ag.tensor(x, requires_grad=True)
    out, (h, c) = ours(xt)
    assert out.shape == (2, 4, 5) and h.grad_fn is out.grad_fn
    rnn.MSELoss()(h, ag.tensor(target)).backward()
    tx = torch.tensor(x, requires_grad=True)
    _, (th, _) = theirs(tx)
    torch.nn.MSELoss()(th, torch.tensor(target)).backward()
    np.testing.assert_allclose(xt.grad.data, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(p.grad, dict(theirs.named_parameters())[name].grad.numpy(),
                                   rtol=1e-10, atol=1e-14, err_msg=name)  # fmt: skip


@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "RMSprop"])
def test_an_optimizer_steps_a_leaf_tensor_as_torch_does(optimizer):
    start, goal = np.array([1.5, -2.0, 0.25]), np.array([0.0, 1.0, 2.0])
    w = ag.tensor(start.copy(), requires_grad=True)
    tw = torch.tensor(start.copy(), requires_grad=True)
    opt = getattr(ropt, optimizer)([w], lr=0.1)
    topt = getattr(torch.optim, optimizer)([tw], lr=0.1)
    for _ in range(20):
        opt.zero_grad()
        rnn.MSELoss()(w, ag.tensor(goal)).backward()
        opt.step()
        topt.zero_grad()
        torch.nn.MSELoss()(tw, torch.tensor(goal)).backward()
        topt.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-12)


def test_an_optimizer_refuses_a_non_leaf_tensor():
    w = ag.tensor([1.0], requires_grad=True)
    made = rnn.Tanh()(w)
    with pytest.raises(ValueError, match="non-leaf"):
        ropt.SGD([made], lr=0.1)


def test_no_grad_records_nothing_and_arrays_still_take_the_old_path():
    model = rnn.Linear(2, 3, rng=0)
    with ag.no_grad():
        out = model(ag.tensor(np.ones((1, 2), np.float32)))
    assert out.grad_fn is None and not out.requires_grad
    plain = model(np.ones((1, 2), np.float32))
    assert isinstance(plain, np.ndarray)
    assert model.backward(np.ones((1, 3), np.float32)).shape == (1, 2)


def test_a_module_with_parameters_records_even_on_data():
    out = rnn.Linear(2, 3, rng=0)(ag.tensor(np.ones((1, 2), np.float32)))
    assert out.requires_grad and out.grad_fn.name() == "LinearBackward"
    # without parameters and without a gradient to carry, nothing is recorded
    assert rnn.Tanh()(ag.tensor(np.ones(2, np.float32))).grad_fn is None
