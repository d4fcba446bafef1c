"""Token-for-token agreement of `bert_keras.BertTokenizer` with Hugging Face `tokenizers` on real corpora.

Runs every line of the real text under --data_dir (SQuAD v1.1+v2.0 dev contexts and questions, every GLUE
TSV text field, CoNLL-2003 sentences (tokens joined by spaces), all Gutenberg books, WikiText-2 test) through
ours and through `tokenizers.BertWordPieceTokenizer` (the Rust port of the original BERT tokenizer), for the
uncased and the cased vocab, and prints lines checked and mismatching lines per corpus. Our
`tokenize_with_offsets` ids are checked against `tokenize` on the same lines, and every offset span must
lie inside its line.

  python bench/tokenizer_agreement.py [--data_dir ../shared/data] [--show 5]
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bert_keras.tokenizer import BertTokenizer  # noqa: E402

VOCABS = {"uncased": "bert_vocab/bert-base-uncased-vocab.txt", "cased": "bert_vocab/bert-base-cased-vocab.txt"}


def squad_lines(data_dir: pathlib.Path) -> list[str]:
    lines = []
    for name in ("dev-v1.1.json", "dev-v2.0.json"):
        with open(data_dir / "squad" / name, encoding="utf-8") as f:
            for article in json.load(f)["data"]:
                for paragraph in article["paragraphs"]:
                    lines.append(paragraph["context"])
                    lines.extend(qa["question"] for qa in paragraph["qas"])
    return lines


def glue_lines(data_dir: pathlib.Path) -> list[str]:
    """Every field containing a letter, from every GLUE TSV (sentences; ids/labels/scores have none)."""
    lines = []
    for path in sorted(glob.glob(str(data_dir / "glue" / "*" / "*.tsv"))):
        with open(path, encoding="utf-8-sig", newline="") as f:
            for row in csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
                lines.extend(field for field in row if any(c.isalpha() for c in field))
    return lines


def conll_lines(data_dir: pathlib.Path) -> list[str]:
    lines, words = [], []
    for name in ("train.txt", "valid.txt", "test.txt"):
        with open(data_dir / "conll2003" / name, encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if not parts or parts[0] == "-DOCSTART-":
                    if words:
                        lines.append(" ".join(words))
                    words = []
                else:
                    words.append(parts[0])
    if words:
        lines.append(" ".join(words))
    return lines


def text_file_lines(paths: list[str]) -> list[str]:
    lines = []
    for path in sorted(paths):
        with open(path, encoding="utf-8", newline="") as f:
            lines.extend(line.rstrip("\r\n") for line in f)
    return [line for line in lines if line.strip()]


def corpora(data_dir: pathlib.Path) -> dict[str, list[str]]:
    """Every line of the real text corpora, by source."""
    return {
        "squad": squad_lines(data_dir),
        "glue": glue_lines(data_dir),
        "conll2003": conll_lines(data_dir),
        "gutenberg": text_file_lines(glob.glob(str(data_dir / "gutenberg" / "*" / "*.txt"))),
        "wikitext": text_file_lines([str(data_dir / "wikitext-2-raw" / "wiki.test.raw")]),
    }


def hf_reference(vocab_file: str, lower_case: bool):
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(
        vocab_file, lowercase=lower_case, strip_accents=lower_case, clean_text=True, handle_chinese_chars=True
    )


def check_batch(tokenize, with_offsets, lines: list[str], expected: list[list[int]]):
    """Returns (indices of lines whose ids differ from `expected`, number of lines failing offset checks)."""
    batch = tf.constant(lines)
    ids = tokenize(batch)
    ids2, starts, ends = with_offsets(batch)
    values, splits = ids.values.numpy(), ids.row_splits.numpy()
    want = np.fromiter((i for row in expected for i in row), np.int32)
    want_splits = np.concatenate([[0], np.cumsum([len(row) for row in expected])])
    if np.array_equal(values, want) and np.array_equal(splits, want_splits):
        mismatched = []
    else:
        mismatched = [i for i, row in enumerate(expected) if list(values[splits[i] : splits[i + 1]]) != row]
    # Offsets path: same ids, and every piece's byte span is non-empty and inside its line.
    row_of_piece = np.repeat(np.arange(len(lines)), np.diff(starts.row_splits.numpy()))
    nbytes = np.array([len(line.encode("utf-8")) for line in lines])
    s, e = starts.values.numpy(), ends.values.numpy()
    bad_rows = set(row_of_piece[(s >= e) | (e > nbytes[row_of_piece])])
    if not (np.array_equal(ids2.values.numpy(), values) and np.array_equal(ids2.row_splits.numpy(), splits)):
        bad_rows |= {i for i, (a, b) in enumerate(zip(ids2.to_list(), ids.to_list())) if a != b}
    return mismatched, len(bad_rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--show", type=int, default=5, help="mismatching lines to print per corpus")
    parser.add_argument("--only", default=None, help="comma-separated corpora to check (default: all)")
    args = parser.parse_args()
    data_dir = pathlib.Path(args.data_dir)
    texts = corpora(data_dir)
    if args.only:
        texts = {k: v for k, v in texts.items() if k in args.only.split(",")}
    total_lines = total_mismatch = total_offset_errors = 0
    for casing, vocab_rel in VOCABS.items():
        lower_case = casing == "uncased"
        vocab_file = str(data_dir / vocab_rel)
        ours = BertTokenizer(vocab_file, lower_case=lower_case)
        reference = hf_reference(vocab_file, lower_case)
        for corpus, lines in texts.items():
            start = time.time()
            expected = [e.ids for e in reference.encode_batch(lines, add_special_tokens=False)]
            mismatches = offset_errors = 0
            tokens = sum(len(ids) for ids in expected)
            tokenize, with_offsets = tf.function(ours.tokenize), tf.function(ours.tokenize_with_offsets)
            for i in range(0, len(lines), 2048):
                bad_lines, bad_offsets = check_batch(
                    tokenize, with_offsets, lines[i : i + 2048], expected[i : i + 2048]
                )
                offset_errors += bad_offsets
                for j in bad_lines:
                    mismatches += 1
                    if mismatches <= args.show:
                        line, want = lines[i + j], expected[i + j]
                        got = ours.tokenize(line).numpy()
                        print(f"  MISMATCH {casing}/{corpus}: {line[:200]!r}")
                        print(f"    ours: {ours.detokenize(got).numpy().decode()[:300]!r}")
                        print(f"    hf:   {ours.detokenize(want).numpy().decode()[:300]!r}")
            print(
                f"{casing:8s} {corpus:10s} lines {len(lines):7d}  tokens {tokens:9d}  id mismatches {mismatches:5d}  "
                f"offset-path disagreements {offset_errors:4d}  ({time.time() - start:.1f}s)",
                flush=True,
            )
            total_lines += len(lines)
            total_mismatch += mismatches
            total_offset_errors += offset_errors
    print(f"TOTAL lines checked {total_lines}, id mismatches {total_mismatch}, "
          f"offset-path disagreements {total_offset_errors}")


if __name__ == "__main__":
    main()
