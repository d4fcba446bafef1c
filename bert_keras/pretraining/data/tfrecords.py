"""Pre-training TFRecords in google-research/bert's format, both ways.

Feature names and dtypes are the original ones, so files written by `create_pretraining_data.py` of
google-research/bert are readable here and ours are readable by its `run_pretraining.py`:
  input_ids, input_mask, segment_ids         int64 [max_seq_length]
  masked_lm_positions, masked_lm_ids          int64 [max_predictions_per_seq]
  masked_lm_weights                           float [max_predictions_per_seq]
  next_sentence_labels                        int64 [1]
The reader maps them to our feature names and can re-mask dynamically (new masks every epoch) by first
restoring the original tokens from `masked_lm_ids`.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import tensorflow as tf

from bert_keras.pretraining.data.documents import expand_input_files
from bert_keras.pretraining.data.instances import SALT_MASKING, element_seed
from bert_keras.pretraining.data.masking import mask_batch, special_token_ids


def feature_spec(seq_length: int, max_predictions_per_seq: int) -> dict:
    return {
        "input_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
        "input_mask": tf.io.FixedLenFeature([seq_length], tf.int64),
        "segment_ids": tf.io.FixedLenFeature([seq_length], tf.int64),
        "masked_lm_positions": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_ids": tf.io.FixedLenFeature([max_predictions_per_seq], tf.int64),
        "masked_lm_weights": tf.io.FixedLenFeature([max_predictions_per_seq], tf.float32),
        "next_sentence_labels": tf.io.FixedLenFeature([1], tf.int64),
    }


def serialize_batch(features: dict) -> Iterator[bytes]:
    """Serialized `tf.train.Example`s (original names) of one batch of our features (numpy or tensors)."""
    arrays = {k: np.asarray(v) for k, v in features.items()}
    for i in range(arrays["input_word_ids"].shape[0]):
        def ints(name):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=arrays[name][i].reshape(-1).tolist()))

        example = tf.train.Example(
            features=tf.train.Features(
                feature={
                    "input_ids": ints("input_word_ids"),
                    "input_mask": ints("input_mask"),
                    "segment_ids": ints("input_type_ids"),
                    "masked_lm_positions": ints("masked_lm_positions"),
                    "masked_lm_ids": ints("masked_lm_ids"),
                    "masked_lm_weights": tf.train.Feature(
                        float_list=tf.train.FloatList(value=arrays["masked_lm_weights"][i].tolist())
                    ),
                    "next_sentence_labels": ints("next_sentence_labels"),
                }
            )
        )
        yield example.SerializeToString()


def continuation_table(tokenizer) -> tf.Tensor:
    """bool [vocab_size]: True for "##" WordPieces (they continue a word), for whole-word re-masking."""
    return tf.constant([token.startswith("##") for token in tokenizer.vocab])


def read_pretraining_tfrecords(
    input_files: str | Sequence[str],
    *,
    seq_length: int,
    max_predictions_per_seq: int,
    batch_size: int,
    tokenizer=None,
    remask: bool = False,
    masked_lm_prob: float = 0.15,
    whole_word_mask: bool = False,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    repeat: bool = True,
    shuffle: bool = True,
    drop_remainder: bool = True,
    shuffle_buffer: int = 2048,
) -> tf.data.Dataset:
    """Batches of our pre-training features (same as `pretraining_dataset`) from original-format TFRecords.

    With `remask=True` (needs `tokenizer`) the stored masks are undone and new ones drawn every epoch;
    `whole_word_mask` then groups WordPieces into words by the "##" continuation prefix, as the original.
    """
    if remask and tokenizer is None:
        raise ValueError("remask=True needs the tokenizer (special ids, vocabulary size, [MASK] id).")
    files = expand_input_files(input_files)
    num_shards, shard_index = 1, 0
    if input_context is not None:
        num_shards, shard_index = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(files))
    if num_shards > 1 and len(files) >= num_shards:
        ds = ds.shard(num_shards, shard_index)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    ds = ds.interleave(
        tf.data.TFRecordDataset, cycle_length=min(4, len(files)), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if num_shards > 1 and len(files) < num_shards:
        ds = ds.shard(num_shards, shard_index)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    spec = feature_spec(seq_length, max_predictions_per_seq)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).enumerate()
    is_continuation = continuation_table(tokenizer) if remask and whole_word_mask else None

    def to_features(batch_number, serialized):
        ex = tf.io.parse_example(serialized, spec)
        ex = {k: tf.cast(v, tf.float32 if v.dtype == tf.float32 else tf.int32) for k, v in ex.items()}
        features = {
            "input_word_ids": ex["input_ids"],
            "input_mask": ex["input_mask"],
            "input_type_ids": ex["segment_ids"],
            "masked_lm_positions": ex["masked_lm_positions"],
            "masked_lm_ids": ex["masked_lm_ids"],
            "masked_lm_weights": ex["masked_lm_weights"],
            "next_sentence_labels": ex["next_sentence_labels"][:, 0],
        }
        if not remask:
            return features
        original = _unmask(ex)
        special = tf.reduce_any(
            tf.equal(original[..., None], tf.constant([tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id])), -1
        )
        maskable = (ex["input_mask"] > 0) & tf.logical_not(special)
        word_starts = None
        if whole_word_mask:
            word_starts = tf.logical_not(tf.gather(is_continuation, original))
        batch_seed = element_seed(seed * 65536 + shard_index, SALT_MASKING, batch_number)
        masked = mask_batch(
            original, ex["input_mask"], maskable, word_starts, batch_seed,
            max_predictions_per_seq=max_predictions_per_seq, masked_lm_prob=masked_lm_prob,
            mask_id=tokenizer.mask_id, vocab_size=tokenizer.vocab_size, special_ids=special_token_ids(tokenizer),
        )
        features.update(masked)
        return features

    return ds.map(to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def _unmask(ex: dict) -> tf.Tensor:
    """Original token ids: the stored input_ids with each predicted position set back to its label."""
    ids = ex["input_ids"]
    positions = ex["masked_lm_positions"]
    valid = ex["masked_lm_weights"] > 0
    rows = tf.broadcast_to(tf.range(tf.shape(ids)[0])[:, None], tf.shape(positions))
    index = tf.boolean_mask(tf.stack([rows, positions], -1), valid)
    return tf.tensor_scatter_nd_update(ids, index, tf.boolean_mask(ex["masked_lm_ids"], valid))
