"""``torch.nn.utils``: gradient clipping and flat parameter vectors
(:mod:`.clip_grad`), the BatchNorm fusions (:mod:`reference.nn.fusion`, re-exported as
torch does) and packed sequences (:mod:`.rnn`, as ``torch.nn.utils.rnn``)."""

from ..fusion import (
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from . import rnn
from .clip_grad import *  # noqa: F403
from .clip_grad import __all__ as _clip_all

__all__ = [
    "fuse_conv_bn_eval",
    "fuse_conv_bn_weights",
    "fuse_linear_bn_eval",
    "fuse_linear_bn_weights",
    "rnn",
    *_clip_all,
]
