"""The compiled pre-training step and loops over a `tf.distribute` strategy.

One call of a loop runs `num_steps` optimizer steps inside one `tf.function` (Model Garden/TPU style), so
Python overhead is paid once per loop, not once per step. Forward+backward is XLA-compiled when asked;
gradients are all-reduced, globally clipped and applied once per step, after optional accumulation.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from bert_keras.pretraining_model import STATISTICS, pretraining_statistics

SUM, MEAN = tf.distribute.ReduceOp.SUM, tf.distribute.ReduceOp.MEAN


def split_batch(strategy: tf.distribute.Strategy, batch):
    """Global batch -> per-replica slices. Every worker reads the same global batches and keeps its
    replicas' slices, so N replicas see exactly the batches one device would (and a plain, checkpointable
    tf.data iterator can feed any strategy)."""
    if strategy.num_replicas_in_sync == 1:
        return batch

    def slice_for(context):
        n, i = context.num_replicas_in_sync, context.replica_id_in_sync_group

        def take(t):
            size = tf.shape(t)[0] // n
            return t[i * size:(i + 1) * size]

        return tf.nest.map_structure(take, batch)

    return strategy.experimental_distribute_values_from_function(slice_for)


def build_train_loop(model: keras.Model, optimizer: keras.optimizers.Optimizer, strategy: tf.distribute.Strategy,
                     *, jit_compile: bool = True, clip_norm: float | None = 1.0, accumulation_steps: int = 1,
                     step_counter: tf.Variable | None = None) -> Callable:
    """Returns `train_loop(iterator, num_steps) -> float32 [len(STATISTICS) + 1]`: the summed statistics of
    `num_steps` steps plus the summed global gradient norms (before clipping).

    `optimizer` must take already all-reduced gradients (`create_optimizer(..., gradients_are_reduced=True,
    clip_norm=None)`): clipping here sees the global gradient, as on one device.
    """
    replicas = strategy.num_replicas_in_sync
    variables = model.trainable_variables
    loss_scaled = hasattr(optimizer, "dynamic_scale")

    def forward_backward(features, counts):
        with tf.GradientTape() as tape:
            outputs = model(features, training=True)
            stats = pretraining_statistics(outputs, features)
            loss = stats[0] / tf.maximum(counts[0], 1e-9) + stats[3] / tf.maximum(counts[1], 1.0)
            scaled = optimizer.scale_loss(loss)
        grads = [tf.convert_to_tensor(g) for g in tape.gradient(scaled, variables)]
        return grads, stats

    def apply(grads):
        scale = tf.cast(optimizer.dynamic_scale, tf.float32) if loss_scaled else 1.0
        norm = tf.linalg.global_norm(grads) / scale
        if clip_norm:
            factor = clip_norm / tf.maximum(norm, clip_norm)
            grads = [g * factor for g in grads]
        optimizer.apply(grads, variables)
        return norm

    forward_backward_fn = tf.function(forward_backward, jit_compile=jit_compile)
    # One replica compiles the update with XLA too. With several, `optimizer.apply` synchronises replicas
    # (a merge_call), which must not sit inside a nested tf.function: it runs in the outer loop's graph.
    apply_fn = tf.function(apply, jit_compile=True) if jit_compile and replicas == 1 else apply

    def replica_gradients(features):
        """This replica's gradient of its share of the loss, normalised by the GLOBAL token/sequence counts."""
        local = tf.stack([tf.reduce_sum(tf.cast(features["masked_lm_weights"], tf.float32)),
                          tf.cast(tf.shape(features["next_sentence_labels"])[0], tf.float32)])
        counts = tf.distribute.get_replica_context().all_reduce(SUM, local)
        return forward_backward_fn(features, counts)

    def replica_apply(grads):
        if replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(SUM, grads)
        if accumulation_steps > 1:
            grads = [g / accumulation_steps for g in grads]
        return apply_fn(grads)

    def add(a, b):
        return tf.nest.map_structure(tf.add, a, b)

    @tf.function
    def train_loop(iterator, num_steps):
        totals = tf.zeros([len(STATISTICS) + 1])
        for _ in tf.range(num_steps):
            grads, stats = strategy.run(replica_gradients, args=(split_batch(strategy, next(iterator)),))
            for _ in range(accumulation_steps - 1):
                more = strategy.run(replica_gradients, args=(split_batch(strategy, next(iterator)),))
                grads, stats = strategy.run(add, args=((grads, stats), more))
            norm = strategy.run(replica_apply, args=(grads,))
            totals += tf.concat([strategy.reduce(SUM, stats, axis=None),
                                 [strategy.reduce(MEAN, norm, axis=None)]], 0)
        if step_counter is not None:
            step_counter.assign_add(tf.cast(num_steps, step_counter.dtype))
        return totals

    return train_loop


def build_eval_loop(model: keras.Model, strategy: tf.distribute.Strategy, *, jit_compile: bool = True) -> Callable:
    """Returns `eval_loop(iterator, num_steps) -> float32 [len(STATISTICS)]` summed over `num_steps` batches."""
    statistics = tf.function(lambda f: pretraining_statistics(model(f, training=False), f), jit_compile=jit_compile)

    @tf.function
    def eval_loop(iterator, num_steps):
        totals = tf.zeros([len(STATISTICS)])
        for _ in tf.range(num_steps):
            stats = strategy.run(statistics, args=(split_batch(strategy, next(iterator)),))
            totals += strategy.reduce(SUM, stats, axis=None)
        return totals

    return eval_loop
