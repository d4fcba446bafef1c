"""`pretraining_dataset`: text files -> batches of masked-LM + next-sentence-prediction features, on the fly.

Pure TF ops end to end (no py_function / from_generator), so:
  * the iterator state saves in `tf.train.Checkpoint(iterator=it)` and a restored run continues the stream;
  * the stream depends only on the files and `seed` (shuffles are seeded, every random decision is a
    stateless op seeded by the seed and the element's position in the stream);
  * each worker of a `tf.distribute` strategy reads its own shard (`input_context`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import tensorflow as tf

from bert_keras.pretraining.data import documents as documents_lib
from bert_keras.pretraining.data import instances as instances_lib
from bert_keras.pretraining.data.masking import mask_batch, special_token_ids

if TYPE_CHECKING:
    from bert_keras.tokenizer import BertTokenizer

# What `instance_dataset` can yield per instance (see `instances.build_instances`).
INSTANCE_FEATURES = ("input_ids", "segment_ids", "input_mask", "maskable", "word_starts", "next_sentence_labels",
                     "a_document", "b_document", "single_sentence_chunk")


def instance_dataset(
    input_files: str | Sequence[str],
    tokenizer: BertTokenizer,
    *,
    seq_length: int,
    short_seq_prob: float = 0.1,
    whole_word_mask: bool = False,
    seed: int = 0,
    num_shards: int = 1,
    shard_index: int = 0,
    shuffle: bool = True,
    repeat: bool = True,
    num_epochs: int = 1,
    documents_per_group: int = 32,
    document_shuffle_buffer: int = 1000,
    partner_pool_documents: int = 1024,
    validate: bool = True,
    features: Sequence[str] | None = None,
) -> tf.data.Dataset:
    """Unmasked NSP instances, one per element: dense [seq_length] `input_ids`, `segment_ids`, `input_mask`,
    `maskable`, `word_starts`, and scalars `next_sentence_labels`, `a_document`, `b_document`, `single_sentence_chunk`
    (only `features` when given: every per-instance tensor costs tf.data time in the unbatch/shuffle/batch).
    Passes over the corpus: forever with `repeat`, else `num_epochs` (the original's `dupe_factor`).

    Instances are built per group of `documents_per_group` consecutive documents of the shuffled document
    stream (`document_shuffle_buffer`); a random segment B comes from a uniformly drawn other document
    among all those read so far (the group's others, or a reservoir sample of `partner_pool_documents`
    earlier ones), never from the same document."""
    if seq_length < 5:
        raise ValueError(f"seq_length must be at least 5 ([CLS] A [SEP] B [SEP]), got {seq_length}.")
    unknown = sorted(set(features or ()) - set(INSTANCE_FEATURES))
    if unknown:
        raise ValueError(f"Unknown instance features {unknown}; available: {list(INSTANCE_FEATURES)}.")
    files = documents_lib.expand_input_files(input_files)
    if validate:
        documents_lib.validate_corpus_files(files)
    docs = documents_lib.document_dataset(
        files,
        tokenizer,
        whole_word_mask=whole_word_mask,
        shuffle_files=shuffle,
        seed=seed,
        num_shards=num_shards,
        shard_index=shard_index,
    )
    if shuffle:
        docs = docs.shuffle(document_shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    docs = docs.repeat() if repeat else docs.repeat(num_epochs)
    groups = instances_lib.add_partner_documents(
        docs.ragged_batch(documents_per_group).enumerate(),
        seed * 65536 + shard_index,
        pool_documents=partner_pool_documents,
        partners_per_group=documents_per_group,
    )

    @tf.autograph.experimental.do_not_convert  # no AutoGraph: plain TF ops, much faster tracing
    def build(group_number, group_and_partner):
        group, partner = group_and_partner
        group_seed = instances_lib.element_seed(
            seed * 65536 + shard_index, instances_lib.SALT_INSTANCES, group_number
        )
        built = instances_lib.build_instances(
            group,
            partner,
            group_seed,
            max_seq_length=seq_length,
            short_seq_prob=short_seq_prob,
            cls_id=tokenizer.cls_id,
            sep_id=tokenizer.sep_id,
            pad_id=tokenizer.pad_id,
        )
        return built if features is None else {k: built[k] for k in features}

    return groups.map(build, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()


def pretraining_dataset(
    input_files: str | Sequence[str],
    tokenizer: BertTokenizer,
    *,
    seq_length: int,
    max_predictions_per_seq: int,
    batch_size: int,
    masked_lm_prob: float = 0.15,
    short_seq_prob: float = 0.1,
    whole_word_mask: bool = False,
    seed: int = 0,
    input_context: tf.distribute.InputContext | None = None,
    repeat: bool = True,
    shuffle: bool = True,
    drop_remainder: bool = True,
    documents_per_group: int = 32,
    document_shuffle_buffer: int = 1000,
    instance_shuffle_buffer: int = 2048,
    partner_pool_documents: int = 1024,
    validate: bool = True,
) -> tf.data.Dataset:
    """Batches of BERT pre-training features from text files in the original BERT input format (one
    sentence per line, a blank line between documents; `input_files` is a path, glob, comma list or list).

    Yields dicts: `input_word_ids`, `input_mask`, `input_type_ids` int32 [B, seq_length];
    `masked_lm_positions`, `masked_lm_ids` int32 [B, max_predictions_per_seq]; `masked_lm_weights` float32
    [B, max_predictions_per_seq]; `next_sentence_labels` int32 [B] (0 = B follows A, 1 = B is random).

    `batch_size` is the GLOBAL batch size; with `input_context` each input pipeline gets its per-replica
    batch size and a disjoint shard (whole files when there are enough files, else every n-th document).
    Instances are re-built and re-masked on every pass (dynamic masking): with `repeat=True` each epoch sees
    new segment pairs and new masks. `validate` scans the files once up front to report empty files,
    invalid UTF-8 (by file name) and a corpus with fewer than two documents.
    """
    num_shards, shard_index = 1, 0
    if input_context is not None:
        num_shards, shard_index = input_context.num_input_pipelines, input_context.input_pipeline_id
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = instance_dataset(
        input_files,
        tokenizer,
        seq_length=seq_length,
        short_seq_prob=short_seq_prob,
        whole_word_mask=whole_word_mask,
        seed=seed,
        num_shards=num_shards,
        shard_index=shard_index,
        shuffle=shuffle,
        repeat=repeat,
        documents_per_group=documents_per_group,
        document_shuffle_buffer=document_shuffle_buffer,
        partner_pool_documents=partner_pool_documents,
        validate=validate,
        features=["input_ids", "segment_ids", "input_mask", "maskable", "next_sentence_labels"]
        + (["word_starts"] if whole_word_mask else []),
    )
    if shuffle:
        ds = ds.shuffle(instance_shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = masked_batches(
        ds,
        tokenizer,
        batch_size=batch_size,
        drop_remainder=drop_remainder,
        max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob,
        whole_word_mask=whole_word_mask,
        seed=seed * 65536 + shard_index,
    )
    options = tf.data.Options()
    options.deterministic = True
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def masked_batches(
    instances: tf.data.Dataset,
    tokenizer: BertTokenizer,
    *,
    batch_size: int,
    drop_remainder: bool,
    max_predictions_per_seq: int,
    masked_lm_prob: float,
    whole_word_mask: bool,
    seed: int,
) -> tf.data.Dataset:
    """Batches `instance_dataset` elements and masks them (seeded by `seed` and the batch number)."""
    masking = dict(
        max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob,
        mask_id=tokenizer.mask_id,
        vocab_size=tokenizer.vocab_size,
        special_ids=special_token_ids(tokenizer),
    )

    @tf.autograph.experimental.do_not_convert
    def to_features(batch_number, batch):
        masked = mask_batch(
            batch["input_ids"],
            batch["input_mask"],
            batch["maskable"],
            batch["word_starts"] if whole_word_mask else None,
            instances_lib.element_seed(seed, instances_lib.SALT_MASKING, batch_number),
            **masking,
        )
        return {
            "input_word_ids": masked["input_word_ids"],
            "input_mask": batch["input_mask"],
            "input_type_ids": batch["segment_ids"],
            "masked_lm_positions": masked["masked_lm_positions"],
            "masked_lm_ids": masked["masked_lm_ids"],
            "masked_lm_weights": masked["masked_lm_weights"],
            "next_sentence_labels": batch["next_sentence_labels"],
        }

    batches = instances.batch(batch_size, drop_remainder=drop_remainder).enumerate()
    return batches.map(to_features, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
