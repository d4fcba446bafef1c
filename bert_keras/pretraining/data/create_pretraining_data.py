"""Offline mode for large corpora: text -> sharded TFRecords in google-research/bert's format.

    python -m bert_keras.pretraining.data.create_pretraining_data \\
      --input_file='corpus/*.txt' --output_file=out/shard-0.tfrecord,out/shard-1.tfrecord \\
      --vocab_file=vocab.txt --do_lower_case --max_seq_length=128 --max_predictions_per_seq=20 \\
      --masked_lm_prob=0.15 --random_seed=12345 --dupe_factor=5 --short_seq_prob=0.1 [--do_whole_word_mask]

Same flag names as the original script. Each output file is written by its own process from its own
shard of the input (whole input files when there are enough, else every n-th document), streaming:
memory is bounded by the document group, the shuffle buffers and the reservoir of earlier documents that
random next segments are drawn from, not by the corpus size (the original holds every document of its inputs
in RAM). A shard draws its random next segments from its own documents only. Instances are built and masked by the same code as the on-the-fly
`pretraining_dataset`; `read_pretraining_tfrecords` reads the files back (and can re-mask them).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time

_LOG = logging.getLogger("create_pretraining_data")


def write_shard(
    input_files: list[str],
    output_file: str,
    shard_index: int,
    num_shards: int,
    *,
    vocab_file: str,
    do_lower_case: bool,
    do_whole_word_mask: bool,
    max_seq_length: int,
    max_predictions_per_seq: int,
    random_seed: int,
    dupe_factor: int,
    masked_lm_prob: float,
    short_seq_prob: float,
    log_every: int = 5000,
) -> int:
    """Writes shard `shard_index` of `num_shards` to `output_file`; returns the number of instances."""
    import tensorflow as tf

    from bert_keras.pretraining.data.pretraining_dataset import instance_dataset, masked_batches
    from bert_keras.pretraining.data.tfrecords import serialize_batch
    from bert_keras.tokenizer import BertTokenizer

    tokenizer = BertTokenizer(vocab_file, lower_case=do_lower_case)
    instances = instance_dataset(
        input_files,
        tokenizer,
        seq_length=max_seq_length,
        short_seq_prob=short_seq_prob,
        whole_word_mask=do_whole_word_mask,
        seed=random_seed,
        num_shards=num_shards,
        shard_index=shard_index,
        repeat=False,
        num_epochs=dupe_factor,
        validate=False,
    )
    batches = masked_batches(
        instances.shuffle(2048, seed=random_seed),
        tokenizer,
        batch_size=256,
        drop_remainder=False,
        max_predictions_per_seq=max_predictions_per_seq,
        masked_lm_prob=masked_lm_prob,
        whole_word_mask=do_whole_word_mask,
        seed=random_seed * 65536 + shard_index,
    ).prefetch(2)
    tf.io.gfile.makedirs(os.path.dirname(os.path.abspath(output_file)))
    written, next_log, start = 0, log_every, time.time()
    with tf.io.TFRecordWriter(output_file) as writer:
        for batch in batches:
            for record in serialize_batch({k: v.numpy() for k, v in batch.items()}):
                writer.write(record)
            written += int(batch["input_word_ids"].shape[0])
            if written >= next_log:
                _LOG.info("%s: %d instances (%.0f/s)", output_file, written, written / (time.time() - start))
                next_log += log_every
    _LOG.info("%s: done, %d instances in %.1fs", output_file, written, time.time() - start)
    return written


def _write_shard_star(args_kwargs):
    args, kwargs = args_kwargs
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    return write_shard(*args, **kwargs)


def create_pretraining_data(input_file, output_file, *, num_workers: int | None = None, **options) -> int:
    """Expands inputs/outputs (globs, comma lists), checks the corpus, and writes all shards in parallel."""
    from bert_keras.pretraining.data.documents import expand_input_files, validate_corpus_files

    inputs = expand_input_files(input_file)
    validate_corpus_files(inputs)
    outputs = [o.strip() for o in str(output_file).split(",") if o.strip()]
    if not outputs:
        raise ValueError("--output_file is empty.")
    jobs = [((inputs, out, i, len(outputs)), options) for i, out in enumerate(outputs)]
    workers = max(1, min(num_workers or os.cpu_count() or 1, len(outputs)))
    _LOG.info("%d input file(s) -> %d output shard(s) with %d process(es).", len(inputs), len(outputs), workers)
    if workers == 1:
        return sum(_write_shard_star(job) for job in jobs)
    # "spawn": TensorFlow is not fork-safe once initialised.
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        return sum(pool.map(_write_shard_star, jobs))


def main(argv=None) -> None:
    from absl import app, flags

    flags.DEFINE_string("input_file", None, "Input text file(s): path, glob or comma list.", required=True)
    flags.DEFINE_string("output_file", None, "Output TFRecord file(s), comma list: one shard per file.",
                        required=True)
    flags.DEFINE_string("vocab_file", None, "The vocabulary file of the BERT model.", required=True)
    flags.DEFINE_bool("do_lower_case", True, "Lower-case the input (uncased models).")
    flags.DEFINE_bool("do_whole_word_mask", False, "Mask all WordPieces of a word together.")
    flags.DEFINE_integer("max_seq_length", 128, "Maximum sequence length.")
    flags.DEFINE_integer("max_predictions_per_seq", 20, "Maximum number of masked LM predictions per sequence.")
    flags.DEFINE_integer("random_seed", 12345, "Random seed for data generation.")
    flags.DEFINE_integer("dupe_factor", 10, "Number of times to duplicate the input data (with different masks).")
    flags.DEFINE_float("masked_lm_prob", 0.15, "Masked LM probability.")
    flags.DEFINE_float("short_seq_prob", 0.1, "Probability of creating sequences shorter than the maximum length.")
    flags.DEFINE_integer("num_workers", None, "Parallel processes (default: CPU count, at most one per output).")
    values = flags.FLAGS

    def run(_):
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        total = create_pretraining_data(
            values.input_file,
            values.output_file,
            num_workers=values.num_workers,
            vocab_file=values.vocab_file,
            do_lower_case=values.do_lower_case,
            do_whole_word_mask=values.do_whole_word_mask,
            max_seq_length=values.max_seq_length,
            max_predictions_per_seq=values.max_predictions_per_seq,
            random_seed=values.random_seed,
            dupe_factor=values.dupe_factor,
            masked_lm_prob=values.masked_lm_prob,
            short_seq_prob=values.short_seq_prob,
        )
        _LOG.info("Wrote %d instances in total.", total)

    app.run(run, argv)


if __name__ == "__main__":
    main()
