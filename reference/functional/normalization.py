"""Placeholder: filled in by the normalization issue."""

__all__: list[str] = []
