"""GLUE heads: a classifier (or, with one output, a regressor) on BERT's pooled [CLS] output."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.finetuning.task_model import EncoderTaskModel


@keras.saving.register_keras_serializable(package="bert_keras")
class GlueClassifier(EncoderTaskModel):
    """logits [batch, num_classes] = Dense(dropout(pooled_output)); num_classes=1 -> scores [batch] (STS-B).

    Same head as google-research/bert's `create_model` and Hugging Face's BertForSequenceClassification:
    dropout at the encoder's hidden_dropout_prob, weights ~ truncated normal(initializer_range), zero bias.
    """

    def __init__(self, encoder: keras.Model, num_classes: int, dropout_rate: float | None = None, **kwargs):
        super().__init__(encoder, **kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        config = encoder.config
        self.dropout_rate = config.hidden_dropout_prob if dropout_rate is None else dropout_rate
        self.dropout = keras.layers.Dropout(self.dropout_rate, name="dropout")
        self.classifier = keras.layers.Dense(
            num_classes, name="classifier",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=config.initializer_range))

    def build(self, input_shape=None):
        super().build(input_shape)
        self.classifier.build((None, self.encoder.config.hidden_size))

    def call(self, inputs: dict[str, tf.Tensor], training=None) -> tf.Tensor:
        pooled = self.encoder(inputs, training=training)["pooled_output"]
        logits = self.classifier(self.dropout(pooled, training=training))
        return logits[:, 0] if self.num_classes == 1 else logits

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_classes=self.num_classes, dropout_rate=self.dropout_rate)
        return config
