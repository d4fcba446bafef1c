"""Token tagging's window rules in TF ops, written once: how a long sentence is cut into windows of whole words,
and which window owns each word. The training and evaluation features (`features.py`, eagerly over many
sentences at once) and the serving graph (`serving.py`) both call these, so the two cannot drift apart.

A window holds whole words of at most `max_pieces` WordPieces (a single longer word keeps its first
`max_pieces`); the next window starts at the earliest word such that the repeated words have at most `context`
pieces, and at least one word after the previous start. A word is owned by the window where it has the most
words on its shorter side, the earlier window on ties.
"""

from __future__ import annotations

import tensorflow as tf


def window_spans(counts: tf.Tensor, row_splits: tf.Tensor, max_pieces: int,
                 context: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """`counts` int64 [words]: pieces of every word, all rows in order; `row_splits` int64 [rows + 1]: each
    row's words. -> (start, end, row), int64 [windows]: the word range [start, end) of each window and its row,
    step-major (every row's first window, then every row's second, ...). An empty row gets one empty window."""
    counts, row_splits = tf.cast(counts, tf.int64), tf.cast(row_splits, tf.int64)
    rows = tf.size(row_splits, out_type=tf.int64) - 1
    clipped = tf.minimum(counts, max_pieces)  # a word longer than a window keeps its first pieces
    zero = tf.zeros([1], tf.int64)
    cum = tf.concat([zero, tf.cumsum(counts)], 0)  # pieces before word w
    cum_clipped = tf.concat([zero, tf.cumsum(clipped)], 0)
    row_end = row_splits[1:]

    def search(sorted_values, values, side):
        return tf.searchsorted(sorted_values[tf.newaxis], values[tf.newaxis], side=side, out_type=tf.int64)[0]

    def step(i, start, active, starts, ends):
        end = tf.minimum(search(cum_clipped, tf.gather(cum_clipped, start) + max_pieces, "right") - 1, row_end)
        following = tf.maximum(start + 1, search(cum, tf.gather(cum, end) - context, "left"))
        starts = starts.write(i, tf.where(active, start, -1))
        ends = ends.write(i, end)
        done = end >= row_end
        return i + 1, tf.where(done, start, following), active & ~done, starts, ends

    array = lambda: tf.TensorArray(tf.int64, size=0, dynamic_size=True)  # noqa: E731
    # At least one step, so that no rows still stack to a [1, 0] array.
    _, _, _, starts, ends = tf.while_loop(
        lambda i, start, active, *_: (i == 0) | tf.reduce_any(active), step,
        (tf.constant(0), row_splits[:-1], tf.ones([rows], tf.bool), array(), array()))
    starts, ends = starts.stack(), ends.stack()  # [steps, rows]; row r's k-th window at step k
    recorded = starts >= 0
    row = tf.broadcast_to(tf.range(rows)[tf.newaxis], tf.shape(starts, out_type=tf.int64))
    return (tf.boolean_mask(starts, recorded), tf.boolean_mask(ends, recorded), tf.boolean_mask(row, recorded))


def owners(start: tf.Tensor, end: tf.Tensor, num_words: tf.Tensor | int) -> tf.Tensor:
    """int64 [num_words]: the window (an index into `start`/`end`) that owns each word."""
    num_windows = tf.size(start, out_type=tf.int64)
    member = tf.ragged.range(start, end)  # [windows, (words)]
    word, window = member.flat_values, member.value_rowids()
    left = word - tf.gather(start, window)
    right = tf.gather(end, window) - 1 - word
    key = tf.minimum(left, right) * num_windows + (num_windows - 1 - window)  # the earlier window wins ties
    owned = key == tf.gather(tf.math.unsorted_segment_max(key, word, num_words), word)
    return tf.math.unsorted_segment_max(tf.where(owned, window, -1), word, num_words)
