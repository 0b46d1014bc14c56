"""One SGD step on the smallest network there is: 1 input, 1 hidden unit, 1 output.

    x --(w1, b1)--> sigmoid --(w2, b2)--> sigmoid --> y_hat,   loss = (y_hat - y)^2

Forward, the loss, the backward (the chain rule, run by ``net.backward``) and one
plain gradient-descent update ``theta <- theta - lr * dL/dtheta``, every number
printed to four decimals so it can be checked by hand.

Run from the repository root: ``python examples/one_sgd_step.py``.
"""

from __future__ import annotations

import numpy as np

import reference.nn as rnn

LR = 0.1


def linear_with(weight: list, bias: list) -> rnn.Linear:
    """A float64 ``Linear`` holding the given weight ``(out, in)`` and bias ``(out,)``."""
    layer = rnn.Linear(np.shape(weight)[1], np.shape(weight)[0], dtype=np.float64)
    layer.load_state_dict({"weight": np.array(weight), "bias": np.array(bias)})
    return layer


def main() -> None:
    net = rnn.Sequential(
        linear_with([[1.58]], [-0.14]), rnn.Sigmoid(), linear_with([[2.45]], [-0.11]), rnn.Sigmoid()
    )
    x, target = np.array([[0.8]]), np.array([[1.0]])
    loss_fn = rnn.MSELoss()

    # forward: h = sigmoid(1.58 * 0.8 - 0.14) = 0.7547, y_hat = sigmoid(2.45 h - 0.11)
    output = net(x)
    print(f"output before the step: {output[0, 0]:.4f}")
    loss = loss_fn(output, target)
    print(f"loss before the step: {float(loss):.4f}")

    # backward: dL/dy_hat = 2 (y_hat - y); each layer turns the gradient wrt its output
    # into the gradient wrt its input and adds dL/dW, dL/db to its Parameters' .grad
    net.backward(loss_fn.backward())
    for name, param in net.named_parameters():
        print(f"grad {name}: {param.grad.reshape(-1)[0]:.4f}")

    # the update (reference.optim.SGD(net.parameters(), lr=LR).step() does the same)
    for param in net.parameters():
        param.data -= LR * param.grad

    for name, value in net.state_dict().items():
        print(f"{name} after the step: {value.reshape(-1)[0]:.4f}")
    # the output moved toward the target 1.0: the step lowered the loss
    print(f"output after the step: {net(x)[0, 0]:.4f}")
    print(f"loss after the step: {float(loss_fn(net(x), target)):.4f}")


if __name__ == "__main__":
    main()
