"""A single sigmoid neuron: ``y = sigmoid(x . w + b)`` on 5 features.

The features, weights and bias are drawn with ``torch.manual_seed(7)`` (the numbers a
torch tutorial draws, so the result can be compared with it); every computation is the
reference's, in NumPy. torch is used for nothing but the draw.

Run from the repository root: ``python examples/single_neuron.py``.
"""

from __future__ import annotations

import sys

import numpy as np

import reference.nn as rnn


def draw_from_torch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``features (1, 5)``, ``weights (1, 5)``, ``bias (1, 1)`` as torch draws them, float64."""
    try:
        import torch
    except ImportError:
        sys.exit("this example draws its numbers with torch.manual_seed(7): pip install torch")
    torch.manual_seed(7)
    features = torch.randn((1, 5))
    weights = torch.randn_like(features)
    bias = torch.randn((1, 1))
    return features.double().numpy(), weights.double().numpy(), bias.double().numpy()


def main() -> None:
    features, weights, bias = draw_from_torch()
    # x . w + b is a Linear layer with one output: weight (1, 5), bias (1,)
    neuron = rnn.Linear(5, 1, dtype=np.float64)
    neuron.load_state_dict({"weight": weights, "bias": bias[0]})
    z = neuron(features)
    print(f"pre-activation z = x . w + b: {z[0, 0]:.4f}")
    output = rnn.Sigmoid()(z)  # 1 / (1 + exp(-z))
    print(f"output sigmoid(z): {output[0, 0]:.4f}")


if __name__ == "__main__":
    main()
