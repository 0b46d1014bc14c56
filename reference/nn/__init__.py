"""Modules with ``torch.nn``'s names, arguments, defaults and ``state_dict`` keys.

As in torch, a module never promotes: where torch's kernel refuses an input whose dtype
is not its parameters' (``Linear``, the convolutions, the normalizations with affine
parameters or running statistics, ``NLLLoss``/``CrossEntropyLoss`` with a class
``weight``), the module raises torch's ``RuntimeError``
(:func:`reference._validate.check_dtypes`); a module without parameters follows its input.
"""

from . import init, utils
from .activation import *  # noqa: F403
from .activation_extra import *  # noqa: F403
from .attention import *  # noqa: F403
from .batchnorm import *  # noqa: F403
from .container import Flatten, Identity, Sequential, Unflatten
from .containers import *  # noqa: F403
from .conv import *  # noqa: F403
from .distance import *  # noqa: F403
from .dropout import *  # noqa: F403
from .embedding import *  # noqa: F403
from .embedding_bag import *  # noqa: F403
from .fold import *  # noqa: F403
from .fractional_pooling import *  # noqa: F403
from .linear import *  # noqa: F403
from .loss import *  # noqa: F403
from .loss_extra import *  # noqa: F403
from .loss_more import *  # noqa: F403
from .module import Module, Parameter
from .normalization import *  # noqa: F403
from .normalization_extra import *  # noqa: F403
from .padding import *  # noqa: F403
from .pooling import *  # noqa: F403
from .pooling_extra import *  # noqa: F403
from .rnn import *  # noqa: F403
from .rnn_layers import *  # noqa: F403
from .shuffle import *  # noqa: F403
from .transformer import *  # noqa: F403
from .transformer_stack import *  # noqa: F403
from .upsampling import *  # noqa: F403
