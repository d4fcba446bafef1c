"""Serving a multi-label run: text in, the names of the labels whose sigmoid reaches the threshold out.

Single-label and regression runs are served by GLUE's `ClassifierServing` (label name + probabilities, or a
score). Signature outputs must be dense with the batch first (TF Serving's row format), so the variable
number of predicted labels comes as a [batch, num_labels] string tensor, predicted names first (in label
order) and "" after them, with `num_predicted` [batch] and the [batch, num_labels] `predicted` mask.
"""

from __future__ import annotations

from typing import Sequence

import keras
import tensorflow as tf

from bert_keras.tasks.glue.serving import ClassifierServing
from bert_keras.tokenizer import BertTokenizer


class MultiLabelServing(ClassifierServing):
    """For a `MultiLabelClassifier`. Outputs `logits`, `probabilities` (sigmoid) and `predicted` (bool) of
    shape [batch, num_labels]; `labels` [batch, num_labels] (predicted names, then ""); `num_predicted`
    int32 [batch]; `label_names` [batch, num_labels] (every name, the columns of the other outputs)."""

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 128, *,
                 label_names: Sequence[str], num_text_fields: int = 1, threshold: float = 0.5):
        if len(label_names) != model.num_classes:
            raise ValueError(f"{len(label_names)} label names for a model with {model.num_classes} labels")
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        super().__init__(model, tokenizer, seq_length, label_names=label_names, num_text_fields=num_text_fields)
        self.threshold = float(threshold)

    def predict(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        logits = self.run_model(inputs)
        probabilities = tf.sigmoid(logits)
        predicted = probabilities >= self.threshold
        names = tf.broadcast_to(self.label_names, tf.shape(logits))
        labels = tf.ragged.boolean_mask(names, predicted).to_tensor(
            default_value="", shape=[None, self.model.num_classes])
        return {"logits": logits, "probabilities": probabilities, "predicted": predicted, "labels": labels,
                "num_predicted": tf.reduce_sum(tf.cast(predicted, tf.int32), axis=1), "label_names": names}
