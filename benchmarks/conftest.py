"""Benchmarks compare the reference with torch in the same run: read the ratio per group.

Run: ``pytest benchmarks --benchmark-only`` (not part of the default test run).
A CUDA variant runs where a GPU is present and skips otherwise.
"""
