"""Choosing backends: ``fuzz --backend``, the generator fitted to what they run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings

from harness.backends.protocol import Capabilities
from harness.cli import main
from harness.fitted import fitted_limits
from harness.generate import random_spec
from harness.strategies import network_specs

MLP_ONLY = Capabilities(
    dtypes=("float64",),
    layers={"Linear", "ReLU", "Tanh", "Flatten", "Sigmoid", "LogSoftmax"},
    losses={"MSELoss", "L1Loss"},
    optimizers={"SGD"},
)


def test_fitted_limits_draw_only_what_the_backend_runs():
    limits = fitted_limits([MLP_ONLY])
    assert limits["families"] == ("dense",)  # conv needs Conv1d, embedding Embedding
    assert limits["losses"] == ("MSELoss", "L1Loss") and limits["dropout"] is False
    for seed in range(60):
        spec = random_spec(np.random.default_rng(seed), **limits)
        assert not MLP_ONLY.missing(spec), spec
        assert MLP_ONLY.steps(spec)


def test_a_backend_without_optimizers_gets_cases_without_steps():
    caps = Capabilities(layers=None, optimizers=())
    limits = fitted_limits([caps])
    assert limits["max_steps"] == 0
    assert all(random_spec(s, **limits).steps == 0 for s in range(20))


class _Named:
    name, capabilities = "mlp-only", MLP_ONLY


@settings(max_examples=25)
@given(network_specs(backends=[_Named()], max_layers=3))
def test_the_strategy_takes_backends(spec):
    assert not MLP_ONLY.missing(spec)


@pytest.mark.parametrize(
    "argv, says",
    [
        (["--backend", "tensorflow"], "unknown backend tensorflow: use torch, jax"),
        (["--backend", ""], "unknown backend"),
    ],
)
def test_an_unknown_backend_is_a_one_line_usage_error(argv, says, capsys):
    with pytest.raises(SystemExit) as exit:
        main(["fuzz", *argv])
    assert exit.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]


def test_a_backend_whose_framework_is_absent_is_a_one_line_usage_error(
    monkeypatch, tmp_path, capsys
):
    import harness.backends.protocol as protocol

    def absent(name):
        raise ImportError("the jax backend needs jax: pip install 'backprop-oracle[jax]'")

    monkeypatch.setattr(protocol, "backend_named", absent)
    code = main(["fuzz", "--backend", "jax", "--cases", "1", "--out", str(tmp_path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (
        "python -m harness fuzz: error: --backend jax: the jax backend needs jax: "
        "pip install 'backprop-oracle[jax]'"
    )


def test_fuzz_records_its_backends(tmp_path):
    args = ["--cases", "3", "--jobs", "1", "--no-progress", "--dtype", "float64"]
    assert main(["fuzz", "--backend", "torch", "--seed", "5", "--out", str(tmp_path), *args]) == 0
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["backends"] == ["torch"] and summary["counts"]["skipped_cases"] == 0


def test_fuzz_runs_the_jax_backend(tmp_path, capsys):
    pytest.importorskip("jax")
    args = ["--cases", "6", "--jobs", "1", "--no-progress", "--max-layers", "3"]
    code = main(["fuzz", "--backend", "jax", "--seed", "3", "--out", str(tmp_path), *args])
    out = capsys.readouterr().out
    summary = json.loads(next(tmp_path.glob("*/summary.json")).read_text())
    assert summary["backends"] == ["jax"]
    assert summary["counts"]["skipped_cases"] == 0, out
    assert code == 0, out
    assert "backends: jax" in out
