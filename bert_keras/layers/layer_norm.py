"""LayerNorm over the last axis whose training pass is XLA-fused."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="bert_keras")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same weights, names and config) that, when training, normalizes in
    one XLA-compiled pass forward and one backward instead of TF's chain of moments, rsqrt, multiply and add
    ops (and their gradients). The backward recomputes the mean and variance from the input, and the pair is
    faster than Keras' ops on CPU (`bench/results/RESULTS.md`, "Training kernels"). Inference
    runs Keras' own ops, so serving graphs need no XLA (TF Serving runs without it unless told otherwise).
    """

    def call(self, inputs, training=None):
        if not training or not self._fusable():
            return super().call(inputs)
        x = tf.convert_to_tensor(inputs)
        rows = tf.reshape(x, [-1, tf.shape(x)[-1]])
        epsilon = tf.constant(self.epsilon, rows.dtype)
        gamma = tf.cast(tf.convert_to_tensor(self.gamma), rows.dtype)
        beta = tf.cast(tf.convert_to_tensor(self.beta), rows.dtype)
        return tf.reshape(_layer_norm(rows, gamma, beta, epsilon), tf.shape(x))

    def _fusable(self) -> bool:
        return self.axis in (-1, [-1]) and self.center and self.scale and not self.rms_scaling


@tf.custom_gradient
def _layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, epsilon: tf.Tensor):
    """[rows, features] -> normalized * gamma + beta; gradients for x, gamma and beta."""
    def gradient(dy):
        return (*_layer_norm_backward(dy, x, gamma, epsilon), None)

    return _layer_norm_forward(x, gamma, beta, epsilon), gradient


def _normalized(x, epsilon):
    centered = x - tf.reduce_mean(x, -1, keepdims=True)
    inverse_std = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), -1, keepdims=True) + epsilon)
    return centered * inverse_std, inverse_std


@tf.function(jit_compile=True, reduce_retracing=True)
def _layer_norm_forward(x, gamma, beta, epsilon):
    return _normalized(x, epsilon)[0] * gamma + beta


@tf.function(jit_compile=True, reduce_retracing=True)
def _layer_norm_backward(dy, x, gamma, epsilon):
    normalized, inverse_std = _normalized(x, epsilon)
    d_normalized = dy * gamma
    dx = inverse_std * (d_normalized - tf.reduce_mean(d_normalized, -1, keepdims=True)
                        - normalized * tf.reduce_mean(d_normalized * normalized, -1, keepdims=True))
    return dx, tf.reduce_sum(dy * normalized, 0), tf.reduce_sum(dy, 0)
