"""Corpus preparation (sentence splitting, Gutenberg cleanup) and bad input, on real Gutenberg text."""

import numpy as np
import pytest

from bert_keras.pretraining.data import instance_dataset
from bert_keras.pretraining.data.documents import expand_input_files, validate_corpus_files
from bert_keras.pretraining.data.prepare import prepare
from bert_keras.pretraining.data.sentences import split_sentences
from bert_keras.resources import bert_base_uncased_vocab_file, demo_corpus_files
from bert_keras.tokenizer import BertTokenizer


def test_sentence_splitter_rules():
    text = (
        'Mr. Holmes said, "Come in!" He sat down. H. G. Wells wrote it... Then? Yes. It cost 3.5 dollars. '
        "The U.S. Navy came. ‘Oh dear!’ thought Alice."
    )
    assert split_sentences(text) == [
        'Mr. Holmes said, "Come in!"',
        "He sat down.",
        "H. G. Wells wrote it...",
        "Then?",
        "Yes.",
        "It cost 3.5 dollars.",
        "The U.S. Navy came.",
        "‘Oh dear!’ thought Alice.",
    ]
    assert split_sentences("  hard-wrapped\nline one.  Line\r\n two. ") == ["hard-wrapped line one.", "Line two."]


def test_prepare_gutenberg_book(test_data, tmp_path):
    """A real Gutenberg file (CRLF, license header and footer) plus a wiki-style file with a bad byte."""
    wiki = tmp_path / "wiki.txt"
    wiki.write_bytes(
        b" = Valkyria Chronicles = \n\nSenj\xc3\xb4 no Valkyria 3 is a game. It was released in 2011.\n\n"
        b" = Gameplay = \n\nThe game plays like its predecessors. Bad byte \xff here.\n"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\n")
    out = tmp_path / "corpus.txt"
    report = prepare([str(test_data / "pretraining" / "moreau_raw_gutenberg.txt"), str(wiki), str(empty)], str(out))
    text = out.read_text(encoding="utf-8")
    assert "Project Gutenberg" not in text and "\r" not in text and "gutenberg.org" not in text
    assert "I DO not propose to add anything to what has already been written" in text
    assert report.invalid_utf8 == {str(wiki): 1} and report.empty_files == [str(empty)]
    docs = [d.split("\n") for d in text.strip("\n").split("\n\n")]
    assert ["Senjô no Valkyria 3 is a game.", "It was released in 2011."] in docs
    assert ["The game plays like its predecessors.", "Bad byte \ufffd here."] in docs
    assert all(line.strip() for doc in docs for line in doc)
    assert report.documents == len(docs)


def test_prepare_strips_a_repeated_header_with_wrapped_markers(test_data, tmp_path):
    """Gutenberg #148 (Franklin) repeats its header, and its start and end markers wrap onto a second line:
    all of the header goes, the book's first lines stay."""
    out = tmp_path / "corpus.txt"
    prepare([str(test_data / "pretraining" / "franklin_repeated_header.txt")], str(out))
    text = out.read_text(encoding="utf-8")
    for boilerplate in ("gutenberg", "ebook", "***", "title:", "release date", "first released"):
        assert boilerplate not in text.lower(), boilerplate
    assert text.startswith("THE AUTOBIOGRAPHY OF BENJAMIN FRANKLIN")
    assert "Benjamin Franklin was born in Milk Street, Boston, on January 6, 1706." in text
    assert text.rstrip().endswith("most famous piece of literature produced in Colonial America.")


def test_prepare_keeps_the_first_documents_of_each_file(test_data, tmp_path):
    book = str(test_data / "pretraining" / "moreau_raw_gutenberg.txt")
    whole, excerpt = tmp_path / "whole.txt", tmp_path / "excerpt.txt"
    prepare([book], str(whole), max_sentences_per_document=5)
    report = prepare([book, book], str(excerpt), max_sentences_per_document=5, max_documents_per_file=2)
    first_two = "\n\n".join(whole.read_text(encoding="utf-8").split("\n\n")[:2]) + "\n\n"
    assert report.documents == 4 and excerpt.read_text(encoding="utf-8") == first_two * 2


def test_expand_input_files(test_data, tmp_path):
    files = sorted(str(p) for p in (test_data / "pretraining").glob("*_excerpt.txt"))
    assert expand_input_files(str(test_data / "pretraining" / "*_excerpt.txt")) == files
    assert expand_input_files(",".join(files[:2])) == files[:2]
    odd = tmp_path / "Carroll, Lewis.txt"  # a comma inside a file name
    odd.write_text("a\n")
    assert expand_input_files(f"{odd},{files[0]}") == [str(odd), files[0]]
    with pytest.raises(FileNotFoundError, match="nothing.txt"):
        expand_input_files(f"{files[0]},{tmp_path}/nothing.txt")


def test_bad_input_is_reported_by_file(tmp_path):
    tokenizer = BertTokenizer(bert_base_uncased_vocab_file())
    single = tmp_path / "single.txt"
    single.write_text("One document only.\nStill the same one.\n")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n   \n")
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"1 document\(s\).*single\.txt.*at least two documents"):
        instance_dataset([str(single), str(blank), str(empty)], tokenizer, seq_length=32)

    # Non-UTF-8 bytes, CRLF, a blank-only file and a line far longer than the sequence: no crash.
    messy = tmp_path / "messy.txt"
    long_line = " ".join(["word"] * 500) + "."
    messy.write_bytes(
        b"First doc \xe9\xff line.\r\nSecond line.\r\n\r\n" + long_line.encode() + b"\r\nShort one.\r\n\r\nThird doc.\n"
    )
    report = validate_corpus_files([str(messy), str(blank), str(empty)])
    assert report.invalid_utf8 == {str(messy): 2} and report.num_documents == 3
    assert sorted(report.empty_files) == sorted([str(blank), str(empty)])
    batch = next(iter(instance_dataset([str(messy), str(blank), str(empty)], tokenizer, seq_length=32).batch(40)))
    lengths = batch["input_mask"].numpy().sum(1)
    assert lengths.max() == 32 and (lengths <= 32).all()
    # The bytes became U+FFFD, which BERT's text cleaning drops: the words around them survive.
    text = " ".join(t.decode() for t in tokenizer.detokenize(batch["input_ids"]).numpy())
    assert "first doc line" in text and "third doc" in text


def test_demo_corpus_ships_two_splits():
    train, heldout = demo_corpus_files("train")[0], demo_corpus_files("heldout")[0]
    train_report = validate_corpus_files([train])
    heldout_report = validate_corpus_files([heldout])
    assert train_report.num_documents > 200 and heldout_report.num_documents > 20
    assert not train_report.invalid_utf8 and not heldout_report.invalid_utf8
    train_text = open(train, encoding="utf-8").read()
    for boilerplate in ("START OF THE PROJECT GUTENBERG", "START OF THIS PROJECT GUTENBERG", "END OF THE PROJECT",
                        "END OF THIS PROJECT", "Gutenberg License", "gutenberg.org/license", "Release Date:",
                        "First Released:"):  # license header and footer stripped (credit lines may stay)
        assert boilerplate.lower() not in train_text.lower()
    assert "Alice" in train_text and "Ichabod" not in train_text
    assert "Ichabod" in open(heldout, encoding="utf-8").read()
    sizes = np.array([len(d) for d in train_text.split("\n\n")])
    assert sizes.max() < 40000  # documents are chapters or 100-sentence pieces, not whole books
    with pytest.raises(ValueError, match="split"):
        demo_corpus_files("test")
