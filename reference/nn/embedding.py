"""Placeholder: filled in by the embedding issue."""

__all__: list[str] = []
