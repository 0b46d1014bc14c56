"""The stacks of Transformer layers (``torch.nn.TransformerEncoder``, ``TransformerDecoder``,
``Transformer``)."""

__all__: list[str] = []
