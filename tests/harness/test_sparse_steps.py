"""A sparse Embedding stepped by SparseAdam: torch's sparse gradient and the reference's
SparseRows are traced dense and judged as any gradient, and a SparseAdam step that is off
by 1e-3 in torch is caught at the embedding's step."""

from __future__ import annotations

import torch

from harness.checking import check
from harness.generate import random_spec
from harness.spec import LayerSpec, NetworkSpec


def _spec() -> NetworkSpec:
    return NetworkSpec(
        input_shape=(3, 5),
        layers=[
            LayerSpec(
                "Embedding",
                {"num_embeddings": 6, "embedding_dim": 4, "sparse": True, "padding_idx": 0},
            ),
            LayerSpec("Tanh", {}),
        ],
        loss=LayerSpec("MSELoss"),
        optimizer=LayerSpec("SparseAdam", {"lr": 0.05}),
        steps=3,
        seed=5,
        input_kind="index",
        index_high=6,
    )


def test_sparse_adam_steps_match_torch():
    report = check(_spec(), devices=["cpu"], dtypes=["float64", "float32"])
    assert report.ok, report.summary()


def test_a_planted_sparse_adam_error_is_caught(monkeypatch):
    original = torch.optim.SparseAdam.__init__

    def longer(self, params, lr=1e-3, *args, **kwargs):
        original(self, params, lr * (1 + 1e-3), *args, **kwargs)

    monkeypatch.setattr(torch.optim.SparseAdam, "__init__", longer)
    report = check(_spec(), devices=["cpu"], dtypes=["float64"])
    assert not report.ok
    assert {(m.kind, m.layer) for m in report.mismatches} == {("step", 0)}


def test_the_generator_draws_sparse_adam_over_a_sparse_embedding():
    drawn = [s for s in map(random_spec, range(600)) if s.optimizer is not None]
    sparse = [s for s in drawn if s.optimizer.type == "SparseAdam"]
    assert sparse and all(s.layers[0].kwargs.get("sparse") for s in sparse)
