"""The fine-tuning train step: one call = one optimizer update on the gradient of the WHOLE global batch.

Keras' own pieces do not give that once a batch is split:

* its `train_step` under `tf.distribute` hands each replica's gradient to the optimizer, which clips it
  (`global_clipnorm`) BEFORE the all-reduce, so clipping sees each replica's partial gradient instead of the
  global one, and it weights every replica by 1 / replicas even when the batch splits unevenly;
* its optimizer-side `gradient_accumulation_steps` advances `iterations` (which the learning-rate schedule
  reads) once per micro-batch, averages micro-batches with equal weights whatever their sizes, needs the
  dataset batched by micro-batch (an accumulation window then straddles epochs when the micro-batch count
  is not a multiple of the steps) and leaves a trailing incomplete window unapplied.

Here every replica splits its slice of the global batch into `accumulation_steps` micro-batches, weights
each micro-batch's loss by its share of the global batch (examples; or, for a loss reduced
"mean_with_sample_weight" such as token classification's, sample-weight mass: a per-micro-batch weighted
mean is otherwise not the global weighted mean), sums the gradients over micro-batches and replicas, clips
the global norm and applies one update. The result is the update one device makes on the concatenated
batch (tests/test_finetuning_scale.py). The optimizer must take already all-reduced, unclipped gradients:
`create_optimizer(..., gradients_are_reduced=True, clip_norm=None)`.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras.src.backend.tensorflow.trainer import _collective_all_reduce_multi_worker
from keras.src.losses.loss import unscale_loss_for_distribution

SUM = tf.distribute.ReduceOp.SUM


def _reductions(loss) -> set[str]:
    return {getattr(item, "reduction", None) for item in keras.tree.flatten(loss)}


class GlobalBatchTrainStep:
    """Mixin for a `keras.Model` (TensorFlow backend). `configure_train_step` switches this train step on
    (the fine-tuning trainer does); without it Keras' default train step runs."""

    _train_step_settings: tuple[int, float | None] | None = None

    def configure_train_step(self, accumulation_steps: int = 1, clip_norm: float | None = None) -> None:
        """`accumulation_steps` micro-batches per replica and update; `clip_norm`: global-norm clipping of
        the summed gradient (None: none)."""
        if int(accumulation_steps) < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        if clip_norm is not None and clip_norm <= 0:
            raise ValueError(f"clip_norm must be positive (or None: no clipping), got {clip_norm}")
        self._train_step_settings = (int(accumulation_steps), clip_norm)
        self.train_function = None  # retrace with these settings

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras 3 averages the first distributed batch over the replicas (strategy.reduce) only to learn its
        # structure and shapes; under MultiWorkerMirroredStrategy that reduce fails on a dict of features
        # (keras-team/keras#20329). The first local replica's slice tells the same.
        if iterator is not None and data_batch is None:
            for _, _, batches in iterator:
                local = self.distribute_strategy.experimental_local_results
                data_batch = tf.nest.map_structure(
                    lambda v: local(v)[0] if isinstance(v, tf.distribute.DistributedValues) else v, next(batches))
                break
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def train_step(self, data):
        if self._train_step_settings is None:
            return super().train_step(data)
        steps, clip_norm = self._train_step_settings
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        reductions = _reductions(self.loss)
        if sample_weight is not None and "mean_with_sample_weight" in reductions and len(reductions) > 1:
            raise ValueError(f"losses mixing reductions {sorted(map(str, reductions))} cannot be weighted "
                             "per micro-batch")
        by_weight = sample_weight is not None and reductions == {"mean_with_sample_weight"}
        variables = self.trainable_variables
        context = tf.distribute.get_replica_context()
        size = tf.shape(next(t for t in tf.nest.flatten(x) if t is not None))[0]

        def mass(weights, count):
            return tf.reduce_sum(tf.cast(weights, tf.float32)) if by_weight else tf.cast(count, tf.float32)

        total = mass(sample_weight, size)
        if context.num_replicas_in_sync > 1:
            total = context.all_reduce(SUM, total)

        def gradients(start, end):
            def take(t):
                return None if t is None else t[start:end]

            xi, yi, wi = (tf.nest.map_structure(take, t) for t in (x, y, sample_weight))
            with tf.GradientTape() as tape:
                y_pred = self(xi, training=True)
                loss = unscale_loss_for_distribution(
                    self._compute_loss(x=xi, y=yi, y_pred=y_pred, sample_weight=wi, training=True))
                self._loss_tracker.update_state(loss, sample_weight=end - start)
                share = mass(wi, end - start) / tf.maximum(total, 1e-12)
                scaled = self.optimizer.scale_loss(loss * tf.cast(share, loss.dtype))
            grads = tape.gradient(scaled, variables)
            self.compute_metrics(xi, yi, y_pred, sample_weight=wi)
            return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

        if steps == 1:
            grads = gradients(0, size)
        else:
            def body(i, acc):
                more = gradients(i * size // steps, (i + 1) * size // steps)
                return i + 1, [a + tf.convert_to_tensor(g) for a, g in zip(acc, more)]

            # parallel_iterations=1: micro-batches one after the other, so only one holds activations.
            _, grads = tf.while_loop(lambda i, _: i < steps, body,
                                     (tf.constant(0), [tf.zeros_like(v) for v in variables]),
                                     parallel_iterations=1)
        if context.num_replicas_in_sync > 1:
            grads = context.all_reduce(SUM, grads)
        if clip_norm:
            # Gradients are still loss-scaled (mixed_float16); the optimizer unscales them.
            scale = getattr(self.optimizer, "dynamic_scale", None)
            limit = clip_norm * (1.0 if scale is None else tf.cast(scale, tf.float32))
            grads, _ = tf.clip_by_global_norm(grads, limit)
        self.optimizer.apply(grads, variables)
        logs = self.get_metrics_result()
        if _collective_all_reduce_multi_worker(self.distribute_strategy):
            # Keras reduces the step's logs across workers with strategy.reduce(MEAN, axis=0), which rejects
            # scalars (keras-team/keras#20585): hand it [1]-vectors, it averages them to the scalar.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs
