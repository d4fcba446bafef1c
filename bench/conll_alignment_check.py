"""Evidence: WordPiece alignment and windowing on EVERY sentence of the real CoNLL-2003 files.

For the uncased (all-MiniLM-L6-v2 / bert-base-uncased) and Google's cased vocabulary:
1. our pieces per word (`tasks.conll.features.word_pieces` over `bert_keras.tokenizer.BertTokenizer`) equal
   Hugging Face `tokenizers`' BERT WordPiece on pre-tokenized input, sentence by sentence;
2. at each max_seq_length, every word is owned by exactly one window, windows fit, and merging the gold
   label ids back per word reproduces every gold tag sequence.

  python bench/conll_alignment_check.py [--data_dir ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--max_seq_lengths", default="128,32")
    args = parser.parse_args()
    from tokenizers import BertWordPieceTokenizer

    from bert_keras.tokenizer import BertTokenizer
    from bert_keras.tasks.conll import data, features

    vocab_dir = os.path.join(args.data_dir, "bert_vocab")
    vocabs = {"uncased": (os.path.join(vocab_dir, "bert-base-uncased-vocab.txt"), True),
              "cased": (os.path.join(vocab_dir, "bert-base-cased-vocab.txt"), False)}
    labels = data.label_list()
    failures = 0
    for split in ("train", "validation", "test"):
        sentences = data.read_split(os.path.join(args.data_dir, "conll2003"), split)
        gold = [list(s.tags) for s in sentences]
        for name, (vocab_file, lower_case) in vocabs.items():
            start = time.time()
            tokenizer = BertTokenizer(vocab_file, lower_case=lower_case)
            ours = features.word_pieces(sentences, tokenizer)
            reference = BertWordPieceTokenizer(vocab_file, lowercase=lower_case, strip_accents=lower_case)
            encoded = reference.encode_batch([list(s.words) for s in sentences], is_pretokenized=True,
                                             add_special_tokens=False)
            mismatched = 0
            for i, sentence in enumerate(sentences):
                expected = [[] for _ in sentence.words]
                for piece, word in zip(encoded[i].ids, encoded[i].word_ids):
                    expected[word].append(piece)
                expected = [pieces or [tokenizer.unk_id] for pieces in expected]
                if ours[i] != expected:
                    mismatched += 1
                    if mismatched <= 3:
                        print(f"  MISMATCH {sentence.source}: ours {ours[i]} reference {expected}")
            failures += mismatched
            pieces_per_word = np.mean([len(p) for s in ours for p in s])
            print(f"{split:>10} {name:>7}: {len(sentences)} sentences, {sum(len(s.words) for s in sentences)} "
                  f"words, {pieces_per_word:.2f} pieces/word, alignment mismatches vs HF tokenizers: {mismatched}")
            for max_seq_length in map(int, args.max_seq_lengths.split(",")):
                windows = features.build_windows(sentences, tokenizer, labels, max_seq_length=max_seq_length,
                                                 context=max_seq_length // 4)
                assert all(len(w.input_word_ids) <= max_seq_length for w in windows)
                predicted = np.zeros((len(windows), max_seq_length), np.int64)
                for row, w in enumerate(windows):
                    predicted[row, :len(w.label_ids)] = np.maximum(w.label_ids, 0)
                merged = features.merge_predictions(windows, predicted, sentences, labels)  # raises on 0 or 2
                wrong = sum(m != g for m, g in zip(merged, gold))
                failures += wrong
                split_sentences = int((np.bincount([w.sentence_index for w in windows]) > 1).sum())
                print(f"{'':>19} max_seq_length {max_seq_length}: {len(windows)} windows, {split_sentences} "
                      f"sentences split, round-trip tag mismatches: {wrong}  ({time.time() - start:.0f}s)")
    print("ALL SENTENCES OK" if failures == 0 else f"FAILURES: {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
