"""Vocab files have one reading: the tokenizer, the checkpoint writers' vocab_size check and pre-training's
model size all see the tokens google-research/bert's `load_vocab` sees; written vocabs read back exactly."""

import pytest
import tensorflow as tf

from bert_keras.checkpoints.checkpoint import CheckpointError, check_vocab
from bert_keras.config import BertConfig
from bert_keras.tokenizer import BertTokenizer
from bert_keras.vocab_file import count_vocab, read_vocab, write_vocab

SPECIALS = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n"
CASES = {
    "newline-terminated": SPECIALS + "hello\n##s\n",
    "no final newline": SPECIALS + "hello\n##s",
    "CRLF endings": SPECIALS.replace("\n", "\r\n") + "hello\r\n##s\r\n",
    "carriage return inside a token": SPECIALS + "hel\rlo\n##s\n",  # not a line break (Python's text mode splits)
    "blank last line": SPECIALS + "hello\n##s\n\n",  # an empty token: the tokenizer refuses it
}


def _original_load_vocab(path: str) -> list[str]:
    """google-research/bert `tokenization.load_vocab`: tokens in id order."""
    tokens = []
    with tf.io.gfile.GFile(path, "r") as reader:
        while True:
            token = reader.readline()
            if not token:
                break
            tokens.append(token.strip())
    return tokens


@pytest.mark.parametrize("case", CASES)
def test_every_reader_sees_the_tokens_of_googles_load_vocab(case, tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_bytes(CASES[case].encode("utf-8"))
    expected = _original_load_vocab(str(path))
    assert len(expected) == (7 if case == "blank last line" else 6)
    # Same ids; TF's readline also drops a "\r" inside a line, the tokenizer keeps it.
    assert [t.replace("\r", "") for t in read_vocab(path)] == expected and count_vocab(path) == len(expected)

    def config(vocab_size):
        return BertConfig(vocab_size=vocab_size, hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                          intermediate_size=8)

    assert check_vocab(path, config(len(expected)), "test") == str(path)
    with pytest.raises(CheckpointError, match=f"has {len(expected)} tokens"):
        check_vocab(path, config(len(expected) + 1), "test")
    if case == "blank last line":
        with pytest.raises(ValueError, match=r"empty tokens on lines \[7\]"):
            BertTokenizer(str(path))
    else:
        assert BertTokenizer(str(path)).vocab == read_vocab(path)


def test_written_vocab_reads_back_and_bad_files_are_named(tmp_path):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "héllo", "##s", "a b"]
    write_vocab(tokens, tmp_path / "vocab.txt")
    assert (tmp_path / "vocab.txt").read_bytes() == ("\n".join(tokens) + "\n").encode("utf-8")
    assert read_vocab(tmp_path / "vocab.txt") == tokens
    for bad in ("", " x", "x\n", "x\ny"):
        with pytest.raises(ValueError, match="vocab token 1 .* would not read back"):
            write_vocab(["[PAD]", bad], tmp_path / "bad.txt")
    (tmp_path / "latin1.txt").write_bytes("[PAD]\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.txt is not UTF-8 text"):
        read_vocab(tmp_path / "latin1.txt")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        count_vocab(tmp_path / "missing.txt")
