"""reference.functional pairs called on reference.autograd Tensors record one node whose
backward is the hand-written ``foo_backward``: on torch's own op_db samples (and a small
hand-made case where torch has no OpInfo), the tape's forward equals the array call and
its input gradients equal the pair's backward called directly; a directional finite
difference checks the GRADIENTS table independently; a representative set matches torch."""

from __future__ import annotations

import functools
import importlib
import inspect
import warnings
from typing import Any

import numpy as np
import pytest
import torch

import reference.autograd as ag
import reference.functional as F
import reference.nn as rnn
from reference.autograd import functional as AF
from tests.reference.torch_threads import one_torch_thread  # noqa: F401

PAIRS = AF.paired_names(vars(F))
TAPED = [n for n in PAIRS if n not in AF.ARRAY_ONLY]
ALIASES = {n: n for n in ("softmax", "log_softmax", "sigmoid", "tanh", "flatten")}
RANDOM = {"dropout", "alpha_dropout", "feature_alpha_dropout", "rrelu", "fractional_max_pool2d",
          "fractional_max_pool3d", "scaled_dot_product_attention"}  # fmt: skip
TORCH_SET = ["linear", "conv1d", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm",
             "layer_norm", "embedding", "softmax", "log_softmax", "cross_entropy", "mse_loss",
             "binary_cross_entropy", "nll_loss", "gelu", "relu", "interpolate", "pad",
             "scaled_dot_product_attention"]  # fmt: skip


def _t(*shape: int, seed: int = 0, grad: bool = True, positive: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64)
    return (x.abs() if positive else x).requires_grad_(grad)


def _hand_made() -> dict[str, list[tuple[tuple, dict]]]:
    """One small case (torch terms) for each pair torch's op_db lacks."""
    x, h, c = _t(3, 4), _t(3, 5, seed=1), _t(3, 5, seed=2)
    cell = lambda g: (_t(g * 5, 4, seed=3), _t(g * 5, 5, seed=4), _t(g * 5, seed=5),  # noqa: E731
                      _t(g * 5, seed=6))  # fmt: skip
    tails = [(_t(2, 4, seed=7), _t(3, 2, seed=8)), (_t(1, 4, seed=9), _t(2, 1, seed=10))]
    target = torch.tensor([0, 2, 4])
    return {
        "adaptive_log_softmax_with_loss": [
            ((x, target, _t(4, 4, seed=11), tails, [2, 5, 7]), {"head_bias": _t(4, seed=12)})
        ],  # fmt: skip
        "cross_map_lrn2d": [((_t(2, 5, 3, 3), 3), {"alpha": 0.1, "beta": 0.7, "k": 1.5})],
        "fold": [((_t(2, 12, 4), (3, 3), 2), {})],
        "gru_cell": [((x, h, *cell(3)), {})],
        "rnn_tanh_cell": [((x, h, *cell(1)), {})],
        "rnn_relu_cell": [((x, h, *cell(1)), {})],
        "lstm_cell": [((x, (h, c), *cell(4)), {})],
        "lp_pool1d": [((_t(2, 3, 7, positive=True), 2.0, 3), {"stride": 2})],
        "lp_pool2d": [((_t(2, 3, 5, 5, positive=True), 3.0, 2), {"ceil_mode": True})],
        "lp_pool3d": [((_t(1, 2, 4, 4, 4, positive=True), 2.0, 2), {})],
        "triplet_margin_with_distance_loss": [
            ((x, _t(3, 4, seed=13), _t(3, 4, seed=14)), {"margin": 0.5, "swap": True})
        ],  # fmt: skip
        "upsample": [
            ((_t(1, 2, 3, 3),), {"scale_factor": 2, "mode": "bilinear", "align_corners": False})
        ],  # fmt: skip
    }


def _spied_calls(name: str, info: Any) -> list[tuple[tuple, dict]]:
    """torch's samples as calls of ``torch.nn.functional.<name>`` (an OpInfo's op may be a
    lambda reordering them: record what it passes to the real function)."""
    real = getattr(torch.nn.functional, name, None)
    calls = []
    for s in info.sample_inputs("cpu", torch.float64, requires_grad=True):
        first = (s.input,) if isinstance(s.input, torch.Tensor) else tuple(s.input)
        if real is None or info.op is real:
            calls.append(((*first, *s.args), dict(s.kwargs)))
            continue
        seen = _spy(name, real, info, s)
        calls.append(seen[0] if seen else ((*first, *s.args), dict(s.kwargs)))
    return calls


def _spy(name: str, real: Any, info: Any, sample: Any) -> list[tuple[tuple, dict]]:
    seen: list[tuple[tuple, dict]] = []

    def spy(*a: Any, **k: Any) -> Any:
        seen.append((a, k))
        return real(*a, **k)

    setattr(torch.nn.functional, name, spy)
    try:
        info.op(sample.input, *sample.args, **sample.kwargs)
    except Exception:
        pass  # torch's error samples: the reference is asked the same and counted
    finally:
        setattr(torch.nn.functional, name, real)
    return seen


@functools.cache
def samples() -> dict[str, list[tuple[tuple, dict]]]:
    from torch.testing._internal.common_methods_invocations import op_db

    out: dict[str, list[tuple[tuple, dict]]] = {n: [] for n in TAPED}
    for info in op_db:
        name = info.name.removeprefix("nn.functional.")
        if name in out and (info.name.startswith("nn.functional.") or ALIASES.get(name)):
            if info.name.startswith("nn.functional.") or info.name == ALIASES[name]:
                out[name] += _spied_calls(name, info)
    for name, calls in _hand_made().items():
        out[name] += calls
    return out


def _convert(value: Any, tensors: bool) -> Any:
    """torch -> numpy arrays (``tensors``: reference Tensors, requiring grad as torch's)."""
    if isinstance(value, torch.Tensor):
        array = value.detach().numpy().copy()
        return ag.Tensor(array, requires_grad=value.requires_grad) if tensors else array
    if isinstance(value, dict):
        return {k: _convert(v, tensors) for k, v in value.items()}
    if isinstance(value, torch.dtype):
        return np.dtype(str(value).removeprefix("torch."))
    if isinstance(value, (list, tuple)) and not isinstance(value, torch.Size):
        items = [_convert(v, tensors) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _leaves(v)]
    return [value]


def _prepare(name: str, call: tuple[tuple, dict], tensors: bool) -> tuple[tuple, dict]:
    args, kwargs = _convert(call[0], tensors), _convert(call[1], tensors)
    if name in RANDOM and "rng" in inspect.signature(getattr(F, name)).parameters:
        kwargs.setdefault("rng", 0)  # the array call and the Tensor call draw alike
    if name == "flatten" and len(args) == 1:
        kwargs.setdefault("start_dim", 0)  # torch.flatten's default; F.flatten's is nn's
    return args, kwargs


def _direct(name: str, grads: Any, args: tuple, kwargs: dict) -> Any:
    """The pair's backward called by hand, with what a user would hand it."""
    module = importlib.import_module(getattr(F, name).__module__)
    backward = getattr(module, f"{name}_backward")
    bound = inspect.signature(getattr(module, name)).bind(*args, **kwargs)
    bound.apply_defaults()
    a = bound.arguments
    if name == "flatten":
        return backward(grads[0], np.shape(a["input"]))
    if name == "dropout":
        mask = F.dropout_mask(np.shape(a["input"]), a["p"], a["rng"]) if a["training"] else None
        return backward(grads[0], mask, a["p"])
    if name in ("alpha_dropout", "feature_alpha_dropout", "rrelu", "fractional_max_pool2d",
                "fractional_max_pool3d"):  # fmt: skip
        return _direct_random(name, module, backward, grads, bound)
    g = grads[0] if len(grads) == 1 or grads[1].dtype.kind not in "fc" else tuple(grads)
    takes = inspect.signature(backward).parameters  # all but inplace
    return backward(g, **{k: v for k, v in a.items() if k in takes})


def _direct_random(name: str, module: Any, backward: Any, grads: Any, bound: Any) -> Any:
    a, kwargs = bound.arguments, {k: v for k, v in bound.kwargs.items() if k != "rng"}
    if name.startswith("fractional"):
        wanted, a["return_indices"] = a["return_indices"], True
        _, indices = getattr(module, name)(*bound.args, **bound.kwargs)
        a["return_indices"] = wanted
        kwargs = {k: v for k, v in bound.kwargs.items() if k != "rng"}
        return backward(grads[0], *bound.args, **kwargs, indices=indices)
    if name == "rrelu":
        if a["training"]:
            kwargs["noise"] = F.rrelu_noise(a["input"], a["lower"], a["upper"], a["rng"])
        return backward(grads[0], *bound.args, **kwargs)
    p, x = a["p"], a["input"]
    if a["training"] and 0 < p < 1 and x.size > 0:
        shape = F.alpha_dropout_mask_shape(x.shape, name == "feature_alpha_dropout")
        kwargs["mask"] = F.dropout_mask(shape, p, a["rng"])
    return backward(grads[0], *bound.args, **kwargs)


def _mapped(name: str, result: Any, args: tuple, kwargs: dict, grads: Any) -> dict[int, Any]:
    """id(Tensor) -> its gradient from the direct backward, by GRADIENTS."""
    forward = getattr(F, name)
    bound = inspect.signature(forward).bind(*args, **kwargs)
    result = result if isinstance(result, tuple) else (result,)
    names = AF.GRADIENTS.get(name, ("input",))
    assert len(result) == len(names), (name, len(result), names)
    out: dict[int, Any] = {}
    for label, g in zip(names, result):
        head, *rest = label.split(".")
        value = bound.arguments.get(head)
        for i in rest:
            value = value[int(i)]
        for t, gi in zip(_leaves(value), _leaves(g)):
            if isinstance(t, ag.Tensor) and gi is not None:
                out[id(t)] = gi.to_dense() if hasattr(gi, "to_dense") else gi
    return out


def _run(name: str, call: tuple[tuple, dict], rng: np.random.Generator) -> dict[str, Any]:
    """Array call, Tensor call, tape backward and direct backward of one sample."""
    arrays, akw = _prepare(name, call, tensors=False)
    expected = getattr(F, name)(*arrays, **akw)
    args, kwargs = _prepare(name, call, tensors=True)
    leaves = [t for t in _leaves([list(args), list(kwargs.values())]) if isinstance(t, ag.Tensor)]
    if not any(t.requires_grad for t in leaves):
        return {}
    out = getattr(F, name)(*args, **kwargs)
    outs = list(out) if isinstance(out, tuple) else [out]
    wanted = [np.asarray(e) for e in (expected if isinstance(expected, tuple) else [expected])]
    for o, e in zip(outs, wanted):
        np.testing.assert_array_equal(o.data, e, err_msg=f"{name} forward")
    grads = tuple(rng.standard_normal(o.shape).astype(o.dtype) if o.dtype.kind == "f"
                  else np.zeros(o.shape, o.dtype) for o in outs)  # fmt: skip
    floats = [(o, g) for o, g in zip(outs, grads) if o.requires_grad]
    ag.backward([o for o, _ in floats], [g for _, g in floats])
    direct = _direct(name, grads, arrays, akw)
    by_id = _mapped(name, direct, args, kwargs, grads)
    target = inspect.signature(getattr(F, name)).bind(*args, **kwargs).arguments.get("target")
    for t in leaves:
        if not t.requires_grad:
            continue
        if t is target and "target" in AF.NO_GRADIENT.get(name, ()):
            assert t.grad is None, f"{name}: torch gives the target no gradient"
            continue
        if id(t) not in by_id and t is target:
            module = importlib.import_module(getattr(F, name).__module__)
            backward = getattr(module, f"{name}_target_backward")
            by_id[id(t)] = backward(grads[0], *arrays, **akw)
        assert t.grad is not None, f"{name}: a Tensor got no gradient"
        np.testing.assert_allclose(t.grad.data, by_id[id(t)], rtol=1e-14, atol=0, err_msg=name)
    return {"args": args, "kwargs": kwargs, "arrays": arrays, "akw": akw, "outs": outs,
            "grads": grads, "leaves": leaves}  # fmt: skip


def _directional(name: str, run: dict[str, Any], rng: np.random.Generator) -> None:
    """sum(grad * v) == d/dh <g, f(x + h v)> by central differences, per input Tensor:
    a wrong GRADIENTS entry (gradients of the wrong argument) cannot pass this."""
    args, kwargs, grads = run["args"], run["kwargs"], run["grads"]
    for t in run["leaves"]:
        if t.grad is None or t.data.size == 0:  # NO_GRADIENT targets: checked in _run
            continue
        v, h, base = rng.standard_normal(t.shape), 1e-6, t.data.copy()
        values = []
        for step in (h, -h):
            t.data = base + step * v
            with ag.no_grad():
                out = getattr(F, name)(*args, **kwargs)
            outs = out if isinstance(out, tuple) else (out,)
            values.append(sum(float(np.sum(o.data * g)) for o, g in zip(outs, grads)
                              if o.dtype.kind == "f"))  # fmt: skip
        numeric = (values[0] - values[1]) / (2 * h)
        t.data = base
        analytic = float(np.sum(t.grad.data * v))
        assert abs(numeric - analytic) <= 1e-5 * (1 + abs(analytic)), (name, numeric, analytic)


COUNTS: dict[str, tuple[int, int, int]] = {}
# where the directional check does not apply, because the pair follows torch's gradient,
# which is not the derivative there (both measured equal to torch's on these samples)
NOT_A_DERIVATIVE = {
    "ctc_loss": "torch's ctc gradient assumes log_probs came from a log_softmax",
}


def _differentiable(name: str, arrays: tuple) -> bool:
    """max_unpool with a repeated index writes one winner but sends every gradient: torch's
    rule, not a derivative; the directional check takes samples without repeats."""
    if not name.startswith("max_unpool"):
        return name not in NOT_A_DERIVATIVE and name not in RANDOM - {
            "scaled_dot_product_attention"}  # fmt: skip
    nd = int(name[-2])
    flat = arrays[1].reshape(-1, int(np.prod(arrays[1].shape[-nd:])))
    return all(len(np.unique(row)) == row.size for row in flat)


@pytest.mark.parametrize("name", TAPED)
def test_the_tape_runs_the_pairs_own_backward(name):
    rng = np.random.default_rng(0)
    calls, supported, refused, checked = samples()[name], 0, 0, False
    for call in calls:
        try:
            arrays, akw = _prepare(name, call, tensors=False)
            getattr(F, name)(*arrays, **akw)
        except (ValueError, TypeError, RuntimeError, NotImplementedError, IndexError):
            continue  # an argument the reference does not take, or torch's error case
        try:
            run = _run(name, call, rng)
        except RuntimeError as error:  # a Tensor requiring a gradient the pair lacks
            assert "requires grad, but" in str(error), error
            refused += 1
            continue
        supported += 1
        if run and not checked and _differentiable(name, arrays):
            _directional(name, run, rng)
            checked = True
    COUNTS[name] = (supported, refused, len(calls))
    assert supported >= 1, f"{name}: no sample ran on the tape ({len(calls)} drawn)"
    assert checked or not _differentiable(name, ()) or name.startswith("max_unpool"), name


def _torch_run(name: str, call: tuple[tuple, dict], grads: tuple) -> tuple[list, dict[int, Any]]:
    """torch's forward and the gradient of each float input that requires one."""
    args, kwargs = call
    real = getattr(torch.nn.functional, name, None) or getattr(torch, name)
    if name in ("softmax", "log_softmax"):
        real = getattr(torch, name)  # op_db's samples are torch.softmax's (dtype positional)
    leaves = [t for t in _leaves([list(args), list(kwargs.values())])
              if isinstance(t, torch.Tensor) and t.requires_grad]  # fmt: skip
    for t in leaves:
        t.grad = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's padding='same' copy notice
        out = real(*args, **kwargs)
    outs = list(out) if isinstance(out, tuple) else [out]
    pairs = [(o, torch.from_numpy(g)) for o, g in zip(outs, grads) if o.requires_grad]
    torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])
    return [o.detach().numpy() for o in outs], {i: t.grad for i, t in enumerate(leaves)}


@pytest.mark.parametrize("name", TORCH_SET)
def test_the_tape_matches_torch_on_its_samples(name):
    rng, compared = np.random.default_rng(1), 0
    for call in samples()[name]:
        if name == "scaled_dot_product_attention" and call[1].get("dropout_p", 0) > 0:
            continue  # torch draws its own mask
        try:
            run = _run(name, call, rng)
        except (ValueError, TypeError, RuntimeError, NotImplementedError, IndexError):
            continue
        if not run:
            continue
        theirs, grads = _torch_run(name, call, run["grads"])
        for ours, t in zip(run["outs"], theirs):
            np.testing.assert_allclose(ours.data, t, rtol=1e-10, atol=1e-12, err_msg=name)
        ours_grads = [t for t in run["leaves"] if t.requires_grad]
        for i, t in enumerate(ours_grads):
            expected = grads[i]
            if expected is None:
                assert t.grad is None or not np.any(t.grad.data), name
                continue
            np.testing.assert_allclose(t.grad.data, expected.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name} grad {i}")  # fmt: skip
        compared += 1
    assert compared >= 1, name


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_on_the_tape_matches_torch(training):
    x, w, b = _t(4, 3, 5), _t(3, seed=1), _t(3, seed=2)
    mean, var = torch.randn(3, dtype=torch.float64), torch.rand(3, dtype=torch.float64) + 0.5
    ours_stats = [mean.numpy().copy(), var.numpy().copy()]
    ours = [_convert(t, True) for t in (x, w, b)]
    out = F.batch_norm(ours[0], *ours_stats, *ours[1:], training=training)
    theirs = torch.nn.functional.batch_norm(x, mean, var, w, b, training=training)
    g = np.random.default_rng(2).standard_normal(out.shape)
    out.backward(g)
    theirs.backward(torch.from_numpy(g))
    np.testing.assert_allclose(out.data, theirs.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_stats[0], mean.numpy(), rtol=1e-12)  # updated in place
    for mine, t in zip(ours, (x, w, b)):
        np.testing.assert_allclose(mine.grad.data, t.grad.numpy(), rtol=1e-12)


def test_a_mixed_graph_backpropagates_like_torch():
    """autograd ops + a functional pair + a reference.nn module, with a shared input."""
    rng = np.random.default_rng(3)
    xs, ws = rng.standard_normal((5, 4)), rng.standard_normal((6, 4))
    layer = rnn.Linear(6, 3, rng=0).double()
    tlayer = torch.nn.Linear(6, 3).double()
    tlayer.load_state_dict({k: torch.tensor(v) for k, v in layer.state_dict().items()})
    x, w = ag.tensor(xs, requires_grad=True), ag.tensor(ws, requires_grad=True)
    tx, tw = (torch.tensor(a, requires_grad=True) for a in (xs, ws))

    def net(F_, lay, x, w, exp):
        h = F_.gelu(F_.linear(x * 2.0, w))
        return F_.log_softmax(lay(h) + exp(h[:, :3]), dim=1).sum() + F_.mse_loss(x, x * 0.5)

    loss = net(F, layer, x, w, lambda t: t.exp())
    tloss = net(torch.nn.functional, tlayer, tx, tw, torch.exp)
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(w.grad.data, tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.weight.grad, tlayer.weight.grad.numpy(), rtol=1e-12)


def test_plain_arrays_call_the_pair_itself():
    conv = importlib.import_module("reference.functional.conv")
    assert F.conv2d.__wrapped__ is conv.conv2d and F.conv2d.__name__ == "conv2d"
    assert inspect.signature(F.conv2d) == inspect.signature(conv.conv2d)
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    out = F.conv2d(x, w, stride=2)
    assert type(out) is np.ndarray
    np.testing.assert_array_equal(out, conv.conv2d(x, w, stride=2))
    assert F.conv2d_backward is conv.conv2d_backward  # backwards stay array-only
    assert all(getattr(getattr(F, n), "__taped__", False) for n in PAIRS)


def test_dropout_uses_one_mask_forward_and_backward():
    x = ag.tensor(np.random.default_rng(4).standard_normal((50, 20)) + 3, requires_grad=True)
    out = F.dropout(x, p=0.3, training=True)  # fresh entropy: the mask is drawn once
    out.backward(np.ones(out.shape))
    np.testing.assert_allclose(x.grad.data, out.data / x.data, rtol=1e-12)
    assert 0 < np.mean(x.grad.data == 0) < 1


def test_what_the_tape_refuses_is_said_clearly():
    x = ag.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(TypeError, match="rnn_layers does not record on the tape yet.*nn.LSTM"):
        F.rnn_layers("LSTM", x, (), [], False)
    with pytest.raises(RuntimeError, match="inplace=True"):
        F.relu(x, inplace=True)
    weight = ag.tensor(np.ones(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="'weight' requires grad"):
        F.cross_entropy(x, np.array([0, 1]), weight=weight)


def test_a_target_that_requires_grad_gets_the_target_backward():
    x, y = _t(3, 4), _t(3, 4, seed=1)
    ours_x, ours_y = _convert(x, True), _convert(y, True)
    F.mse_loss(ours_x, ours_y).backward()
    torch.nn.functional.mse_loss(x, y).backward()
    np.testing.assert_allclose(ours_y.grad.data, y.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(ours_x.grad.data, x.grad.numpy(), rtol=1e-12)
