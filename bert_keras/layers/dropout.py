"""Inverted dropout that draws 16 random bits per element instead of a 32-bit float."""

from __future__ import annotations

import keras
import tensorflow as tf

_LEVELS = 1 << 16


def _kept_scale(threshold: int) -> float:
    """1 / (1 - drop probability) for elements dropped when their 16 bits fall below `threshold`."""
    return _LEVELS / (_LEVELS - threshold)


def keep_scale(bits: tf.Tensor, threshold: int, dtype) -> tf.Tensor:
    """uint16 `bits` -> 1 / (1 - rate) where bits >= `threshold` (the element is kept), else 0."""
    return tf.where(bits >= threshold, tf.constant(_kept_scale(threshold), dtype), tf.zeros([], dtype))


@keras.saving.register_keras_serializable(package="bert_keras")
class Dropout(keras.layers.Dropout):
    """`keras.layers.Dropout` with half the random-number work: one 32-bit Philox draw masks two elements.

    Drawing a float per element was most of dropout's cost in a BERT-mini pre-training step on CPU; two
    16-bit draws per uint32 halve the generator's work. An element is dropped when its 16 bits fall below
    round(rate * 65536), so the drop probability is `rate` to within 2^-17 (0.1 -> 0.100006). Same seed
    generator as Keras' layer (so `remat` restores it the same way); `noise_shape` falls back to Keras.
    `random_bits` and `threshold` let a fused kernel apply the same mask itself (`keep_scale`).
    """

    @property
    def threshold(self) -> int:
        """Elements whose 16 random bits are below this are dropped."""
        return round(self.rate * _LEVELS)

    @property
    def drops_everything(self) -> bool:
        """True when the rate rounds to dropping every element (no finite scale for the kept ones)."""
        return self.threshold >= _LEVELS

    def random_bits(self, shape) -> tf.Tensor:
        """uint16 random bits of `shape` for the next mask (advances the seed generator once)."""
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1), tf.int32)
        size = tf.reduce_prod(shape)
        words = tf.random.stateless_uniform([(size + 1) // 2], seed, dtype=tf.uint32, minval=None, maxval=None)
        return tf.reshape(tf.reshape(tf.bitcast(words, tf.uint16), [-1])[:size], shape)

    def call(self, inputs, training=False):
        if not training or self.rate == 0 or self.noise_shape is not None:
            return super().call(inputs, training=training)
        if self.drops_everything:
            return tf.zeros_like(inputs)
        bits = self.random_bits(tf.shape(inputs))
        scale = tf.cast(_kept_scale(self.threshold), inputs.dtype)
        return tf.where(bits >= self.threshold, inputs * scale, tf.zeros_like(inputs))
