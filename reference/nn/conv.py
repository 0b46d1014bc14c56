"""Placeholder: filled in by the conv issue."""

__all__: list[str] = []
