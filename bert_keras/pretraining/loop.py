"""The compiled pre-training step and loops over a `tf.distribute` strategy.

One call of a loop runs `num_steps` optimizer steps inside one `tf.function` (Model Garden/TPU style), so
Python overhead is paid once per loop, not once per step. The step is XLA-compiled when asked (forward,
backward and update as one cluster on one replica; on one replica clipping and the update always are);
gradients are all-reduced, globally clipped and applied once per step, after optional accumulation over
micro-batches.
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

    Each step reads `accumulation_steps` micro-batches from `iterator`. Every micro-batch's loss sums are
    divided by the masked-token and sequence counts of the WHOLE step (all micro-batches, all replicas),
    so the summed gradients are exactly the gradient of the mean loss over the concatenated batch.
    `optimizer` must take already all-reduced gradients (`create_optimizer(..., gradients_are_reduced=True,
    clip_norm=None)`): clipping here sees the global gradient, as on one device.
    """
    replicas = strategy.num_replicas_in_sync
    variables = model.trainable_variables
    loss_scaled = hasattr(optimizer, "dynamic_scale")

    def gradients(features, counts):
        with tf.GradientTape() as tape:
            stats = pretraining_statistics(model(features, training=True), features)
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

    # On one replica clipping and the update are XLA-compiled even when the rest of the step is not: one
    # fused pass per variable instead of TF's op-by-op AdamW, which made the whole step faster (in-process A/B in
    # bench/results/RESULTS.md, "Training kernels"). With several replicas `optimizer.apply` synchronises them (a merge_call), which must
    # not sit inside a nested tf.function, so it runs in the outer loop's graph.
    apply_fn = tf.function(apply, jit_compile=True) if replicas == 1 else apply

    def whole_step(features, counts):
        grads, stats = gradients(features, counts)
        return stats, apply_fn(grads)

    # One replica without accumulation: forward, backward, clipping and the optimizer update are one
    # compiled function (one XLA cluster with jit_compile). Otherwise gradients are compiled per micro-batch.
    fused = replicas == 1 and accumulation_steps == 1
    if fused:
        step_fn = tf.function(whole_step, jit_compile=jit_compile)
    else:
        gradients_fn = tf.function(gradients, jit_compile=jit_compile)

    def replica_counts(*micro_batches):
        """[masked-token weight, sequences] of the whole step: summed over micro-batches and replicas."""
        local = tf.add_n([tf.stack([tf.reduce_sum(tf.cast(f["masked_lm_weights"], tf.float32)),
                                    tf.cast(tf.shape(f["next_sentence_labels"])[0], tf.float32)])
                          for f in micro_batches])
        return tf.distribute.get_replica_context().all_reduce(SUM, local)

    def replica_apply(grads):
        if replicas > 1:
            grads = tf.distribute.get_replica_context().all_reduce(SUM, grads)
        return apply_fn(grads)

    def add(a, b):
        return tf.nest.map_structure(tf.add, a, b)

    @tf.function
    def train_loop(iterator, num_steps):
        totals = tf.zeros([len(STATISTICS) + 1])
        for _ in tf.range(num_steps):
            micro_batches = [split_batch(strategy, next(iterator)) for _ in range(accumulation_steps)]
            counts = strategy.run(replica_counts, args=tuple(micro_batches))
            if fused:
                stats, norm = strategy.run(step_fn, args=(micro_batches[0], counts))
            else:
                grads, stats = strategy.run(gradients_fn, args=(micro_batches[0], counts))
                for features in micro_batches[1:]:
                    more = strategy.run(gradients_fn, args=(features, counts))
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
