"""torch's own module tests' inputs (``common_modules.module_db``), run through the reference.

For every ``torch.nn`` class that ``reference.nn`` has, every sample torch's module tests
construct (constructor arguments, forward arguments) is run on both sides in float64:
the reference module is built with the same arguments, given torch's ``state_dict``,
and must give torch's outputs, input gradients, parameter gradients (under a random
upstream gradient) and buffers afterwards, in training and in eval mode. And every
error input torch's tests expect to raise must raise in the reference too.

Torch's randomised layers (dropout and friends in training) are run in eval mode here;
their training draws are imposed and compared in their own tests. Needs ``expecttest``
(a test dependency of torch's testing module); skipped without it.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch

import reference.nn as rnn
from tests.reference.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

pytest.importorskip("expecttest")
from torch.testing._internal.common_modules import module_db  # noqa: E402

RANDOM_IN_TRAINING = {
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout",
    "RReLU", "FractionalMaxPool2d", "FractionalMaxPool3d",
}  # fmt: skip
RTOL, ATOL = 1e-9, 1e-11

COVERED = [info for info in module_db if hasattr(rnn, info.module_cls.__name__)]


def _numpy(value: Any) -> Any:
    """Tensors (also inside tuples, lists and dicts) as NumPy arrays; anything else as is."""
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy().copy()
    if isinstance(value, (tuple, list)):
        return type(value)(_numpy(v) for v in value)
    if isinstance(value, dict):
        return {k: _numpy(v) for k, v in value.items() if k != "device"}  # NumPy has one
    if isinstance(value, torch.dtype):
        return np.dtype(str(value).removeprefix("torch."))
    return value


def _positional(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple:
    """Forward arguments in the order of torch's ``forward`` signature (the reference's
    may name them differently)."""
    signature = inspect.signature(module.forward)
    given = signature.bind(*args, **kwargs).arguments
    names = list(signature.parameters)
    last = max((names.index(name) for name in given), default=-1)
    # a keyword after a skipped argument (MultiheadAttention's attn_mask after need_weights)
    # needs the skipped ones' defaults in their places
    return tuple(
        given[name] if name in given else signature.parameters[name].default
        for name in names[: last + 1]
    )


def _float_tensors(values: Any) -> Iterator[torch.Tensor]:
    for value in values if isinstance(values, (tuple, list)) else (values,):
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            yield value


def _close(ours: Any, theirs: torch.Tensor, what: str) -> None:
    theirs_np = theirs.detach().cpu().numpy()
    ours = np.asarray(ours)
    assert ours.shape == theirs_np.shape, f"{what}: shape {ours.shape} != torch's {theirs_np.shape}"
    scale = max(1.0, float(np.max(np.abs(theirs_np), initial=0.0)))
    np.testing.assert_allclose(ours, theirs_np, rtol=RTOL, atol=ATOL * scale, err_msg=what)


def _build(info: Any, sample: Any) -> tuple[torch.nn.Module, Any]:
    c = sample.constructor_input
    with warnings.catch_warnings():
        # TransformerEncoder's note that its nested-tensor fast path is off for these args
        warnings.filterwarnings("ignore", "enable_nested_tensor is True", UserWarning)
        theirs = info.module_cls(*c.args, **c.kwargs).to(torch.float64)
    ours = getattr(rnn, info.module_cls.__name__)(*_numpy(c.args), **_numpy(c.kwargs))
    state = {k: v.detach().numpy().copy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(state), "state_dict keys differ from torch's"
    ours.double().load_state_dict(state)
    return theirs, ours


def _run_one(info: Any, sample: Any, training: bool, rng: np.random.Generator) -> None:
    theirs, ours = _build(info, sample)
    theirs.train(training)
    ours.train(training)
    f = sample.forward_input
    args = _positional(theirs, f.args, f.kwargs)
    leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's deprecation notes (KLDivLoss's 'mean')
        out = theirs(*args)
    our_out = ours(*_numpy(args))
    outs = list(_float_tensors(out))
    our_outs = our_out if isinstance(our_out, (tuple, list)) else (our_out,)
    for i, value in enumerate(outs):
        _close(our_outs[i], value, f"output {i}")
    for name, buffer in theirs.named_buffers():
        _close(ours.state_dict()[name], buffer, f"buffer {name} after forward")
    differentiable = [o for o in outs if o.requires_grad]
    if len(differentiable) != 1:
        return  # several differentiable outputs (or none): nothing single to send back
    grad = torch.from_numpy(rng.standard_normal(differentiable[0].shape))
    params = dict(theirs.named_parameters())
    wrt = leaves + list(params.values())
    grads = torch.autograd.grad(differentiable[0], wrt, grad, allow_unused=True)
    ours_in = ours.backward(grad.numpy().copy())
    ours_in = ours_in if isinstance(ours_in, tuple) else (ours_in,)
    for leaf, g_theirs in zip(leaves, grads[: len(leaves)]):
        # a tensor passed at several positions (torch's samples do: KLDivLoss(x, x)) gets
        # the sum of the positions' gradients; the reference's i-th gradient is args[i]'s
        at = [i for i, arg in enumerate(args) if arg is leaf]
        ours_at = [ours_in[i] if i < len(ours_in) else None for i in at]
        if g_theirs is not None and all(g is not None for g in ours_at):
            _close(sum(ours_at), g_theirs, f"gradient wrt input {at}")
    our_params = dict(ours.named_parameters())
    for (name, _), g_theirs in zip(params.items(), grads[len(leaves) :]):
        if g_theirs is not None:
            g_ours = our_params[name].grad
            assert g_ours is not None, f"no gradient for {name}"
            _close(g_ours, g_theirs, f"gradient wrt {name}")


def _samples(info: Any, training: bool) -> list[Any]:
    return list(
        info.module_inputs_func(
            info, device="cpu", dtype=torch.float64, requires_grad=True, training=training
        )
    )


@pytest.mark.parametrize("info", COVERED, ids=lambda info: info.module_cls.__name__)
def test_torch_module_samples_match(info: Any) -> None:
    name = info.module_cls.__name__
    modes = (False,) if name in RANDOM_IN_TRAINING else (True, False)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)  # torch's sample inputs are drawn from its generator
    ran = 0
    for training in modes:
        for sample in _samples(info, training):
            where = f"{name} sample {sample.desc!r} ({'train' if training else 'eval'})"
            try:
                _run_one(info, sample, training, rng)
            except AssertionError as error:
                raise AssertionError(f"{where}: {error}") from None
            ran += 1
    assert ran > 0


@pytest.mark.parametrize(
    "info",
    [info for info in COVERED if info.module_error_inputs_func is not None],
    ids=lambda info: info.module_cls.__name__,
)
def test_torch_module_error_inputs_raise(info: Any) -> None:
    """Where torch's tests expect the module to raise, the reference raises too."""
    errors = info.module_error_inputs_func(
        info, device="cpu", dtype=torch.float64, requires_grad=False, training=True
    )
    for error in errors:
        sample = error.module_error_input
        c, f = sample.constructor_input, sample.forward_input
        with pytest.raises((ValueError, TypeError, RuntimeError, IndexError)):
            ours = getattr(rnn, info.module_cls.__name__)(*_numpy(c.args), **_numpy(c.kwargs))
            theirs = info.module_cls(*c.args, **c.kwargs)
            ours(*_numpy(_positional(theirs, f.args, f.kwargs)))
