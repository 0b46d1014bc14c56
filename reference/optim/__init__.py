"""Optimizers and lr schedulers with ``torch.optim``'s names, arguments and defaults.

Each optimizer updates ``Parameter.data`` in place from ``Parameter.grad``,
following torch's single-tensor update order, so a reference model and its
torch twin stay together step for step. ``lr_scheduler`` holds the schedulers.
"""

from . import lr_scheduler
from .adadelta import Adadelta
from .adafactor import Adafactor
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .lbfgs import LBFGS
from .muon import Muon
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .rprop import Rprop
from .sgd import SGD
from .sparse_adam import SparseAdam

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "LBFGS",
    "ASGD",
    "Rprop",
    "Adafactor",
    "SparseAdam",
    "Muon",
    "lr_scheduler",
]
