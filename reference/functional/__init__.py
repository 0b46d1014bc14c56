"""Pure forward/backward pairs, one file per family, named as in ``torch.nn.functional``.

``reference.functional.conv2d`` and ``reference.functional.conv2d_backward`` sit
side by side in ``conv.py``; every backward takes the upstream gradient first,
then what its forward took.
"""

from .activation import *  # noqa: F403
from .activation_extra import *  # noqa: F403
from .adaptive_pooling import *  # noqa: F403
from .adaptive_softmax import *  # noqa: F403
from .alpha_dropout import *  # noqa: F403
from .attention import *  # noqa: F403
from .avg_pooling import *  # noqa: F403
from .batch_norm import *  # noqa: F403
from .bilinear import *  # noqa: F403
from .classification_loss import *  # noqa: F403
from .conv import *  # noqa: F403
from .conv_transpose import *  # noqa: F403
from .ctc_loss import *  # noqa: F403
from .distance import *  # noqa: F403
from .dropout import *  # noqa: F403
from .embedding import *  # noqa: F403
from .embedding_bag import *  # noqa: F403
from .fold import *  # noqa: F403
from .fractional_pooling import *  # noqa: F403
from .interpolate import *  # noqa: F403
from .likelihood_loss import *  # noqa: F403
from .linear import linear, linear_backward
from .loss import *  # noqa: F403
from .lp_pooling import *  # noqa: F403
from .margin_loss import *  # noqa: F403
from .normalization import *  # noqa: F403
from .padding import *  # noqa: F403
from .pooling import *  # noqa: F403
from .recurrent import *  # noqa: F403
from .recurrent_layers import *  # noqa: F403
from .rms_norm import *  # noqa: F403
from .rrelu import *  # noqa: F403
from .shape import *  # noqa: F403
from .shuffle import *  # noqa: F403
from .triplet_loss import *  # noqa: F403
from .unpooling import *  # noqa: F403


# Each public pair ``foo`` called on reference.autograd Tensors records one node whose
# backward is ``foo_backward`` (reference/autograd/functional.py); on arrays it is ``foo``.
# Family files import each other directly (``from .linear import linear``), untouched.
def _tape_pairs() -> None:
    from ..autograd.functional import tape_pairs

    tape_pairs(globals())


_tape_pairs()
del _tape_pairs
