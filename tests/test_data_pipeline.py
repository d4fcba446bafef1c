"""Statistical and structural evidence for the on-the-fly pre-training pipeline, on real Gutenberg text
(three book excerpts in tests/data/pretraining, 77 documents), plus the original's pairing rules checked
token by token on synthetic documents."""

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.pretraining.data import instance_dataset, pretraining_dataset
from bert_keras.pretraining.data import instances as instances_lib

SEQ = 64
PRED = 10
SHUFFLE = 200  # instance shuffle buffer (the 2048 default takes long to fill on a tiny corpus)


def _take(ds, n):
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(n)]


def _stack(batches):
    return {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}


@pytest.fixture(scope="module")
def instances(corpus, tokenizer):
    ds = instance_dataset(corpus, tokenizer, seq_length=SEQ, seed=3).batch(500)
    return _stack(_take(ds, 5))  # 2500 instances (several passes over the corpus)


@pytest.fixture(scope="module")
def corpus_token_text(corpus, tokenizer):
    """The corpus as one space-joined string of WordPiece ids (an independent tokenization, line by line)."""
    ids = []
    for path in corpus:
        lines = [line for line in open(path, encoding="utf-8").read().split("\n") if line.strip()]
        for row in tokenizer.tokenize(tf.constant(lines)).to_list():
            ids.extend(row)
    return " " + " ".join(map(str, ids)) + " "


def _segments(row_ids, row_types, row_mask):
    n = int(row_mask.sum())
    ids, types = row_ids[:n], row_types[:n]
    a = ids[1 : int((types == 0).sum()) - 1]
    b = ids[int((types == 0).sum()) : n - 1]
    return a, b


def test_instance_layout_and_nsp_balance(instances, tokenizer):
    ids, types, mask = instances["input_ids"], instances["segment_ids"], instances["input_mask"]
    lengths = mask.sum(1)
    assert ids.shape == (2500, SEQ) and lengths.max() <= SEQ
    for i in range(len(ids)):
        n = lengths[i]
        n_a = int((types[i, :n] == 0).sum())
        assert ids[i, 0] == tokenizer.cls_id and ids[i, n_a - 1] == tokenizer.sep_id and ids[i, n - 1] == tokenizer.sep_id
        assert n_a >= 3 and n - n_a >= 2  # both segments non-empty
        assert not np.isin(ids[i, 1 : n_a - 1], [tokenizer.cls_id, tokenizer.sep_id]).any()
        assert (ids[i, n:] == tokenizer.pad_id).all() and (types[i, n:] == 0).all()
    labels = instances["next_sentence_labels"]
    # A one-sentence chunk must take a random B; every other chunk flips a fair coin.
    forced = instances["single_sentence_chunk"]
    assert (labels[forced] == 1).all() and (~forced).sum() > 1500
    assert abs(labels[~forced].mean() - 0.5) < 0.035, labels[~forced].mean()
    # Label 1 <=> B was taken from a different document.
    random_b = instances["a_document"] != instances["b_document"]
    np.testing.assert_array_equal(random_b, labels == 1)
    # Random partners are spread over many documents, not one.
    assert len(np.unique(instances["b_document"][labels == 1])) > 40


def test_actual_next_segment_continues_segment_a(instances, corpus_token_text):
    """Label 0 and not truncated (shorter than the maximum): A followed by B is contiguous corpus text."""
    checked = 0
    for i in np.where(instances["next_sentence_labels"] == 0)[0]:
        if instances["input_mask"][i].sum() >= SEQ:
            continue
        a, b = _segments(instances["input_ids"][i], instances["segment_ids"][i], instances["input_mask"][i])
        assert " " + " ".join(map(str, np.concatenate([a, b]))) + " " in corpus_token_text
        checked += 1
    assert checked > 100


def test_short_sequences_follow_short_seq_prob(instances):
    # Full-length instances dominate; about short_seq_prob=0.1 of documents draw a shorter target.
    full = (instances["input_mask"].sum(1) >= SEQ - 2).mean()
    assert 0.6 < full < 0.97, full


def _synthetic_group(rng, num_docs, sentences, sentence_length):
    """Documents of distinct token ids (token -> (document, offset) is known), as `build_instances` takes them."""
    docs, next_id = [], 1000
    for _ in range(num_docs):
        lengths = rng.integers(*sentence_length, size=rng.integers(*sentences))
        docs.append((np.arange(next_id, next_id + lengths.sum()), lengths))
        next_id += lengths.sum()
    ragged = lambda rows, dtype: tf.ragged.constant([r.tolist() for r in rows], dtype=dtype)
    group = {
        "key": tf.constant(np.arange(num_docs) + 100, tf.int64),
        "token_ids": ragged([d[0] for d in docs], tf.int32),
        "word_starts": ragged([np.ones(len(d[0]), bool) for d in docs], tf.bool),
        "sentence_lengths": ragged([d[1] for d in docs], tf.int32),
    }
    empty = lambda dtype: tf.RaggedTensor.from_row_splits(tf.zeros([0], dtype), tf.zeros([1], tf.int64))
    partner = {"key": tf.zeros([0], tf.int64), "token_ids": empty(tf.int32), "word_starts": empty(tf.bool),
               "sentence_lengths": empty(tf.int32), "valid": tf.zeros([0], tf.bool), "num_seen": tf.constant(0, tf.int64)}
    where = {}  # token id -> (document, offset, starts a sentence, ends a sentence, ends the document)
    for d, (ids, lengths) in enumerate(docs):
        firsts = set(np.cumsum(lengths) - lengths)
        lasts = set(np.cumsum(lengths) - 1)
        for i, t in enumerate(ids):
            where[int(t)] = (d, i, i in firsts, i in lasts, i == len(ids) - 1)
    return group, partner, docs, where


def _run(where, tokens):
    """(document, first offset) of a contiguous run of one document's tokens."""
    info = [where[int(t)] for t in tokens]
    assert len({i[0] for i in info}) == 1 and [i[1] for i in info] == list(range(info[0][1], info[0][1] + len(info)))
    return info[0][0], info


def test_pairing_rules_of_create_pretraining_data():
    """The original's chunking rules, checked token by token on synthetic documents whose ids give away
    their document and position."""
    rng = np.random.default_rng(0)
    # Documents far shorter than the target: no truncation, so each document's instances must cover it
    # exactly, in order: A from the cursor on; an actual B runs to the document's end; after a random B
    # the chunk's unused sentences go back (the next chunk starts right after A).
    group, partner, docs, where = _synthetic_group(rng, 40, (1, 10), (1, 12))
    out = instances_lib.build_instances(group, partner, tf.constant([4, 2], tf.int64), max_seq_length=512,
                                        short_seq_prob=0.0, cls_id=2, sep_id=3, pad_id=0)
    out = {k: v.numpy() for k, v in out.items()}
    cursor = [0] * len(docs)
    for i in range(len(out["input_ids"])):
        n = out["input_mask"][i].sum()
        n_a = (out["segment_ids"][i][:n] == 0).sum()
        a, b = out["input_ids"][i][1 : n_a - 1], out["input_ids"][i][n_a : n - 1]
        d, a_info = _run(where, a)
        assert out["a_document"][i] == 100 + d and a_info[0][1] == cursor[d] and a_info[0][2] and a_info[-1][3]
        bd, b_info = _run(where, b)
        assert b_info[0][2] and b_info[-1][4]  # whole sentences, to the end of B's document
        if out["next_sentence_labels"][i] == 0:
            assert bd == d and b_info[0][1] == a_info[-1][1] + 1 and not out["single_sentence_chunk"][i]
            cursor[d] = b_info[-1][1] + 1
        else:
            assert bd != d and out["b_document"][i] == 100 + bd
            cursor[d] = a_info[-1][1] + 1
    assert cursor == [len(ids) for ids, _ in docs]
    labels = out["next_sentence_labels"]
    assert 0.3 < labels[~out["single_sentence_chunk"]].mean() < 0.7 and out["single_sentence_chunk"].any()
    assert len(set(out["b_document"][labels == 1])) > 20

    # Documents longer than the target (max_seq_length 24 -> 21 tokens): chunks end once they reach the
    # target or the document; an untruncated pair (< 21 tokens) therefore ends its document.
    group, partner, docs, where = _synthetic_group(rng, 30, (4, 16), (1, 9))
    out = instances_lib.build_instances(group, partner, tf.constant([5, 1], tf.int64), max_seq_length=24,
                                        short_seq_prob=0.0, cls_id=2, sep_id=3, pad_id=0)
    out = {k: v.numpy() for k, v in out.items()}
    untruncated = 0
    for i in range(len(out["input_ids"])):
        n = out["input_mask"][i].sum()
        n_a = (out["segment_ids"][i][:n] == 0).sum()
        a, b = out["input_ids"][i][1 : n_a - 1], out["input_ids"][i][n_a : n - 1]
        assert len(a) + len(b) <= 21 and len(a) and len(b)
        d, a_info = _run(where, a)
        bd, b_info = _run(where, b)
        label = out["next_sentence_labels"][i]
        assert (bd == d) == (label == 0)
        if label == 0:
            assert b_info[0][1] > a_info[-1][1]
        if len(a) + len(b) < 21:
            untruncated += 1
            assert a_info[0][2] and a_info[-1][3] and b_info[0][2] and b_info[-1][4]
            if label == 0:
                assert b_info[0][1] == a_info[-1][1] + 1
    assert untruncated > 20 and 0.3 < out["next_sentence_labels"].mean() < 0.7


def test_one_document_without_partner_is_a_clear_error():
    """Without the up-front corpus scan (validate=False), a group that is one document and has no partner
    still fails with the reason, not an index error: a one-sentence chunk must take a random B."""
    group, partner, _, _ = _synthetic_group(np.random.default_rng(1), 1, (1, 2), (3, 6))
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least two documents"):
        instances_lib.build_instances(group, partner, tf.constant([1, 1], tf.int64), max_seq_length=32,
                                      short_seq_prob=0.0, cls_id=2, sep_id=3, pad_id=0)


def test_feature_selection(corpus, tokenizer):
    with pytest.raises(ValueError, match=r"\['bogus'\].*available"):
        instance_dataset(corpus, tokenizer, seq_length=SEQ, features=["input_ids", "bogus"])
    ds = instance_dataset(corpus, tokenizer, seq_length=SEQ, features=["input_ids", "next_sentence_labels"])
    assert sorted(ds.element_spec) == ["input_ids", "next_sentence_labels"]


@pytest.fixture(scope="module")
def masked(corpus, tokenizer):
    ds = pretraining_dataset(corpus, tokenizer, seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=250, seed=5,
                             instance_shuffle_buffer=SHUFFLE)
    return _stack(_take(ds, 8))  # 2000 instances


def test_masking_rates_and_80_10_10(masked, tokenizer):
    lengths = masked["input_mask"].sum(1)
    weights = masked["masked_lm_weights"]
    expected = np.minimum(PRED, np.maximum(1, np.round(lengths * 0.15))).astype(int)
    np.testing.assert_array_equal(weights.sum(1).astype(int), expected)
    valid = weights > 0
    positions = masked["masked_lm_positions"]
    rows = np.broadcast_to(np.arange(len(positions))[:, None], positions.shape)
    inputs_at = masked["input_word_ids"][rows, positions][valid]
    labels = masked["masked_lm_ids"][valid]
    specials = [tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id, tokenizer.mask_id]
    assert not np.isin(labels, [tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id]).any()
    n = valid.sum()
    assert n > 15000
    is_mask = inputs_at == tokenizer.mask_id
    kept = inputs_at == labels
    replaced = ~is_mask & ~kept
    assert abs(is_mask.mean() - 0.8) < 0.01, is_mask.mean()
    assert abs(kept.mean() - 0.1) < 0.008, kept.mean()
    assert abs(replaced.mean() - 0.1) < 0.008, replaced.mean()
    assert not np.isin(inputs_at[replaced], specials).any()
    # Positions: ascending, distinct, inside the sequence; padding slots are 0 with weight 0.
    for i in range(len(positions)):
        p = positions[i][valid[i]]
        assert (np.diff(p) > 0).all() and p.min() >= 1 and p.max() < lengths[i] - 1
        assert (positions[i][~valid[i]] == 0).all() and (masked["masked_lm_ids"][i][~valid[i]] == 0).all()
    # Unmasked positions are untouched: undoing the predictions leaves no [MASK] anywhere.
    restored = masked["input_word_ids"].copy()
    restored[rows[valid], positions[valid]] = labels
    assert not (restored == tokenizer.mask_id).any()
    # Features have the contract's dtypes.
    assert masked["input_word_ids"].dtype == np.int32 and masked["masked_lm_weights"].dtype == np.float32
    assert masked["next_sentence_labels"].shape == (2000,)


def test_whole_word_masking_never_splits_a_word(corpus, tokenizer):
    ds = pretraining_dataset(
        corpus, tokenizer, seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=250, seed=7, whole_word_mask=True,
        instance_shuffle_buffer=SHUFFLE,
    )
    b = _stack(_take(ds, 4))
    is_cont = np.array([t.startswith("##") for t in tokenizer.vocab])
    multi_piece_words = 0
    for i in range(len(b["input_word_ids"])):
        valid = b["masked_lm_weights"][i] > 0
        pos = b["masked_lm_positions"][i][valid]
        original = b["input_word_ids"][i].copy()
        original[pos] = b["masked_lm_ids"][i][valid]
        n = int(b["input_mask"][i].sum())
        chosen = np.zeros(n, bool)
        chosen[pos] = True
        for p in range(1, n - 1):
            if is_cont[original[p]] and original[p - 1] not in (tokenizer.cls_id, tokenizer.sep_id):
                assert chosen[p] == chosen[p - 1], (i, p)  # a "##" piece goes with the piece before it
                multi_piece_words += chosen[p]
        assert valid.sum() <= min(PRED, max(1, round(n * 0.15)))
    assert multi_piece_words > 50
    rate = (b["masked_lm_weights"].sum(1) / np.minimum(PRED, np.maximum(1, np.round(b["input_mask"].sum(1) * 0.15))))
    assert rate.mean() > 0.95  # skipping over-long words rarely leaves the budget short


def test_same_seed_same_stream_and_resume(corpus, tokenizer, tmp_path):
    def make(seed):
        return pretraining_dataset(corpus, tokenizer, seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=16,
                                   seed=seed, instance_shuffle_buffer=50)

    def assert_same(x, y):
        for k in x:
            np.testing.assert_array_equal(np.asarray(x[k]), np.asarray(y[k]))

    first = _take(make(11), 5)
    it = iter(make(11))
    for i in range(2):
        assert_same(next(it), first[i])  # same seed, same stream
    path = tf.train.Checkpoint(iterator=it).save(str(tmp_path / "it"))
    resumed = iter(make(11))
    tf.train.Checkpoint(iterator=resumed).restore(path)
    for i in range(2, 5):
        assert_same(next(resumed), first[i])  # a fresh iterator restored mid-stream continues it
    other = next(iter(make(12)))
    assert not np.array_equal(other["input_word_ids"].numpy(), first[0]["input_word_ids"])


def test_per_worker_shards_are_disjoint(corpus, tokenizer):
    def doc_keys(files, pipelines, index):
        """Keys of every document an instance of this worker draws from (segment A or B)."""
        ds = instance_dataset(files, tokenizer, seq_length=SEQ, num_shards=pipelines, shard_index=index, repeat=False)
        return {k for b in ds.batch(1000) for name in ("a_document", "b_document") for k in b[name].numpy().tolist()}

    # Three files over two workers: whole files (the file index is in the key's high bits).
    file_shards = [{k >> 40 for k in doc_keys(corpus, 2, i)} for i in range(2)]
    assert file_shards == [{0, 2}, {1}]
    # One file over two workers: its documents are dealt out.
    doc_shards = [doc_keys(corpus[:1], 2, i) for i in range(2)]
    assert doc_shards[0] and doc_shards[1] and not doc_shards[0] & doc_shards[1]
    assert len(doc_shards[0] | doc_shards[1]) == 18  # all documents of the Austen excerpt

    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=4)
    ds = pretraining_dataset(corpus, tokenizer, seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=32,
                             input_context=ctx, shuffle=False)
    assert next(iter(ds))["input_word_ids"].shape == (8, SEQ)  # per-replica batch size
