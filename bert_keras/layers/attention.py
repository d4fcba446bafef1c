"""Multi-head scaled dot-product self-attention with a padding mask."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from bert_keras.layers.dropout import Dropout


def attention_bias(input_mask: tf.Tensor) -> tf.Tensor:
    """[batch, seq] 1/0 mask -> additive float32 bias [batch, 1, 1, seq]: 0 keeps, -10000 drops.

    -10000 (as in the original BERT) survives a cast to float16, and exp(-10000) is 0 in float32.
    """
    keep = tf.cast(input_mask, tf.float32)[:, tf.newaxis, tf.newaxis, :]
    return (1.0 - keep) * -10000.0


@keras.saving.register_keras_serializable(package="bert_keras")
class SelfAttention(keras.layers.Layer):
    """Query/key/value projections, softmax(QK^T/sqrt(d) + bias) V over heads, output projection.

    The softmax runs in float32 whatever the compute dtype, so half-precision policies stay stable.
    """

    def __init__(self, hidden_size: int, num_heads: int, initializer_range: float = 0.02,
                 dropout_rate: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.initializer_range = initializer_range
        self.dropout_rate = dropout_rate

        def dense(name):
            return keras.layers.Dense(
                hidden_size, name=name,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range))

        self.query = dense("query")
        self.key = dense("key")
        self.value = dense("value")
        self.output_dense = dense("output_dense")
        self.dropout = Dropout(dropout_rate, name="dropout")

    def build(self, input_shape=None):
        for layer in (self.query, self.key, self.value, self.output_dense):
            layer.build((None, None, self.hidden_size))
        super().build(input_shape)

    def _split_heads(self, x, batch, seq):
        x = tf.reshape(x, [batch, seq, self.num_heads, self.head_size])
        return tf.transpose(x, [0, 2, 1, 3])  # [batch, heads, seq, head_size]

    def call(self, hidden_states, bias, query_states=None, training=None):
        """Attention of `query_states` [batch, Q, hidden] (default: `hidden_states`) over `hidden_states`
        [batch, seq, hidden] -> [batch, Q, hidden]."""
        if query_states is None:
            query_states = hidden_states
        batch, seq = tf.shape(hidden_states)[0], tf.shape(hidden_states)[1]
        queries = tf.shape(query_states)[1]
        q = self._split_heads(self.query(query_states), batch, queries)
        k = self._split_heads(self.key(hidden_states), batch, seq)
        v = self._split_heads(self.value(hidden_states), batch, seq)
        q = q * tf.cast(1.0 / math.sqrt(self.head_size), q.dtype)
        scores = tf.matmul(q, k, transpose_b=True)
        # Keras autocasts `bias` to the compute dtype; -10000 is exact enough in float16/bfloat16.
        probs = tf.nn.softmax(tf.cast(scores, tf.float32) + tf.cast(bias, tf.float32), axis=-1)
        probs = self.dropout(tf.cast(probs, v.dtype), training=training)
        context = tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3])
        context = tf.reshape(context, [batch, queries, self.hidden_size])
        return self.output_dense(context)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                      initializer_range=self.initializer_range, dropout_rate=self.dropout_rate)
        return config
