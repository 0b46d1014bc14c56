"""Placeholder: filled in by the dropout issue."""

__all__: list[str] = []
