"""Graph-shaped networks: the spec format, the generator's motifs, shrinking, and teeth.

A spec whose layers name their ``inputs`` is a DAG (harness.graph); both backends run it
(torch with its autograd, the reference with its own reverse loop), and the harness
must localize a planted error to the node, the edge, the kind and the side that holds it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import harness.backends.torch as torch_backend
import reference.functional.elementwise as E
from harness.checking import check
from harness.generate import random_spec
from harness.graph import is_graph
from harness.graph_shrink import without_node
from harness.shrink import fitted
from harness.spec import LayerSpec, NetworkSpec, SpecError, describe, infer_shapes
from tests.harness.test_teeth import only

SCALE = 1 + 1e-3


def linear(i: int, o: int, inputs: list[int] | None = None) -> LayerSpec:
    return LayerSpec("Linear", {"in_features": i, "out_features": o}, inputs)


def net(layers: list[LayerSpec], shape=(4, 5), seed: int = 7) -> NetworkSpec:
    return NetworkSpec(shape, layers, LayerSpec("MSELoss"), seed=seed)


def residual() -> NetworkSpec:
    """x -> Linear(5, 5) -> Tanh (node 1, the only Tanh) -> x + . -> Linear(5, 3)."""
    return net([linear(5, 5), LayerSpec("Tanh"), LayerSpec("add", {}, [-1, 1]), linear(5, 3)])


def broadcast_add() -> NetworkSpec:
    """x (4, 5) + Linear(5, 1)(x) (4, 1): the add (node 1) broadcasts its second input."""
    return net([linear(5, 1, [-1]), LayerSpec("add", {}, [-1, 0]), linear(5, 3)])


def concatenated() -> NetworkSpec:
    """Two Linear branches (3 and 4 features) concatenated (node 2), then Linear(7, 2)."""
    return net([linear(5, 3, [-1]), linear(5, 4, [-1]), LayerSpec("cat", {"dim": 1}, [0, 1]),
                linear(7, 2)])  # fmt: skip


def everything() -> NetworkSpec:
    return NetworkSpec(
        (3, 5),
        [
            linear(5, 5),
            LayerSpec("Tanh"),
            LayerSpec("add", {}, [-1, 1]),
            linear(5, 4, [2]),
            linear(5, 3, [2]),
            LayerSpec("cat", {"dim": 1}, [3, 4]),
            LayerSpec("Sigmoid"),
            LayerSpec("mul", {}, [5, 6]),
            LayerSpec(
                "Bilinear", {"in1_features": 7, "in2_features": 5, "out_features": 2}, [7, 0]
            ),  # fmt: skip
        ],
        LayerSpec("MSELoss"),
        optimizer=LayerSpec("SGD", {"lr": 0.1}),
        steps=2,
        seed=3,
    )


# -- the spec format ------------------------------------------------------------
def test_chain_files_are_unchanged_and_graphs_round_trip():
    chain = net([linear(5, 5), LayerSpec("Tanh")])
    layers = json.loads(chain.to_json())["layers"]
    assert all(set(layer) == {"type", "kwargs"} for layer in layers)  # no "inputs" key
    assert NetworkSpec.from_json(chain.to_json()).to_json() == chain.to_json()
    assert not is_graph(chain)
    spec = everything()
    text = spec.to_json()
    assert json.loads(text)["layers"][2]["inputs"] == [-1, 1]
    again = NetworkSpec.from_json(text)
    assert again == spec and again.to_json() == text and is_graph(again)
    assert infer_shapes(spec)[-1] == (3, 2)


@pytest.mark.parametrize(
    "inputs, words",
    [([3], "node 3"), ([1], "node 1"), ([-2], "node -2"), ([], "non-empty"), ("0", "list")],
)
def test_bad_inputs_raise_one_line(inputs, words):
    data = json.loads(residual().to_json())
    data["layers"][1]["inputs"] = inputs
    with pytest.raises(SpecError) as info:
        NetworkSpec.from_dict(data)
    message = str(info.value)
    assert "\n" not in message and message.startswith("layer 1:") and words in message


def test_inputs_only_on_layers():
    data = json.loads(residual().to_json())
    data["loss"]["inputs"] = [0]
    with pytest.raises(SpecError, match="loss: unknown key 'inputs'"):
        NetworkSpec.from_dict(data)


def test_describe_shows_the_inputs():
    table = describe(everything())
    assert "inputs" in table.splitlines()[0]
    assert any(line.split()[:3] == ["2", "add", "input,"] for line in table.splitlines())
    assert "inputs" not in describe(net([linear(5, 3)])).splitlines()[0]


# -- the generator ------------------------------------------------------------------
def test_the_generator_draws_every_motif_and_valid_graphs():
    seen: set[str] = set()
    for seed in range(120):
        spec = random_spec(seed, families=("graph",))
        assert is_graph(spec)
        infer_shapes(spec)  # valid
        types = {layer.type for layer in spec.layers}
        seen |= types
    for wanted in ("add", "sub", "mul", "cat", "Bilinear", "CosineSimilarity",
                   "PairwiseDistance", "AdaptiveAvgPool1d", "Sigmoid"):  # fmt: skip
        assert wanted in seen, wanted
    # a default draw is sometimes a graph, mostly a chain
    graphs = sum(is_graph(random_spec(seed)) for seed in range(100))
    assert 3 <= graphs <= 40


def test_shrinking_drops_nodes_and_keeps_the_graph_valid():
    spec = everything()
    smaller = without_node(spec, 7, 1)  # the mul replaced by its sigmoid input: 6 -> 7
    assert smaller is not None and len(smaller.layers) == len(spec.layers) - 1
    assert smaller.layers[-1].inputs == [6, 0]
    fixed = fitted(smaller)
    assert fixed is not None and fixed.layers[-1].kwargs["in1_features"] == 7
    assert without_node(residual(), 2, 0).layers[-1].inputs is None  # a chain again: x -> Linear
    chain = without_node(residual(), 2, 1)
    assert chain is not None and not is_graph(chain) and len(chain.layers) == 3


# -- clean graphs pass ----------------------------------------------------------------
def test_a_clean_graph_passes_and_traces_its_edges():
    report = check(everything())
    assert report.ok, report.summary()
    trace = report.traces["torch-cpu-float64"]
    ref = report.traces["reference-float64"]
    assert sorted(trace.grad_edges) == sorted(ref.grad_edges)
    assert {"2.0", "2.1", "8.0", "8.1"} <= set(trace.grad_edges)
    # the input's total gradient is the sum over the edges that read it
    np.testing.assert_allclose(ref.grad_input, ref.grad_edges["0.0"] + ref.grad_edges["2.0"])
    chain = check(net([linear(5, 3)])).traces["torch-cpu-float64"]
    assert chain.grad_edges == {}


# -- teeth ------------------------------------------------------------------------------
class _AddNoReduction(torch.autograd.Function):
    """``a + b``; the broadcast input's gradient is one slice of the output's, not the sum."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, grad):
        def narrowed(shape):
            g = grad
            for dim, size in enumerate(shape):
                if size == 1 and g.shape[dim] != 1:
                    g = g.narrow(dim, 0, 1)  # the reduction dropped
            return g

        return narrowed(ctx.shapes[0]), narrowed(ctx.shapes[1])


class _CatShifted(torch.autograd.Function):
    """``torch.cat``; the first input's gradient sliced one element too far (off by one)."""

    @staticmethod
    def forward(ctx, a, b, dim):
        ctx.sizes, ctx.dim = (a.shape[dim], b.shape[dim]), dim
        return torch.cat([a, b], dim)

    @staticmethod
    def backward(ctx, grad):
        na, nb = ctx.sizes
        return grad.narrow(ctx.dim, 1, na), grad.narrow(ctx.dim, na, nb), None


class _ScaledTanh(torch.autograd.Function):
    """``tanh(x) * SCALE``, differentiated as plain tanh: torch's forward off by 1e-3."""

    @staticmethod
    def forward(ctx, x):
        y = torch.tanh(x)
        ctx.save_for_backward(y)
        return y * SCALE

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad * (1 - y * y)


def test_add_backward_without_its_broadcast_reduction_is_caught_at_the_add(monkeypatch):
    monkeypatch.setitem(torch_backend.TORCH_OPS, "add", _AddNoReduction.apply)
    found = only(check(broadcast_add()), kind="grad_input", layer=1, layer_type="add",
                   tensor="grad wrt input 1", blame="torch")  # fmt: skip
    assert {m.dtype for m in found} == {"float32", "float64"}


def test_off_by_one_in_cat_backward_is_caught_at_the_cat(monkeypatch):
    monkeypatch.setitem(torch_backend.TORCH_OPS, "cat", lambda xs, dim: _CatShifted.apply(*xs, dim))
    only(check(concatenated()), kind="grad_input", layer=2, layer_type="cat",
           tensor="grad wrt input 0", blame="torch")  # fmt: skip


def test_wrong_scale_in_a_residual_branch_is_caught_at_that_layer(monkeypatch):
    monkeypatch.setattr(torch.nn.Tanh, "forward", lambda self, x: _ScaledTanh.apply(x))
    found = only(check(residual()), kind="forward", layer=1, layer_type="Tanh", blame="torch")
    assert all(m.downstream >= 1 for m in found)  # the add and the Linear after it


def test_error_in_the_reference_op_pair_is_blamed_on_the_reference(monkeypatch):
    original = E.mul_backward

    def scaled(grad_output, input, other):
        a, b = original(grad_output, input, other)
        return a * SCALE, b

    monkeypatch.setattr(E, "mul_backward", scaled)
    spec = net([linear(5, 5), LayerSpec("Sigmoid"), LayerSpec("mul", {}, [-1, 1]), linear(5, 3)])
    only(check(spec), kind="grad_input", layer=2, layer_type="mul",
           tensor="grad wrt input 0", blame="reference")  # fmt: skip


def test_hypothesis_draws_graphs_and_other_backends_get_chains():
    from hypothesis import find, settings

    from harness.backends.protocol import Capabilities
    from harness.fitted import fitted_limits
    from harness.strategies import network_specs

    spec = find(network_specs(), is_graph, settings=settings(max_examples=500, database=None))
    infer_shapes(spec)
    chains = fitted_limits([Capabilities(layers=None)])
    assert chains["graphs"] is False and "graph" not in (chains["families"] or ())
    assert Capabilities(layers=None).missing(everything())  # a graph is skipped there


# -- the reference's op pairs ------------------------------------------------------------
@pytest.mark.parametrize("op", ["add", "sub", "mul"])
@pytest.mark.parametrize("other", [(3, 1), (4,), (1, 4), (3, 4)])
def test_op_pairs_match_torch_and_their_own_forward(op, other):
    from harness.compare import GRADCHECK
    from reference.gradcheck import gradcheck

    rng = np.random.default_rng(len(op) + len(other))
    a, b, g = rng.standard_normal((3, 4)), rng.standard_normal(other), rng.standard_normal((3, 4))
    forward, backward = getattr(E, op), getattr(E, f"{op}_backward")
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    out = getattr(torch, op)(ta, tb)
    out.backward(torch.tensor(g))
    np.testing.assert_allclose(forward(a, b), out.detach().numpy(), rtol=1e-12)
    ga, gb = backward(g, a, b)
    assert ga.shape == a.shape and gb.shape == b.shape  # each reduced to its input's shape
    np.testing.assert_allclose(ga, ta.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert gradcheck(forward, a, b, backward=backward, wrt=(0, 1), **GRADCHECK).ok
    f32 = backward(g.astype(np.float32), a.astype(np.float32), b.astype(np.float32))
    assert all(x.dtype == np.float32 for x in f32)


def test_cat_pair_slices_the_gradient_back():
    rng = np.random.default_rng(5)
    parts = [rng.standard_normal((2, n, 3)) for n in (1, 3, 2)]
    g = rng.standard_normal((2, 6, 3))
    ts = [torch.tensor(p, requires_grad=True) for p in parts]
    out = torch.cat(ts, dim=-2)
    out.backward(torch.tensor(g))
    np.testing.assert_array_equal(E.cat(parts, dim=-2), out.detach().numpy())
    for mine, t in zip(E.cat_backward(g, parts, dim=-2), ts):
        np.testing.assert_array_equal(mine, t.grad.numpy())
    with pytest.raises(ValueError, match="cat: tensor 1 has shape"):
        E.cat([parts[0], np.zeros((2, 1, 4))], dim=1)
    with pytest.raises(ValueError, match="add: input"):
        E.add(np.zeros((2, 3)), np.zeros((4,)))


def test_tile_pair_stacks_copies_and_sums_their_gradients():
    from reference.gradcheck import gradcheck

    rng = np.random.default_rng(6)
    x, g = rng.standard_normal((3, 4)), rng.standard_normal((2, 3, 4))
    t = torch.tensor(x, requires_grad=True)
    out = torch.stack([t] * 2)
    out.backward(torch.tensor(g))
    np.testing.assert_array_equal(E.tile(x, 2), out.detach().numpy())
    np.testing.assert_allclose(E.tile_backward(g, x, 2), t.grad.numpy(), rtol=1e-15)
    assert gradcheck(lambda a: E.tile(a, 3), x, backward=lambda gy, a: E.tile_backward(gy, a, 3))
    with pytest.raises(ValueError, match="copies must be at least 1"):
        E.tile(x, 0)


CASES = __import__("pathlib").Path(__file__).parent / "cases"


@pytest.mark.parametrize(
    "name",
    [
        # one input vector has a single nonzero along dim (dropout zeroed the rest): x2/c2
        # and y x1/n1 cancel exactly in the math; torch's formula leaves ~1.5 u of a term
        "fp-cosine-similarity-parallel-float32",
        # CosineSimilarity(x, x) after shrinking: the same cancellation on every entry
        "fp-cosine-similarity-self-float32",
    ],
)
def test_cosine_similarity_of_parallel_vectors_rounds_at_its_terms_size(name):
    spec = NetworkSpec.from_json((CASES / f"{name}.json").read_text())
    report = check(spec, devices=["cpu"], dtypes=["float32"])
    assert report.ok, report.summary()


def test_a_small_error_in_torch_s_cosine_similarity_backward_is_still_caught(monkeypatch):
    spec = NetworkSpec.from_json((CASES / "fp-cosine-similarity-parallel-float32.json").read_text())
    node = next(i for i, layer in enumerate(spec.layers) if layer.type == "CosineSimilarity")
    original = torch.nn.CosineSimilarity.forward

    def planted(self, x1, x2):  # the gradient through it x(1 + 1e-4), the value unchanged
        y = original(self, x1, x2)
        return y + 1e-4 * (y - y.detach())

    monkeypatch.setattr(torch.nn.CosineSimilarity, "forward", planted)
    report = check(spec, devices=["cpu"], dtypes=["float32", "float64"])
    assert not report.ok
    assert {(m.kind, m.layer) for m in report.mismatches} == {("grad_input", node)}, [
        str(m) for m in report.mismatches
    ]
