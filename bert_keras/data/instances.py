"""Documents -> next-sentence-prediction instances, the way google-research/bert `create_pretraining_data.py`
builds them, in pure TF ops.

Per document (as the original): a target length `max_seq_length - 3`, or with probability `short_seq_prob`
a uniform length in [2, max_num_tokens]; consecutive sentences are collected until they reach it; segment A
is the first `randint(1, n - 1)` of them; with probability 0.5 (always for a one-sentence chunk) segment B
is a random span from a DIFFERENT document (from a random sentence until the remaining length is filled),
and the unused sentences go back to the document; else B is the rest of the chunk; the pair is truncated
longest-first, one token at a time from the front or back at random.

Difference that keeps memory bounded: the random document is drawn from the group of `documents_per_group`
documents (plus the last document of the previous group) being processed, not from the whole corpus.
The documents arrive shuffled, so the partner is still a random other document.
"""

from __future__ import annotations

import tensorflow as tf

LABEL_IS_NEXT = 0  # B is the actual next segment (original BERT: next_sentence_labels 0)
LABEL_IS_RANDOM = 1  # B is a random segment from another document

# Salts that make the stateless random streams of different decisions independent.
SALT_INSTANCES = 1
SALT_MASKING = 3


def element_seed(seed: tf.Tensor, salt: int, counter: tf.Tensor) -> tf.Tensor:
    """A stateless-op seed [2] for element `counter` of a stream: same seed + same element -> same draws."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(salt, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, tf.cast(counter, tf.int64))


def add_partner_document(groups: tf.data.Dataset) -> tf.data.Dataset:
    """Carries the last document of the previous group into each group as an extra random-B candidate, so a
    final one-document group of a finite stream still finds a partner."""

    def step(prev, group):
        last = {
            "key": group["key"][-1],
            "token_ids": group["token_ids"][-1],
            "word_starts": group["word_starts"][-1],
            "sentence_lengths": group["sentence_lengths"][-1],
            "valid": tf.constant(True),
        }
        return last, (group, prev)

    initial = {
        "key": tf.constant(-1, tf.int64),
        "token_ids": tf.zeros([0], tf.int32),
        "word_starts": tf.zeros([0], tf.bool),
        "sentence_lengths": tf.zeros([0], tf.int32),
        "valid": tf.constant(False),
    }
    return groups.scan(initial, step)


def build_instances(
    group: dict,
    partner: dict,
    seed: tf.Tensor,
    *,
    max_seq_length: int,
    short_seq_prob: float,
    cls_id: int,
    sep_id: int,
    pad_id: int,
) -> dict:
    """All instances of a group of documents (ragged-batched `documents.document_dataset` elements);
    `seed` is the group's stateless seed [2] (`element_seed(seed, SALT_INSTANCES, group_number)`).

    Returns dense [I, max_seq_length] `input_ids`, `segment_ids`, `input_mask`, `maskable` (True on
    WordPieces, False on [CLS]/[SEP]/padding), `word_starts`, and [I] `next_sentence_labels`,
    `a_document`, `b_document` (document keys, for checks).
    """
    max_num_tokens = max_seq_length - 3
    num_docs = tf.shape(group["key"], out_type=tf.int32)[0]
    keys = tf.concat([group["key"], partner["key"][None]], 0)
    tokens = tf.concat([group["token_ids"].flat_values, partner["token_ids"]], 0)
    word_starts = tf.concat([group["word_starts"].flat_values, partner["word_starts"]], 0)
    sentence_lengths = tf.concat([group["sentence_lengths"].flat_values, partner["sentence_lengths"]], 0)
    doc_sentence_counts = tf.concat(
        [tf.cast(group["sentence_lengths"].row_lengths(), tf.int32), tf.size(partner["sentence_lengths"])[None]],
        0,
    )
    # sentence_splits[d]: global index of document d's first sentence; bounds[g]: first token of sentence g.
    sentence_splits = tf.concat([[0], tf.cumsum(doc_sentence_counts)], 0)
    bounds = tf.concat([[0], tf.cumsum(sentence_lengths)], 0)
    last_bound = tf.size(bounds) - 1
    usable = tf.concat([tf.ones([num_docs], tf.bool), partner["valid"][None]], 0) & (doc_sentence_counts > 0)

    def bound(i):
        return tf.gather(bounds, tf.clip_by_value(i, 0, last_bound))

    def first_reaching(start, end_exclusive, length):
        """Last sentence index e >= start such that sentences [start, e] are the shortest run whose token
        count reaches `length` (or the document's last sentence)."""
        goal = bound(start) + length
        j = tf.searchsorted(bounds[None, :], goal[None, None], side="left")[0, 0]
        return tf.clip_by_value(tf.minimum(j - 1, end_exclusive - 1), start, tf.maximum(start, end_exclusive - 1))

    def draw_target(u):
        short = 2 + tf.cast(u[1] * tf.cast(max_num_tokens - 1, tf.float32), tf.int32)
        return tf.where(u[0] < short_seq_prob, tf.minimum(short, max_num_tokens), max_num_tokens)

    def body(t, d, s, target, record):
        u = tf.random.stateless_uniform([6], tf.random.experimental.stateless_fold_in(seed, t))
        doc_end = tf.gather(sentence_splits, d + 1)
        next_doc = s >= doc_end
        d_safe = tf.maximum(d, 0)
        # --- one instance from the chunk starting at sentence s of document d ---
        e = first_reaching(s, doc_end, target)
        n_chunk = e - s + 1
        a_count = tf.where(
            n_chunk >= 2, 1 + tf.cast(u[2] * tf.cast(n_chunk - 1, tf.float32), tf.int32), 1
        )
        a_count = tf.clip_by_value(a_count, 1, tf.maximum(n_chunk - 1, 1))
        is_random = (n_chunk == 1) | (u[3] < 0.5)
        a_lo, a_hi = bound(s), bound(s + a_count)
        candidates = usable & tf.not_equal(keys, tf.gather(keys, d_safe))
        num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32))
        pick = tf.minimum(tf.cast(u[4] * tf.cast(num_candidates, tf.float32), tf.int32), num_candidates - 1)
        partner_doc = tf.cast(tf.gather(tf.where(candidates)[:, 0], tf.maximum(pick, 0)), tf.int32)
        p_first = tf.gather(sentence_splits, partner_doc)
        p_end = tf.gather(sentence_splits, partner_doc + 1)
        r = p_first + tf.minimum(tf.cast(u[5] * tf.cast(p_end - p_first, tf.float32), tf.int32), p_end - p_first - 1)
        r_end = first_reaching(r, p_end, target - (a_hi - a_lo))
        b_lo = tf.where(is_random, bound(r), bound(s + a_count))
        b_hi = tf.where(is_random, bound(r_end + 1), bound(e + 1))
        emit = tf.logical_not(next_doc)
        has_partner = tf.logical_or(tf.logical_not(is_random), num_candidates > 0)
        b_doc = tf.where(is_random, tf.gather(keys, partner_doc), tf.gather(keys, d_safe))
        row = tf.stack(
            [tf.cast(emit, tf.int64), tf.cast(a_lo, tf.int64), tf.cast(a_hi, tf.int64), tf.cast(b_lo, tf.int64),
             tf.cast(b_hi, tf.int64), tf.cast(is_random, tf.int64), tf.gather(keys, d_safe), b_doc,
             tf.cast(emit & tf.logical_not(has_partner), tf.int64), tf.cast(n_chunk == 1, tf.int64)]
        )
        record = record.write(t, row)
        new_s = tf.where(is_random, s + a_count, e + 1)
        # --- or move on to the next document, drawing its target length ---
        d = tf.where(next_doc, d + 1, d)
        s = tf.where(next_doc, tf.gather(sentence_splits, tf.minimum(d, num_docs)), new_s)
        target = tf.where(next_doc, draw_target(u), target)
        return t + 1, d, s, target, record

    record = tf.TensorArray(tf.int64, size=0, dynamic_size=True, element_shape=[10])
    _, _, _, _, record = tf.while_loop(
        lambda t, d, s, target, record: d < num_docs,
        body,
        (tf.constant(0), tf.constant(-1), tf.constant(0), tf.constant(max_num_tokens), record),
    )
    rows = record.stack()
    rows = tf.boolean_mask(rows, rows[:, 0] > 0)
    missing_partner = tf.reduce_any(rows[:, 8] > 0)
    check = tf.debugging.Assert(
        tf.logical_not(missing_partner),
        ["Next-sentence prediction needs at least two documents; this input has only one."],
    )
    with tf.control_dependencies([check]):
        a_lo, a_hi, b_lo, b_hi = (tf.cast(rows[:, i], tf.int32) for i in (1, 2, 3, 4))
    a_lo, a_hi, b_lo, b_hi = _truncate_pair(
        a_lo, a_hi, b_lo, b_hi, max_num_tokens, tf.random.experimental.stateless_fold_in(seed, -1)
    )
    return _pack(
        tokens, word_starts, a_lo, a_hi, b_lo, b_hi, max_seq_length, cls_id, sep_id, pad_id,
        next_sentence_labels=tf.cast(rows[:, 5], tf.int32), a_document=rows[:, 6], b_document=rows[:, 7],
        single_sentence_chunk=rows[:, 9] > 0,
    )


def _truncate_pair(a_lo, a_hi, b_lo, b_hi, max_num_tokens, seed):
    """The original `truncate_seq_pair` in closed form: removing one token at a time from the longer
    segment (B on ties) ends at these lengths; each removed token is from the front with probability 0.5,
    so the number removed from the front is Binomial(removed, 0.5)."""
    la, lb = a_hi - a_lo, b_hi - b_lo
    over = la + lb > max_num_tokens
    half_up = (max_num_tokens + 1) // 2
    new_la = tf.where(over, tf.minimum(la, tf.maximum(max_num_tokens - lb, half_up)), la)
    new_lb = tf.where(over, max_num_tokens - new_la, lb)
    cut_a, cut_b = la - new_la, lb - new_lb
    front = tf.random.stateless_binomial(
        [2, tf.size(la)], seed, tf.cast(tf.stack([cut_a, cut_b]), tf.float32), 0.5, output_dtype=tf.int32
    )
    return a_lo + front[0], a_hi - (cut_a - front[0]), b_lo + front[1], b_hi - (cut_b - front[1])


def _pack(tokens, word_starts, a_lo, a_hi, b_lo, b_hi, seq_length, cls_id, sep_id, pad_id, **extra):
    """`[CLS] A [SEP] B [SEP]` padded to `seq_length`, with segment ids and per-token masking metadata."""
    n = tf.size(a_lo)
    a_index = tf.ragged.range(a_lo, a_hi)
    b_index = tf.ragged.range(b_lo, b_hi)
    a_ids, b_ids = tf.gather(tokens, a_index), tf.gather(tokens, b_index)
    # The first WordPiece left in a segment after truncation starts a word (for whole-word masking).
    first_a = tf.equal(tf.ragged.range(a_hi - a_lo), 0)
    first_b = tf.equal(tf.ragged.range(b_hi - b_lo), 0)
    a_starts = tf.gather(word_starts, a_index) | first_a
    b_starts = tf.gather(word_starts, b_index) | first_b

    def column(value, dtype):
        return tf.fill([n, 1], tf.constant(value, dtype))

    def ragged_like(x, value, dtype):
        return tf.ragged.map_flat_values(lambda v: tf.fill(tf.shape(v), tf.constant(value, dtype)), x)

    input_ids = tf.concat([column(cls_id, tf.int32), a_ids, column(sep_id, tf.int32), b_ids, column(sep_id, tf.int32)], 1)
    segment_ids = tf.concat(
        [column(0, tf.int32), ragged_like(a_ids, 0, tf.int32), column(0, tf.int32),
         ragged_like(b_ids, 1, tf.int32), column(1, tf.int32)], 1
    )
    maskable = tf.concat(
        [column(False, tf.bool), ragged_like(a_ids, True, tf.bool), column(False, tf.bool),
         ragged_like(b_ids, True, tf.bool), column(False, tf.bool)], 1
    )
    starts = tf.concat([column(False, tf.bool), a_starts, column(False, tf.bool), b_starts, column(False, tf.bool)], 1)
    shape = [None, seq_length]
    return {
        "input_ids": input_ids.to_tensor(pad_id, shape=shape),
        "segment_ids": segment_ids.to_tensor(0, shape=shape),
        "input_mask": tf.ones_like(input_ids).to_tensor(0, shape=shape),
        "maskable": maskable.to_tensor(False, shape=shape),
        "word_starts": starts.to_tensor(False, shape=shape),
        **extra,
    }
