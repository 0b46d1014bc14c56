"""An integer target: torch promotes it to the input's dtype for the losses whose formula
is arithmetic in the target, and refuses it for BCE and the KL divergence. The reference
does the same, measured on the installed torch for every such loss. A bool target the
reference refuses everywhere (torch raises in the losses that subtract it): where torch
raises the reference must raise too."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import reference.nn as rnn
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

# (loss, its target's values, the number of inputs before the target)
LOSSES = [
    ("MSELoss", "01", 1), ("L1Loss", "01", 1), ("SmoothL1Loss", "01", 1),
    ("HuberLoss", "01", 1), ("SoftMarginLoss", "pm", 1), ("MultiLabelSoftMarginLoss", "01", 1),
    ("HingeEmbeddingLoss", "pm", 1), ("PoissonNLLLoss", "01", 1), ("BCELoss", "01", 1),
    ("BCEWithLogitsLoss", "01", 1), ("KLDivLoss", "01", 1), ("MarginRankingLoss", "pm", 2),
    ("CosineEmbeddingLoss", "pm", 2), ("GaussianNLLLoss", "01", 1),
]  # fmt: skip


def _case(name: str, values: str, inputs: int, dtype: type, target_dtype: type) -> tuple:
    rng = np.random.default_rng(len(name))
    shape = (5, 4)
    x = [rng.standard_normal(shape).astype(dtype) for _ in range(inputs)]
    if name == "BCELoss":
        x = [1 / (1 + np.exp(-x[0]))]
    labels = rng.integers(0, 2, shape[:1] if name == "MarginRankingLoss" else shape)
    if name == "MarginRankingLoss":
        x = [v[:, 0].copy() for v in x]
    if name == "CosineEmbeddingLoss":
        labels = labels[:, 0]
    target = (2 * labels - 1 if values == "pm" else labels).astype(target_dtype)
    extra = (
        [np.abs(rng.standard_normal(shape)).astype(dtype) + 0.1]
        if name == "GaussianNLLLoss"
        else []
    )
    return x, target, extra


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("target_dtype", [np.int64, np.int32, np.bool_])
@pytest.mark.parametrize(("name", "values", "inputs"), LOSSES, ids=[n for n, _, _ in LOSSES])
def test_integer_targets_promote_or_raise_as_torch(name, values, inputs, dtype, target_dtype):
    if target_dtype is np.bool_ and values == "pm":
        pytest.skip("a bool cannot hold -1")
    x, target, extra = _case(name, values, inputs, dtype, target_dtype)
    args = [*x, target, *extra]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = getattr(torch.nn, name)()(*(torch.from_numpy(np.asarray(a)) for a in args))
    except RuntimeError:
        with pytest.raises((TypeError, RuntimeError)):
            getattr(rnn, name)()(*args)
        return
    if target_dtype is np.bool_:
        with pytest.raises(TypeError, match="target must be a floating array"):
            getattr(rnn, name)()(*args)
        return
    loss = getattr(rnn, name)()
    ours = loss(*args)
    assert np.asarray(ours).dtype == dtype  # the input's dtype, as torch's result
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6 if dtype is np.float32 else 1e-12)
    grad = loss.backward(np.asarray(0.7, dtype=dtype))
    grad = grad[0] if isinstance(grad, tuple) else grad
    assert grad.dtype == dtype and grad.shape == x[0].shape
