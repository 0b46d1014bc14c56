"""Modules with ``torch.nn``'s names, arguments, defaults and ``state_dict`` keys."""

from . import init
from .activation import *  # noqa: F403
from .batchnorm import *  # noqa: F403
from .container import Flatten, Identity, Sequential, Unflatten
from .conv import *  # noqa: F403
from .dropout import *  # noqa: F403
from .embedding import *  # noqa: F403
from .linear import Linear
from .loss import *  # noqa: F403
from .module import Module, Parameter
from .normalization import *  # noqa: F403
from .pooling import *  # noqa: F403
