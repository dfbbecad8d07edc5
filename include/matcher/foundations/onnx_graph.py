"""What the ONNX export traces: a transformer's last hidden state from its three inputs.

Imported only by an export (torch loads with this module), from
:func:`~include.matcher.foundations.onnx_backend.export_onnx`.
"""

from __future__ import annotations

import torch


class LastHiddenState(torch.nn.Module):
    """``inner`` (a Hugging Face encoder) answering with its last hidden state alone, the one output
    the exported graph has (pooling and normalising stay outside, as in sentence-transformers)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids, attention_mask, token_type_ids):
        return self.inner(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
