"""Dynamic masked-LM masking of a batch, in pure TF ops (new masks every time an instance is seen).

As the original `create_masked_lm_predictions`: `num_to_predict = min(max_predictions_per_seq,
max(1, round(len(tokens) * masked_lm_prob)))` positions, chosen uniformly among the non-special tokens;
of those 80% become [MASK], 10% keep the original, 10% become a random token. With whole-word masking the
candidates are whole words (all their WordPieces together), visited in random order, and a word that would
overflow `num_to_predict` is skipped (the next smaller one may still fit), exactly as the original loop.
Random replacement tokens are drawn uniformly from the vocabulary minus the special tokens.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf


def special_token_ids(tokenizer) -> list[int]:
    """Ids never drawn as random replacements (read from the tokenizer, never hard-coded)."""
    return [tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id]


def mask_batch(
    input_ids: tf.Tensor,
    input_mask: tf.Tensor,
    maskable: tf.Tensor,
    word_starts: tf.Tensor | None,
    seed: tf.Tensor,
    *,
    max_predictions_per_seq: int,
    masked_lm_prob: float,
    mask_id: int,
    vocab_size: int,
    special_ids: Sequence[int],
) -> dict:
    """Masks [B, S] `input_ids`.

    `maskable` marks positions that may be predicted (never [CLS]/[SEP]/padding); `word_starts` (only for
    whole-word masking; None otherwise) marks the first WordPiece of each word. `seed` is a stateless seed [2].
    Returns `input_word_ids` (masked), `masked_lm_positions`, `masked_lm_ids` [B, P] int32 and
    `masked_lm_weights` [B, P] float32 (1 for real predictions, 0 for padding slots), positions ascending.
    """
    input_ids = tf.cast(input_ids, tf.int32)
    batch = tf.shape(input_ids)[0]
    seq_length = tf.shape(input_ids)[1]
    num_slots = max_predictions_per_seq
    seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(5)]
    lengths = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=1)
    num_to_predict = tf.minimum(
        max_predictions_per_seq, tf.maximum(1, tf.cast(tf.round(lengths * masked_lm_prob), tf.int32))
    )
    if word_starts is None:
        selected = _select_tokens(maskable, num_to_predict, seeds[0], num_slots)
    else:
        selected = _select_whole_words(maskable, word_starts, num_to_predict, seeds[0])

    # Selected positions in ascending order, padded with position 0 / weight 0.
    position = tf.broadcast_to(tf.range(seq_length)[None, :], tf.shape(input_ids))
    order = tf.sort(tf.where(selected, position, seq_length + position), axis=1)
    order = _fit_columns(order, num_slots, fill=2 * seq_length)
    valid = order < seq_length
    positions = tf.where(valid, order, 0)
    original = tf.gather(input_ids, positions, batch_dims=1)

    u_mask = tf.random.stateless_uniform([batch, num_slots], seeds[1])
    u_keep = tf.random.stateless_uniform([batch, num_slots], seeds[2])
    random_tokens = _random_non_special_tokens([batch, num_slots], seeds[3], vocab_size, special_ids)
    replacement = tf.where(u_mask < 0.8, mask_id, tf.where(u_keep < 0.5, original, random_tokens))
    replacement = tf.where(valid, replacement, original)
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(positions))
    masked_ids = tf.tensor_scatter_nd_update(input_ids, tf.stack([rows, positions], -1), replacement)
    return {
        "input_word_ids": masked_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": tf.where(valid, original, 0),
        "masked_lm_weights": tf.cast(valid, tf.float32),
    }


def _fit_columns(x: tf.Tensor, width: int, fill) -> tf.Tensor:
    """First `width` columns of x, padded with `fill` when x is narrower."""
    x = x[:, :width]
    return tf.pad(x, [[0, 0], [0, width - tf.shape(x)[1]]], constant_values=fill)


def _select_tokens(maskable, num_to_predict, seed, num_slots):
    """`num_to_predict` uniformly random maskable positions per row (ranks of random scores)."""
    scores = tf.where(maskable, tf.random.stateless_uniform(tf.shape(maskable), seed), -1.0)
    k = tf.minimum(num_slots, tf.shape(maskable)[1])
    values, index = tf.math.top_k(scores, k=k)
    take = (tf.range(k)[None, :] < num_to_predict[:, None]) & (values >= 0.0)
    rows = tf.broadcast_to(tf.range(tf.shape(maskable)[0])[:, None], tf.shape(index))
    return tf.scatter_nd(tf.stack([rows, index], -1), tf.cast(take, tf.int32), tf.shape(maskable)) > 0


def _select_whole_words(maskable, word_starts, num_to_predict, seed):
    """Whole words in random order, each taken if it still fits in `num_to_predict` (the original loop)."""
    seq_length = tf.shape(maskable)[1]
    prev_maskable = tf.pad(maskable[:, :-1], [[0, 0], [1, 0]])
    starts = maskable & (word_starts | tf.logical_not(prev_maskable))
    word = tf.cumsum(tf.cast(starts, tf.int32), axis=1) - 1  # word index of each position (valid if maskable)
    word = tf.where(maskable, word, seq_length)  # non-maskable -> overflow bucket
    batch = tf.shape(maskable)[0]
    flat_word = word + tf.range(batch)[:, None] * (seq_length + 1)
    sizes = tf.math.unsorted_segment_sum(tf.ones_like(flat_word), flat_word, batch * (seq_length + 1))
    sizes = tf.reshape(sizes, [batch, seq_length + 1])[:, :seq_length]
    scores = tf.where(sizes > 0, tf.random.stateless_uniform(tf.shape(sizes), seed), 2.0)
    order = tf.argsort(scores, axis=1)  # real words first, in random order
    sizes_in_order = tf.gather(sizes, order, batch_dims=1)

    def visit(count, size):
        take = (size > 0) & (count + size <= num_to_predict)
        return count + tf.where(take, size, 0)

    counts = tf.scan(visit, tf.transpose(sizes_in_order), initializer=tf.zeros_like(num_to_predict))
    before = tf.concat([tf.zeros_like(num_to_predict)[None], counts[:-1]], 0)
    taken_in_order = tf.transpose(counts > before)  # [B, S]: the word at that rank was taken
    taken = tf.gather(taken_in_order, tf.argsort(order, axis=1), batch_dims=1)  # by word index
    taken = tf.pad(taken, [[0, 0], [0, 1]])  # overflow bucket never taken
    return tf.gather(taken, word, batch_dims=1) & maskable


def _random_non_special_tokens(shape, seed, vocab_size: int, special_ids: Sequence[int]) -> tf.Tensor:
    """Uniform over the vocabulary without the special tokens: draw in [0, V - #special), then step over
    each special id (ascending) that is <= the draw."""
    specials = sorted({int(i) for i in special_ids})
    draw = tf.random.stateless_uniform(shape, seed, minval=0, maxval=vocab_size - len(specials), dtype=tf.int32)
    for special in specials:
        draw = draw + tf.cast(draw >= special, tf.int32)
    return draw
