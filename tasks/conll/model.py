"""Token-classification head: per-position label logits from BERT's sequence output (NER)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.finetuning.task_model import DenseHeadModel


@keras.saving.register_keras_serializable(package="bert_keras")
class TokenClassifier(DenseHeadModel):
    """logits [batch, seq, num_labels] = Dense(dropout(sequence_output)).

    The head of the BERT paper's NER experiments and Hugging Face's BertForTokenClassification. Which
    positions count (each word's first WordPiece) is decided by the data's sample weights, not here.
    """

    encoder_output = "sequence_output"

    def __init__(self, encoder: keras.Model, num_labels: int, dropout_rate: float | None = None,
                 labels: list[str] | None = None, **kwargs):
        if num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {num_labels}")
        if labels is not None and len(labels) != num_labels:
            raise ValueError(f"labels has {len(labels)} entries but num_labels is {num_labels}")
        super().__init__(encoder, num_labels, dropout_rate, **kwargs)
        self.num_labels = num_labels
        self.labels = list(labels) if labels is not None else None  # id -> tag, kept for serving

    def call(self, inputs: dict[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        return self.logits(inputs, training=training)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_labels=self.num_labels, labels=self.labels)
        return config
