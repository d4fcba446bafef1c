"""Our NSP instances beside google-research/bert's `create_pretraining_data.py` on the shipped Gutenberg
excerpts (tests/data/pretraining, three books): instance statistics against the original script run as a
subprocess (../shared/reference relative to the repo root), and where random-next B segments come from
against the original's whole-corpus draw. The real-size comparison is bench/pretraining_data_stats.py."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from bert_keras.pretraining.data import instance_dataset
from bert_keras.pretraining.data.create_pretraining_data import create_pretraining_data
from bert_keras.pretraining.data.tfrecords import read_pretraining_tfrecords
from bert_keras.resources import bert_base_uncased_vocab_file

# ../shared beside the repo root (as in CI); BERT_REFERENCE_DIR overrides it (e.g. for a worktree elsewhere).
REFERENCE = pathlib.Path(os.environ.get(
    "BERT_REFERENCE_DIR",
    pathlib.Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "google-research-bert"))
SEQ, PRED = 64, 10


def _stats(path, mask_id):
    n = tokens = short = random_next = predicted = as_mask = kept = 0
    for b in read_pretraining_tfrecords(path, seq_length=SEQ, max_predictions_per_seq=PRED, batch_size=4096,
                                        repeat=False, shuffle=False, drop_remainder=False):
        b = {k: v.numpy() for k, v in b.items()}
        lengths = b["input_mask"].sum(1)
        weights = b["masked_lm_weights"] > 0
        at = np.take_along_axis(b["input_word_ids"], b["masked_lm_positions"], axis=1)
        n += len(lengths)
        tokens += lengths.sum()
        short += (lengths < SEQ // 2).sum()
        random_next += b["next_sentence_labels"].sum()
        predicted += weights.sum()
        as_mask += (weights & (at == mask_id)).sum()
        kept += (weights & (at == b["masked_lm_ids"])).sum()
    return {"instances": n, "short": 100 * short / n, "random_next": 100 * random_next / n,
            "masked": 100 * predicted / tokens, "mask": 100 * as_mask / predicted,
            "kept": 100 * kept / predicted, "random": 100 * (predicted - as_mask - kept) / predicted}


def test_instance_statistics_match_the_original_script(corpus, tokenizer, tmp_path):
    """Same input and flags as the original (4 passes, ~2,700 instances), tolerances of issue 26:
    instances 2%, short (< max_seq_length / 2) and random-next shares 1 point, masked share and the
    80/10/10 split 0.5 point. Both sides draw one target length per document and pass, so at this size a
    single run varies by about 1.5% in count and 1 point in short share from seed to seed: the seeds are
    fixed, and this catches structural differences; the precise comparison (pooled over seeds, on 5 books)
    is bench/pretraining_data_stats.py."""
    script = REFERENCE / "create_pretraining_data.py"
    if not script.exists():
        pytest.skip(f"google-research/bert's create_pretraining_data.py is not at {script}")
    flags = dict(max_seq_length=SEQ, max_predictions_per_seq=PRED, masked_lm_prob=0.15, random_seed=12345,
                 dupe_factor=4, short_seq_prob=0.1)
    original = tmp_path / "original.tfrecord"
    subprocess.run([sys.executable, str(script), f"--input_file={','.join(corpus)}", f"--output_file={original}",
                    f"--vocab_file={bert_base_uncased_vocab_file()}", "--do_lower_case=True",
                    *(f"--{k}={v}" for k, v in flags.items())],
                   check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    ours = tmp_path / "ours.tfrecord"
    create_pretraining_data(",".join(corpus), str(ours), num_workers=1, vocab_file=bert_base_uncased_vocab_file(),
                            do_lower_case=True, do_whole_word_mask=False, **flags)
    theirs, mine = _stats(str(original), tokenizer.mask_id), _stats(str(ours), tokenizer.mask_id)
    assert theirs["instances"] > 2000
    assert abs(mine["instances"] / theirs["instances"] - 1) < 0.02, (mine, theirs)
    for key, tolerance in (("short", 1.0), ("random_next", 1.0), ("masked", 0.5), ("mask", 0.5), ("kept", 0.5),
                           ("random", 0.5)):
        assert abs(mine[key] - theirs[key]) < tolerance, (key, mine, theirs)


def test_random_next_segments_come_from_the_whole_corpus(corpus, tokenizer):
    """The original draws a random B from any other document: from A's own book with probability
    (documents of that book - 1) / (all documents - 1). A small document shuffle buffer stands for a corpus
    much larger than the buffer: the stream then follows the files, and a partner drawn from the current
    window of the stream comes from A's own book far more often."""
    ds = instance_dataset(corpus, tokenizer, seq_length=SEQ, seed=5, document_shuffle_buffer=4,
                          features=["a_document", "b_document", "next_sentence_labels"]).batch(1000).take(4)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds]
    random_next = np.concatenate([b["next_sentence_labels"] for b in batches]) == 1
    a_book = np.concatenate([b["a_document"] for b in batches])[random_next] >> 40
    b_book = np.concatenate([b["b_document"] for b in batches])[random_next] >> 40
    docs_per_book = np.array([sum(1 for block in open(f, encoding="utf-8").read().split("\n\n") if block.strip())
                              for f in corpus])
    whole_corpus = np.mean((docs_per_book[a_book] - 1) / (docs_per_book.sum() - 1))
    same_book = np.mean(a_book == b_book)
    assert random_next.sum() > 1500
    assert abs(same_book - whole_corpus) < 0.06, (same_book, whole_corpus)
