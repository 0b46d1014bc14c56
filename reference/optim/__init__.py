"""Optimizers with torch.optim's names and defaults (filled in by the optimizer issue)."""
