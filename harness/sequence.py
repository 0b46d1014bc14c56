"""The sequence family: ``(N, L, H)`` through recurrent and Transformer layers.

The input is a batch of sequences, batch first: floats ``(N, L, H)``, or indices
``(N, L)`` through an Embedding. Each step proposes a recurrent layer (``RNN`` with tanh
or relu, ``LSTM`` with or without ``proj_size``, ``GRU``: stacked, bidirectional), a
``TransformerEncoderLayer``, or a dense layer over the features (Linear, LayerNorm, an
activation). A recurrent layer passes its output sequence on; its final states are
traced beside it (``harness.spec.split_output``). The head comes from
``harness.generate``: Flatten and Linear for a loss over classes, or per time step,
:func:`per_step_head`, a ``(N, C, L)`` output for CrossEntropyLoss and NLLLoss.

Not drawn, and why: dropout inside a recurrent layer (torch draws it inside its fused
kernel, so the mask cannot be read and imposed) and inside a Transformer layer (its
attention dropout is drawn inside ``multi_head_attention_forward``); so those layers
get ``dropout=0``. A decoder layer or ``MultiheadAttention`` needs a second input,
which chain specs do not have (graph specs will).
"""

from __future__ import annotations

from typing import Any

from .chooser import Chooser, Limits, _spec, available
from .graph import RECURRENT_TYPES
from .spec import LayerSpec

__all__ = ["propose_sequence", "per_step_head", "recurrent_options"]


def recurrent_options(
    ch: Chooser, features: int, limits: Limits
) -> tuple[str, dict[str, Any]] | None:
    """A recurrent layer over ``(N, L, features)``, batch first: its class and arguments
    (``None`` if the reference has none yet). Shared with the graphs' ``state`` motif."""
    kinds = [k for k in RECURRENT_TYPES if available(k)]
    if not kinds:
        return None
    kind, hidden = ch.choice(kinds), ch.integer(1, max(1, limits.max_width // 2))
    options: dict[str, Any] = dict(
        input_size=features,
        hidden_size=hidden,
        num_layers=ch.choice([1, 1, 2]),
        bias=not ch.boolean(0.2),
        batch_first=True,
        bidirectional=ch.boolean(0.4),
    )
    if kind == "RNN":
        options["nonlinearity"] = ch.choice(["tanh", "relu"])
    if kind == "LSTM" and hidden > 1 and ch.boolean(0.3):
        options["proj_size"] = ch.integer(1, hidden - 1)
    return kind, options


def _recurrent(ch: Chooser, features: int, limits: Limits) -> LayerSpec | None:
    drawn = recurrent_options(ch, features, limits)
    return None if drawn is None else _spec(ch, drawn[0], **drawn[1])


def _encoder_layer(ch: Chooser, features: int, limits: Limits) -> LayerSpec | None:
    if not available("TransformerEncoderLayer"):
        return None
    heads = [h for h in (1, 2, 3, 4) if features % h == 0]
    return _spec(
        ch,
        "TransformerEncoderLayer",
        d_model=features,
        nhead=ch.choice(heads),
        dim_feedforward=ch.integer(1, limits.max_width),
        dropout=0.0,
        activation=ch.choice(["relu", "gelu"]),
        batch_first=True,
        norm_first=ch.boolean(),
        bias=not ch.boolean(0.2),
    )


def propose_sequence(ch: Chooser, shape: tuple[int, ...], limits: Limits) -> LayerSpec | None:
    """A layer for ``(N, L, H)``; ``None`` lets the caller fall back to a dense one."""
    if len(shape) != 3:
        return None
    kind = ch.choice(["recurrent", "recurrent", "transformer", "dense"])
    if kind == "recurrent":
        return _recurrent(ch, shape[-1], limits)
    if kind == "transformer":
        return _encoder_layer(ch, shape[-1], limits)
    return None


def per_step_head(shape: tuple[int, ...], classes: int) -> list[LayerSpec]:
    """``(N, L, H) -> (N, C, L)``: class scores per time step, with torch.nn's layers only
    (Flatten, one Linear over the whole sequence, Unflatten), for a loss over ``(N, C, L)``."""
    _, steps, features = shape
    return [
        LayerSpec("Flatten", {}),
        LayerSpec("Linear", {"in_features": steps * features, "out_features": classes * steps}),
        LayerSpec("Unflatten", {"dim": 1, "unflattened_size": (classes, steps)}),
    ]
