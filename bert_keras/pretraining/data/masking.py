"""Dynamic masked-LM masking of a batch, in pure TF ops (new masks every time an instance is seen).

As the original `create_masked_lm_predictions`: `num_to_predict = min(max_predictions_per_seq,
max(1, round(len(tokens) * masked_lm_prob)))` positions, chosen uniformly among the non-special tokens;
of those 80% become [MASK], 10% keep the original, 10% become a random token. With whole-word masking the
candidates are whole words (all their WordPieces together), visited in random order, and a word that would
overflow `num_to_predict` is skipped (the next smaller one may still fit), exactly as the original loop.
Random replacement tokens are drawn uniformly from the vocabulary minus the special tokens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import tensorflow as tf

if TYPE_CHECKING:
    from bert_keras.tokenizer import BertTokenizer


def special_token_ids(tokenizer: BertTokenizer) -> list[int]:
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
    num_slots = max_predictions_per_seq
    seeds = [tf.random.experimental.stateless_fold_in(seed, i) for i in range(3)]
    lengths = tf.reduce_sum(tf.cast(input_mask, tf.float32), axis=1)
    num_to_predict = tf.minimum(
        max_predictions_per_seq, tf.maximum(1, tf.cast(tf.round(lengths * masked_lm_prob), tf.int32))
    )
    if word_starts is None:
        positions, valid = _select_tokens(maskable, num_to_predict, seeds[0], num_slots)
    else:
        selected = _select_whole_words(maskable, word_starts, num_to_predict, seeds[0])
        positions, valid = _ascending_positions(selected, num_slots)
    original = tf.gather(input_ids, positions, batch_dims=1)

    u = tf.random.stateless_uniform([2, batch, num_slots], seeds[1])
    random_tokens = _random_non_special_tokens([batch, num_slots], seeds[2], vocab_size, special_ids)
    replacement = tf.where(u[0] < 0.8, mask_id, tf.where(u[1] < 0.5, original, random_tokens))
    replacement = tf.where(valid, replacement, original)
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(positions))
    masked_ids = tf.tensor_scatter_nd_update(input_ids, tf.stack([rows, positions], -1), replacement)
    return {
        "input_word_ids": masked_ids,
        "masked_lm_positions": positions,
        "masked_lm_ids": tf.where(valid, original, 0),
        "masked_lm_weights": tf.cast(valid, tf.float32),
    }


def _pad_columns(x: tf.Tensor, width: int, fill) -> tf.Tensor:
    """x [B, k] padded with `fill` to `width` columns (k < width when the sequence is shorter than width)."""
    x = tf.pad(x, [[0, 0], [0, width - tf.shape(x)[1]]], constant_values=fill)
    x.set_shape([None, width])
    return x


def _select_tokens(maskable, num_to_predict, seed, num_slots):
    """`num_to_predict` uniformly random maskable positions per row (the top ranks of random scores), as
    [B, num_slots] ascending positions (0 on padding slots) and their validity."""
    seq_length = tf.shape(maskable)[1]
    scores = tf.where(maskable, tf.random.stateless_uniform(tf.shape(maskable), seed), -1.0)
    values, index = tf.math.top_k(scores, k=tf.minimum(num_slots, seq_length))
    take = (tf.range(tf.shape(index)[1])[None, :] < num_to_predict[:, None]) & (values >= 0.0)
    order = _pad_columns(tf.sort(tf.where(take, index, seq_length + index), axis=1), num_slots, 2 * seq_length)
    valid = order < seq_length
    return tf.where(valid, order, 0), valid


def _ascending_positions(selected, num_slots):
    """Positions of the True entries of `selected` [B, S] (at most num_slots per row), ascending, padded
    with 0; top_k of (S - position) instead of a full sort."""
    seq_length = tf.shape(selected)[1]
    key = tf.where(selected, seq_length - tf.range(seq_length)[None, :], 0)
    values, _ = tf.math.top_k(key, k=tf.minimum(num_slots, seq_length))
    values = _pad_columns(values, num_slots, 0)
    valid = values > 0
    return tf.where(valid, seq_length - values, 0), valid


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

    # The original loop takes each word (in that order) that still fits. Vectorised: in each round, the
    # words after `resume` whose running size total fits are all taken; the first one that overflows is
    # skipped (it can never fit later) and the next round resumes after it. Rounds = skipped words + 1.
    rank = tf.range(seq_length)[None, :]

    def round_(resume, remaining, taken):
        pending = (rank > resume[:, None]) & (sizes_in_order > 0)
        total = tf.cumsum(tf.where(pending, sizes_in_order, 0), axis=1)
        fits = pending & (total <= remaining[:, None])
        over = pending & (total > remaining[:, None])
        skipped = tf.argmax(tf.cast(over, tf.int32), axis=1, output_type=tf.int32)
        remaining = remaining - tf.reduce_max(tf.where(fits, total, 0), axis=1)
        resume = tf.where(tf.reduce_any(over, axis=1) & (remaining > 0), skipped, seq_length)
        return resume, remaining, taken | fits

    _, _, taken_in_order = tf.while_loop(
        lambda resume, remaining, taken: tf.reduce_any(resume < seq_length),
        round_,
        (tf.fill([batch], -1), num_to_predict, tf.zeros_like(sizes_in_order, tf.bool)),
        parallel_iterations=1,
    )
    rows = tf.broadcast_to(tf.range(batch)[:, None], tf.shape(order))
    taken = tf.scatter_nd(tf.stack([rows, order], -1), taken_in_order, tf.shape(order))  # by word index
    taken = tf.pad(taken, [[0, 0], [0, 1]])  # overflow bucket never taken
    return tf.gather(taken, word, batch_dims=1) & maskable


def _random_non_special_tokens(shape, seed, vocab_size: int, special_ids: Sequence[int]) -> tf.Tensor:
    """Uniform over the vocabulary without the special tokens (one draw, one lookup)."""
    specials = {int(i) for i in special_ids}
    allowed = tf.constant([i for i in range(vocab_size) if i not in specials], tf.int32)
    draw = tf.random.stateless_uniform(shape, seed, minval=0, maxval=vocab_size - len(specials), dtype=tf.int32)
    return tf.gather(allowed, draw)
