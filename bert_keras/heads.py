"""BERT's two pre-training heads: masked-LM over gathered positions, and next-sentence prediction.

Their sublayers mirror Google's `cls/predictions/*` and `cls/seq_relationship/*` variables one to one, so
original checkpoints import with a name map and no reshaping beyond a transpose of the NSP kernel.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bert_keras.layers import LayerNorm, gather_positions, get_activation


@keras.saving.register_keras_serializable(package="bert_keras")
class MaskedLMHead(keras.layers.Layer):
    """logits = LayerNorm(act(x W + b)) E^T + output_bias, with E the (tied) word-embedding table.

    The table is passed to `call` rather than owned, so it stays one variable shared with the encoder
    (as in the original BERT) and saving either model never duplicates it. Logits are float32 under
    every precision policy: the softmax over 30k words needs it.
    """

    def __init__(self, vocab_size: int, hidden_size: int, hidden_act: str = "gelu",
                 initializer_range: float = 0.02, layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        get_activation(hidden_act)  # an unknown name fails here, not at the first call
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.transform = keras.layers.Dense(
            hidden_size, name="transform",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range))
        self.layer_norm = LayerNorm(epsilon=layer_norm_eps, dtype="float32", name="layer_norm")

    def build(self, input_shape=None):
        self.transform.build((None, self.hidden_size))
        self.layer_norm.build((None, self.hidden_size))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,),
                                           initializer="zeros")
        super().build(input_shape)

    def call(self, sequence_output: tf.Tensor, masked_positions: tf.Tensor | None,
             word_embeddings: tf.Tensor, training=None) -> tf.Tensor:
        """[batch, seq, hidden], [batch, P], (vocab, hidden) -> float32 logits [batch, P, vocab].
        With `masked_positions=None`, `sequence_output` already holds only the P masked vectors."""
        x = sequence_output if masked_positions is None else gather_positions(sequence_output, masked_positions)
        x = self.layer_norm(get_activation(self.hidden_act, training)(self.transform(x)), training=training)
        # One 2-D [batch*P, hidden] x [hidden, vocab] product: a batched matmul against the shared table
        # would, outside XLA, build a per-sequence [vocab, hidden] table gradient and then sum it.
        table = tf.cast(word_embeddings, self.compute_dtype)
        rows = tf.reshape(tf.cast(x, self.compute_dtype), [-1, self.hidden_size])
        bias = tf.cast(self.output_bias, tf.float32)
        if training:
            logits = _fused_output_logits(rows, table, bias)
        else:
            logits = _output_logits(rows, table, bias)
        return tf.reshape(logits, tf.concat([tf.shape(x)[:-1], [self.vocab_size]], 0))

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size, hidden_act=self.hidden_act,
                      initializer_range=self.initializer_range, layer_norm_eps=self.layer_norm_eps)
        return config


def _output_logits(rows: tf.Tensor, table: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
    """[N, hidden] x [vocab, hidden]^T + float32 bias -> float32 [N, vocab]."""
    # BiasAdd on the 2-D product: TF's CPU graph rewrite fuses it into the matmul in float32, and its
    # gradient (BiasAddGrad) reads the [rows, vocab] gradient faster than a broadcast add's reduce_sum.
    return tf.nn.bias_add(tf.cast(tf.matmul(rows, table, transpose_b=True), tf.float32), bias)


@tf.custom_gradient
def _fused_output_logits(rows: tf.Tensor, table: tf.Tensor, bias: tf.Tensor):
    """`_output_logits` for training: the forward XLA-compiled, the backward TF's kernels (inference keeps
    plain ops, so exported graphs need no XLA).

    TF's CPU matmul of [640, 256] rows against the transposed [30522, 256] table ran well below the FLOP rate
    of the same-sized products in its backward pass, and XLA's forward was faster in float32 and bfloat16;
    for the backward products TF's kernels were about as fast as XLA's (`bench/results/RESULTS.md`,
    "Training kernels").
    """
    def gradient(d_logits):
        d_product = tf.cast(d_logits, rows.dtype)
        return (tf.matmul(d_product, table), tf.matmul(d_product, rows, transpose_a=True),
                tf.raw_ops.BiasAddGrad(out_backprop=d_logits))

    return _compiled_output_logits(rows, table, bias), gradient


_compiled_output_logits = tf.function(_output_logits, jit_compile=True, reduce_retracing=True)


@keras.saving.register_keras_serializable(package="bert_keras")
class NextSentenceHead(keras.layers.Layer):
    """Pooled output [batch, hidden] -> float32 logits [batch, 2]; class 0 = "B follows A"."""

    def __init__(self, hidden_size: int, initializer_range: float = 0.02, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            2, name="dense", kernel_initializer=keras.initializers.TruncatedNormal(stddev=initializer_range))

    def build(self, input_shape=None):
        self.dense.build((None, self.hidden_size))
        super().build(input_shape)

    def call(self, pooled_output: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.dense(pooled_output), tf.float32)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, initializer_range=self.initializer_range)
        return config
