"""The seeds' worked examples, exact to the four decimals printed there.

Numbers are drawn with torch where the example says so; every computation is
the reference's.
"""

from __future__ import annotations

import numpy as np
import torch

import reference.nn as rnn


def linear_with(weight: list, bias: list) -> rnn.Linear:
    layer = rnn.Linear(np.shape(weight)[1], np.shape(weight)[0], dtype=np.float64)
    layer.load_state_dict({"weight": np.array(weight), "bias": np.array(bias)})
    return layer


def test_one_one_one_sigmoid_network_one_sgd_step():
    net = rnn.Sequential(
        linear_with([[1.58]], [-0.14]), rnn.Sigmoid(), linear_with([[2.45]], [-0.11]), rnn.Sigmoid()
    )
    x, target = np.array([[0.8]]), np.array([[1.0]])
    loss_fn = rnn.MSELoss()

    output = net(x)
    assert round(float(output[0, 0]), 4) == 0.8506
    loss_fn(output, target)
    net.backward(loss_fn.backward())
    for param in net.parameters():  # plain SGD, lr = 0.1
        param.data -= 0.1 * param.grad

    state = net.state_dict()
    assert round(float(state["0.weight"][0, 0]), 4) == 1.5814
    assert round(float(state["0.bias"][0]), 4) == -0.1383
    assert round(float(state["2.weight"][0, 0]), 4) == 2.4529
    assert round(float(state["2.bias"][0]), 4) == -0.1062
    assert round(float(net(x)[0, 0]), 4) == 0.8515


def test_single_neuron_from_torch_seed_7():
    torch.manual_seed(7)
    features = torch.randn((1, 5))
    weights = torch.randn_like(features)
    bias = torch.randn((1, 1))
    neuron = linear_with(weights.double().numpy(), bias.double().numpy()[0])
    output = rnn.Sigmoid()(neuron(features.double().numpy()))
    assert round(float(output[0, 0]), 4) == 0.1595


def test_two_layer_network_from_torch_seed_7():
    torch.manual_seed(7)
    features = torch.randn((1, 3))
    w1, w2 = torch.randn(3, 2), torch.randn(2, 1)  # drawn in this order: W1, W2, B1, B2
    b1, b2 = torch.randn((1, 2)), torch.randn((1, 1))
    # x @ W1 is Linear with weight W1.T: (3, 2) -> (2, 3)
    hidden_layer = linear_with(w1.double().numpy().T, b1.double().numpy()[0])
    output_layer = linear_with(w2.double().numpy().T, b2.double().numpy()[0])
    hidden = rnn.Sigmoid()(hidden_layer(features.double().numpy()))
    output = rnn.Sigmoid()(output_layer(hidden))
    np.testing.assert_array_equal(np.round(hidden, 4), [[0.6813, 0.4355]])
    assert round(float(output[0, 0]), 4) == 0.3171
