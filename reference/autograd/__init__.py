"""A tape-based ``Tensor`` with torch's autograd API (``torch.autograd``)."""

__all__: list[str] = []
