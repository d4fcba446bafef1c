"""Documents -> next-sentence-prediction instances, the way google-research/bert `create_pretraining_data.py`
builds them, in pure TF ops.

Per document (as the original): a target length `max_seq_length - 3`, or with probability `short_seq_prob`
a uniform length in [2, max_num_tokens]; consecutive sentences are collected until they reach it; segment A
is the first `randint(1, n - 1)` of them; with probability 0.5 (always for a one-sentence chunk) segment B
is a random span from a DIFFERENT document (from a random sentence until the remaining length is filled),
and the unused sentences go back to the document; else B is the rest of the chunk; the pair is truncated
longest-first, one token at a time from the front or back at random.

Vectorised over a whole group of documents, with no per-instance loop: the random draws of a chunk are
keyed by the sentence it starts at (each sentence starts at most one chunk per pass, so the draws of the
instances stay independent), which makes "where does the next chunk start" a function of the start
sentence alone. It is computed for every sentence at once; the chunks actually visited (the path from each
document's first sentence) are then marked by pointer doubling in O(log sentences) vectorised steps.

Difference that keeps memory bounded: the random document is drawn uniformly from the other documents of
the group of `documents_per_group` documents being processed (plus the last document of the previous
group), not from the whole corpus. The documents arrive shuffled (a `document_shuffle_buffer` shuffle), so
the partner is a random other document from a window of the shuffled stream.
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

    @tf.autograph.experimental.do_not_convert
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
    `a_document`, `b_document` (document keys, for checks), `single_sentence_chunk`.
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
    usable = tf.concat([tf.ones([num_docs], tf.bool), partner["valid"][None]], 0) & (doc_sentence_counts > 0)

    def first_reaching(start, doc_end, length):
        """Per element: last sentence e of the shortest run [start, e] whose token count reaches `length`,
        at most the document's last sentence (`doc_end - 1`), at least `start`."""
        j = tf.searchsorted(bounds, tf.gather(bounds, start) + length, side="left")
        return tf.clip_by_value(tf.minimum(j - 1, doc_end - 1), start, tf.maximum(start, doc_end - 1))

    def uniform_int(u, n):
        """floor(u * n) kept in [0, n - 1] (u in [0, 1))."""
        return tf.minimum(tf.cast(u * tf.cast(n, tf.float32), tf.int32), n - 1)

    # Per document: the target length. Per sentence s (as a chunk start): the chunk [s, e], its A length
    # and the coin for a random B, hence where the next chunk of the document starts.
    u_doc = tf.random.stateless_uniform([num_docs, 2], tf.random.experimental.stateless_fold_in(seed, 0))
    short = tf.minimum(2 + uniform_int(u_doc[:, 1], max_num_tokens - 1), max_num_tokens)
    targets = tf.where(u_doc[:, 0] < short_seq_prob, short, max_num_tokens)
    num_starts = sentence_splits[num_docs]  # sentences of the group's own documents (not the partner's)
    s = tf.range(num_starts)
    doc = tf.repeat(tf.range(num_docs), doc_sentence_counts[:num_docs])
    doc_end = tf.gather(sentence_splits, doc + 1)
    target = tf.gather(targets, doc)
    u = tf.random.stateless_uniform([num_starts, 4], tf.random.experimental.stateless_fold_in(seed, 1))
    e = first_reaching(s, doc_end, target)
    n_chunk = e - s + 1
    a_count = tf.where(n_chunk >= 2, 1 + uniform_int(u[:, 0], n_chunk - 1), 1)
    is_random = (n_chunk == 1) | (u[:, 1] < 0.5)
    following = tf.where(is_random, s + a_count, e + 1)
    following = tf.where(following < doc_end, following, num_starts)  # num_starts: "document done"

    # Chunks visited: {f^i(first sentence)}. Doubling: after k rounds `visited` holds f^i for i < 2^k and
    # `jump` is f^(2^k); stop when every jump has left the documents.
    jump = tf.concat([following, [num_starts]], 0)
    first = tf.gather(sentence_splits, tf.range(num_docs))
    visited = tf.scatter_nd(first[:, None], tf.ones([num_docs], tf.int32), [num_starts + 1]) > 0

    def double(visited, jump):
        landed = tf.math.unsorted_segment_max(tf.cast(visited, tf.int32), jump, num_starts + 1) > 0
        return visited | landed, tf.gather(jump, jump)

    visited, _ = tf.while_loop(
        lambda visited, jump: tf.reduce_any(jump[:-1] < num_starts),
        double,
        (visited, jump),
        parallel_iterations=1,
    )
    starts = tf.cast(tf.where(visited[:-1])[:, 0], tf.int32)  # document order, then chunk order

    # The visited chunks' segments.
    doc = tf.gather(doc, starts)
    target = tf.gather(target, starts)
    u = tf.gather(u, starts)
    a_count, is_random, n_chunk = (tf.gather(x, starts) for x in (a_count, is_random, n_chunk))
    a_lo, a_hi = tf.gather(bounds, starts), tf.gather(bounds, starts + a_count)
    b_next_lo, b_next_hi = a_hi, tf.gather(bounds, tf.gather(e, starts) + 1)
    # Random B: a uniformly drawn other usable document (another key), a uniform start sentence in it,
    # sentences until the target is filled.
    candidates = usable[None, :] & tf.not_equal(keys[None, :], keys[:num_docs, None])  # [D, D + 1]
    ranks = tf.cumsum(tf.cast(candidates, tf.int32), axis=1)
    num_candidates = tf.gather(ranks[:, -1], doc)
    check = tf.debugging.Assert(
        tf.reduce_all(tf.logical_not(is_random) | (num_candidates > 0)),
        ["Next-sentence prediction needs at least two documents; this input has only one."],
    )
    with tf.control_dependencies([check]):  # before the partner's (then invalid) indices are used
        pick = uniform_int(u[:, 2], tf.maximum(num_candidates, 1))
    partner_doc = tf.reduce_sum(tf.cast(tf.gather(ranks, doc) <= pick[:, None], tf.int32), axis=1)
    partner_doc = tf.minimum(partner_doc, num_docs)
    p_first = tf.gather(sentence_splits, partner_doc)
    p_end = tf.gather(sentence_splits, partner_doc + 1)
    r = p_first + uniform_int(u[:, 3], tf.maximum(p_end - p_first, 1))
    r_end = first_reaching(r, p_end, target - (a_hi - a_lo))
    b_lo = tf.where(is_random, tf.gather(bounds, r), b_next_lo)
    # (Clamped: where there is no other document, r_end is the end sentinel; those values are never used.)
    b_hi = tf.where(is_random, tf.gather(bounds, tf.minimum(r_end + 1, tf.size(bounds) - 1)), b_next_hi)
    a_document = tf.gather(keys, doc)
    b_document = tf.where(is_random, tf.gather(keys, partner_doc), a_document)
    a_lo, a_hi, b_lo, b_hi = _truncate_pair(
        a_lo, a_hi, b_lo, b_hi, max_num_tokens, tf.random.experimental.stateless_fold_in(seed, 2)
    )
    return _pack(
        tokens, word_starts, a_lo, a_hi, b_lo, b_hi, max_seq_length, cls_id, sep_id, pad_id,
        next_sentence_labels=tf.where(is_random, LABEL_IS_RANDOM, LABEL_IS_NEXT),
        a_document=a_document, b_document=b_document, single_sentence_chunk=n_chunk == 1,
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
    """`[CLS] A [SEP] B [SEP]` padded to `seq_length`, with segment ids and per-token masking metadata;
    dense [I, seq_length] index arithmetic (one gather per output), no ragged concatenation."""
    la, lb = (a_hi - a_lo)[:, None], (b_hi - b_lo)[:, None]
    p = tf.range(seq_length)[None, :]
    in_a = (p >= 1) & (p <= la)
    in_b = (p >= la + 2) & (p <= la + lb + 1)
    maskable = in_a | in_b
    source = tf.where(in_a, a_lo[:, None] + p - 1, tf.where(in_b, b_lo[:, None] + p - la - 2, 0))
    sep = (p == la + 1) | (p == la + lb + 2)
    special = tf.where(p == 0, cls_id, tf.where(sep, sep_id, pad_id))
    # The first WordPiece left in a segment after truncation starts a word (for whole-word masking).
    starts = maskable & (tf.gather(word_starts, source) | (p == 1) | (p == la + 2))
    return {
        "input_ids": tf.where(maskable, tf.gather(tokens, source), special),
        "segment_ids": tf.cast((p >= la + 2) & (p <= la + lb + 2), tf.int32),
        "input_mask": tf.cast(p <= la + lb + 2, tf.int32),
        "maskable": maskable,
        "word_starts": starts,
        **extra,
    }
