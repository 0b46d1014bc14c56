"""Make the reference drop exactly the units torch drops.

Torch draws its dropout masks from its own generator, the reference from a NumPy
one, so left alone the two sides drop different units and cannot be compared. We
do not reimplement torch's generator; we *read* torch's mask and impose it:

1. :func:`torch_dropout_mask` seeds torch (``torch.manual_seed(seed)`` and
   ``torch.cuda.manual_seed_all(seed)``, see :func:`seed_torch`), runs the real torch
   module (or functional), in training mode, on a tensor of **ones** of the input's
   shape, dtype and device, and returns the keep-mask ``output != 0`` (a kept one
   becomes ``1/(1-p) != 0``, a dropped one exactly 0). For ``Dropout1d/2d/3d`` the
   mask is reduced to its broadcast shape, ``(N, C, 1, ...)`` (``(C, 1, ...)`` for
   unbatched input), the shape :func:`reference.functional.dropout_mask_shape` gives.
2. Right before the real torch forward, the harness seeds torch again with the
   same seed (:func:`seed_torch`, or wrap the module in :class:`Reseeded`). Torch
   draws a mask from the generator's state and the input's shape, dtype and device,
   never from its values, so it draws the identical mask: torch runs its own
   dropout kernel, unchanged, and is compared against the reference.
3. The reference module gets that mask through ``module.mask = mask``; its next
   training forward uses it instead of drawing (``reference.nn.Dropout``).

The tests (``tests/reference/test_dropout.py``) check step 2 for every kind and
both dtypes: the re-seeded forward's zeros are exactly the extracted mask.

Torch's other random layers are handled the same way, each by its own extractor (the
reference module takes the draw through an attribute, used by its next forward):

- :func:`torch_alpha_dropout_mask` (``AlphaDropout``, ``FeatureAlphaDropout`` ->
  ``module.mask``): on ones, a kept unit becomes ``a (1 + alpha p) > 0`` and a dropped
  one ``-alpha a (1 - p) < 0``, so the mask is ``output > 0``.
- :func:`torch_rrelu_noise` (``RReLU`` -> ``module.noise``): torch draws a slope for each
  element with ``x <= 0`` in turn, so the draw depends on the input's values: it is read
  from the real module on the *real* input, as the gradient of a ones upstream
  (torch's backward is ``noise * grad``: exact, and at ``x = 0`` too, where
  ``output / input`` cannot tell it).
- :func:`torch_fractional_samples` (``FractionalMaxPool2d/3d`` -> ``module.random_samples``):
  torch's functional draws ``torch.rand(N, C, nd)`` in the input's dtype and device
  (``N = 1`` unbatched) when it has no ``_random_samples``; we draw the same after
  re-seeding.

``tests/reference/test_random_layers.py`` checks each against the re-seeded real forward.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from reference.functional import alpha_dropout_mask_shape, dropout_mask_shape

__all__ = [
    "torch_dropout_mask", "seed_torch", "dropout_kind", "Reseeded",
    "torch_alpha_dropout_mask", "torch_rrelu_noise", "torch_fractional_samples",
    "torch_layer_mask",
]  # fmt: skip

_KINDS = ("dropout", "dropout1d", "dropout2d", "dropout3d")


def seed_torch(seed: int) -> None:
    """Seed torch's CPU generator and every CUDA device's (a no-op without CUDA).

    The same generator states as ``torch.manual_seed``, without its bookkeeping: without
    CUDA, ``torch.cuda.manual_seed_all`` queues a lazy call that records a stack trace,
    which cost more than the dropout it seeds."""
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def dropout_kind(module_or_fn: Any) -> str:
    """``"dropout"``, ``"dropout1d"``, ``"dropout2d"`` or ``"dropout3d"`` from a torch
    module (``torch.nn.Dropout2d()``), a functional (``F.dropout2d``) or a
    ``functools.partial`` of one. AlphaDropout and friends do not zero what they drop,
    so ``output != 0`` would not be their mask: they are refused."""
    fn = getattr(module_or_fn, "func", module_or_fn)  # unwrap functools.partial
    name = type(fn).__name__ if isinstance(fn, torch.nn.Module) else getattr(fn, "__name__", "")
    kind = name.lower()
    if kind not in _KINDS:
        raise TypeError(
            f"torch_dropout_mask: cannot tell the dropout kind of {module_or_fn!r}; pass a "
            "torch.nn.Dropout/Dropout1d/Dropout2d/Dropout3d module or F.dropout/dropout1d/"
            "dropout2d/dropout3d (or kind=...)"
        )
    return kind


def _torch_dtype(dtype: Any) -> torch.dtype:
    """A torch dtype, or the torch dtype of any name ``harness.dtypes.parse_dtype`` takes
    (``np.float32``, ``"half"``, ``"bfloat16"``, ...)."""
    from .backends.torch import torch_dtype

    return dtype if isinstance(dtype, torch.dtype) else torch_dtype(dtype)


def torch_dropout_mask(
    torch_module_or_fn: Any,
    input_shape: tuple[int, ...],
    dtype: Any,
    device: str,
    seed: int,
    *,
    kind: str | None = None,
    strides: tuple[int, ...] | None = None,
) -> np.ndarray:
    """The bool keep-mask torch draws right after :func:`seed_torch` ``(seed)``.

    ``strides``: the real input's, when it is not contiguous. Torch fills the mask in
    the input's memory order, so the input of a dropout after a ``batch_first`` LSTM (a
    transposed view) gets another mask than a contiguous one of the same shape.

    ``torch_module_or_fn``: the real torch dropout module (run in training mode, its
    mode restored afterwards) or a functional called as ``fn(ones)`` (its default
    ``training=True``). ``dtype`` and ``device`` must be the real forward's: the draw
    may depend on them. ``dtype`` is a torch dtype or any name ``parse_dtype`` takes,
    half precision included (a kept one becomes ``1/(1-p)``, which may round, or
    overflow to inf in float16, but never to 0, so ``output != 0`` is still the mask).
    Returns the input's shape for ``dropout``, the broadcast shape ``(N, C, 1, ...)``
    for the channel-wise kinds (see the module docstring).
    """

    kind = kind or dropout_kind(torch_module_or_fn)
    output = _drawn(torch_module_or_fn, _ones(input_shape, dtype, device, strides), seed)
    keep = (output != 0).cpu().numpy()
    mask_shape = dropout_mask_shape(tuple(input_shape), kind)
    # the first entry of each channel stands for the channel ...
    mask = keep[tuple(slice(0, size) for size in mask_shape)]
    # ... and every entry of the channel must agree, or the kind was wrong
    if not np.array_equal(np.broadcast_to(mask, keep.shape), keep):
        raise RuntimeError(
            f"torch_dropout_mask: torch's {kind} mask is not constant over the spatial "
            f"dimensions of input {tuple(input_shape)}; is kind={kind!r} right?"
        )
    return np.array(mask, dtype=bool)  # a copy; np.ascontiguousarray would make 0-d 1-d


def _drawn(module_or_fn: Any, ones: torch.Tensor, seed: int, **fn_kwargs: Any) -> Any:
    """``module_or_fn(ones)`` right after :func:`seed_torch` ``(seed)``, a module in
    training mode (its mode restored afterwards), a functional with ``fn_kwargs``."""
    is_module = isinstance(module_or_fn, torch.nn.Module)
    was_training = module_or_fn.training if is_module else True
    if is_module:
        module_or_fn.train()
    try:
        seed_torch(seed)
        with torch.no_grad():
            return module_or_fn(ones) if is_module else module_or_fn(ones, **fn_kwargs)
    finally:
        if is_module:
            module_or_fn.train(was_training)


def _ones(shape: Any, dtype: Any, device: str, strides: tuple[int, ...] | None) -> torch.Tensor:
    """Ones of ``shape``, laid out in memory as ``strides`` say (contiguous if ``None``)."""
    if strides is None:
        return torch.ones(tuple(shape), dtype=_torch_dtype(dtype), device=device)
    empty = torch.empty_strided(tuple(shape), strides, dtype=_torch_dtype(dtype), device=device)
    return empty.fill_(1)


def _is_feature_alpha(module_or_fn: Any) -> bool:
    """``True`` for FeatureAlphaDropout, ``False`` for AlphaDropout (module, functional or
    ``functools.partial`` of one); anything else is refused."""
    fn = getattr(module_or_fn, "func", module_or_fn)  # unwrap functools.partial
    name = type(fn).__name__ if isinstance(fn, torch.nn.Module) else getattr(fn, "__name__", "")
    kind = name.lower().replace("_", "")
    if kind not in ("alphadropout", "featurealphadropout"):
        raise TypeError(
            f"torch_alpha_dropout_mask: {module_or_fn!r} is not alpha dropout; pass a "
            "torch.nn.AlphaDropout/FeatureAlphaDropout module or F.alpha_dropout/"
            "feature_alpha_dropout (for Dropout use torch_dropout_mask)"
        )
    return kind == "featurealphadropout"


def torch_alpha_dropout_mask(
    torch_module_or_fn: Any,
    input_shape: tuple[int, ...],
    dtype: Any,
    device: str,
    seed: int,
    strides: tuple[int, ...] | None = None,
) -> np.ndarray:
    """The bool keep-mask torch's alpha dropout draws right after :func:`seed_torch` ``(seed)``.

    ``torch_module_or_fn``: a ``torch.nn.AlphaDropout``/``FeatureAlphaDropout`` (run in
    training mode, its mode restored afterwards) or ``F.alpha_dropout``/
    ``F.feature_alpha_dropout`` (or a ``functools.partial`` of one), called as
    ``fn(ones, training=True)``: the functionals default to ``training=False``. The run
    is on ones of ``input_shape``, ``dtype`` and ``device``; the mask is ``output > 0``
    (module docstring). Returns the input's shape, or ``(N, C, 1, ...)`` for the feature
    kind. ``p = 0`` keeps everything and ``p = 1`` drops everything; torch draws nothing
    then, and the reference uses no mask.
    """
    feature = _is_feature_alpha(torch_module_or_fn)
    output = _drawn(torch_module_or_fn, _ones(input_shape, dtype, device, strides), seed,
                    training=True)  # fmt: skip
    keep = (output > 0).cpu().numpy()
    mask_shape = alpha_dropout_mask_shape(tuple(input_shape), feature)
    mask = keep[tuple(slice(0, size) for size in mask_shape)]
    if not np.array_equal(np.broadcast_to(mask, keep.shape), keep):
        raise RuntimeError(
            f"torch_alpha_dropout_mask: torch's mask is not constant over the dimensions "
            f"after the first two of input {tuple(input_shape)}; is this FeatureAlphaDropout?"
        )
    return np.array(mask, dtype=bool)


def torch_rrelu_noise(
    torch_module: Any, input: Any, seed: int, *, device: str | None = None
) -> np.ndarray:
    """The per-element slopes (torch's ``noise``) a training ``RReLU`` draws on ``input``
    right after :func:`seed_torch` ``(seed)``.

    ``torch_module``: the real ``torch.nn.RReLU`` (run in training mode, its mode
    restored afterwards; ``inplace`` ones too, on a copy). ``input``: the real input, a
    tensor (its dtype and device are used) or a NumPy array (moved to ``device``, CPU by
    default): torch draws one slope per element with ``x <= 0``, in order, so the draw
    depends on the values. Returns an array of the input's shape and dtype (float32 for
    bfloat16): the slope where ``x <= 0``, 1 elsewhere (NaN included), read exactly as the
    gradient of a ones upstream. Checked: ``output == input * noise`` where ``x < 0``.
    """
    x = torch.as_tensor(input, device=device).detach()
    leaf = x.clone().requires_grad_(True)
    was_training = torch_module.training
    torch_module.train()
    try:
        seed_torch(seed)
        with torch.enable_grad():
            output = torch_module(leaf.clone())  # a clone: an in-place module may write on it
            (noise,) = torch.autograd.grad(output, leaf, torch.ones_like(output))
    finally:
        torch_module.train(was_training)
    negative = x < 0
    if not torch.equal(output.detach()[negative], (x * noise)[negative]):
        raise RuntimeError(
            f"torch_rrelu_noise: {torch_module!r} does not compute input * noise where "
            "input < 0; pass a torch.nn.RReLU"
        )
    noise = noise.cpu()
    return (noise.float() if noise.dtype == torch.bfloat16 else noise).numpy()


def torch_fractional_samples(
    input_shape: tuple[int, ...], dtype: Any, device: str, seed: int, nd: int
) -> np.ndarray:
    """The ``_random_samples`` torch's ``F.fractional_max_pool{nd}d`` draws right after
    :func:`seed_torch` ``(seed)`` when given none: ``torch.rand(N, C, nd)`` in the input's
    ``dtype`` and on its ``device`` (``N = 1`` for an unbatched ``(C, *spatial)`` input).

    ``nd``: 2 or 3. Torch draws from the shape alone, never the values, so a
    :class:`Reseeded` torch module then pools over exactly these windows. Returns
    ``(N, C, nd)`` in that dtype (float32 for bfloat16).
    """
    if nd not in (2, 3):
        raise ValueError(f"torch_fractional_samples: nd must be 2 or 3, got {nd!r}")
    if len(input_shape) not in (nd + 1, nd + 2):
        raise ValueError(
            f"torch_fractional_samples: expected a {nd + 1}-D or {nd + 2}-D input shape for "
            f"fractional_max_pool{nd}d, got {tuple(input_shape)}"
        )
    batch = 1 if len(input_shape) == nd + 1 else input_shape[0]
    seed_torch(seed)
    samples = torch.rand(
        batch, input_shape[-nd - 1], nd, dtype=_torch_dtype(dtype), device=device
    ).cpu()
    return (samples.float() if samples.dtype == torch.bfloat16 else samples).numpy()


class Reseeded(torch.nn.Module):
    """A torch module that calls :func:`seed_torch` ``(seed)`` right before ``module``.

    Use it as the torch twin of a reference dropout module whose ``mask`` was set from
    :func:`torch_dropout_mask` with the same seed (``harness.twin.assert_twin``). A
    dropout module has no parameters or buffers, so the wrapper's ``state_dict`` is
    empty, like the reference module's.
    """

    def __init__(self, module: Callable[..., Any], seed: int):
        super().__init__()
        self.module = module
        self.seed = seed

    def forward(self, *inputs: Any) -> Any:
        seed_torch(self.seed)
        return self.module(*inputs)

    def extra_repr(self) -> str:
        return f"seed={self.seed}"


def torch_layer_mask(
    torch_module: torch.nn.Module,
    input_shape: tuple[int, ...],
    dtype: Any,
    device: str,
    seed: int,
    strides: tuple[int, ...] | None = None,
) -> np.ndarray:
    """What a torch layer the harness draws for draws after :func:`seed_torch` ``(seed)``:
    the keep-mask of a dropout module (Dropout, Dropout1d/2d/3d, AlphaDropout,
    FeatureAlphaDropout), or a FractionalMaxPool's ``_random_samples``."""
    if isinstance(torch_module, (torch.nn.AlphaDropout, torch.nn.FeatureAlphaDropout)):
        return torch_alpha_dropout_mask(torch_module, input_shape, dtype, device, seed, strides)
    if isinstance(torch_module, (torch.nn.FractionalMaxPool2d, torch.nn.FractionalMaxPool3d)):
        nd = 2 if isinstance(torch_module, torch.nn.FractionalMaxPool2d) else 3
        return torch_fractional_samples(input_shape, dtype, device, seed, nd)
    return torch_dropout_mask(torch_module, input_shape, dtype, device, seed, strides=strides)
