"""The multi-label head. Single-label and regression runs use `GlueClassifier` (softmax classes, or one score).

A multi-label head is GLUE's head (dropout + Dense over the pooled [CLS] output, logits out): only the loss
(sigmoid cross-entropy per label) and the decision (each sigmoid >= threshold) differ. It is its own class
so that a saved model says how its outputs are read, and so that one label is not squeezed into a score as
`GlueClassifier(num_classes=1)` does for regression.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from bert_keras.tasks.glue.model import GlueClassifier


@keras.saving.register_keras_serializable(package="bert_keras")
class MultiLabelClassifier(GlueClassifier):
    """logits [batch, num_labels], one independent yes/no per label (train with
    `keras.losses.BinaryCrossentropy(from_logits=True)`)."""

    def call(self, inputs: dict[str, tf.Tensor], training: bool | None = None) -> tf.Tensor:
        return self.logits(inputs, training=training)
