"""TF-Hub-style encoder export: raw text (one or two fields) or token ids in, pooled/sequence outputs out."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from bert_keras.encoder import BertEncoder
from bert_keras.export.serving import TOKEN_ID_NAMES, ServingModule, graph_function
from bert_keras.export.text_ops import invalid_utf8
from bert_keras.tokenizer import BertTokenizer

TEXT = tf.TensorSpec([None], tf.string, name="text")
TEXT_A = tf.TensorSpec([None], tf.string, name="text_a")
TEXT_B = tf.TensorSpec([None], tf.string, name="text_b")


class EncoderServing(ServingModule):
    """Signatures:

    - `serving_default(text)` and `text_pair(text_a, text_b)`: strings [batch] -> `pooled_output` [batch, H],
      `sequence_output` [batch, seq, H], the packed `input_word_ids`/`input_mask`/`input_type_ids`, and
      `invalid_utf8` bool [batch] (a text was not UTF-8 and was served with U+FFFD in place of bad bytes).
    - `token_ids(input_word_ids, input_mask, input_type_ids)`: int32 [batch, seq] -> the two outputs.
    """

    def __init__(self, encoder: BertEncoder, tokenizer: BertTokenizer, seq_length: int = 128):
        super().__init__(encoder, tokenizer, seq_length, name="bert_encoder_serving")

    def encode(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = self.run_model({k: inputs[k] for k in TOKEN_ID_NAMES})
        return {"pooled_output": outputs["pooled_output"], "sequence_output": outputs["sequence_output"]}

    def encode_text(self, *texts: tf.Tensor) -> dict[str, tf.Tensor]:
        packed = self.pack_text(*texts)
        return {**self.encode(packed), **packed, "invalid_utf8": invalid_utf8(*texts)}

    def signatures(self) -> dict[str, Callable]:
        return {
            "serving_default": graph_function(self.encode_text).get_concrete_function(TEXT),
            "text_pair": graph_function(self.encode_text).get_concrete_function(TEXT_A, TEXT_B),
            "token_ids": graph_function(lambda **ids: self.encode(ids)).get_concrete_function(
                **self.token_id_specs()),
        }
