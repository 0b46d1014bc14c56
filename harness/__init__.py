"""backprop-oracle's differential harness: generate networks, run them through the
reference and through torch on every device, compare, localize, save a repro.

Importing ``harness`` does not import torch; the torch backend does, when used.
"""
