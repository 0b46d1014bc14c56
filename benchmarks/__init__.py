"""Benchmarks (pytest-benchmark) and their report: ``python -m benchmarks.report``."""
