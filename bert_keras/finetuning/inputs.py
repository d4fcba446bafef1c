"""Input-pipeline pieces every fine-tuning task shares."""

from __future__ import annotations

import tensorflow as tf


def trim_padding(features: dict[str, tf.Tensor], *others, length_key: str = "input_mask", multiple: int = 8):
    """Dynamic padding: cuts every [batch, seq, ...] tensor to the batch's longest sequence.

    Sequences are packed at `max_seq_length` for simplicity, then this map (after `batch`) drops the
    all-padding tail. The length is rounded up to `multiple` so only a handful of shapes get traced.
    Encoder outputs at real tokens are unchanged (padding is masked out of attention), and so are the
    classification and per-token (NER) losses. SQuAD's span softmax runs over every position of the batch,
    padding included (as in the original and in Hugging Face), so there fewer padded positions change the
    loss slightly.
    `others` (labels, sample weights) are trimmed too where they are [batch, seq, ...]; [batch]
    tensors pass through.
    """
    mask = features[length_key]
    full = tf.shape(mask)[1]
    longest = tf.reduce_max(tf.reduce_sum(tf.cast(mask, tf.int32), axis=1))
    length = tf.minimum(full, (longest + multiple - 1) // multiple * multiple)

    def cut(tensor):
        if tensor.shape.rank is not None and tensor.shape.rank >= 2:
            return tensor[:, :length]
        return tensor

    trimmed = (tf.nest.map_structure(cut, features),) + tuple(tf.nest.map_structure(cut, o) for o in others)
    return trimmed if others else trimmed[0]
