"""Input-pipeline speed: our `pretraining_dataset` (tokenize + NSP pairing + dynamic masking) beside
keras-hub's `BertMaskedLMPreprocessor` (tokenize + pack + mask; no NSP pairing) on the same Gutenberg text,
same vocab, sequence length and batch size, in one process. Prints instances/s and real (non-pad)
tokens/s for both and our/keras-hub ratio (medians over repeats).

    python bench/pretraining_input_speed.py [--data_dir=../shared/data] [--books=16] [--repeats=5]

keras-hub is fed the same documents as text chunks of consecutive sentences (about one full sequence each),
so both produce full-length instances and the comparison is per useful token, not per padded example.

Each timing is one whole pass over the corpus from a fresh iterator (buffer fills included, graph tracing
excluded), so ours cannot hide its tokenization in a shuffle buffer filled before the clock starts; the two
pipelines alternate. Besides wall-clock rates it prints instances per CPU-second of the process (all
threads), which a machine shared with other jobs distorts less.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without installing


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data"))
    p.add_argument("--books", type=int, default=16, help="How many Gutenberg books (sorted by path).")
    p.add_argument("--seq_length", type=int, default=128)
    p.add_argument("--max_predictions_per_seq", type=int, default=20)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5, help="Timed passes over the corpus per pipeline.")
    p.add_argument("--whole_word_mask", action="store_true")
    return p.parse_args()


def keras_hub_chunks(corpus_file: str, target_chars: int) -> list[str]:
    """Consecutive sentences of each document joined into chunks of about `target_chars` characters."""
    chunks, current = [], []
    for line in open(corpus_file, encoding="utf-8"):
        line = line.strip()
        if line:
            current.append(line)
        if (not line and current) or sum(len(s) + 1 for s in current) >= target_chars:
            chunks.append(" ".join(current))
            current = []
    if current:
        chunks.append(" ".join(current))
    return chunks


def time_pass(ds: tf.data.Dataset, token_count) -> tuple[float, float, float]:
    """One pass over `ds` from a fresh iterator: (instances/s, non-pad tokens/s, instances per CPU-second)."""
    instances = tokens = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for batch in ds:
        counts = token_count(batch)
        instances += int(tf.shape(counts)[0])
        tokens += int(tf.reduce_sum(counts))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return instances / wall, tokens / wall, instances / cpu


def _load(load: tuple[float, float, float]) -> str:
    return "/".join(f"{x:.1f}" for x in load)


def main():
    args = parse_args()
    import keras_hub

    from bert_keras.pretraining.data import pretraining_dataset
    from bert_keras.pretraining.data.prepare import prepare
    from bert_keras.resources import bert_base_uncased_vocab_file
    from bert_keras.tokenizer import BertTokenizer

    books = sorted(glob.glob(os.path.join(args.data_dir, "gutenberg", "*", "*.txt")))[: args.books]
    if not books:
        raise SystemExit(f"No Gutenberg books under {args.data_dir}/gutenberg (see --data_dir).")
    workdir = tempfile.mkdtemp(prefix="bench_input_")
    corpus = os.path.join(workdir, "corpus.txt")
    report = prepare(books, corpus)
    print(f"corpus: {len(books)} books, {report.documents} documents, {report.sentences} sentences, "
          f"{os.path.getsize(corpus) / 1e6:.1f} MB")
    vocab = bert_base_uncased_vocab_file()
    S, P, B = args.seq_length, args.max_predictions_per_seq, args.batch_size
    load_before = os.getloadavg()

    tokenizer = BertTokenizer(vocab, lower_case=True)
    ours = pretraining_dataset(corpus, tokenizer, seq_length=S, max_predictions_per_seq=P, batch_size=B,
                               whole_word_mask=args.whole_word_mask, seed=0, repeat=False)

    hub_tokenizer = keras_hub.models.BertTokenizer(vocabulary=vocab, lowercase=True)
    hub_pre = keras_hub.models.BertMaskedLMPreprocessor(
        hub_tokenizer, sequence_length=S, mask_selection_rate=0.15, mask_selection_length=P
    )
    chunks = keras_hub_chunks(corpus, target_chars=5 * S)
    hub = (
        tf.data.Dataset.from_tensor_slices(chunks)
        .shuffle(2048, seed=0)
        .batch(B, drop_remainder=True)
        .map(hub_pre, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )

    results = {"ours": [], "keras_hub": []}
    for r in range(args.repeats):
        results["ours"].append(time_pass(ours, lambda b: tf.reduce_sum(b["input_mask"], 1)))
        results["keras_hub"].append(time_pass(hub, lambda b: tf.reduce_sum(tf.cast(b[0]["padding_mask"], tf.int32), 1)))
        print(f"pass {r}: ours {results['ours'][-1][0]:.0f} inst/s, keras-hub {results['keras_hub'][-1][0]:.0f} inst/s",
              flush=True)

    med = {k: [statistics.median(x[i] for x in v) for i in range(3)] for k, v in results.items()}
    print(f"\nseq_length={S} batch={B} max_predictions={P} whole_word_mask={args.whole_word_mask} "
          f"median of {args.repeats} passes over the corpus; load average before {_load(load_before)}, after "
          f"{_load(os.getloadavg())}")
    print(f"{'pipeline':<46}{'instances/s':>12}{'tokens/s':>12}{'inst/CPU-s':>12}")
    for key, name in (("ours", "bert_keras pretraining_dataset (NSP + masking)"),
                      ("keras_hub", "keras-hub BertMaskedLMPreprocessor (no NSP)")):
        print(f"{name:<46}{med[key][0]:>12.0f}{med[key][1]:>12.0f}{med[key][2]:>12.0f}")
    print(f"ratio ours/keras-hub: instances {med['ours'][0] / med['keras_hub'][0]:.2f}x, "
          f"tokens {med['ours'][1] / med['keras_hub'][1]:.2f}x, instances per CPU-second "
          f"{med['ours'][2] / med['keras_hub'][2]:.2f}x")


if __name__ == "__main__":
    main()
