"""A 3-2-1 network with sigmoid units, written as the matrix products ``x @ W1 + B1``.

The input, weights and biases are drawn with ``torch.manual_seed(7)`` in the order a
torch tutorial draws them (features, W1, W2, B1, B2); every computation is the
reference's, in NumPy. torch is used for nothing but the draw.

``x @ W1`` with ``W1`` of shape ``(3, 2)`` is a ``Linear(3, 2)`` whose weight is
``W1.T``: torch and the reference store a layer's weight as ``(out, in)``.

Run from the repository root: ``python examples/two_layer_network.py``.
"""

from __future__ import annotations

import sys

import numpy as np

import reference.nn as rnn


def draw_from_torch() -> dict[str, np.ndarray]:
    """The tutorial's tensors as float64 arrays, drawn in its order."""
    try:
        import torch
    except ImportError:
        sys.exit("this example draws its numbers with torch.manual_seed(7): pip install torch")
    torch.manual_seed(7)
    features = torch.randn((1, 3))
    w1, w2 = torch.randn(3, 2), torch.randn(2, 1)
    b1, b2 = torch.randn((1, 2)), torch.randn((1, 1))
    tensors = {"features": features, "W1": w1, "W2": w2, "B1": b1, "B2": b2}
    return {name: t.double().numpy() for name, t in tensors.items()}


def linear_from_matmul(w: np.ndarray, b: np.ndarray) -> rnn.Linear:
    """``x @ w + b`` as a Linear: weight ``w.T (out, in)``, bias ``b[0] (out,)``."""
    layer = rnn.Linear(w.shape[0], w.shape[1], dtype=np.float64)
    layer.load_state_dict({"weight": w.T, "bias": b[0]})
    return layer


def main() -> None:
    t = draw_from_torch()
    hidden_layer = linear_from_matmul(t["W1"], t["B1"])
    output_layer = linear_from_matmul(t["W2"], t["B2"])
    hidden = rnn.Sigmoid()(hidden_layer(t["features"]))  # (1, 3) -> (1, 2)
    output = rnn.Sigmoid()(output_layer(hidden))  # (1, 2) -> (1, 1)
    print(f"hidden: [{hidden[0, 0]:.4f}, {hidden[0, 1]:.4f}]")
    print(f"output: {output[0, 0]:.4f}")


if __name__ == "__main__":
    main()
