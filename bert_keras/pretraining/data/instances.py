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

The random document is drawn uniformly from every document read so far (the group's others, and a
bounded reservoir sample of all earlier ones: `add_partner_documents`), not from the whole corpus held in
memory as in the original; the group alone (a window of the shuffled stream) put B in A's own book far
more often once the corpus outgrows the shuffle buffer (bench/pretraining_data_stats.py).
"""

from __future__ import annotations

import tensorflow as tf

LABEL_IS_NEXT = 0  # B is the actual next segment (original BERT: next_sentence_labels 0)
LABEL_IS_RANDOM = 1  # B is a random segment from another document

# Salts that make the stateless random streams of different decisions independent.
SALT_INSTANCES = 1
SALT_MASKING = 3
SALT_PARTNERS = 5


def element_seed(seed: tf.Tensor, salt: int, counter: tf.Tensor) -> tf.Tensor:
    """A stateless-op seed [2] for element `counter` of a stream: same seed + same element -> same draws."""
    base = tf.stack([tf.cast(seed, tf.int64), tf.constant(salt, tf.int64)])
    return tf.random.experimental.stateless_fold_in(base, tf.cast(counter, tf.int64))


def add_partner_documents(
    groups: tf.data.Dataset, seed: int, *, pool_documents: int = 1024, partners_per_group: int = 32
) -> tf.data.Dataset:
    """(group number, group) -> (group number, (group, partners)): `partners_per_group` documents drawn
    uniformly from a reservoir sample of `pool_documents` of ALL documents seen before the group, plus
    `num_seen`, how many that sample stands for.

    Why: the original draws a random-next B from the whole corpus. Drawing it from the current group only
    (a window of the shuffled stream, which follows the files once the corpus outgrows the shuffle buffer)
    puts B in A's own book far more often than a whole-corpus draw (bench/pretraining_data_stats.py
    measures it). A reservoir keeps every seen document equally likely at bounded memory; it is scan
    state, so it is checkpointed with the iterator, and its draws are stateless (seed, group number)."""
    pool_size, num_partners = int(pool_documents), int(partners_per_group)
    if pool_size < 1 or num_partners < 1:
        raise ValueError(f"pool_documents and partners_per_group must be >= 1, got {pool_size}, {num_partners}.")

    @tf.autograph.experimental.do_not_convert
    def step(pool, numbered):
        group_number, group = numbered
        group_seed = element_seed(seed, SALT_PARTNERS, group_number)
        fill = tf.size(pool["key"])
        rows = {
            name: tf.RaggedTensor.from_row_splits(pool[name], pool[splits], validate=False)
            for name, splits in (("token_ids", "token_splits"), ("word_starts", "token_splits"),
                                 ("sentence_lengths", "sentence_splits"))
        }
        # Partners: uniform draws (with replacement) from the reservoir; none while it is empty.
        count = tf.where(fill > 0, num_partners, 0)
        pick = tf.random.stateless_uniform(
            [count], tf.random.experimental.stateless_fold_in(group_seed, 0), 0, tf.maximum(fill, 1), tf.int32
        )
        partners = {name: tf.gather(value, pick) for name, value in rows.items()}
        partners["key"] = tf.gather(pool["key"], pick)
        partners["valid"] = tf.ones([count], tf.bool)
        partners["num_seen"] = pool["num_seen"]
        # Reservoir update (algorithm R, vectorised): the i-th document of the stream takes slot i while
        # the pool is not full, else a uniform slot in [0, i] if that is < pool_size; later documents win.
        num_docs = tf.shape(group["key"], out_type=tf.int32)[0]
        index = pool["num_seen"] + tf.range(num_docs, dtype=tf.int64)
        u = tf.random.stateless_uniform([num_docs], tf.random.experimental.stateless_fold_in(group_seed, 1),
                                        dtype=tf.float64)
        slot = tf.where(index < pool_size, index, tf.cast(tf.floor(u * tf.cast(index + 1, tf.float64)), tf.int64))
        new_fill = tf.minimum(pool_size, fill + num_docs)
        take = slot < tf.cast(new_fill, tf.int64)
        winner = tf.math.unsorted_segment_max(
            tf.where(take, tf.range(num_docs), -1), tf.where(take, tf.cast(slot, tf.int32), new_fill), new_fill + 1
        )[:new_fill]
        select = tf.where(winner >= 0, fill + winner, tf.range(new_fill))
        new_pool = {"key": tf.gather(tf.concat([pool["key"], group["key"]], 0), select),
                    "num_seen": pool["num_seen"] + tf.cast(num_docs, tf.int64)}
        for name in ("token_ids", "word_starts", "sentence_lengths"):
            kept = tf.gather(tf.concat([rows[name], group[name]], 0), select)
            new_pool[name] = kept.flat_values
            new_pool["sentence_splits" if name == "sentence_lengths" else "token_splits"] = kept.row_splits
        return new_pool, (group_number, (group, partners))

    initial = {
        "key": tf.zeros([0], tf.int64),
        "token_ids": tf.zeros([0], tf.int32),
        "word_starts": tf.zeros([0], tf.bool),
        "token_splits": tf.zeros([1], tf.int64),
        "sentence_lengths": tf.zeros([0], tf.int32),
        "sentence_splits": tf.zeros([1], tf.int64),
        "num_seen": tf.constant(0, tf.int64),
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
    `partner`: documents a random B may also come from (ragged-batched like the group, plus bool `valid`
    and `num_seen`, how many earlier documents they stand for; see `add_partner_documents`);
    `seed` is the group's stateless seed [2] (`element_seed(seed, SALT_INSTANCES, group_number)`).

    Returns dense [I, max_seq_length] `input_ids`, `segment_ids`, `input_mask`, `maskable` (True on
    WordPieces, False on [CLS]/[SEP]/padding), `word_starts`, and [I] `next_sentence_labels`,
    `a_document`, `b_document` (document keys, for checks), `single_sentence_chunk`.
    """
    max_num_tokens = max_seq_length - 3
    num_docs = tf.shape(group["key"], out_type=tf.int32)[0]
    keys = tf.concat([group["key"], partner["key"]], 0)
    tokens = tf.concat([group["token_ids"].flat_values, partner["token_ids"].flat_values], 0)
    word_starts = tf.concat([group["word_starts"].flat_values, partner["word_starts"].flat_values], 0)
    sentence_lengths = tf.concat(
        [group["sentence_lengths"].flat_values, partner["sentence_lengths"].flat_values], 0
    )
    doc_sentence_counts = tf.cast(
        tf.concat([group["sentence_lengths"].row_lengths(), partner["sentence_lengths"].row_lengths()], 0), tf.int32
    )
    # sentence_splits[d]: global index of document d's first sentence; bounds[g]: first token of sentence g.
    sentence_splits = tf.concat([[0], tf.cumsum(doc_sentence_counts)], 0)
    bounds = tf.concat([[0], tf.cumsum(sentence_lengths)], 0)
    usable = tf.concat([tf.ones([num_docs], tf.bool), partner["valid"]], 0) & (doc_sentence_counts > 0)
    num_all = tf.size(keys)

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
    u = tf.random.stateless_uniform([num_starts, 5], tf.random.experimental.stateless_fold_in(seed, 1))
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
    # sentences until the target is filled. The document is one of the group's others or, with probability
    # num_seen / (num_seen + their number), one of the partners (a uniform sample of all earlier
    # documents): so every document read so far is equally likely, as the original's whole-corpus draw.
    candidates = usable[None, :] & tf.not_equal(keys[None, :], keys[:num_docs, None])  # [D, D + partners]
    in_group = tf.range(num_all) < num_docs
    group_candidates = tf.gather(candidates & in_group[None, :], doc)  # per instance
    partner_candidates = tf.gather(candidates & tf.logical_not(in_group)[None, :], doc)
    num_group = tf.reduce_sum(tf.cast(group_candidates, tf.float64), axis=1)
    num_seen = tf.cast(partner["num_seen"], tf.float64)
    use_partner = tf.reduce_any(partner_candidates, axis=1) & (
        tf.cast(u[:, 4], tf.float64) * (num_seen + num_group) < num_seen
    )
    ranks = tf.cumsum(tf.cast(tf.where(use_partner[:, None], partner_candidates, group_candidates), tf.int32), 1)
    num_candidates = ranks[:, -1]
    check = tf.debugging.Assert(
        tf.reduce_all(tf.logical_not(is_random) | (num_candidates > 0)),
        ["Next-sentence prediction needs at least two documents; this input has only one."],
    )
    with tf.control_dependencies([check]):  # before the partner's (then invalid) indices are used
        pick = uniform_int(u[:, 2], tf.maximum(num_candidates, 1))
    partner_doc = tf.reduce_sum(tf.cast(ranks <= pick[:, None], tf.int32), axis=1)
    partner_doc = tf.minimum(partner_doc, num_all - 1)
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
