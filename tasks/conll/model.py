"""Token-classification head: per-position label logits from BERT's sequence output (NER)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.finetuning.task_model import EncoderTaskModel


@keras.saving.register_keras_serializable(package="bert_keras")
class TokenClassifier(EncoderTaskModel):
    """logits [batch, seq, num_labels] = Dense(dropout(sequence_output)).

    The head of the BERT paper's NER experiments and Hugging Face's BertForTokenClassification: dropout
    at the encoder's hidden_dropout_prob, kernel ~ truncated normal(initializer_range), zero bias. Which
    positions count (each word's first WordPiece) is decided by the data's sample weights, not here.
    """

    def __init__(self, encoder: keras.Model, num_labels: int, dropout_rate: float | None = None,
                 labels: list[str] | None = None, **kwargs):
        super().__init__(encoder, **kwargs)
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        if labels is not None and len(labels) != num_labels:
            raise ValueError(f"labels has {len(labels)} entries but num_labels is {num_labels}")
        self.num_labels = num_labels
        self.labels = list(labels) if labels is not None else None  # id -> tag, kept for serving
        config = encoder.config
        self.dropout_rate = config.hidden_dropout_prob if dropout_rate is None else dropout_rate
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = keras.layers.Dense(
            num_labels, name="classifier",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=config.initializer_range))

    def build(self, input_shape=None):
        super().build(input_shape)
        self.classifier.build((None, None, self.encoder.config.hidden_size))

    def call(self, inputs: dict[str, tf.Tensor], training=None) -> tf.Tensor:
        sequence = self.encoder(inputs, training=training)["sequence_output"]
        return self.classifier(self.dropout(sequence, training=training))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_labels=self.num_labels, dropout_rate=self.dropout_rate, labels=self.labels)
        return config
