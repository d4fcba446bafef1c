"""Pre-training model export: top-k words for each [MASK] in the text, and the next-sentence probability."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

from bert_keras.export.encoder import TEXT, TEXT_A, TEXT_B
from bert_keras.export.serving import ServingModule, graph_function
from bert_keras.export.text_ops import invalid_utf8
from bert_keras.pretraining_model import BertPretrainingModel
from bert_keras.tokenizer import BertTokenizer

MASK_TOKEN = "[MASK]"


class PretrainingServing(ServingModule):
    """Signatures `serving_default(text)`, `text_pair(text_a, text_b)` (NSP asks: does B follow A?) and
    `token_ids(...)`. The literal `[MASK]` in the text is the mask token (the text around it is tokenized
    normally). Outputs, with M = `max_masks` slots filled in text order (unused slots: position -1, empty
    tokens, probability 0): `mask_positions` int32 [batch, M], `top_k_ids` int32 [batch, M, k],
    `top_k_tokens` string [batch, M, k], `top_k_probabilities` [batch, M, k], and
    `next_sentence_probability` [batch] = P(B is the actual next segment); the text signatures add
    `invalid_utf8` bool [batch] (a text was not UTF-8 and was served repaired).
    """

    def __init__(self, model: BertPretrainingModel, tokenizer: BertTokenizer, seq_length: int = 128, *,
                 top_k: int = 5, max_masks: int = 20):
        super().__init__(model, tokenizer, seq_length, name="bert_pretraining_serving")
        if tokenizer.mask_id < 0:
            raise ValueError(f"the vocab has no {MASK_TOKEN} token")
        self.top_k = top_k
        self.max_masks = min(max_masks, seq_length)
        self.vocab = tf.constant(tokenizer.vocab, tf.string)
        specs = {**self.token_id_specs(),
                 "masked_lm_positions": tf.TensorSpec([None, self.max_masks], tf.int32, name="masked_lm_positions")}
        self.run_model = graph_function(lambda inputs: self.model(inputs, training=False), [specs])

    def tokenize_masked(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Tokenizes the pieces between literal `[MASK]`s and puts the mask id between them."""
        parts = tf.strings.split(text, MASK_TOKEN)  # [batch, (parts)]
        pieces = parts.with_flat_values(self.tokenize(parts.flat_values))  # [batch, (parts), (ids)]
        mask = tf.fill([tf.size(parts.flat_values), 1], tf.constant(self.tokenizer.mask_id, tf.int32))
        with_mask = tf.concat([pieces.values, tf.RaggedTensor.from_tensor(mask)], axis=1)
        ids = parts.with_flat_values(with_mask).merge_dims(1, 2)
        return ids[:, :-1]  # no mask after the last part

    def predict(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        ids = inputs["input_word_ids"]
        seq = tf.shape(ids)[1]
        # Earliest masked positions first: rank each [MASK] by seq - position, others by 0.
        rank = tf.where(tf.equal(ids, self.tokenizer.mask_id), seq - tf.range(seq)[tf.newaxis], 0)
        rank, positions = tf.math.top_k(rank, k=self.max_masks)
        valid = rank > 0
        outputs = self.run_model({**inputs, "masked_lm_positions": positions})
        probabilities = tf.nn.softmax(outputs["mlm_logits"], axis=-1)
        top_probabilities, top_ids = tf.math.top_k(probabilities, k=self.top_k)
        valid_k = valid[:, :, tf.newaxis]
        return {
            "mask_positions": tf.where(valid, positions, -1),
            "top_k_ids": tf.where(valid_k, top_ids, -1),
            "top_k_tokens": tf.where(valid_k, tf.gather(self.vocab, top_ids), ""),
            "top_k_probabilities": tf.where(valid_k, top_probabilities, 0.0),
            "next_sentence_probability": tf.nn.softmax(outputs["nsp_logits"], axis=-1)[:, 0],
        }

    def predict_text(self, *texts: tf.Tensor) -> dict[str, tf.Tensor]:
        packed = self.packer([self.tokenize_masked(t) for t in texts])
        return {**self.predict(packed), **packed, "invalid_utf8": invalid_utf8(*texts)}

    def signatures(self) -> dict[str, Callable]:
        return {
            "serving_default": graph_function(self.predict_text).get_concrete_function(TEXT),
            "text_pair": graph_function(self.predict_text).get_concrete_function(TEXT_A, TEXT_B),
            "token_ids": graph_function(lambda **ids: self.predict(ids)).get_concrete_function(
                **self.token_id_specs()),
        }
