"""WordPiece vocab training: reserved tokens first, and few [UNK] on books it never saw."""

from bert_keras.pretraining.data.vocab import RESERVED_TOKENS, train_vocab, unknown_token_rate
from bert_keras.resources import demo_corpus_files, demo_vocab_file
from bert_keras.tokenizer import BertTokenizer
from bert_keras.vocab_file import write_vocab


def test_trained_vocab_covers_a_held_out_book(test_data, tmp_path):
    """Small version of bench/vocab_unknown_rate.py: learn on two books' excerpts, read a third."""
    train = [str(test_data / "pretraining" / f) for f in ("austen_excerpt.txt", "stoker_excerpt.txt")]
    vocab = train_vocab(train, 2000, min_count=2)
    assert vocab[: len(RESERVED_TOKENS)] == list(RESERVED_TOKENS)
    assert 1000 < len(vocab) <= 2000 and len(set(vocab)) == len(vocab)
    path = str(tmp_path / "vocab.txt")
    write_vocab(vocab, path)
    tokenizer = BertTokenizer(path, lower_case=True)
    assert (tokenizer.pad_id, tokenizer.unk_id, tokenizer.cls_id, tokenizer.sep_id, tokenizer.mask_id) == (0, 1, 2, 3, 4)
    rate, pieces = unknown_token_rate(tokenizer, str(test_data / "pretraining" / "twain_excerpt.txt"))
    assert pieces > 10000 and rate < 0.002, rate


def test_shipped_demo_vocab_on_held_out_books():
    tokenizer = BertTokenizer(demo_vocab_file(), lower_case=True)
    assert tokenizer.vocab[:5] == list(RESERVED_TOKENS) and tokenizer.vocab_size > 5000
    rate, pieces = unknown_token_rate(tokenizer, demo_corpus_files("heldout"))
    assert pieces > 50000 and rate < 0.001, rate
