"""Evidence: a WordPiece vocab learned by `bert_keras.pretraining.data.vocab` on Gutenberg books leaves
< 0.1% [UNK] on held-out books (different books and authors, never seen by the learner).

    python bench/vocab_unknown_rate.py [--data_dir=../shared/data] [--vocab_size=8000] [--min_count=10]

Prints the training/held-out split, the learned vocab size and the [UNK] rate per held-out book and overall.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)  # run from a checkout without installing
HELD_OUT_AUTHORS = ("Irving, Washington", "Conrad, Joseph", "Wilde, Oscar")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data"))
    p.add_argument("--vocab_size", type=int, default=8000)
    p.add_argument("--min_count", type=int, default=10)
    p.add_argument("--output_vocab", default=None, help="Also keep the learned vocab here.")
    args = p.parse_args()

    from bert_keras.pretraining.data.prepare import prepare
    from bert_keras.tokenizer import BertTokenizer
    from bert_keras.pretraining.data.vocab import train_vocab, unknown_token_rate
    from bert_keras.vocab_file import write_vocab

    books = sorted(glob.glob(os.path.join(args.data_dir, "gutenberg", "*", "*.txt")))
    held_out = [b for b in books if os.path.basename(os.path.dirname(b)) in HELD_OUT_AUTHORS]
    train = [b for b in books if b not in held_out]
    work = tempfile.mkdtemp(prefix="vocab_unk_")
    train_file = os.path.join(work, "train.txt")
    prepare(train, train_file)
    print(f"train: {len(train)} books ({os.path.getsize(train_file) / 1e6:.1f} MB prepared); "
          f"held out: {len(held_out)} books by {', '.join(HELD_OUT_AUTHORS)}")
    start = time.time()
    vocab = train_vocab(train_file, args.vocab_size, min_count=args.min_count)
    vocab_file = args.output_vocab or os.path.join(work, "vocab.txt")
    write_vocab(vocab, vocab_file)
    print(f"learned {len(vocab)} tokens (target {args.vocab_size}, min_count {args.min_count}) "
          f"in {time.time() - start:.0f}s")
    tokenizer = BertTokenizer(vocab_file, lower_case=True)
    unknown = total = 0
    for book in held_out:
        prepared = os.path.join(work, "held_out.txt")
        prepare([book], prepared)
        rate, pieces = unknown_token_rate(tokenizer, prepared)
        unknown += rate * pieces
        total += pieces
        print(f"  {os.path.relpath(book, os.path.join(args.data_dir, 'gutenberg')):<70} "
              f"{pieces:>8} pieces  [UNK] {100 * rate:.4f}%")
    print(f"held-out overall: {total} WordPieces, [UNK] rate {100 * unknown / total:.4f}% (target < 0.1%)")


if __name__ == "__main__":
    main()
