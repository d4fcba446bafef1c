"""Optimizers and learning-rate schedules shared by pre-training and fine-tuning.

BERT's recipe: linear warmup to the peak rate, then polynomial (power 1 = linear) decay to zero;
AdamW whose weight decay skips LayerNorm parameters and biases; global-norm gradient clipping.
LAMB is implemented here rather than taken from Keras: Keras' `Lamb` leaves weight decay out of the
trust ratio and adapts LayerNorm/bias too, unlike the LAMB paper and NVIDIA's/Google's BERT recipes.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

# Variable-name patterns excluded from weight decay, as in google-research/bert's optimization.py.
# Keras matches them against `variable.name`, the last path component, where LayerNorm weights are
# "gamma"/"beta"; "layer_norm"/"LayerNorm" cover variables created with those names.
NO_DECAY_PATTERNS = ("layer_norm", "LayerNorm", "gamma", "beta", "bias")


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


@keras.saving.register_keras_serializable(package="bert_keras")
class Lamb(keras.optimizers.Optimizer):
    """LAMB (You et al. 2020) as in NVIDIA's and TF Model Garden's BERT pre-training.

    update = m_hat / (sqrt(v_hat) + eps) + weight_decay * w;  w -= lr * (||w|| / ||update||) * update.
    Variables excluded from weight decay (LayerNorm, biases) are also excluded from the layer-wise
    trust ratio (ratio 1), as in Model Garden's default `exclude_from_layer_adaptation`.
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-6, weight_decay: float | None = None, name: str = "lamb", **kwargs):
        # Decay happens inside `update_step`, so the base class must not apply it a second time.
        super().__init__(learning_rate=learning_rate, weight_decay=None, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.lamb_weight_decay = weight_decay or 0.0

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

    def update_step(self, gradient, variable, learning_rate):
        ops = keras.ops
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        gradient = ops.cast(gradient, dtype)
        step = ops.cast(self.iterations + 1, dtype)
        m = self._momentums[self._get_variable_index(variable)]
        v = self._velocities[self._get_variable_index(variable)]
        self.assign(m, self.beta_1 * m + (1.0 - self.beta_1) * gradient)
        self.assign(v, self.beta_2 * v + (1.0 - self.beta_2) * ops.square(gradient))
        m_hat = m / (1.0 - ops.power(ops.cast(self.beta_1, dtype), step))
        v_hat = v / (1.0 - ops.power(ops.cast(self.beta_2, dtype), step))
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if self._use_weight_decay(variable):
            if self.lamb_weight_decay:
                update = update + self.lamb_weight_decay * variable
            w_norm = ops.sqrt(ops.sum(ops.square(variable)))
            u_norm = ops.sqrt(ops.sum(ops.square(update)))
            ratio = ops.where(ops.logical_and(w_norm > 0, u_norm > 0), w_norm / u_norm, 1.0)
            update = ratio * update
        self.assign_sub(variable, lr * update)

    def get_config(self):
        config = super().get_config()
        config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                      weight_decay=self.lamb_weight_decay)
        return config


class _PreReducedGradients:
    """For custom tf.distribute loops that all-reduce (and clip) gradients themselves, so that global-norm
    clipping sees the GLOBAL gradient; Keras would otherwise clip each replica's partial gradient and
    then all-reduce a second time."""

    def _all_reduce_sum_gradients(self, grads_and_vars):
        return list(grads_and_vars)


@keras.saving.register_keras_serializable(package="bert_keras")
class AdamW(keras.optimizers.AdamW):
    """AdamW as PyTorch and Hugging Face compute it, on TF's fused `ApplyAdam` kernel.

    var -= lr * m_hat / (sqrt(v_hat) + eps), with bias-corrected m_hat, v_hat; decoupled weight decay
    (var -= lr * wd * var, by the base class, before the step). Keras' own AdamW adds eps to the
    UNcorrected sqrt(v), i.e. an effective eps / sqrt(1 - b2^t): with BERT's eps = 1e-6 that is 2.2e-5 at
    step 2 and still 3.2e-6 at step 100, which damps small gradients through warmup and made fine-tuning
    drift from Hugging Face's (tests/test_glue_vs_hf_training.py). The fused kernel also makes one pass
    over each tensor instead of about eight element-wise ops (the 30k x H word-embedding table on CPU).
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            raise ValueError("bert_keras AdamW does not implement amsgrad")
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.constant(self.beta_1, dtype), tf.constant(self.beta_2, dtype)
        beta_2_power = tf.pow(beta_2, step)
        index = self._get_variable_index(variable)
        # ApplyAdam computes lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + epsilon); this epsilon turns
        # that into lr * m_hat / (sqrt(v_hat) + eps).
        epsilon = tf.constant(self.epsilon, dtype) * tf.sqrt(1.0 - beta_2_power)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(self._momentums[index]), v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, step), beta2_power=beta_2_power, lr=tf.cast(learning_rate, dtype),
            beta1=beta_1, beta2=beta_2, epsilon=epsilon, grad=tf.cast(gradient, dtype))


def _handle(variable):
    """The TF resource handle of a Keras (or tf) variable, also of a distributed one inside `update`."""
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


# Registered: a model saved after fine-tuning (which compiles with these) carries its optimizer's config.
@keras.saving.register_keras_serializable(package="bert_keras")
class _PreReducedAdamW(_PreReducedGradients, AdamW):
    pass


@keras.saving.register_keras_serializable(package="bert_keras")
class _PreReducedLamb(_PreReducedGradients, Lamb):
    pass


OPTIMIZERS = ("adamw", "lamb")  # what `create_optimizer(optimizer=...)` builds


def create_optimizer(learning_rate: float, num_train_steps: int, num_warmup_steps: int = 0, *,
                     optimizer: str = "adamw", weight_decay: float = 0.01, beta_1: float = 0.9,
                     beta_2: float = 0.999, epsilon: float = 1e-6, clip_norm: float | None = 1.0,
                     gradient_accumulation_steps: int | None = None,
                     end_learning_rate: float = 0.0, power: float = 1.0,
                     gradients_are_reduced: bool = False) -> keras.optimizers.Optimizer:
    """AdamW or LAMB on a warmup + polynomial-decay schedule, with BERT's weight-decay exclusions.

    `gradients_are_reduced=True` is for custom distributed loops that pass already all-reduced (and
    clipped) gradients to `apply`; such loops should also pass `clip_norm=None` and clip themselves.
    """
    schedule = WarmupPolynomialDecay(learning_rate, num_train_steps, num_warmup_steps,
                                     end_learning_rate, power)
    common = dict(learning_rate=schedule, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                  weight_decay=weight_decay or None, global_clipnorm=clip_norm,
                  gradient_accumulation_steps=gradient_accumulation_steps)
    if optimizer == "adamw":
        opt = (_PreReducedAdamW if gradients_are_reduced else AdamW)(name="adamw", **common)
    elif optimizer == "lamb":
        opt = (_PreReducedLamb if gradients_are_reduced else Lamb)(**common)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {OPTIMIZERS}")
    # Also without decay: LAMB uses the same exclusions for its layer-wise trust ratio.
    opt.exclude_from_weight_decay(var_names=list(NO_DECAY_PATTERNS))
    return opt
