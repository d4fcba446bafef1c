"""Offline TFRecords in google-research/bert's format: written by our CLI code, read by the original's
parsing spec, and original-style records read (and re-masked) by ours."""

import collections

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.pretraining.data.create_pretraining_data import create_pretraining_data
from bert_keras.pretraining.data.tfrecords import read_pretraining_tfrecords
from bert_keras.resources import bert_base_uncased_vocab_file
from bert_keras.tokenizer import BertTokenizer

SEQ, PRED = 64, 10

# Verbatim from google-research/bert run_pretraining.py input_fn_builder.
ORIGINAL_NAME_TO_FEATURES = {
    "input_ids": tf.io.FixedLenFeature([SEQ], tf.int64),
    "input_mask": tf.io.FixedLenFeature([SEQ], tf.int64),
    "segment_ids": tf.io.FixedLenFeature([SEQ], tf.int64),
    "masked_lm_positions": tf.io.FixedLenFeature([PRED], tf.int64),
    "masked_lm_ids": tf.io.FixedLenFeature([PRED], tf.int64),
    "masked_lm_weights": tf.io.FixedLenFeature([PRED], tf.float32),
    "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
}


@pytest.fixture(scope="module")
def tokenizer():
    return BertTokenizer(bert_base_uncased_vocab_file())


@pytest.fixture(scope="module")
def shards(test_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tfrecords")
    outputs = [str(out / "part-0.tfrecord"), str(out / "part-1.tfrecord")]
    total = create_pretraining_data(
        ",".join(str(test_data / "pretraining" / f) for f in ("austen_excerpt.txt", "twain_excerpt.txt")),
        ",".join(outputs), num_workers=1,
        vocab_file=bert_base_uncased_vocab_file(), do_lower_case=True, do_whole_word_mask=False,
        max_seq_length=SEQ, max_predictions_per_seq=PRED, random_seed=12345, dupe_factor=2,
        masked_lm_prob=0.15, short_seq_prob=0.1,
    )
    return outputs, total


def _parse_all(files):
    ds = tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, ORIGINAL_NAME_TO_FEATURES))
    records = list(ds.as_numpy_iterator())
    return {k: np.stack([r[k] for r in records]) for k in records[0]}


def test_written_records_follow_the_original_format(shards, tokenizer):
    outputs, total = shards
    per_file = [sum(1 for _ in tf.data.TFRecordDataset(f)) for f in outputs]
    assert sum(per_file) == total and min(per_file) > 100
    r = _parse_all(outputs)
    assert r["input_ids"].shape == (total, SEQ) and r["next_sentence_labels"].shape == (total, 1)
    assert (r["input_ids"][:, 0] == tokenizer.cls_id).all()
    n = r["input_mask"].sum(1)
    valid = r["masked_lm_weights"] > 0
    np.testing.assert_array_equal(valid.sum(1), np.minimum(PRED, np.maximum(1, np.round(n * 0.15))))
    rows = np.broadcast_to(np.arange(total)[:, None], valid.shape)
    at = r["input_ids"][rows, r["masked_lm_positions"]][valid]
    assert abs((at == tokenizer.mask_id).mean() - 0.8) < 0.03
    assert set(np.unique(r["next_sentence_labels"])) == {0, 1}
    # dupe_factor=2: both passes are in the files, with different pairings/masks.
    assert 0.35 < r["next_sentence_labels"].mean() < 0.65


def test_reader_maps_names_and_remasks(shards, tokenizer):
    outputs, total = shards
    stored = _parse_all(outputs[:1])
    plain = next(iter(read_pretraining_tfrecords(
        outputs[:1], seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=64, shuffle=False, repeat=False
    )))
    np.testing.assert_array_equal(plain["input_word_ids"].numpy(), stored["input_ids"][:64])
    np.testing.assert_array_equal(plain["input_type_ids"].numpy(), stored["segment_ids"][:64])
    np.testing.assert_array_equal(plain["next_sentence_labels"].numpy(), stored["next_sentence_labels"][:64, 0])
    assert plain["input_word_ids"].dtype == tf.int32 and plain["masked_lm_weights"].dtype == tf.float32

    remasked = next(iter(read_pretraining_tfrecords(
        outputs[:1], seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=64, shuffle=False, repeat=False,
        tokenizer=tokenizer, remask=True, seed=1,
    )))

    def original(ids, positions, labels, weights):
        ids = ids.copy()
        for i in range(len(ids)):
            v = weights[i] > 0
            ids[i, positions[i][v]] = labels[i][v]
        return ids

    from_file = original(stored["input_ids"][:64], stored["masked_lm_positions"][:64], stored["masked_lm_ids"][:64],
                         stored["masked_lm_weights"][:64])
    from_remask = original(*(remasked[k].numpy() for k in
                             ("input_word_ids", "masked_lm_positions", "masked_lm_ids", "masked_lm_weights")))
    np.testing.assert_array_equal(from_remask, from_file)  # same text underneath
    assert not np.array_equal(remasked["masked_lm_positions"].numpy(), stored["masked_lm_positions"][:64])


def test_reads_records_written_the_original_way(tmp_path, tokenizer):
    """Records built like google-research/bert write_instance_to_example_files (OrderedDict of features)."""
    def create_int_feature(values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=list(values)))

    tokens = ["[CLS]", "the", "[MASK]", "sat", "[SEP]", "on", "the", "mat", "[SEP]"]
    input_ids = [tokenizer.token_to_id(t) for t in tokens]
    input_mask = [1] * len(input_ids)
    segment_ids = [0, 0, 0, 0, 0, 1, 1, 1, 1]
    while len(input_ids) < SEQ:
        input_ids.append(0), input_mask.append(0), segment_ids.append(0)
    positions, ids, weights = [2], [tokenizer.token_to_id("cat")], [1.0]
    while len(positions) < PRED:
        positions.append(0), ids.append(0), weights.append(0.0)
    features = collections.OrderedDict()
    features["input_ids"] = create_int_feature(input_ids)
    features["input_mask"] = create_int_feature(input_mask)
    features["segment_ids"] = create_int_feature(segment_ids)
    features["masked_lm_positions"] = create_int_feature(positions)
    features["masked_lm_ids"] = create_int_feature(ids)
    features["masked_lm_weights"] = tf.train.Feature(float_list=tf.train.FloatList(value=weights))
    features["next_sentence_labels"] = create_int_feature([1])
    path = str(tmp_path / "original.tfrecord")
    with tf.io.TFRecordWriter(path) as w:
        w.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    batch = next(iter(read_pretraining_tfrecords(
        path, seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=1, shuffle=False, repeat=False,
        tokenizer=tokenizer, remask=True, whole_word_mask=True,
    )))
    assert batch["next_sentence_labels"].numpy().tolist() == [1]
    restored = batch["input_word_ids"].numpy()[0].copy()
    v = batch["masked_lm_weights"].numpy()[0] > 0
    restored[batch["masked_lm_positions"].numpy()[0][v]] = batch["masked_lm_ids"].numpy()[0][v]
    assert tokenizer.detokenize(tf.constant([restored[1:4].tolist()])).numpy()[0].decode() == "the cat sat"
    assert v.sum() == 1 and batch["masked_lm_positions"].numpy()[0][0] in (1, 2, 3, 5, 6, 7)
