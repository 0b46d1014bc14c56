"""Packed sequences (``torch.nn.utils.rnn``)."""

__all__: list[str] = []
