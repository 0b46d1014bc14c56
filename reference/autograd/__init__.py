"""A tape-based ``Tensor`` with torch's autograd API (``torch.autograd``, ``torch.tensor``).

Every op is a :class:`Function` whose backward is written by hand beside its forward;
``loss.backward()`` runs the recorded graph in reverse (:mod:`.graph`). Where
:mod:`reference.functional` already has a forward/backward pair, the op calls it.
"""

from . import ops_index, ops_linalg, ops_math, ops_reduce, ops_shape
from .factories import *  # noqa: F403
from .graph import *  # noqa: F403
from .ops_index import *  # noqa: F403
from .ops_linalg import *  # noqa: F403
from .ops_math import *  # noqa: F403
from .ops_reduce import *  # noqa: F403
from .ops_shape import *  # noqa: F403
from .tensor import Tensor, bind_methods, result_type, tensor

bind_methods((ops_math, ops_reduce, ops_linalg, ops_shape, ops_index))
