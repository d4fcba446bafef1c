"""The independent reference for our fine-tuning recipe: a plain PyTorch loop over `transformers` models.

`torch.optim.AdamW` (eps 1e-6, weight decay 0.01 except biases and LayerNorm weights), transformers'
`get_linear_schedule_with_warmup` and global-norm clipping at 1.0, fed the exact batches our side trained
on, so a test can require the two trainings to agree step for step.
"""

from __future__ import annotations

from typing import Callable

import keras
import numpy as np
import torch
import transformers


class BatchLosses(keras.callbacks.Callback):
    """Keras logs each batch's running mean of the loss over the epoch."""

    def __init__(self):
        super().__init__()
        self.running_means = []

    def on_train_batch_end(self, batch, logs=None):
        self.running_means.append(float(logs["loss"]))


def disable_dropout(model: keras.Model) -> None:
    for layer in model._flatten_layers():
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0


def numpy_batches(dataset) -> list:
    """A tf.data dataset of (features dict, labels) or features dicts, as nested numpy arrays."""
    return [tuple(map(_numpy, element)) if isinstance(element, tuple) else _numpy(element) for element in dataset]


def _numpy(structure):
    if isinstance(structure, dict):
        return {name: tensor.numpy() for name, tensor in structure.items()}
    return structure.numpy()


def torch_inputs(features: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return dict(input_ids=torch.from_numpy(features["input_word_ids"].astype(np.int64)),
                attention_mask=torch.from_numpy(features["input_mask"].astype(np.int64)),
                token_type_ids=torch.from_numpy(features["input_type_ids"].astype(np.int64)))


def train(model: torch.nn.Module, batches: list, loss_fn: Callable, *, learning_rate: float, epochs: int,
          warmup_proportion: float = 0.1) -> list[float]:
    """Trains `model` in place on `batches` (same order every epoch); returns each step's running mean of the
    loss over its epoch (what Keras logs). `loss_fn(model, features, labels)` returns the batch loss."""
    no_decay = ("bias", "LayerNorm.weight")
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": 0.01},
              {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=learning_rate, eps=1e-6)
    total = len(batches) * epochs
    scheduler = transformers.get_linear_schedule_with_warmup(optimizer, int(warmup_proportion * total), total)
    running_means = []
    model.train()
    for _ in range(epochs):
        losses = []
        for features, labels in batches:
            loss = loss_fn(model, features, labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            running_means.append(float(np.mean(losses)))
    model.eval()
    return running_means
