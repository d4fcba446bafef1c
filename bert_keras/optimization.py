"""Optimizers and learning-rate schedules shared by pre-training and fine-tuning.

BERT's recipe: linear warmup to the peak rate, then polynomial (power 1 = linear) decay to zero;
AdamW whose weight decay skips LayerNorm parameters and biases; global-norm gradient clipping.
"""

from __future__ import annotations

from typing import Any

import keras

# Variable-path patterns excluded from weight decay, as in google-research/bert's optimization.py.
NO_DECAY_PATTERNS = ("layer_norm", "LayerNorm", "bias")


@keras.saving.register_keras_serializable(package="bert_keras")
class WarmupPolynomialDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(step) = peak * step / warmup for step < warmup, then peak * (1 - progress) ** power."""

    def __init__(self, peak_learning_rate: float, num_train_steps: int, num_warmup_steps: int = 0,
                 end_learning_rate: float = 0.0, power: float = 1.0):
        if num_train_steps <= 0:
            raise ValueError(f"num_train_steps must be positive, got {num_train_steps}")
        if not 0 <= num_warmup_steps <= num_train_steps:
            raise ValueError(f"num_warmup_steps must be in [0, num_train_steps={num_train_steps}], "
                             f"got {num_warmup_steps}")
        self.peak_learning_rate = peak_learning_rate
        self.num_train_steps = num_train_steps
        self.num_warmup_steps = num_warmup_steps
        self.end_learning_rate = end_learning_rate
        self.power = power

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warmup = float(max(self.num_warmup_steps, 1))
        decay_steps = float(max(self.num_train_steps - self.num_warmup_steps, 1))
        progress = keras.ops.clip((step - self.num_warmup_steps) / decay_steps, 0.0, 1.0)
        decayed = (self.peak_learning_rate - self.end_learning_rate) * (1.0 - progress) ** self.power
        decayed = decayed + self.end_learning_rate
        warming = self.peak_learning_rate * step / warmup
        return keras.ops.where(step < self.num_warmup_steps, warming, decayed)

    def get_config(self) -> dict[str, Any]:
        return dict(peak_learning_rate=self.peak_learning_rate, num_train_steps=self.num_train_steps,
                    num_warmup_steps=self.num_warmup_steps, end_learning_rate=self.end_learning_rate,
                    power=self.power)


def create_optimizer(learning_rate: float, num_train_steps: int, num_warmup_steps: int = 0, *,
                     optimizer: str = "adamw", weight_decay: float = 0.01, beta_1: float = 0.9,
                     beta_2: float = 0.999, epsilon: float = 1e-6, clip_norm: float | None = 1.0,
                     gradient_accumulation_steps: int | None = None,
                     end_learning_rate: float = 0.0, power: float = 1.0) -> keras.optimizers.Optimizer:
    """AdamW or LAMB on a warmup + polynomial-decay schedule, with BERT's weight-decay exclusions."""
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, num_warmup_steps,
                                     end_learning_rate, power)
    common = dict(learning_rate=schedule, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                  weight_decay=weight_decay or None, global_clipnorm=clip_norm,
                  gradient_accumulation_steps=gradient_accumulation_steps)
    if optimizer == "adamw":
        opt = keras.optimizers.AdamW(**common)
    elif optimizer == "lamb":
        opt = keras.optimizers.Lamb(**common)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'adamw' or 'lamb'")
    if weight_decay:
        opt.exclude_from_weight_decay(var_names=list(NO_DECAY_PATTERNS))
    return opt
