"""Placeholder: filled in by the pooling issue."""

__all__: list[str] = []
