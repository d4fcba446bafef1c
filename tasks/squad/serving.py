"""SQuAD export: question + context in, answer text with CHARACTER offsets into the context and a score out.

Everything runs in the graph, with the window rules of `windows.py` (the training features call the same
functions) and the answer rules of `postprocess.py`: the context is tokenized with byte offsets and split into
windows of `seq_length` every `doc_stride` tokens, so contexts far longer than one sequence are covered. In every window the top
`n_best_size` start and end positions are paired; a pair counts if both ends are context tokens, it is
at most `max_answer_length` tokens long, and its start token has its maximum context in this window (so
overlapping windows do not double-count it). The best pair over all windows is mapped back to characters
of the context. For SQuAD v2.0 models (`null_score_diff_threshold` set) the null score is the smallest
[CLS] start+end logit over the windows, and the question is answered "" when null score - best span score
exceeds the threshold.
"""

from __future__ import annotations

import os
from typing import Callable

import keras
import tensorflow as tf

from bert_keras.export.serving import ServingModule, graph_function, save_versioned
from bert_keras.export.text_ops import char_offsets, invalid_utf8, repair_utf8
from bert_keras.tasks.squad import windows
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
      `num_windows` int32, `invalid_utf8` bool (question or context was not UTF-8; served repaired). v2.0
      models add `null_score_diff` (null score - best span score) and the best
      span itself as `best_span_text`/`best_span_start`/`best_span_end` (whatever the decision).
    - `token_ids(input_word_ids, input_mask, input_type_ids)` -> `start_logits`, `end_logits` [batch, seq].

    `null_score_diff_threshold=None` is SQuAD v1.1 (always answer when some span is valid).
    """

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 384, *,
                 max_query_length: int = 64, doc_stride: int = 128, max_answer_length: int = 30,
                 n_best_size: int = 20, null_score_diff_threshold: float | None = None):
        super().__init__(model, tokenizer, seq_length, name="bert_squad_serving")
        windows.check_window_settings(seq_length, max_query_length, doc_stride)
        if max_answer_length < 1 or n_best_size < 1:
            raise ValueError(f"max_answer_length ({max_answer_length}) and n_best_size ({n_best_size}) must be "
                             "positive")
        self.max_query_length = max_query_length
        self.doc_stride = doc_stride
        self.max_answer_length = max_answer_length
        self.n_best_size = n_best_size
        self.null_score_diff_threshold = null_score_diff_threshold

    def logits(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        outputs = self.run_model(inputs)
        return {"start_logits": outputs["start_logits"], "end_logits": outputs["end_logits"]}

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

        # The windows of the training features (windows.py, shared with features.py).
        w = windows.layout(doc_len, query_len, self.seq_length, self.doc_stride)
        window_example, window_start = w.example, w.start
        flat_start = tf.gather(doc_ids.row_splits[:-1], window_example) + window_start
        doc_index = tf.ragged.range(flat_start, flat_start + w.length)  # into doc_ids.values
        packed = self.packer([tf.gather(question_ids, window_example), tf.gather(doc_ids.values, doc_index)])
        logits = self.logits(packed)
        start_logits, end_logits = logits["start_logits"], logits["end_logits"]

        # Candidates of each window: top-n starts x top-n ends (windows.answer_candidates, as postprocess.py).
        offset = w.offset
        in_context = windows.in_context(w, self.seq_length)
        may_start = in_context & windows.max_context(w, self.seq_length, self.doc_stride)
        candidates = windows.answer_candidates(start_logits, end_logits, may_start, in_context, self.n_best_size,
                                               self.max_answer_length)
        k = min(self.n_best_size, self.seq_length)
        start_pos, end_pos, valid = candidates.start, candidates.end, candidates.valid
        pair = tf.where(valid, candidates.start_logits[:, :, tf.newaxis] + candidates.end_logits[:, tf.newaxis, :],
                        NO_SPAN_SCORE)
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
        num_windows = tf.math.unsorted_segment_max(w.count, window_example, batch)
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
