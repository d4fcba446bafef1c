"""SQuAD's window rules in TF ops, written once: where each context window starts, and in which window a token
has its maximum context (only there may an answer start). Training features (`features.py`, eagerly over many
examples at once) and the serving graph (`serving.py`) both call these, so the two cannot drift apart.

The rules are google-research/bert's `run_squad.py`: windows of `capacity = seq_length - 3 - question tokens`
context tokens start every `doc_stride` tokens until one reaches the end of the context; a token's score in a
window is min(tokens left of it, tokens right of it) + 0.01 * window length, and the earliest window wins ties.
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf


def check_window_settings(seq_length: int, max_query_length: int, doc_stride: int) -> None:
    """Windows step by `doc_stride`, so a window must hold at least that many context tokens."""
    if doc_stride < 1:
        raise ValueError(f"doc_stride must be positive, got {doc_stride}")
    if max_query_length + 3 + doc_stride > seq_length:
        raise ValueError(f"max_query_length ({max_query_length}) + doc_stride ({doc_stride}) + 3 special tokens "
                         f"must fit in the sequence length ({seq_length})")


@dataclasses.dataclass
class Windows:
    """Every window of a batch of examples, one row each (int64 [windows])."""

    example: tf.Tensor  # the example it belongs to
    index: tf.Tensor  # its number within the example
    start: tf.Tensor  # its first context token
    length: tf.Tensor  # its context tokens
    capacity: tf.Tensor  # context tokens a window of this example holds
    doc_len: tf.Tensor  # context tokens of the example
    count: tf.Tensor  # windows of the example
    offset: tf.Tensor  # sequence position of its first context token: [CLS] question [SEP]


def layout(doc_len: tf.Tensor, query_len: tf.Tensor, seq_length: int, doc_stride: int) -> Windows:
    """The windows of examples with `doc_len` context and `query_len` question tokens (int64 [batch]); an
    empty context still gets one (empty) window."""
    doc_len, query_len = tf.cast(doc_len, tf.int64), tf.cast(query_len, tf.int64)
    capacity = seq_length - 3 - query_len
    extra = tf.maximum(doc_len - capacity, 0)
    count = 1 + (extra + doc_stride - 1) // doc_stride
    example = tf.repeat(tf.range(tf.size(doc_len, out_type=tf.int64)), count)
    index = tf.ragged.range(count).flat_values
    start = index * doc_stride
    window_capacity, window_doc_len = tf.gather(capacity, example), tf.gather(doc_len, example)
    length = tf.maximum(tf.minimum(window_capacity, window_doc_len - start), 0)
    return Windows(example, index, start, length, window_capacity, window_doc_len, tf.gather(count, example),
                   tf.gather(query_len, example) + 2)


def max_context(windows: Windows, seq_length: int, doc_stride: int) -> tf.Tensor:
    """bool [windows, seq_length]: the context token at this position has its maximum context in this
    window. (Positions outside the window's context are not context tokens: mask them with `in_context`.)"""
    # A token lies in at most ceil(capacity / doc_stride) consecutive windows.
    reach = math.ceil((seq_length - 3) / doc_stride)
    other = windows.index[:, tf.newaxis] + tf.range(-reach, reach + 1, dtype=tf.int64)[tf.newaxis]  # [w, o]
    other_start = other * doc_stride
    other_len = tf.minimum(windows.capacity[:, tf.newaxis], windows.doc_len[:, tf.newaxis] - other_start)
    exists = (other >= 0) & (other < windows.count[:, tf.newaxis])
    doc_pos = (windows.start[:, tf.newaxis] + tf.range(seq_length, dtype=tf.int64)[tf.newaxis]
               - windows.offset[:, tf.newaxis])  # [w, seq] document token at each position
    d = doc_pos[:, :, tf.newaxis]
    lo, length = other_start[:, tf.newaxis], other_len[:, tf.newaxis]
    contains = exists[:, tf.newaxis] & (lo <= d) & (d < lo + length)
    score = tf.cast(tf.minimum(d - lo, lo + length - 1 - d), tf.float64) + 0.01 * tf.cast(length, tf.float64)
    own = score[:, :, reach:reach + 1]
    earlier = tf.range(-reach, reach + 1)[tf.newaxis, tf.newaxis] < 0
    beaten = contains & tf.where(earlier, score >= own, score > own)
    return ~tf.reduce_any(beaten, axis=-1)


def in_context(windows: Windows, seq_length: int) -> tf.Tensor:
    """bool [windows, seq_length]: the position holds one of the window's context tokens."""
    position = tf.range(seq_length, dtype=tf.int64)[tf.newaxis]
    return (position >= windows.offset[:, tf.newaxis]) & (position < (windows.offset + windows.length)[:, tf.newaxis])


@dataclasses.dataclass
class Candidates:
    """Each window's answer candidates: its top-k start and end positions and which pairs are valid answers."""

    start_logits: tf.Tensor  # float [windows, k], highest first
    start: tf.Tensor  # int32 [windows, k] their positions
    end_logits: tf.Tensor  # float [windows, k]
    end: tf.Tensor  # int32 [windows, k]
    valid: tf.Tensor  # bool [windows, k, k]: start rank i with end rank j is a valid span


def answer_candidates(start_logits: tf.Tensor, end_logits: tf.Tensor, may_start: tf.Tensor, may_end: tf.Tensor,
                      n_best_size: int, max_answer_length: int) -> Candidates:
    """The original's rule: the top-`n_best_size` starts x top-`n_best_size` ends of a window (ties: the lower
    position first, like a stable sort), a pair valid when the start may start an answer (a context token with
    its maximum context here), the end is a context token, end >= start and the span has at most
    `max_answer_length` tokens. Logits and masks are [windows, seq]."""
    k = min(n_best_size, int(start_logits.shape[-1]))
    start_top, start = tf.math.top_k(start_logits, k)
    end_top, end = tf.math.top_k(end_logits, k)
    s, e = start[:, :, tf.newaxis], end[:, tf.newaxis, :]
    valid = (tf.gather(may_start, start, batch_dims=1)[:, :, tf.newaxis]
             & tf.gather(may_end, end, batch_dims=1)[:, tf.newaxis, :]
             & (e >= s) & (e - s < max_answer_length))
    return Candidates(start_top, start, end_top, end, valid)
