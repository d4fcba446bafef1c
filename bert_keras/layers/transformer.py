"""One post-LayerNorm transformer block, exactly as in the original BERT."""

from __future__ import annotations

import keras
import tensorflow as tf

from bert_keras.layers.activations import get_activation
from bert_keras.layers.attention import SelfAttention
from bert_keras.layers.dropout import Dropout
from bert_keras.layers.layer_norm import LayerNorm


def gather_positions(sequence: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """[batch, seq, hidden] and int [batch, P] -> [batch, P, hidden]: the vectors at `positions`."""
    return tf.gather(sequence, tf.cast(positions, tf.int32), batch_dims=1)


@keras.saving.register_keras_serializable(package="bert_keras")
class TransformerBlock(keras.layers.Layer):
    """x -> LN(x + Drop(Attn(x))) -> LN(h + Drop(W2 act(W1 h))).

    LayerNorms compute in float32 (their own dtype policy), so mixed precision keeps BERT's statistics.
    """

    def __init__(self, hidden_size: int, num_heads: int, intermediate_size: int,
                 hidden_act: str = "gelu", initializer_range: float = 0.02,
                 hidden_dropout_prob: float = 0.1, attention_probs_dropout_prob: float = 0.1,
                 layer_norm_eps: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        get_activation(hidden_act)  # an unknown name fails here, not at the first call
        self.initializer_range = initializer_range
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        init = keras.initializers.TruncatedNormal(stddev=initializer_range)

        self.attention = SelfAttention(hidden_size, num_heads, initializer_range,
                                       attention_probs_dropout_prob, name="attention")
        self.attention_dropout = Dropout(hidden_dropout_prob, name="attention_dropout")
        self.attention_layer_norm = LayerNorm(
            epsilon=layer_norm_eps, dtype="float32", name="attention_layer_norm")
        self.intermediate = keras.layers.Dense(intermediate_size, kernel_initializer=init,
                                               name="intermediate")
        self.output_dense = keras.layers.Dense(hidden_size, kernel_initializer=init, name="output_dense")
        self.output_dropout = Dropout(hidden_dropout_prob, name="output_dropout")
        self.output_layer_norm = LayerNorm(
            epsilon=layer_norm_eps, dtype="float32", name="output_layer_norm")

    def build(self, input_shape=None):
        hidden = (None, None, self.hidden_size)
        self.attention.build(hidden)
        self.attention_layer_norm.build(hidden)
        self.intermediate.build(hidden)
        self.output_dense.build((None, None, self.intermediate_size))
        self.output_layer_norm.build(hidden)
        super().build(input_shape)

    def call(self, hidden_states, bias, output_positions=None, training=None):
        """[batch, seq, hidden] -> [batch, seq, hidden], or [batch, P, hidden] at int `output_positions`
        [batch, P] only: every position is still attended to, but queries, feed-forward and LayerNorms run
        on the P rows alone (BERT's last block in pre-training, whose other rows no loss reads)."""
        queries = hidden_states if output_positions is None else gather_positions(hidden_states, output_positions)
        attended = self.attention(hidden_states, bias, queries, training=training)
        attended = self.attention_dropout(attended, training=training)
        h = self.attention_layer_norm(queries + attended, training=training)
        h_in = keras.ops.cast(h, self.compute_dtype)
        ffn = self.output_dense(get_activation(self.hidden_act, training)(self.intermediate(h_in)))
        ffn = self.output_dropout(ffn, training=training)
        return self.output_layer_norm(h + keras.ops.cast(ffn, h.dtype), training=training)

    def get_config(self):
        config = super().get_config()
        config.update(hidden_size=self.hidden_size, num_heads=self.num_heads,
                      intermediate_size=self.intermediate_size, hidden_act=self.hidden_act,
                      initializer_range=self.initializer_range,
                      hidden_dropout_prob=self.hidden_dropout_prob,
                      attention_probs_dropout_prob=self.attention_probs_dropout_prob,
                      layer_norm_eps=self.layer_norm_eps)
        return config
