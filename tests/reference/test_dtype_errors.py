"""A module whose parameters or buffers are not its input's dtype raises as torch raises.

torch never promotes between an input and a module's tensors: ``Linear(3, 2)`` (float32)
given a float64 batch raises ``RuntimeError: mat1 and mat2 must have the same dtype``,
where NumPy alone would quietly compute in float64. Each case below is run in torch and
in the reference for several (module dtype, input dtype) pairs: where torch raises, the
reference raises ``RuntimeError`` whose message starts with torch's and then names the
layer, both dtypes and the fix; where torch runs, the reference runs too and its output
has torch's dtype. A module without floating tensors (activations, pooling, dropout,
shapes) never raises; its output follows its input's dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
import torch

import reference.nn as rnn

F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
TORCH = {F16: torch.float16, F32: torch.float32, F64: torch.float64}
# (module dtype, input dtype); float16 input to float32 normalizations is torch's one
# allowed mix (its CPU mixed-type kernels), the others all raise somewhere
MIXES = [(F32, F64), (F64, F32), (F32, F16), (F64, F16)]
WEIGHT = object()  # a class weight of ones, made by each library (see _build)


@dataclass(frozen=True)
class Case:
    """``name(**kwargs)`` in both libraries, on an input of ``shape``; ``raises``: whether
    torch raises for the module in float32 and its input in float64 (the table below)."""

    id: str  # the class name, then what is special about the case
    shape: tuple[int, ...]
    raises: bool
    kwargs: dict[str, Any] = field(default_factory=dict)
    target: str | None = None  # a loss's target: "index" (class indices) or "prob"
    train: bool = True

    @property
    def name(self) -> str:
        return self.id.split("-")[0]


def conv(c_in: int, c_out: int, **kwargs: Any) -> dict[str, Any]:
    return {"in_channels": c_in, "out_channels": c_out, "kernel_size": 3, **kwargs}


CASES = [
    Case("Linear", (2, 3), True, {"in_features": 3, "out_features": 2}),
    Case("Linear-nobias", (2, 4, 3), True, {"in_features": 3, "out_features": 2, "bias": False}),
    Case("Conv1d", (1, 2, 5), True, conv(2, 3)),
    Case("Conv1d-reflect", (1, 2, 5), True, conv(2, 3, padding=1, padding_mode="reflect")),
    Case("Conv2d-groups", (1, 2, 5, 5), True, conv(2, 4, groups=2)),
    Case("Conv2d-nobias-unbatched", (2, 5, 5), True, conv(2, 3, bias=False)),
    Case("Conv2d-same", (1, 2, 5, 5), True, conv(2, 3, padding="same")),
    Case("ConvTranspose1d", (1, 2, 5), True, conv(2, 3)),
    Case("ConvTranspose2d", (1, 2, 4, 4), True, conv(2, 3, stride=2)),
    Case("BatchNorm1d-train", (4, 3), True, {"num_features": 3}),
    Case("BatchNorm1d-eval", (4, 3, 2), True, {"num_features": 3}, train=False),
    Case("BatchNorm2d-train", (2, 3, 2, 2), True, {"num_features": 3}),
    Case("BatchNorm2d-eval", (2, 3, 2, 2), True, {"num_features": 3}, train=False),
    # the running statistics count too: no affine parameters, still an error
    Case("BatchNorm1d-noaffine", (4, 3), True, {"num_features": 3, "affine": False}),
    Case(
        "BatchNorm1d-nostats-eval",
        (4, 3),
        True,
        {"num_features": 3, "track_running_stats": False},
        train=False,
    ),
    Case("LayerNorm", (2, 3), True, {"normalized_shape": 3}),
    Case("LayerNorm-nobias", (2, 3, 4), True, {"normalized_shape": (3, 4), "bias": False}),
    Case("GroupNorm", (2, 4, 3), True, {"num_groups": 2, "num_channels": 4}),
    Case("InstanceNorm1d-affine", (2, 3, 4), True, {"num_features": 3, "affine": True}),
    Case("InstanceNorm1d-affine-unbatched", (3, 4), True, {"num_features": 3, "affine": True}),
    Case(
        "InstanceNorm2d-affine-stats-eval",
        (2, 3, 3, 3),
        True,
        {"num_features": 3, "affine": True, "track_running_stats": True},
        train=False,
    ),
    Case("CrossEntropyLoss-weight", (4, 3), True, {"weight": WEIGHT}, "index"),
    Case(
        "CrossEntropyLoss-weight-smoothing-none",
        (4, 3),
        True,
        {"weight": WEIGHT, "label_smoothing": 0.1, "reduction": "none"},
        "index",
    ),
    Case("NLLLoss-weight", (4, 3), True, {"weight": WEIGHT}, "index"),
    # -- where torch runs ----------------------------------------------------------
    Case(
        "BatchNorm1d-noaffine-nostats",
        (4, 3),
        False,
        {"num_features": 3, "affine": False, "track_running_stats": False},
    ),
    Case("LayerNorm-noaffine", (2, 3), False, {"normalized_shape": 3, "elementwise_affine": False}),
    Case(
        "GroupNorm-noaffine",
        (2, 4, 3),
        False,
        {"num_groups": 2, "num_channels": 4, "affine": False},
    ),
    Case("InstanceNorm1d", (2, 3, 4), False, {"num_features": 3}),
    # torch's instance norm casts its running statistics: only affine parameters count
    Case(
        "InstanceNorm1d-stats", (2, 3, 4), False, {"num_features": 3, "track_running_stats": True}
    ),
    Case(
        "InstanceNorm1d-stats-eval",
        (2, 3, 4),
        False,
        {"num_features": 3, "track_running_stats": True},
        train=False,
    ),
    # a probability target takes cross_entropy's other path, which promotes
    Case("CrossEntropyLoss-weight-prob", (4, 3), False, {"weight": WEIGHT}, "prob"),
    Case("CrossEntropyLoss", (4, 3), False, {}, "index"),
    Case("BCELoss-weight", (4, 3), False, {"weight": WEIGHT}, "prob"),
    Case(
        "BCEWithLogitsLoss-weights", (4, 3), False, {"weight": WEIGHT, "pos_weight": WEIGHT}, "prob"
    ),
]

PARAMETER_FREE = [
    *[(name, {"dim": 1} if "Softmax" in name else {}, (2, 3)) for name in rnn.activation.__all__],
    *[
        (name, {"kernel_size": 2} if "Adaptive" not in name else {"output_size": 2}, (1, 2, 4))
        for name in ("MaxPool1d", "AvgPool1d", "AdaptiveAvgPool1d", "AdaptiveMaxPool1d")
    ],
    *[
        (name, {"kernel_size": 2} if "Adaptive" not in name else {"output_size": 2}, (1, 2, 4, 4))
        for name in ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d")
    ],
    ("Dropout", {}, (2, 3)),
    ("Flatten", {}, (2, 3, 4)),
    ("Identity", {}, (2, 3)),
]


def _build(lib: Any, case: Case, dtype: np.dtype) -> Any:
    """``case``'s module from ``lib`` (``torch.nn`` or ``reference.nn``) in ``dtype``."""
    ones = torch.ones(case.shape[1]) if lib is torch.nn else np.ones(case.shape[1], np.float32)
    kwargs = {k: (ones if v is WEIGHT else v) for k, v in case.kwargs.items()}
    module = getattr(lib, case.name)(**kwargs)
    module.to(TORCH[dtype] if lib is torch.nn else dtype)
    return module.train(case.train)


def _inputs(case: Case, dtype: np.dtype) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0.1, 0.9, case.shape).astype(dtype)  # a probability, for BCELoss too
    if case.target == "index":
        return [x, rng.integers(0, case.shape[1], case.shape[:1] + case.shape[2:])]
    if case.target == "prob":
        return [x, rng.uniform(0.0, 1.0, case.shape).astype(dtype)]
    return [x]


def _torch_outcome(case: Case, module_dtype: np.dtype, x_dtype: np.dtype) -> Any:
    """torch's output, or the RuntimeError it raised."""
    module = _build(torch.nn, case, module_dtype)
    try:
        return module(*[torch.from_numpy(a) for a in _inputs(case, x_dtype)])
    except RuntimeError as error:
        return error


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_torch_raises_where_the_table_says(case: Case) -> None:
    """The table's ``raises`` is torch's behaviour: the comparison below is not vacuous."""
    assert isinstance(_torch_outcome(case, F32, F64), RuntimeError) == case.raises


@pytest.mark.parametrize("mix", MIXES, ids=[f"{m.name}-module-{x.name}-input" for m, x in MIXES])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_reference_raises_where_torch_raises(case: Case, mix: tuple) -> None:
    module_dtype, x_dtype = mix
    expected = _torch_outcome(case, module_dtype, x_dtype)
    module = _build(rnn, case, module_dtype)
    inputs = _inputs(case, x_dtype)
    if not isinstance(expected, RuntimeError):
        output_dtype = np.asarray(module(*inputs)).dtype
        if case.id == "CrossEntropyLoss-weight-prob" and module_dtype.itemsize > x_dtype.itemsize:
            # torch's probability-target path promotes the loss to the wider weight's dtype
            # (its gradient wrt the input is the input's dtype); reference.functional's
            # cross_entropy returns the input's dtype
            pytest.xfail("the loss stays in the input's dtype; torch's is the weight's")
        assert output_dtype == np.dtype(str(expected.dtype).split(".")[1])
        return
    with pytest.raises(RuntimeError) as info:
        module(*inputs)
    message = str(info.value)
    assert message.startswith(str(expected)), f"torch: {expected}\nreference: {message}"
    explanation = message[len(str(expected)) :]
    assert case.name in explanation and f"input of dtype {x_dtype.name}" in explanation
    assert module_dtype.name in explanation and str(case.shape) in explanation
    assert f".to(np.{x_dtype.name})" in explanation, message


def test_the_message_reads_like_this() -> None:
    with pytest.raises(RuntimeError) as info:
        rnn.Linear(3, 2)(np.zeros((1, 3)))
    assert str(info.value) == (
        "mat1 and mat2 must have the same dtype, but got Double and Float\n"
        "Linear(in_features=3, out_features=2, bias=True) got an input of dtype float64 and "
        "shape (1, 3), but holds weight float32, bias float32; torch does not promote between "
        "a module and its input: .to(np.float64) the module, or cast the input with "
        ".astype(np.float32)"
    )


def test_the_suggested_fixes_work() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3))
    layer = rnn.Linear(3, 2, rng=0)
    assert layer(x.astype(np.float32)).dtype == np.float32
    assert layer.to(np.float64)(x).dtype == np.float64


def test_a_refused_forward_changes_nothing() -> None:
    """No running statistic moves, no forward is counted and no cache is kept."""
    module = rnn.BatchNorm1d(3)
    before = {name: value.copy() for name, value in module.state_dict().items()}
    with pytest.raises(RuntimeError, match="all inputs must share same datatype"):
        module(np.random.default_rng(0).standard_normal((4, 3)))
    for name, value in module.state_dict().items():
        np.testing.assert_array_equal(value, before[name], err_msg=name)
    with pytest.raises(RuntimeError, match="before forward"):
        module.backward(np.ones((4, 3), np.float32))


def test_inside_a_sequential_the_error_names_the_layer() -> None:
    net = rnn.Sequential(rnn.ReLU(), rnn.Linear(3, 2, dtype=np.float64), rnn.Linear(2, 1))
    with pytest.raises(RuntimeError, match=r"Linear\(in_features=2, out_features=1"):
        net(np.zeros((1, 3)))  # the float64 layer takes it; the float32 one refuses


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize(
    ("name", "kwargs", "shape"), PARAMETER_FREE, ids=[n for n, _, _ in PARAMETER_FREE]
)
def test_a_parameter_free_module_follows_its_input(name, kwargs, shape, dtype) -> None:
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    expected = getattr(torch.nn, name)(**kwargs).eval()(torch.from_numpy(x))
    output = getattr(rnn, name)(**kwargs).eval()(x)
    output = output[0] if isinstance(output, tuple) else output  # return_indices
    assert output.dtype == dtype and expected.dtype == TORCH[dtype]


@pytest.mark.parametrize("weight_dtype", [F32, F64])
def test_embedding_takes_integer_indices_whatever_its_dtype(weight_dtype) -> None:
    """Float weights and int indices never "mismatch": the output is the weight's dtype."""
    indices = np.array([[0, 2], [4, 1]])
    for index_dtype in (np.int64, np.int32):
        expected = torch.nn.Embedding(5, 3).to(TORCH[weight_dtype])(
            torch.from_numpy(indices.astype(index_dtype))
        )
        output = rnn.Embedding(5, 3, dtype=weight_dtype)(indices.astype(index_dtype))
        assert output.dtype == weight_dtype and expected.dtype == TORCH[weight_dtype]


def test_float16_input_to_a_float32_normalization_stays_float16() -> None:
    """torch's one allowed mix: computed against the float32 parameters, float16 out and
    back, the parameters' gradients float32."""
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype(np.float16)
    for module in (rnn.LayerNorm(3), rnn.GroupNorm(2, 4), rnn.BatchNorm1d(4)):
        output = module(x)
        grad_input = module.backward(np.ones_like(output))
        assert output.dtype == grad_input.dtype == np.float16, module
        assert all(p.grad.dtype == np.float32 for p in module.parameters()), module
