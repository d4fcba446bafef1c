"""GLUE heads: a classifier (or, with one output, a regressor) on BERT's pooled [CLS] output."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from bert_keras.finetuning.task_model import DenseHeadModel


@keras.saving.register_keras_serializable(package="bert_keras")
class GlueClassifier(DenseHeadModel):
    """logits [batch, num_classes] = Dense(dropout(pooled_output)); num_classes=1 -> scores [batch] (STS-B).

    Same head as google-research/bert's `create_model` and Hugging Face's BertForSequenceClassification.
    """

    encoder_output = "pooled_output"

    def __init__(self, encoder: keras.Model, num_classes: int, dropout_rate: float | None = None, **kwargs):
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        super().__init__(encoder, num_classes, dropout_rate, **kwargs)
        self.num_classes = num_classes

    def call(self, inputs: dict[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        logits = self.logits(inputs, training=training)
        return logits[:, 0] if self.num_classes == 1 else logits

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["num_classes"] = self.num_classes
        return config
