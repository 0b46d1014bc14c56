"""Padding: gradcheck of ``pad_backward`` in every mode, ``pad`` and the fifteen padding
modules against torch (float64 and float32, batched and unbatched, negative padding),
``repr``, torch's rules on ranks and sizes (the reference raises exactly where torch
does), torch's undefined corners, and bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.compare import GRADCHECK, compare_arrays, to_numpy, tolerance
from harness.twin import assert_twin
from reference import gradcheck
from reference.functional.padding import pad, pad_backward
from reference.nn import padding as rpad

DTYPES = [np.float64, np.float32]
MODES = ["constant", "reflect", "replicate", "circular"]
# module family -> (functional mode, takes a value)
FAMILIES = {"ZeroPad": ("constant", False), "ConstantPad": ("constant", True),
            "ReflectionPad": ("reflect", False), "ReplicationPad": ("replicate", False),
            "CircularPad": ("circular", False)}  # fmt: skip
VALUES = [None, 0.0, 1.5, -2.0]


def legal_pair(draw: st.DrawFn, mode: str, size: int) -> tuple[int, int]:
    """A (before, after) torch accepts for a dim of ``size`` >= 1, negative ones included."""
    if mode == "constant":  # the crops may not take more than the dim holds
        before = draw(st.integers(-size, 3))
        return before, draw(st.integers(-(size + min(before, 0)), 3))
    if mode == "reflect":  # each side < size, output >= 0
        before = draw(st.integers(-size, size - 1))
        return before, draw(st.integers(max(-size - before, -size), size - 1))
    if mode == "replicate":  # no upper limit; output >= 0
        before = draw(st.integers(-size - 1, 3))
        return before, draw(st.integers(max(-size - before, -3), 3))
    # circular: each side <= size, and a positive side <= what the negative one keeps
    before = draw(st.integers(-size, size))
    kept = size + min(before, 0)
    return before, draw(st.integers(max(before, 0) - kept, kept))


@st.composite
def configs(draw: st.DrawFn, mode: str | None = None, nd: int | None = None) -> dict:
    """A legal ``pad`` call: input shape, pad (torch's order), mode, value."""
    mode = mode or draw(st.sampled_from(MODES))
    nd = nd or draw(st.integers(1, 3))
    # constant pads any rank >= nd; the others an unbatched (nd + 1) or batched (nd + 2) one
    lead = draw(st.integers(0 if mode == "constant" else 1, 2))
    shape = (*draw(st.lists(st.integers(1, 3), min_size=lead, max_size=lead)),
             *draw(st.lists(st.integers(1, 4), min_size=nd, max_size=nd)))  # fmt: skip
    pads = tuple(p for size in reversed(shape[lead:]) for p in legal_pair(draw, mode, size))
    sizes = [s + pads[2 * k] + pads[2 * k + 1] for k, s in enumerate(reversed(shape[lead:]))]
    if mode in ("reflect", "replicate"):
        assume(max(sizes) > 0)  # torch: not every padded dim may come out empty
    if mode == "reflect" and nd == 3:  # torch's reflect 3-d leaves the gradient of an
        assume(min(sizes) > 0)  # empty output unset (test_raises_exactly_where_torch_raises)
    value = draw(st.sampled_from(VALUES)) if mode == "constant" else None
    return {"shape": shape, "pad": pads, "mode": mode, "value": value}


def _input(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# -- the functional pair ----------------------------------------------------------


@given(config=configs(), seed=st.integers(0, 2**16))
def test_pad_backward_passes_gradcheck(config: dict, seed: int) -> None:
    kw = {k: config[k] for k in ("pad", "mode", "value")}
    x = _input(config["shape"], seed)
    result = gradcheck(lambda x: pad(x, **kw), x,
                       backward=lambda g, x: pad_backward(g, x, **kw), seed=seed,
                       **GRADCHECK)  # fmt: skip
    assert result.ok, str(result)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(config=configs(), seed=st.integers(0, 2**16))
def test_pad_matches_torch(config: dict, seed: int, dtype: Any, device: str) -> None:
    kw = {k: config[k] for k in ("pad", "mode", "value")}
    x = _input(config["shape"], seed)
    assert_twin(pad, torch.nn.functional.pad, [x], dtype=dtype, device=device, seed=seed, **kw)


# -- the modules --------------------------------------------------------------------


@st.composite
def module_configs(draw: st.DrawFn) -> tuple[str, int, dict, tuple[int, ...]]:
    """A module (family, nd), its constructor kwargs and an input shape it accepts."""
    family, nd = draw(st.sampled_from(sorted(FAMILIES))), draw(st.integers(1, 3))
    mode, takes_value = FAMILIES[family]
    config = draw(configs(mode, nd))
    shape = config["shape"]
    if mode == "constant" and len(shape) == nd:  # the modules' own shapes: (C, ...) or (N, C, ...)
        shape = (2, *shape)
    padding: Any = config["pad"]
    if draw(st.booleans()):  # an int: the same on every side, legal for the smallest dim
        smallest = min(shape[-nd:])
        top = {"reflect": smallest - 1, "circular": smallest}.get(mode, 3)
        padding = draw(st.integers(0, top))
    kwargs = {"padding": padding}
    if takes_value:
        kwargs["value"] = draw(st.sampled_from([0.0, 1.5, -2.0, 3]))
    return family, nd, kwargs, shape


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@given(case=module_configs(), seed=st.integers(0, 2**16))
def test_module_matches_torch(case: tuple, seed: int, dtype: Any, device: str) -> None:
    family, nd, kwargs, shape = case
    ours = getattr(rpad, f"{family}{nd}d")(**kwargs)
    theirs = getattr(torch.nn, f"{family}{nd}d")(**kwargs)
    assert_twin(ours, theirs, [_input(shape, seed)], dtype=dtype, device=device, seed=seed)


ALL_CLASSES = [f"{family}{nd}d" for family in FAMILIES for nd in (1, 2, 3)]


@pytest.mark.parametrize("name", ALL_CLASSES)
@pytest.mark.parametrize("padding", [1, 3, "tuple"])
def test_repr_and_attributes_match_torch(name: str, padding: Any) -> None:
    nd = int(name[-2])
    padding = tuple(range(1, 2 * nd + 1)) if padding == "tuple" else padding
    args = (padding, 2.5) if name.startswith("Constant") else (padding,)
    ours, theirs = getattr(rpad, name)(*args), getattr(torch.nn, name)(*args)
    assert repr(ours) == repr(theirs)
    assert ours.padding == theirs.padding
    assert getattr(ours, "value", None) == getattr(theirs, "value", None)
    assert isinstance(ours, rpad.ConstantPad1d) == isinstance(theirs, torch.nn.ConstantPad1d)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


def test_the_names_are_torchs() -> None:
    assert sorted(rpad.__all__) == sorted(torch.nn.modules.padding.__all__)


def test_a_tuple_pads_as_many_dims_as_it_has_pairs_as_in_torch() -> None:
    """torch does not check a tuple's length: ConstantPad1d((1, 1, 2, 2)) pads two dims."""
    x = _input((2, 3, 4), 0)
    assert_twin(rpad.ConstantPad1d((1, 1, 2, 2), 0.5), torch.nn.ConstantPad1d((1, 1, 2, 2), 0.5),
                [x])  # fmt: skip
    assert_twin(rpad.ReflectionPad1d((1, 1, 2, 2)), torch.nn.ReflectionPad1d((1, 1, 2, 2)), [x])


# -- torch's rules: the reference raises exactly where torch raises ---------------------


def _torch_undefined(shape: tuple[int, ...], pads: tuple[int, ...], mode: str) -> bool:
    """Corners where torch gives no defined answer (see the two tests below): circular
    wrapping more than its negative side keeps; 2-d reflect of an empty batch to a
    negative size."""
    pairs = [(shape[-1 - k], pads[2 * k], pads[2 * k + 1]) for k in range(len(pads) // 2)]
    if mode == "circular":
        return any(max(b, a, 0) > s + min(b, 0) + min(a, 0) for s, b, a in pairs)
    return mode == "reflect" and 0 in shape[:1] and any(s + b + a < 0 for s, b, a in pairs)


@settings(max_examples=300)
@given(mode=st.sampled_from(MODES),
       shape=st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple),
       pads=st.lists(st.integers(-5, 5), min_size=0, max_size=4).map(tuple),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_raises_exactly_where_torch_raises(mode: str, shape: tuple, pads: tuple, seed: int):
    pads = pads + pads[-1:] if len(pads) % 2 else pads
    x = _input(shape, seed)
    try:
        y = pad(x, pads, mode)
    except ValueError:
        y = None
    if len(pads) // 2 <= len(shape) and _torch_undefined(shape, pads, mode):
        assert y is None, "the reference raises where torch is undefined"
        return
    t = torch.tensor(x, requires_grad=True)
    try:
        yt = torch.nn.functional.pad(t, pads, mode)
    except (RuntimeError, NotImplementedError):
        assert y is None, f"torch raises, the reference gave shape {y.shape}"
        return
    assert y is not None, "the reference raises where torch does not"
    np.testing.assert_array_equal(y, to_numpy(yt))  # copies: exact
    g = np.random.default_rng(seed + 1).standard_normal(y.shape)
    grad = pad_backward(g, x, pads, mode)
    if y.size == 0:  # nothing reached the output (torch's reflect 3-d leaves this unset)
        assert not grad.any()
        return
    yt.backward(torch.as_tensor(g))
    assert compare_arrays("grad", grad, t.grad, tolerance(np.float64)).ok


def test_circular_wrapping_more_than_it_keeps_is_undefined_in_torch() -> None:
    """(-1, 1) on one element: torch wraps an empty block and returns uninitialised
    memory (or, on a larger overlap, raises); the reference raises."""
    with pytest.raises(ValueError, match=r"circular padding \(-1, 1\) .* wraps more than the 0"):
        pad(np.ones((2, 1)), (-1, 1), "circular")
    with pytest.raises(RuntimeError, match="refer to a single memory location"):
        torch.nn.functional.pad(torch.ones(1, 1, 4), (-3, 2), "circular")


def test_reflect_2d_of_an_empty_batch_to_a_negative_size_raises() -> None:
    """torch returns a tensor of negative shape (0, 2, -2, 1) here; the reference raises."""
    with pytest.raises(ValueError, match="crops more than the dim holds"):
        pad(np.zeros((0, 2, 4, 3)), (-1, -1, -3, -3), "reflect")
    assert tuple(torch.nn.functional.pad(torch.zeros(0, 2, 4, 3), (-1, -1, -3, -3), "reflect")
                 .shape) == (0, 2, -2, 1)  # fmt: skip


@pytest.mark.parametrize(("mode", "pads", "expected"), [
    ("constant", (-1, 2), [2, 3, 4, 0, 0]),
    ("reflect", (-3, 3), [4, 3, 2, 1]),  # the index map, not crop-then-reflect
    ("reflect", (2, -1), [3, 2, 1, 2, 3]),
    ("replicate", (-5, 2), [4]),
    ("circular", (-1, 1), [2, 3, 4, 2]),  # crop-then-wrap, not the periodic extension
    ("circular", (2, -2), [1, 2, 1, 2]),
    ("circular", (4, 4), [1, 2, 3, 4] * 3),
])  # fmt: skip
def test_negative_padding_semantics(mode: str, pads: tuple, expected: list) -> None:
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    np.testing.assert_array_equal(pad(x, pads, mode)[0, 0], expected)
    np.testing.assert_array_equal(torch.nn.functional.pad(torch.tensor(x), pads, mode)[0, 0],
                                  expected)  # fmt: skip


# -- bad input ------------------------------------------------------------------------


def _raises_both(ours: Callable, theirs: Callable, match: str, error: type = ValueError) -> None:
    with pytest.raises(error, match=match):
        ours()
    with pytest.raises((RuntimeError, ValueError, NotImplementedError, TypeError)):
        theirs()


x3, t3 = np.zeros((1, 3, 4)), torch.zeros(1, 3, 4)

# fmt: off
BAD = [
    (lambda: pad(x3, (4, 4), "reflect"), lambda: torch.nn.functional.pad(t3, (4, 4), "reflect"),
     r"pad: reflect padding must be smaller .* \(4, 4\) at dim 2 of input \(1, 3, 4\)", ValueError),
    (lambda: rpad.ReflectionPad2d(3)(x3), lambda: torch.nn.ReflectionPad2d(3)(t3),
     r"ReflectionPad2d\(\(3, 3, 3, 3\)\): reflect padding must be smaller .* dim 1", ValueError),
    (lambda: rpad.ReflectionPad1d(1)(np.zeros(4)), lambda: torch.nn.ReflectionPad1d(1)(t3[0, 0]),
     r"ReflectionPad1d\(\(1, 1\)\): reflect .* takes a 2-D \(unbatched\) or 3-D .* \(4,\)",
     ValueError),
    (lambda: rpad.ReplicationPad2d(1)(np.zeros((1, 1, 1, 2, 2))),
     lambda: torch.nn.ReplicationPad2d(1)(torch.zeros(1, 1, 1, 2, 2)),
     r"ReplicationPad2d.*takes a 3-D \(unbatched\) or 4-D \(batched\) input", ValueError),
    (lambda: rpad.CircularPad2d(1)(np.zeros((4, 4))), lambda: torch.nn.CircularPad2d(1)(t3[0]),
     r"CircularPad2d\(\(1, 1, 1, 1\)\): expected 3-D or 4-D input, got shape \(4, 4\)",
     ValueError),
    (lambda: pad(x3, (5, 0), "circular"), lambda: torch.nn.functional.pad(t3, (5, 0), "circular"),
     r"circular padding must be at most the padded dim .* \(5, 0\)", ValueError),
    (lambda: rpad.ConstantPad1d((-3, -2), 1.0)(x3),
     lambda: torch.nn.ConstantPad1d((-3, -2), 1.0)(t3),
     r"ConstantPad1d\(padding=\(-3, -2\), value=1.0\): negative padding crops more", ValueError),
    (lambda: rpad.ReplicationPad1d(-2)(x3), lambda: torch.nn.ReplicationPad1d(-2)(t3),
     r"too small for replicate padding \[-2, -2\]", ValueError),
    (lambda: pad(np.zeros((2, 0, 4)), (1, 1), "reflect"),
     lambda: torch.nn.functional.pad(torch.zeros(2, 0, 4), (1, 1), "reflect"),
     r"every dim but the batch dim non-empty, got input \(2, 0, 4\)", ValueError),
    (lambda: pad(x3, (1, 1), "reflect", 1.0),
     lambda: torch.nn.functional.pad(t3, (1, 1), "reflect", 1.0),
     "mode 'reflect' takes no value", ValueError),
    (lambda: pad(x3, (1, 1, 1)), lambda: torch.nn.functional.pad(t3, (1, 1, 1)),
     "even number of ints", ValueError),
    (lambda: pad(x3, (1,) * 8), lambda: torch.nn.functional.pad(t3, (1,) * 8),
     r"pads 4 dims, more than the 3 of the input \(1, 3, 4\)", ValueError),
    (lambda: pad(x3, (1, 1), "zeros"), lambda: torch.nn.functional.pad(t3, (1, 1), "zeros"),
     "pad: mode must be one of", ValueError),
    (lambda: pad(x3, (1.0, 1)), lambda: torch.nn.functional.pad(t3, (1.0, 1)),
     "pad must be a sequence of ints", TypeError),
    (lambda: rpad.ZeroPad2d(1.5), lambda: torch.nn.ZeroPad2d(1.5)(t3),
     r"ZeroPad2d: padding must be an int or a tuple of ints, got 1.5", TypeError),
]
# fmt: on


@pytest.mark.parametrize(("ours", "theirs", "match", "error"), BAD)
def test_bad_input_raises_like_torch(ours, theirs, match, error) -> None:
    _raises_both(ours, theirs, match, error)


def test_module_errors_are_clear() -> None:
    layer = rpad.ReflectionPad2d(1)
    with pytest.raises(RuntimeError, match=r"ReflectionPad2d.backward\(\) called before forward"):
        layer.backward(np.zeros((1, 5, 6)))
    with pytest.raises(TypeError, match=r"ReflectionPad2d\(\(1, 1, 1, 1\)\): input must be a "):
        layer(np.zeros((1, 3, 4), np.int64))
    layer(np.zeros((1, 3, 4)))
    with pytest.raises(ValueError, match=r"backward: grad_output must have the padded shape"):
        layer.backward(np.zeros((1, 3, 4)))
    with pytest.raises(TypeError, match="ConstantPad1d: value must be a number"):
        rpad.ConstantPad1d(1, "0")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
def test_dtype_follows_the_input(mode: str, dtype: Any) -> None:
    x = _input((2, 3, 4), 0).astype(dtype)
    y = pad(x, (2, 1), mode, None)
    grad = pad_backward(np.ones_like(y), x, (2, 1), mode)
    assert y.dtype == dtype and grad.dtype == dtype
