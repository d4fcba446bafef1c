"""Multi-head scaled dot-product self-attention with a padding mask."""

from __future__ import annotations

import keras
import tensorflow as tf

from bert_keras.layers.dropout import Dropout, keep_scale


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
    Training in float32 runs softmax, dropout and both products as one XLA-fused kernel each way
    (`fused_attention`); inference and 16-bit policies run plain TF ops (in bfloat16 the fused kernel
    measured no faster).
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
        # Keras autocasts `bias` to the compute dtype; -10000 is exact enough in float16/bfloat16.
        bias = tf.cast(bias, tf.float32)
        if training and self.compute_dtype == "float32" and not self.dropout.drops_everything:
            bits = None
            if self.dropout.rate > 0:
                bits = self.dropout.random_bits(tf.stack([batch, self.num_heads, queries, seq]))
            context = fused_attention(q, k, v, bias, bits, self.dropout.threshold)
        else:
            probs = self.dropout(tf.cast(attention_probs(q, k, bias), v.dtype), training=training)
            context = tf.matmul(probs, v)
        context = tf.reshape(tf.transpose(context, [0, 2, 1, 3]), [batch, queries, self.hidden_size])
        return self.output_dense(context)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                      initializer_range=self.initializer_range, dropout_rate=self.dropout_rate)
        return config


def attention_probs(q: tf.Tensor, k: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """[batch, heads, Q, d], [batch, heads, S, d], float32 bias -> float32 softmax(QK^T/sqrt(d) + bias)."""
    scores = tf.cast(tf.matmul(q, k, transpose_b=True), tf.float32) * _inverse_sqrt_depth(q)
    return tf.nn.softmax(scores + bias, axis=-1)


def _inverse_sqrt_depth(q):
    return tf.math.rsqrt(tf.cast(tf.shape(q)[-1], tf.float32))


def fused_attention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, bias: tf.Tensor, bits: tf.Tensor | None,
                    threshold: int) -> tf.Tensor:
    """Dropout(softmax(QK^T/sqrt(d) + bias)) V for training: forward and backward one XLA-compiled pass each.

    The dropout mask comes from uint16 `bits` (`Dropout.random_bits`, none for no dropout) and `threshold`,
    as `Dropout` draws it. TF's batched matmuls at these small per-head shapes ran well below its large
    matmuls' FLOP rate on CPU; fused, one BERT-mini layer's attention trains faster (micro-benchmark and
    whole-step A/B in `bench/results/RESULTS.md`, "Training kernels"; whole step: `bench/pretrain_speed.py`).
    """
    @tf.custom_gradient
    def attend(q, k, v):
        context, probs = _fused_attention_forward(q, k, v, bias, bits, threshold)
        return context, lambda d_context: _fused_attention_backward(d_context, q, k, v, probs, bits, threshold)

    return attend(q, k, v)


def _dropped(probs, bits, threshold, dtype):
    probs = tf.cast(probs, dtype)
    return probs if bits is None else probs * keep_scale(bits, threshold, dtype)


@tf.function(jit_compile=True, reduce_retracing=True)
def _fused_attention_forward(q, k, v, bias, bits, threshold):
    probs = attention_probs(q, k, bias)
    return tf.matmul(_dropped(probs, bits, threshold, v.dtype), v), probs


@tf.function(jit_compile=True, reduce_retracing=True)
def _fused_attention_backward(d_context, q, k, v, probs, bits, threshold):
    d_v = tf.matmul(_dropped(probs, bits, threshold, v.dtype), d_context, transpose_a=True)
    d_probs = tf.cast(_dropped(tf.matmul(d_context, v, transpose_b=True), bits, threshold, v.dtype), tf.float32)
    d_scores = probs * (d_probs - tf.reduce_sum(d_probs * probs, -1, keepdims=True))
    d_scores = tf.cast(d_scores * _inverse_sqrt_depth(q), q.dtype)
    return tf.matmul(d_scores, k), tf.matmul(d_scores, q, transpose_a=True), d_v
