"""backprop-oracle's reference: neural-network math written by hand in NumPy.

Forward *and* backward for torch.nn's layers, activations and losses, and
torch.optim's optimizers, with torch's names. This package never imports torch.
"""

from . import functional, nn, optim
from .gradcheck import GradcheckResult, gradcheck

__all__ = ["functional", "nn", "optim", "gradcheck", "GradcheckResult"]
