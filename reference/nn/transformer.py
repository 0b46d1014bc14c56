"""Transformer layers (``torch.nn.Transformer`` and its parts)."""

__all__: list[str] = []
