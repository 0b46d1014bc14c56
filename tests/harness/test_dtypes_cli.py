"""Half precision in the torch backend, the dtype names, and the command line's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import harness.cli as cli
from harness.backends.reference import ReferenceBackend
from harness.backends.torch import TorchBackend, to_torch, torch_dtype
from harness.dropout_masks import seed_torch, torch_dropout_mask
from harness.dtypes import parse_dtype, parse_dtypes, round_to
from harness.spec import LayerSpec, NetworkSpec

TORCH = {"float16": torch.float16, "bfloat16": torch.bfloat16}
# relative to each array's scale: a few units of roundoff through two small layers
TOLERANCE = {"bfloat16": 3e-2, "float16": 3e-3}


# -- names ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("float", "float32"),
        ("float32", "float32"),
        ("double", "float64"),
        ("float64", "float64"),
        ("half", "float16"),
        ("float16", "float16"),
        ("bfloat16", "bfloat16"),
        (" Half ", "float16"),
        ("torch.half", "float16"),
        (torch.bfloat16, "bfloat16"),
        (torch.float64, "float64"),
        (np.float32, "float32"),
        (np.dtype("float64"), "float64"),
    ],
)
def test_parse_dtype_aliases(name, canonical):
    assert parse_dtype(name) == canonical


@pytest.mark.parametrize("name", ["bogus", "int64", "float8", "", "fp16", np.int32])
def test_parse_dtype_refuses_the_rest(name):
    with pytest.raises(ValueError, match="unknown dtype"):
        parse_dtype(name)


def test_parse_dtypes_splits_canonicalizes_and_dedupes():
    assert parse_dtypes("float,double") == ("float32", "float64")
    assert parse_dtypes(" half , bfloat16,float16,") == ("float16", "bfloat16")
    assert parse_dtypes(["double", np.float64]) == ("float64",)
    with pytest.raises(ValueError, match="no dtype"):
        parse_dtypes(" , ")
    with pytest.raises(ValueError, match="unknown dtype"):
        parse_dtypes("float,bogus")


# -- rounding, against torch -----------------------------------------------------------
def _hard_values(name: str) -> np.ndarray:
    """Random values at many scales, exact ties (and ties plus a hair, which float32
    absorbs), the two formats' edges, signed zeros, NaN and infinities."""
    rng = np.random.default_rng(0)
    random = rng.standard_normal(2000) * 10.0 ** rng.integers(-12, 12, 2000)
    bits = 8 if name == "bfloat16" else 11  # significand bits
    base = 1 + rng.integers(0, 2 ** (bits - 1), 200) * 2.0 ** (1 - bits)
    scale = 2.0 ** rng.integers(-30 if name == "float16" else -140, 16, 200)
    ties = (base + 2.0**-bits) * scale
    edges = [65504.0, 65519.0, 65520.0, 2.0**-24, 2.0**-25, 3 * 2.0**-26, 6e-8, 1e-8]
    edges += [3.3895313892515355e38, 3.4e38, 1e39, 2.0**-133, 2.0**-134, 1e-45, 1e-300]
    special = [0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1 + 2.0**-8 + 2.0**-30]
    values = np.concatenate([random, ties, ties * (1 + 2.0**-40), edges, special])
    return np.concatenate([values, -values])


def _round(x: np.ndarray, name: str) -> np.ndarray:
    # past float32's range round_to's bfloat16 cast to float32 overflows, which this suite
    # makes an error (see test_round_to_bfloat16_past_float32_range_under_raise)
    with np.errstate(over="ignore"):
        return round_to(x, name)


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_round_to_is_torchs_conversion_of_float32(name):
    with np.errstate(over="ignore"):  # 1e39 and 1e-300 become inf and 0 in float32
        x = _hard_values(name).astype(np.float32)  # the ties have few bits: still exact
    want = torch.from_numpy(x).to(TORCH[name]).double().numpy()
    got = _round(x, name)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    signed = ~np.isnan(want)  # a NaN's sign means nothing (torch's may differ)
    assert np.array_equal(np.signbit(got[signed]), np.signbit(want[signed]))


def test_round_to_bfloat16_is_torchs_conversion_of_float64():
    # torch converts float64 to bfloat16 by way of float32, and so does round_to: a tie
    # plus a hair below float32's resolution goes to even, not up
    x = _hard_values("bfloat16")
    want = torch.from_numpy(x).to(torch.bfloat16).double().numpy()
    np.testing.assert_array_equal(_round(x, "bfloat16"), want)
    assert _round(np.array([1 + 2.0**-8 + 2.0**-30]), "bfloat16")[0] == 1.0


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_backend_hands_torch_what_round_to_gives(name):
    x = _hard_values(name)
    handed = to_torch(x, name, "cpu")
    assert handed.dtype == TORCH[name]
    np.testing.assert_array_equal(handed.double().numpy(), _round(x, name))


def test_round_to_bfloat16_past_float32_range_under_raise():
    with np.errstate(over="raise"):
        got = round_to(np.array([1e39, -1e300]), "bfloat16")
    np.testing.assert_array_equal(got, [np.inf, -np.inf])


def test_round_to_leaves_integer_arrays_and_to_torch_keeps_int64():
    idx = np.arange(5, dtype=np.int64)
    assert round_to(idx, "bfloat16") is idx
    for name in ("bfloat16", "float16", "float32"):
        t = to_torch(idx, name, "cpu")
        assert t.dtype == torch.int64 and t.tolist() == list(range(5))
    assert torch_dtype("half") is torch.float16 and torch_dtype(np.float64) is torch.float64


# -- the torch backend in half precision ------------------------------------------------
def _mlp(**overrides) -> NetworkSpec:
    """Linear -> Tanh -> Linear -> MSELoss, two SGD steps."""
    fields = dict(
        input_shape=(4, 5),
        layers=[
            LayerSpec("Linear", {"in_features": 5, "out_features": 6}),
            LayerSpec("Tanh"),
            LayerSpec("Linear", {"in_features": 6, "out_features": 3}),
        ],
        loss=LayerSpec("MSELoss", {}),
        optimizer=LayerSpec("SGD", {"lr": 0.1, "momentum": 0.9}),
        steps=2,
        seed=5,
    )
    fields.update(overrides)
    return NetworkSpec(**fields)


def _assert_close(got: np.ndarray, want: np.ndarray, rtol: float, what: str) -> None:
    assert isinstance(got, np.ndarray), what
    assert got.dtype == np.float32, f"{what}: {got.dtype}"
    assert got.shape == np.shape(want), f"{what}: {got.shape} != {np.shape(want)}"
    scale = max(float(np.max(np.abs(want), initial=0.0)), 1e-30)
    err = float(np.max(np.abs(got - want), initial=0.0))
    assert err <= rtol * scale, f"{what}: off by {err:.3g}, scale {scale:.3g}"


def _pairs(got, want):
    yield "loss", got.loss, want.loss
    yield "grad_input", got.grad_input, want.grad_input
    for i, (g, w) in enumerate(zip(got.outputs, want.outputs, strict=True)):
        yield f"output {i}", g, w
    for i, (g, w) in enumerate(zip(got.grad_outputs, want.grad_outputs, strict=True)):
        yield f"grad_output {i}", g, w
    assert got.grad_params.keys() == want.grad_params.keys()
    for name in want.grad_params:
        yield f"grad {name}", got.grad_params[name], want.grad_params[name]
    assert len(got.steps) == len(want.steps) == 2
    for k, (g, w) in enumerate(zip(got.steps, want.steps, strict=True)):
        assert g.keys() == w.keys()
        for name in w:
            yield f"step {k} {name}", g[name], w[name]


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_half_run_is_float32_numpy_near_the_float64_reference(name):
    spec = _mlp()
    want = ReferenceBackend().run(spec, "float64")
    backend = TorchBackend("cpu", name)
    assert backend.dtype_name == name and backend.dtype == np.float32
    got = backend.run(spec)
    for what, g, w in _pairs(got, want):
        _assert_close(g, w, TOLERANCE[name], what)


@pytest.mark.parametrize("name", ["half", "bfloat16"])
def test_half_run_keeps_class_targets_and_index_inputs_int64(name):
    classifier = _mlp(loss=LayerSpec("CrossEntropyLoss", {}), target={"kind": "class_index"})
    got = TorchBackend("cpu", name).run(classifier)
    assert got.loss.dtype == np.float32 and np.isfinite(got.loss)
    embedding = NetworkSpec(
        input_shape=(3, 2),
        layers=[LayerSpec("Embedding", {"num_embeddings": 7, "embedding_dim": 4})],
        loss=LayerSpec("MSELoss", {}),
        input_kind="index",
        index_high=7,
        seed=2,
    )
    got = TorchBackend("cpu", name).run(embedding)
    assert got.grad_input is None
    assert got.outputs[0].shape == (3, 2, 4) and got.outputs[0].dtype == np.float32
    assert got.grad_params["0.weight"].dtype == np.float32


def test_backend_dtype_names():
    assert TorchBackend("cpu", np.float64).dtype == np.float64
    assert TorchBackend("cpu", "float").dtype_name == "float32"
    assert TorchBackend("cpu", "float").dtype == np.float32
    with pytest.raises(ValueError, match="unknown dtype"):
        TorchBackend("cpu", "float8")


@pytest.mark.parametrize("name", ["float16", "bfloat16"])
@pytest.mark.parametrize(
    ("module", "shape"),
    [
        (torch.nn.Dropout(0.3), (3, 5)),
        (torch.nn.Dropout(0.9999), (50, 40)),  # 1/(1-p) overflows float16: inf, kept
        (torch.nn.Dropout2d(0.5), (2, 4, 3, 3)),
    ],
)
def test_dropout_mask_in_half_is_the_reseeded_forwards(name, module, shape):
    mask = torch_dropout_mask(module, shape, name, "cpu", 7)
    assert mask.dtype == bool
    x = torch.rand(shape, dtype=torch.float32).add(0.5).to(TORCH[name])
    seed_torch(7)
    kept = (module(x) != 0).numpy()
    np.testing.assert_array_equal(np.broadcast_to(mask, shape), kept)


# -- the command line ----------------------------------------------------------------
def _exit_code(argv: list[str]) -> int:
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)


def _refused(argv: list[str], capsys) -> str:
    """``argv`` is refused with exit status 2 and one line on stderr; that line."""
    assert _exit_code(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_cli_refuses_an_unknown_dtype(capsys):
    line = _refused(["fuzz", "--dtype", "bogus"], capsys)
    assert "bogus" in line and "float32" in line
    assert "fp8" in _refused(["replay", "somewhere", "--dtype", "float,fp8"], capsys)


@pytest.mark.parametrize(
    "argv",
    [
        ["--cases", "0"],
        ["--cases", "-2"],
        ["--cases", "two"],
        ["--time", "0"],
        ["--time", "-1.5"],
        ["--time", "nan"],
        ["--max-layers", "0"],
        ["--max-width", "0"],
        ["--max-batch", "-1"],
        ["--max-spatial", "0"],
        ["--device", "tpu"],
        ["--device", "cuda:x"],
        ["--device", ","],
    ],
)
def test_cli_refuses_bad_numbers_and_devices(argv, capsys):
    line = _refused(["fuzz", *argv], capsys)
    assert argv[0] in line


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize("command", [["fuzz"], ["replay", "somewhere"]])
def test_cli_refuses_cuda_without_a_gpu(command, capsys):
    line = _refused([*command, "--device", "cpu,cuda"], capsys)
    assert "--device cuda: no CUDA device here" in line and "use --device cpu" in line


def test_cli_passes_canonical_dtypes_on(monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "fuzz", lambda args: seen.append(args) or 0)
    assert cli.main(["fuzz", "--dtype", "float"]) == 0
    assert cli.main(["fuzz", "--dtype", "half,double,bfloat16,half", "--device", "cpu"]) == 0
    assert cli.main(["fuzz", "--cases", "3", "--time", "0.5", "--max-layers", "1"]) == 0
    assert seen[0].dtype == ("float32",) and seen[0].device is None
    assert seen[1].dtype == ("float16", "float64", "bfloat16") and seen[1].device == ("cpu",)
    assert seen[2].dtype == ("float32", "float64")
    assert (seen[2].cases, seen[2].time, seen[2].max_layers) == (3, 0.5, 1)


def test_cli_help_shows_the_default_dtypes(capsys):
    assert _exit_code(["fuzz", "--help"]) == 0
    assert "(default: float32,float64)" in " ".join(capsys.readouterr().out.split())
