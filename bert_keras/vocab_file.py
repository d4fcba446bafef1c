"""WordPiece vocab files (`vocab.txt`): the one place that reads, counts and writes them.

A vocab file is UTF-8 text split on "\\n"; the token of id i is line i with surrounding whitespace stripped
(so "\\r\\n" endings read the same; a lone "\\r" is not a line break). The newline ending the last line does not
start another token: "a\\nb\\n" and "a\\nb" both hold 2 tokens. These are the ids google-research/bert's
`load_vocab` gives. An empty line is an (empty) token and keeps its id; `BertTokenizer` rejects such a
vocab, naming the line.
"""

from __future__ import annotations

import os
from typing import Sequence

import tensorflow as tf


def read_vocab(path: str | os.PathLike) -> list[str]:
    """The tokens of a vocab file, id = position (any file system `tf.io.gfile` reads, e.g. gs://)."""
    path = os.fspath(path)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"BERT vocab file not found: {path}")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"BERT vocab {path} is not UTF-8 text (byte {e.start}: {e.reason})") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline ending the last line
    return [line.strip() for line in lines]


def count_vocab(path: str | os.PathLike) -> int:
    """Number of tokens in a vocab file (its model's `vocab_size`), counted as `read_vocab` reads them."""
    return len(read_vocab(path))


def write_vocab(vocab: Sequence[str], path: str | os.PathLike) -> None:
    """Writes one token per line, each ending in "\\n"; `read_vocab` reads back exactly `vocab`."""
    for i, token in enumerate(vocab):
        if not token or token != token.strip() or "\n" in token:
            raise ValueError(f"vocab token {i} ({token!r}) is empty, has surrounding whitespace or a newline: "
                             f"it would not read back from {os.fspath(path)}")
    with tf.io.gfile.GFile(os.fspath(path), "w") as f:
        for token in vocab:
            f.write(token + "\n")
