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
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from reference.functional import dropout_mask_shape

__all__ = ["torch_dropout_mask", "seed_torch", "dropout_kind", "Reseeded"]

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
) -> np.ndarray:
    """The bool keep-mask torch draws right after :func:`seed_torch` ``(seed)``.

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
    ones = torch.ones(tuple(input_shape), dtype=_torch_dtype(dtype), device=device)
    is_module = isinstance(torch_module_or_fn, torch.nn.Module)
    was_training = torch_module_or_fn.training if is_module else True
    if is_module:
        torch_module_or_fn.train()
    try:
        seed_torch(seed)
        with torch.no_grad():
            output = torch_module_or_fn(ones)
    finally:
        if is_module:
            torch_module_or_fn.train(was_training)
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
