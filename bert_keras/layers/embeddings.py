"""Word + position + segment embeddings, then LayerNorm and dropout (BERT's input layer)."""

from __future__ import annotations

import keras
import tensorflow as tf

from bert_keras.layers.dropout import Dropout
from bert_keras.layers.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="bert_keras")
class BertEmbeddings(keras.layers.Layer):
    """Maps `(input_word_ids, input_type_ids)` to the first hidden states, shape [batch, seq, hidden].

    The word table is exposed as `word_embeddings` so that the masked-LM head can tie its output
    projection to it, as in the original BERT.
    """

    def __init__(self, vocab_size: int, hidden_size: int, max_position_embeddings: int,
                 type_vocab_size: int, initializer_range: float = 0.02, layer_norm_eps: float = 1e-12,
                 dropout_rate: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.dropout_rate = dropout_rate
        # LayerNorm statistics are computed in float32 under mixed-precision policies.
        self.layer_norm = LayerNorm(epsilon=layer_norm_eps, dtype="float32", name="layer_norm")
        self.dropout = Dropout(dropout_rate, name="dropout")

    def build(self, input_shape=None):
        init = keras.initializers.TruncatedNormal(stddev=self.initializer_range)
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(self.vocab_size, self.hidden_size), initializer=init)
        self.position_embeddings = self.add_weight(
            name="position_embeddings", shape=(self.max_position_embeddings, self.hidden_size),
            initializer=init)
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings", shape=(self.type_vocab_size, self.hidden_size), initializer=init)
        self.layer_norm.build((None, None, self.hidden_size))
        super().build(input_shape)

    def call(self, input_word_ids, input_type_ids, training=None):
        seq_length = tf.shape(input_word_ids)[1]
        tf.debugging.assert_less_equal(
            seq_length, self.max_position_embeddings,
            message=f"sequence longer than max_position_embeddings={self.max_position_embeddings}")
        words = tf.gather(self.word_embeddings, input_word_ids)
        types = tf.gather(self.token_type_embeddings, input_type_ids)
        positions = self.position_embeddings[:seq_length][tf.newaxis]
        x = self.layer_norm(words + types + positions, training=training)
        return self.dropout(x, training=training)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, hidden_size=self.hidden_size,
                      max_position_embeddings=self.max_position_embeddings,
                      type_vocab_size=self.type_vocab_size, initializer_range=self.initializer_range,
                      layer_norm_eps=self.layer_norm_eps, dropout_rate=self.dropout_rate)
        return config
