"""Files that ship inside the package so the demo pre-training runs on a fresh install, offline.

* `demo_corpus_files("train")` / `demo_corpus_files("heldout")`: public-domain Project Gutenberg books
  (license header/footer stripped) in BERT's pre-training format (one sentence per line, blank line between
  documents), made with `python -m bert_keras.data.prepare --max_sentences_per_document=100`.
  train (1.7 MB): Carroll - Alice's Adventures in Wonderland, Through the Looking-Glass; Wells - The Time
  Machine; London - The Call of the Wild; Dickens - A Christmas Carol; Stevenson - Treasure Island;
  Kipling - The Jungle Book; Doyle - The Sign of the Four.
  heldout (0.28 MB, other books and authors, for held-out MLM loss): Irving - The Legend of Sleepy Hollow;
  Conrad - Heart of Darkness.
* `demo_vocab_file()`: an uncased 8k WordPiece vocab trained on the train split with
  `python -m bert_keras.vocab` ([PAD] [UNK] [CLS] [SEP] [MASK] at ids 0..4).
* `bert_base_uncased_vocab_file()`: Google's released bert-base-uncased vocab (Apache-2.0; its special
  tokens sit at 0/100/101/102/103). Always read special ids from the tokenizer, never hard-code them.
"""

from __future__ import annotations

import pathlib

_HERE = pathlib.Path(__file__).parent
_SPLITS = ("train", "heldout")


def demo_corpus_files(split: str = "train") -> list[str]:
    """Paths of the embedded demo corpus split ("train" or "heldout")."""
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {_SPLITS}, got {split!r}")
    return [str(_HERE / "demo_corpus" / f"{split}.txt")]


def demo_vocab_file() -> str:
    """Uncased 8k WordPiece vocab learned on the demo train split (reserved tokens at ids 0..4)."""
    return str(_HERE / "demo_vocab.txt")


def bert_base_uncased_vocab_file() -> str:
    """Google's bert-base-uncased vocab.txt (30,522 tokens), shipped for offline use."""
    return str(_HERE / "bert-base-uncased-vocab.txt")
