"""SQuAD export: question + context in, answer text with CHARACTER offsets into the context and a score out.

Everything runs in the graph: the context is tokenized with byte offsets, split into windows of
`seq_length` with `doc_stride` like `run_squad.py` (so contexts longer than one sequence are covered, not
cut off), every window is scored, and the best span over all windows (start <= end, at most
`max_answer_length` tokens, inside the context) is mapped back to characters of the context.
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from bert_keras.export.serving import ServingModule, graph_function
from bert_keras.export.text_ops import char_offsets, repair_utf8
from bert_keras.tokenizer import BertTokenizer

QUESTION = tf.TensorSpec([None], tf.string, name="question")
CONTEXT = tf.TensorSpec([None], tf.string, name="context")
NO_ANSWER_SCORE = tf.float32.min  # score of an example whose context has no tokens (answer "")


class SquadServing(ServingModule):
    """Signatures:

    - `serving_default(question, context)` -> `answer_text` string [batch], `answer_start`/`answer_end`
      int32 [batch] (character offsets into the context, end exclusive: context[start:end] == text),
      `score` float32 [batch] (start + end logit of the chosen span), `num_windows` int32 [batch].
    - `token_ids(input_word_ids, input_mask, input_type_ids)` -> `start_logits`, `end_logits` [batch, seq].
    """

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 384, *,
                 max_query_length: int = 64, doc_stride: int = 128, max_answer_length: int = 30):
        super().__init__(model, tokenizer, seq_length, name="bert_squad_serving")
        if max_query_length + 3 + doc_stride > seq_length:
            raise ValueError(f"max_query_length ({max_query_length}) + doc_stride ({doc_stride}) + 3 special "
                             f"tokens must fit in seq_length ({seq_length})")
        self.max_query_length = max_query_length
        self.doc_stride = doc_stride
        self.max_answer_length = max_answer_length

    def logits(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = self.run_model(inputs)
        return {"start_logits": outputs["start_logits"], "end_logits": outputs["end_logits"]}

    def answer(self, question: tf.Tensor, context: tf.Tensor) -> dict[str, tf.Tensor]:
        context = repair_utf8(context)
        question_ids = self.tokenize(question)[:, :self.max_query_length]
        doc_ids, byte_starts, byte_ends = self.tokenizer.tokenize_with_offsets(context)
        doc_starts = char_offsets(context, byte_starts)
        doc_ends = char_offsets(context, byte_ends)
        query_len = question_ids.row_lengths()
        doc_len = doc_ids.row_lengths()

        # Windows per example as in run_squad.py: starts 0, stride, 2*stride, ... until the end is covered.
        capacity = self.seq_length - 3 - query_len
        extra = tf.maximum(doc_len - capacity, 0)
        num_windows = 1 + (extra + self.doc_stride - 1) // self.doc_stride
        window_example = tf.repeat(tf.range(tf.size(num_windows, out_type=tf.int64)), num_windows)
        window_start = tf.ragged.range(num_windows).flat_values * self.doc_stride
        window_len = tf.minimum(tf.gather(capacity, window_example), tf.gather(doc_len, window_example) - window_start)
        window_len = tf.maximum(window_len, 0)
        flat_start = tf.gather(doc_ids.row_splits[:-1], window_example) + window_start
        doc_index = tf.ragged.range(flat_start, flat_start + window_len)  # into doc_ids.values
        window_doc = tf.gather(doc_ids.values, doc_index)
        window_question = tf.gather(question_ids, window_example)
        packed = self.packer([window_question, window_doc])
        logits = self.logits(packed)

        # Best span per window over all (start, end) pairs allowed by the context and max_answer_length.
        seq = self.seq_length
        offset = tf.gather(query_len, window_example) + 2  # first context position: [CLS] q [SEP]
        position = tf.range(seq, dtype=tf.int64)[tf.newaxis]
        in_context = (position >= offset[:, tf.newaxis]) & (position < (offset + window_len)[:, tf.newaxis])
        pair = logits["start_logits"][:, :, tf.newaxis] + logits["end_logits"][:, tf.newaxis, :]
        band = tf.linalg.band_part(tf.ones([seq, seq], tf.bool), 0, self.max_answer_length - 1)
        allowed = band[tf.newaxis] & in_context[:, :, tf.newaxis] & in_context[:, tf.newaxis, :]
        pair = tf.where(allowed, pair, NO_ANSWER_SCORE)
        flat = tf.reshape(pair, [-1, seq * seq])
        best = tf.argmax(flat, axis=-1)
        window_score = tf.reduce_max(flat, axis=-1)
        start_pos, end_pos = best // seq, best % seq

        # Best window per example.
        scores = tf.RaggedTensor.from_value_rowids(window_score, window_example, nrows=tf.size(num_windows,
                                                                                              out_type=tf.int64))
        chosen = tf.argmax(scores.to_tensor(default_value=NO_ANSWER_SCORE), axis=-1) + scores.row_splits[:-1]
        score = tf.gather(window_score, chosen)
        has_answer = score > NO_ANSWER_SCORE
        start_doc = tf.gather(window_start, chosen) + tf.gather(start_pos, chosen) - tf.gather(offset, chosen)
        end_doc = tf.gather(window_start, chosen) + tf.gather(end_pos, chosen) - tf.gather(offset, chosen)
        row_base = doc_starts.row_splits[:-1]
        safe = lambda i: tf.where(has_answer, row_base + i, 0)  # noqa: E731
        padded_starts = tf.concat([doc_starts.values, [0]], 0)
        padded_ends = tf.concat([doc_ends.values, [0]], 0)
        answer_start = tf.where(has_answer, tf.gather(padded_starts, safe(start_doc)), 0)
        answer_end = tf.where(has_answer, tf.gather(padded_ends, safe(end_doc)), 0)
        text = tf.strings.substr(context, answer_start, answer_end - answer_start, unit="UTF8_CHAR")
        return {"answer_text": text, "answer_start": tf.cast(answer_start, tf.int32),
                "answer_end": tf.cast(answer_end, tf.int32), "score": score,
                "num_windows": tf.cast(num_windows, tf.int32)}

    def signatures(self) -> dict[str, Callable]:
        return {
            "serving_default": graph_function(self.answer).get_concrete_function(QUESTION, CONTEXT),
            "token_ids": graph_function(lambda **ids: self.logits(ids)).get_concrete_function(
                **self.token_id_specs()),
        }
