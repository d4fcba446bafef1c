"""SQuAD export: question + context in, answer text with CHARACTER offsets into the context and a score out.

Everything runs in the graph and follows `tasks/squad` (features.py windows, postprocess.py answer rules):
the context is tokenized with byte offsets and split into windows of `seq_length` every `doc_stride`
tokens, so contexts far longer than one sequence are covered, not cut off. In every window the top
`n_best_size` start and end positions are paired; a pair counts if both ends are context tokens, it is
at most `max_answer_length` tokens long, and its start token has its maximum context in this window (so
overlapping windows do not double-count it). The best pair over all windows is mapped back to characters
of the context. For SQuAD v2.0 models (`null_score_diff_threshold` set) the null score is the smallest
[CLS] start+end logit over the windows, and the question is answered "" when null score - best span score
exceeds the threshold.
"""

from __future__ import annotations

import math
import os
from typing import Callable

import keras
import tensorflow as tf

from bert_keras.export.serving import ServingModule, graph_function, save_versioned
from bert_keras.export.text_ops import char_offsets, invalid_utf8, repair_utf8
from bert_keras.tokenizer import BertTokenizer

QUESTION = tf.TensorSpec([None], tf.string, name="question")
CONTEXT = tf.TensorSpec([None], tf.string, name="context")
NO_SPAN_SCORE = tf.float32.min  # `score` of a question with no valid span (e.g. an empty context)
NO_SPAN_ODDS = 1e6  # `null_score_diff` of such a question (as in tasks/squad null_odds.json)


class SquadServing(ServingModule):
    """Signatures:

    - `serving_default(question, context)` -> `answer_text` string [batch], `answer_start`/`answer_end`
      int32 [batch] (character offsets into the context, end exclusive: context[start:end] == text; -1 and
      "" when there is no answer), `has_answer` bool, `score` float32 (start + end logit of the best span),
      `num_windows` int32, `invalid_utf8` bool (question or context was not UTF-8; served repaired). v2.0 models add `null_score_diff` (null score - best span score) and the best
      span itself as `best_span_text`/`best_span_start`/`best_span_end` (whatever the decision).
    - `token_ids(input_word_ids, input_mask, input_type_ids)` -> `start_logits`, `end_logits` [batch, seq].

    `null_score_diff_threshold=None` is SQuAD v1.1 (always answer when some span is valid).
    """

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 384, *,
                 max_query_length: int = 64, doc_stride: int = 128, max_answer_length: int = 30,
                 n_best_size: int = 20, null_score_diff_threshold: float | None = None):
        super().__init__(model, tokenizer, seq_length, name="bert_squad_serving")
        if max_query_length + 3 + doc_stride > seq_length:
            raise ValueError(f"max_query_length ({max_query_length}) + doc_stride ({doc_stride}) + 3 special "
                             f"tokens must fit in seq_length ({seq_length})")
        if doc_stride < 1 or max_answer_length < 1 or n_best_size < 1:
            raise ValueError(f"doc_stride ({doc_stride}), max_answer_length ({max_answer_length}) and "
                             f"n_best_size ({n_best_size}) must be positive")
        self.max_query_length = max_query_length
        self.doc_stride = doc_stride
        self.max_answer_length = max_answer_length
        self.n_best_size = n_best_size
        self.null_score_diff_threshold = null_score_diff_threshold

    def logits(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = self.run_model(inputs)
        return {"start_logits": outputs["start_logits"], "end_logits": outputs["end_logits"]}

    def _is_max_context(self, window_index, window_start, capacity, doc_len, num_windows, offset):
        """[windows, seq] bool: the token at this position has its maximum context in this window
        (tasks/squad/features.max_context_window: score min(left, right) + 0.01 * window length, float64,
        earliest window on ties)."""
        # A token lies in at most ceil(capacity / doc_stride) consecutive windows.
        reach = math.ceil((self.seq_length - 3) / self.doc_stride)
        other = window_index[:, tf.newaxis] + tf.range(-reach, reach + 1, dtype=tf.int64)[tf.newaxis]  # [w, o]
        other_start = other * self.doc_stride
        other_len = tf.minimum(capacity[:, tf.newaxis], doc_len[:, tf.newaxis] - other_start)
        exists = (other >= 0) & (other < num_windows[:, tf.newaxis])
        doc_pos = (window_start[:, tf.newaxis] + tf.range(self.seq_length, dtype=tf.int64)[tf.newaxis]
                   - offset[:, tf.newaxis])  # [w, seq] document token at each position
        d = doc_pos[:, :, tf.newaxis]
        lo, length = other_start[:, tf.newaxis], other_len[:, tf.newaxis]
        contains = exists[:, tf.newaxis] & (lo <= d) & (d < lo + length)
        score = (tf.cast(tf.minimum(d - lo, lo + length - 1 - d), tf.float64)
                 + 0.01 * tf.cast(length, tf.float64))
        own = score[:, :, reach:reach + 1]
        earlier = tf.range(-reach, reach + 1)[tf.newaxis, tf.newaxis] < 0
        beaten = contains & tf.where(earlier, score >= own, score > own)
        return ~tf.reduce_any(beaten, axis=-1)

    def answer(self, question: tf.Tensor, context: tf.Tensor) -> dict[str, tf.Tensor]:
        repaired = invalid_utf8(question, context)
        context = repair_utf8(context)
        question_ids = self.tokenize(question)[:, :self.max_query_length]
        doc_ids, byte_starts, byte_ends = self.tokenizer.tokenize_with_offsets(context)
        doc_starts = char_offsets(context, byte_starts)
        doc_ends = char_offsets(context, byte_ends)
        query_len = question_ids.row_lengths()
        doc_len = doc_ids.row_lengths()
        batch = tf.size(doc_len, out_type=tf.int64)

        # Windows per example as features.doc_windows: starts 0, stride, 2*stride, ... until the end is covered.
        capacity = self.seq_length - 3 - query_len
        extra = tf.maximum(doc_len - capacity, 0)
        num_windows = 1 + (extra + self.doc_stride - 1) // self.doc_stride
        window_example = tf.repeat(tf.range(batch), num_windows)
        window_index = tf.ragged.range(num_windows).flat_values
        window_start = window_index * self.doc_stride
        window_capacity = tf.gather(capacity, window_example)
        window_doc_len = tf.gather(doc_len, window_example)
        window_len = tf.maximum(tf.minimum(window_capacity, window_doc_len - window_start), 0)
        flat_start = tf.gather(doc_ids.row_splits[:-1], window_example) + window_start
        doc_index = tf.ragged.range(flat_start, flat_start + window_len)  # into doc_ids.values
        packed = self.packer([tf.gather(question_ids, window_example), tf.gather(doc_ids.values, doc_index)])
        logits = self.logits(packed)
        start_logits, end_logits = logits["start_logits"], logits["end_logits"]

        # Candidates of each window: top-n starts x top-n ends (postprocess._window_candidates).
        offset = tf.gather(query_len, window_example) + 2  # first context position: [CLS] q [SEP]
        position = tf.range(self.seq_length, dtype=tf.int64)[tf.newaxis]
        in_context = (position >= offset[:, tf.newaxis]) & (position < (offset + window_len)[:, tf.newaxis])
        may_start = in_context & self._is_max_context(window_index, window_start, window_capacity, window_doc_len,
                                                      tf.gather(num_windows, window_example), offset)
        k = min(self.n_best_size, self.seq_length)
        start_top, start_pos = tf.math.top_k(start_logits, k)  # ties: lower position first, like a stable sort
        end_top, end_pos = tf.math.top_k(end_logits, k)
        s, e = start_pos[:, :, tf.newaxis], end_pos[:, tf.newaxis, :]
        valid = (tf.gather(may_start, start_pos, batch_dims=1)[:, :, tf.newaxis]
                 & tf.gather(in_context, end_pos, batch_dims=1)[:, tf.newaxis, :]
                 & (e >= s) & (e - s < self.max_answer_length))
        pair = tf.where(valid, start_top[:, :, tf.newaxis] + end_top[:, tf.newaxis, :], NO_SPAN_SCORE)
        flat = tf.reshape(pair, [-1, k * k])
        best = tf.argmax(flat, axis=-1, output_type=tf.int32)  # first maximum: start rank, then end rank
        window_score = tf.reduce_max(flat, axis=-1)
        window_valid = tf.reduce_any(tf.reshape(valid, [-1, k * k]), axis=-1)
        best_start = tf.cast(tf.gather(start_pos, best // k, batch_dims=1), tf.int64)
        best_end = tf.cast(tf.gather(end_pos, best % k, batch_dims=1), tf.int64)

        # Best window per example (the earliest on ties, as postprocess's stable sort); every example has one.
        window_score = tf.where(window_valid, window_score, NO_SPAN_SCORE)
        score = tf.math.unsorted_segment_max(window_score, window_example, batch)
        window_id = tf.range(tf.size(window_example, out_type=tf.int64))
        chosen = tf.math.unsorted_segment_min(tf.where(window_score == tf.gather(score, window_example), window_id,
                                                       tf.int64.max), window_example, batch)
        has_span = tf.math.unsorted_segment_max(tf.cast(window_valid, tf.int32), window_example, batch) > 0
        start_doc = tf.gather(window_start + best_start - offset, chosen)
        end_doc = tf.gather(window_start + best_end - offset, chosen)
        row_base = doc_starts.row_splits[:-1]
        safe = lambda i: tf.where(has_span, row_base + i, 0)  # noqa: E731
        padded_starts = tf.concat([doc_starts.values, [0]], 0)
        padded_ends = tf.concat([doc_ends.values, [0]], 0)
        span_start = tf.where(has_span, tf.gather(padded_starts, safe(start_doc)), -1)
        span_end = tf.where(has_span, tf.gather(padded_ends, safe(end_doc)), -1)
        span_text = tf.where(has_span, tf.strings.substr(context, tf.maximum(span_start, 0),
                                                          span_end - span_start, unit="UTF8_CHAR"), "")
        out = {"score": score, "num_windows": tf.cast(num_windows, tf.int32), "invalid_utf8": repaired}
        has_answer = has_span
        if self.null_score_diff_threshold is not None:
            null_score = tf.math.unsorted_segment_min(start_logits[:, 0] + end_logits[:, 0], window_example, batch)
            null_score_diff = tf.where(has_span, null_score - score, NO_SPAN_ODDS)
            has_answer = has_span & (null_score_diff <= self.null_score_diff_threshold)
            out.update(null_score_diff=null_score_diff, best_span_text=span_text,
                       best_span_start=tf.cast(span_start, tf.int32), best_span_end=tf.cast(span_end, tf.int32))
        out.update(answer_text=tf.where(has_answer, span_text, ""), has_answer=has_answer,
                   answer_start=tf.cast(tf.where(has_answer, span_start, -1), tf.int32),
                   answer_end=tf.cast(tf.where(has_answer, span_end, -1), tf.int32))
        return out

    def signatures(self) -> dict[str, Callable]:
        return {
            "serving_default": graph_function(self.answer).get_concrete_function(QUESTION, CONTEXT),
            "token_ids": graph_function(lambda **ids: self.logits(ids)).get_concrete_function(
                **self.token_id_specs()),
        }


def export_squad(model: keras.Model, tokenizer: BertTokenizer, export_dir: str | os.PathLike, *, seq_length: int = 384,
                 max_query_length: int = 64, doc_stride: int = 128, max_answer_length: int = 30,
                 n_best_size: int = 20, null_score_diff_threshold: float | None = None,
                 version: int | None = None) -> str:
    """`bert_keras.tasks.squad.model.SquadModel`: question + context in, answer text and character offsets out;
    a `null_score_diff_threshold` (SQuAD v2.0) adds the no-answer decision."""
    module = SquadServing(model, tokenizer, seq_length, max_query_length=max_query_length,
                          doc_stride=doc_stride, max_answer_length=max_answer_length, n_best_size=n_best_size,
                          null_score_diff_threshold=null_score_diff_threshold)
    return save_versioned(module, export_dir, version)
