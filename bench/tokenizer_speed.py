"""Throughput of `bert_keras.BertTokenizer` vs Hugging Face `tokenizers` (Rust) on the same real text.

Both sides get the whole machine: HF `encode_batch` parallelizes over all cores (rayon); ours runs in a
`tf.data` pipeline with a parallel map over large batches. Every repeat re-tokenizes the same lines; the
script prints the median tokens/s of each and the ratio, after checking that the ids agree line by line.

  python bench/tokenizer_speed.py [--data_dir ../shared/data] [--repeats 5] [--casing uncased]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from tokenizer_agreement import VOCABS, corpora, hf_reference  # noqa: E402

from bert_keras.tokenizer import BertTokenizer  # noqa: E402


def bench_lines(data_dir: pathlib.Path, max_lines: int) -> list[str]:
    """An even mix of every corpus: each contributes its first max_lines/5 lines."""
    texts = corpora(data_dir)
    per_corpus = max_lines // len(texts)
    return [line for lines in texts.values() for line in lines[:per_corpus]]


def ours_dataset(tokenizer: BertTokenizer, lines: list[str], batch_size: int, parallel: int) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices(lines)
        .batch(batch_size)
        .map(tokenizer.tokenize, num_parallel_calls=parallel, deterministic=True)
        .prefetch(2)
    )


def count_tokens(dataset: tf.data.Dataset) -> int:
    return sum(int(tf.size(ids.values)) for ids in dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--casing", choices=sorted(VOCABS), default="uncased")
    parser.add_argument("--max_lines", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=512)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()

    data_dir = pathlib.Path(args.data_dir)
    lines = bench_lines(data_dir, args.max_lines)
    vocab_file = str(data_dir / VOCABS[args.casing])
    lower_case = args.casing == "uncased"
    ours = BertTokenizer(vocab_file, lower_case=lower_case)
    reference = hf_reference(vocab_file, lower_case)
    dataset = ours_dataset(ours, lines, args.batch_size, args.parallel)

    # Correctness first: the ids of both, line by line.
    expected = [e.ids for e in reference.encode_batch(lines, add_special_tokens=False)]
    got = [row for ids in dataset for row in ids.to_list()]
    mismatches = sum(a != b for a, b in zip(got, expected)) + abs(len(got) - len(expected))
    num_tokens = sum(len(ids) for ids in expected)
    print(f"{len(lines)} lines, {sum(len(x.encode()) for x in lines) / 1e6:.1f} MB, {num_tokens} tokens "
          f"({args.casing}); id mismatches vs HF: {mismatches}; cores: {os.cpu_count()}", flush=True)

    ours_rates, hf_rates = [], []
    for repeat in range(args.repeats):
        start = time.perf_counter()
        assert count_tokens(dataset) == num_tokens
        ours_rates.append(num_tokens / (time.perf_counter() - start))
        start = time.perf_counter()
        reference.encode_batch(lines, add_special_tokens=False)
        hf_rates.append(num_tokens / (time.perf_counter() - start))
        print(f"repeat {repeat + 1}/{args.repeats}: ours {ours_rates[-1]:,.0f} tokens/s, "
              f"HF tokenizers {hf_rates[-1]:,.0f} tokens/s", flush=True)
    ours_median, hf_median = statistics.median(ours_rates), statistics.median(hf_rates)
    ratios = [o / h for o, h in zip(ours_rates, hf_rates)]
    print(f"median tokens/s: ours {ours_median:,.0f}  HF tokenizers {hf_median:,.0f}  "
          f"ratio {ours_median / hf_median:.2f}x (median of per-repeat ratios {statistics.median(ratios):.2f}x, "
          f"min {min(ratios):.2f}x, max {max(ratios):.2f}x)")


if __name__ == "__main__":
    np.set_printoptions(linewidth=200)
    main()
