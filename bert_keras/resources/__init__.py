"""Files that ship inside the package so the demo pre-training runs on a fresh install, offline.

* `demo_corpus_files("train")` / `demo_corpus_files("heldout")`: excerpts of public-domain Project Gutenberg
  books (license header/footer stripped) in BERT's pre-training format (one sentence per line, blank line
  between documents): the first 6 documents of each train book and the first 3 of each held-out book, made
  with `python -m bert_keras.pretraining.data.prepare --max_sentences_per_document=100
  --max_documents_per_file=6` (3).
  Short excerpts of many books rather than long runs of a few, so that a random next segment almost always
  comes from another book, held out as in training: with the previous corpus (8 books cut into 226
  documents) the demo's held-out NSP accuracy stayed at the majority-label rate; with this one it beats it.
  train (1.6 MB, 222 documents, 37 books by 16 authors): Austen (6 novels), Carroll (2), Darwin, Dickens (7),
  Doyle (4), Franklin, Hardy, Kipling, London (2), Melville, Shelley, Stevenson (2), Stoker, Swift, Twain (2),
  Wells (4).
  heldout (0.25 MB, 24 documents, 8 books by 7 authors found nowhere in train): Baum - The Wonderful Wizard
  of Oz; Burnett - The Secret Garden; Conrad - Heart of Darkness, Lord Jim; Hawthorne - The Scarlet Letter;
  Irving - The Legend of Sleepy Hollow; Thoreau - Walden; Wilde - The Picture of Dorian Gray.
* `demo_vocab_file()`: an uncased WordPiece vocab (8,526 tokens) trained on the train split with
  `python -m bert_keras.pretraining.data.vocab --vocab_size=8000 --min_count=2` ([PAD] [UNK] [CLS] [SEP] [MASK]
  at ids 0..4).
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
    """Uncased WordPiece vocab learned on the demo train split (reserved tokens at ids 0..4)."""
    return str(_HERE / "demo_vocab.txt")


def bert_base_uncased_vocab_file() -> str:
    """Google's bert-base-uncased vocab.txt (30,522 tokens), shipped for offline use."""
    return str(_HERE / "bert-base-uncased-vocab.txt")
