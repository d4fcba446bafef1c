"""GLUE-style sentence (pair) classifier / regressor export: label ids, label names, probabilities or a score."""

from __future__ import annotations

import os
from typing import Callable, Sequence

import keras
import tensorflow as tf

from bert_keras.export.encoder import TEXT, TEXT_A, TEXT_B
from bert_keras.export.serving import ServingModule, graph_function, save_versioned
from bert_keras.export.text_ops import invalid_utf8
from bert_keras.tokenizer import BertTokenizer


class ClassifierServing(ServingModule):
    """For a model mapping packed inputs to logits [batch, num_classes] (or scores [batch] if regression).

    `serving_default` takes `text` (one text field) or `text_a`/`text_b` (`num_text_fields=2`);
    `token_ids` takes the packed inputs. Classification outputs `label_ids` int32 [batch], `label_names`
    string [batch], `probabilities` [batch, num_classes], `logits`; regression outputs `score` [batch]. The text
    signature adds `invalid_utf8` bool [batch] (a text was not UTF-8 and was served repaired).
    """

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 128, *,
                 label_names: Sequence[str] | None = None, num_text_fields: int = 1):
        super().__init__(model, tokenizer, seq_length, name="bert_classifier_serving")
        if num_text_fields not in (1, 2):
            raise ValueError(f"num_text_fields must be 1 or 2, got {num_text_fields}")
        num_classes = model.num_classes
        if label_names is not None and num_classes > 1 and len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for a model with {num_classes} classes")
        self.num_text_fields = num_text_fields
        self.regression = num_classes == 1
        names = label_names if label_names else [str(i) for i in range(num_classes)]
        self.label_names = tf.constant(list(names), tf.string)

    def predict(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        logits = self.run_model(inputs)
        if self.regression:
            return {"score": logits}
        label_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {"logits": logits, "probabilities": tf.nn.softmax(logits, axis=-1), "label_ids": label_ids,
                "label_names": tf.gather(self.label_names, label_ids)}

    def predict_text(self, *texts: tf.Tensor) -> dict[str, tf.Tensor]:
        packed = self.pack_text(*texts)
        return {**self.predict(packed), **packed, "invalid_utf8": invalid_utf8(*texts)}

    def signatures(self) -> dict[str, Callable]:
        text_specs = (TEXT,) if self.num_text_fields == 1 else (TEXT_A, TEXT_B)
        return {
            "serving_default": graph_function(self.predict_text).get_concrete_function(*text_specs),
            "token_ids": graph_function(lambda **ids: self.predict(ids)).get_concrete_function(
                **self.token_id_specs()),
        }


def export_classifier(model: keras.Model, tokenizer: BertTokenizer, export_dir: str | os.PathLike, *,
                      seq_length: int = 128, label_names: Sequence[str] | None = None,
                      num_text_fields: int = 1, version: int | None = None) -> str:
    """A `GlueClassifier` (classifier or regressor) as a SavedModel: text in, labels or score out."""
    module = ClassifierServing(model, tokenizer, seq_length, label_names=label_names,
                               num_text_fields=num_text_fields)
    return save_versioned(module, export_dir, version)
