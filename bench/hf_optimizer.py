"""The Hugging Face side's optimizer in the fine-tuning comparisons, written once.

Ours (`bert_keras.optimization.create_optimizer`): AdamW, epsilon 1e-6, weight decay on every weight except
LayerNorm parameters and biases. The PyTorch peers get the same decay groups here.
"""

from __future__ import annotations

NO_DECAY = ("bias", "LayerNorm.weight")


def adamw(model, learning_rate: float, weight_decay: float = 0.01):
    """`torch.optim.AdamW` over `model` with LayerNorm weights and every bias excluded from weight decay."""
    import torch

    named = list(model.named_parameters())
    decayed = [p for name, p in named if not any(key in name for key in NO_DECAY)]
    excluded = [p for name, p in named if any(key in name for key in NO_DECAY)]
    return torch.optim.AdamW([{"params": decayed, "weight_decay": weight_decay},
                              {"params": excluded, "weight_decay": 0.0}], lr=learning_rate, eps=1e-6)
