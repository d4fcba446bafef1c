"""In-graph text handling shared by every serving signature: UTF-8 repair and byte -> character offsets.

Clients send arbitrary bytes. Invalid UTF-8 is replaced by U+FFFD (not rejected), so one bad record in a
batch never fails the whole request; every offset the export returns is a CHARACTER (code point) offset into
that repaired string, which equals the client's string whenever it was valid UTF-8, and every raw-text
signature reports which rows it repaired (`invalid_utf8`).
"""

from __future__ import annotations

import tensorflow as tf

REPLACEMENT_CHARACTER = 0xFFFD


def repair_utf8(strings: tf.Tensor) -> tf.Tensor:
    """Replaces every invalid UTF-8 sequence with U+FFFD; valid strings pass through unchanged."""
    return tf.strings.unicode_transcode(strings, input_encoding="UTF-8", output_encoding="UTF-8",
                                        errors="replace", replacement_char=REPLACEMENT_CHARACTER)


def invalid_utf8(*fields: tf.Tensor) -> tf.Tensor:
    """bool [batch]: some field of the row (string [batch] or [batch, n]) held bytes that are not UTF-8, so
    what was served is its `repair_utf8` form. Every raw-text signature returns this as `invalid_utf8`."""
    flags = []
    for field in fields:
        changed = tf.not_equal(repair_utf8(field), field)
        flags.append(tf.reduce_any(changed, axis=-1) if field.shape.rank == 2 else changed)
    return tf.reduce_any(tf.stack(flags, axis=0), axis=0)


def char_offsets(strings: tf.Tensor, byte_offsets: tf.RaggedTensor) -> tf.RaggedTensor:
    """Maps byte offsets [batch, (n)] into valid UTF-8 `strings` [batch] to code-point offsets.

    A byte offset b becomes the number of characters that start before b, which is right both for start
    offsets (b is a character boundary) and for exclusive end offsets.
    """
    _, char_starts = tf.strings.unicode_decode_with_offsets(strings, "UTF-8")
    sentinel = tf.constant(tf.int64.max, tf.int64)
    starts = char_starts.to_tensor(default_value=sentinel)
    offsets = tf.cast(byte_offsets, tf.int64)
    # searchsorted needs at least one column in each operand.
    starts = tf.pad(starts, [[0, 0], [0, 1]], constant_values=sentinel)
    dense = offsets.to_tensor(default_value=0)
    dense = tf.pad(dense, [[0, 0], [0, 1]])
    chars = tf.searchsorted(starts, dense, side="left", out_type=tf.int64)
    return tf.RaggedTensor.from_tensor(chars, lengths=offsets.row_lengths())
