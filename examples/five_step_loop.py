"""The five-step training loop of the torch tutorials, with the reference's modules.

    optimizer.zero_grad()        # 1. clear the gradients of the last step
    output = model(x)            # 2. forward
    loss = criterion(output, y)  # 3. the loss
    loss.backward()              # 4. backward
    optimizer.step()             # 5. update the parameters

The data are ``reference.autograd`` Tensors, so the modules record themselves on the
tape and step 4 is ``loss.backward()``, line for line as in torch. What it runs is each
module's own hand-written backward: the loss's dL/d(output) first, then the layers' in
reverse (the same as ``model.backward(criterion.backward())`` on plain arrays, which
still works), each adding dL/dtheta into its ``Parameter.grad``. That is why step 1
matters: gradients accumulate.

The data: three classes of points in the plane, each a Gaussian blob, made with NumPy.
The model: ``Linear(2, 16) -> ReLU -> Linear(16, 3)``, trained with Adam on the whole
set each epoch. Everything is float32, torch's default: data and model share one dtype.

Run from the repository root: ``python examples/five_step_loop.py``.
"""

from __future__ import annotations

import numpy as np

import reference.autograd as ag
import reference.nn as rnn
import reference.optim as ropt

EPOCHS = 200
PRINT_EVERY = 20
CENTERS = np.array([[0.0, 2.0], [-2.0, -1.0], [2.0, -1.0]])  # one blob per class


def make_blobs(per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``x (3 * per_class, 2)`` float32 around :data:`CENTERS`, labels ``y`` int64."""
    y = np.repeat(np.arange(len(CENTERS)), per_class)
    x = CENTERS[y] + 0.8 * rng.standard_normal((len(y), 2))
    # float32 like the model: a float32 layer refuses float64 input, as torch's does
    return x.astype(np.float32), y


def main() -> None:
    rng = np.random.default_rng(0)
    points, labels = make_blobs(100, rng)
    x, y = ag.tensor(points), ag.tensor(labels)
    model = rnn.Sequential(rnn.Linear(2, 16, rng=1), rnn.ReLU(), rnn.Linear(16, 3, rng=2))
    criterion = rnn.CrossEntropyLoss()  # log-softmax + negative log-likelihood, averaged
    optimizer = ropt.Adam(model.parameters(), lr=0.01)

    for epoch in range(1, EPOCHS + 1):
        optimizer.zero_grad()  # 1.
        output = model(x)  # 2. logits, (300, 3)
        loss = criterion(output, y)  # 3. a 0-d Tensor
        loss.backward()  # 4.
        optimizer.step()  # 5.
        if epoch == 1 or epoch % PRINT_EVERY == 0:
            print(f"epoch {epoch:3d} loss: {loss.item():.4f}")

    with ag.no_grad():  # nothing to differentiate: .numpy() is allowed
        predicted = model(x).numpy().argmax(axis=1)
    print(f"training accuracy: {np.mean(predicted == labels):.4f}")


if __name__ == "__main__":
    main()
