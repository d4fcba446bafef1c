"""Word -> WordPiece alignment (against Hugging Face's tokenizer) and windowing with one prediction per word."""

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.tasks.conll import data, features

SPLITS = ("train.txt", "valid.txt", "test.txt")


@pytest.fixture(scope="module")
def excerpt(test_data):
    return [s for name in SPLITS for s in data.read_conll(test_data / "conll" / name)]


def vocab_and_case(name, test_data, minilm_dir):
    if name == "uncased":
        return str(minilm_dir / "vocab.txt"), True
    return str(test_data / "conll" / "bert-base-cased-vocab.txt"), False


@pytest.mark.parametrize("vocab", ["uncased", "cased"])
def test_word_pieces_match_hugging_face(vocab, excerpt, test_data, minilm_dir):
    """Our pieces per word == Hugging Face `tokenizers`' BERT WordPiece (pre-tokenized input) on every
    excerpt sentence."""
    from tokenizers import BertWordPieceTokenizer

    from bert_keras.tokenizer import BertTokenizer

    vocab_file, lower_case = vocab_and_case(vocab, test_data, minilm_dir)
    ours = features.word_pieces(excerpt, BertTokenizer(vocab_file, lower_case=lower_case))
    reference = BertWordPieceTokenizer(vocab_file, lowercase=lower_case, strip_accents=lower_case)
    encoded = reference.encode_batch([list(s.words) for s in excerpt], is_pretokenized=True,
                                     add_special_tokens=False)
    for i, sentence in enumerate(excerpt):
        expected = [[] for _ in sentence.words]
        for piece, word in zip(encoded[i].ids, encoded[i].word_ids):
            expected[word].append(piece)
        assert ours[i] == expected, sentence.source
    if not lower_case:  # the cased vocabulary really keeps case: "EU" and "eu" differ
        assert ours[0][0] != features.word_pieces(
            [data.Sentence(("eu",), ("O",))], BertTokenizer(vocab_file, lower_case=False))[0][0]


class FakeTokenizer:
    """Whitespace-free toy WordPiece: each character of a word is one piece (id = ord), for exact checks."""

    cls_id, sep_id, pad_id, unk_id = 1, 2, 0, 3

    def tokenize(self, words):
        chars = tf.strings.unicode_decode(words, "UTF-8")
        return tf.ragged.map_flat_values(lambda c: c + 100, chars)


def check_windows(sentences, windows, pieces, max_seq_length):
    labels = data.label_list()
    label_id = {t: i for i, t in enumerate(labels)}
    owned = [[0] * len(s.words) for s in sentences]
    for window in windows:
        ids, word_index = window.input_word_ids, window.word_index
        assert len(ids) <= max_seq_length
        assert ids[0] == FakeTokenizer.cls_id and ids[-1] == FakeTokenizer.sep_id
        sentence, word_pieces = sentences[window.sentence_index], pieces[window.sentence_index]
        for position, w in enumerate(word_index):
            if w >= 0:
                owned[window.sentence_index][w] += 1
                assert ids[position] == word_pieces[w][0]  # the label sits on the word's first piece
                assert window.label_ids[position] == label_id[sentence.tags[w]]
            else:
                assert window.label_ids[position] == features.IGNORE
    assert all(count == 1 for sentence_owned in owned for count in sentence_owned)
    predicted = np.zeros((len(windows), max_seq_length), np.int64)
    for row, window in enumerate(windows):
        predicted[row, :len(window.label_ids)] = np.maximum(window.label_ids, 0)
    merged = features.merge_predictions(windows, predicted, sentences, labels)
    assert merged == [list(s.tags) for s in sentences]


@pytest.mark.parametrize("max_seq_length,context", [(128, 32), (24, 6), (10, 3), (3, 0)])
def test_windows_give_every_word_exactly_one_prediction(excerpt, max_seq_length, context):
    tokenizer = FakeTokenizer()
    windows = features.build_windows(excerpt, tokenizer, data.label_list(), max_seq_length=max_seq_length,
                                     context=context)
    pieces = features.word_pieces(excerpt, tokenizer)
    check_windows(excerpt, [w for w in windows], pieces, max_seq_length)
    per_sentence = np.bincount([w.sentence_index for w in windows], minlength=len(excerpt))
    assert per_sentence.min() >= 1
    if max_seq_length < 128:
        assert per_sentence.max() > 1  # long sentences really were split


def test_windows_overlap_and_owner_has_most_context():
    counts = [2, 1, 3, 1, 1, 2, 1, 1]  # pieces per word
    [(spans, owner)] = features.spans_and_owners([counts], max_pieces=6, context=3)
    assert spans[0] == (0, 3) and spans[-1][1] == len(counts)
    for (a_start, a_end), (b_start, b_end) in zip(spans, spans[1:]):
        assert b_start < a_end  # overlap: the next window repeats context from the previous one
        assert sum(counts[b_start:a_end]) <= 3
    for w, k in enumerate(owner):
        start, end = spans[k]
        best = min(w - start, end - 1 - w)
        assert all(min(w - s, e - 1 - w) <= best for s, e in spans if s <= w < e)


def test_word_without_pieces_becomes_unk_and_overlong_word_is_cut():
    tokenizer = FakeTokenizer()
    sentence = data.Sentence(("Paris", "abcdefghijklmnopqrstuvwxyz", "x"), ("B-LOC", "O", "O"))
    pieces = features.word_pieces([sentence], tokenizer)
    windows = features.build_windows([sentence], tokenizer, data.label_list(), max_seq_length=8, context=2)
    check_windows([sentence], windows, pieces, 8)

    class DroppingTokenizer(FakeTokenizer):
        def tokenize(self, words):  # no pieces for a zero-width space, as BERT's basic tokenizer drops it
            rows = [[[] if w == "\u200b" else [ord(c) + 100 for c in w] for w in sentence]
                    for sentence in words.to_list() for sentence in [[w.decode() for w in sentence]]]
            return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=2)

    odd = data.Sentence(("a", "\u200b", "b"), ("O", "B-PER", "O"))
    assert features.word_pieces([odd], DroppingTokenizer()) == [[[197], [3], [198]]]


def test_dataset_batches_are_dynamically_padded_with_word_weights(excerpt):
    tokenizer = FakeTokenizer()
    windows = features.build_windows(excerpt[:40], tokenizer, data.label_list(), max_seq_length=64, context=8)
    dataset = features.to_dataset(windows, 16, with_labels=True)
    total_weight, widths = 0.0, set()
    for x, y, weight in dataset:
        assert x["input_word_ids"].shape == y.shape == weight.shape
        lengths = tf.reduce_sum(x["input_mask"], axis=1).numpy()
        widths.add(x["input_word_ids"].shape[1])
        assert x["input_word_ids"].shape[1] == lengths.max()  # padded to the batch's longest window only
        assert tf.reduce_all(tf.where(weight > 0, x["input_mask"], 1) == 1)
        total_weight += float(tf.reduce_sum(weight))
    assert total_weight == sum(len(s.words) for s in excerpt[:40])
    assert len(widths) > 1


def _reference_spans(piece_counts, max_pieces, context):
    """The window rule restated as a plain loop (the reference the TF rule in windows.py must equal)."""
    spans, start, n = [], 0, len(piece_counts)
    while True:
        end, used = start, 0
        while end < n and used + min(piece_counts[end], max_pieces) <= max_pieces:
            used += min(piece_counts[end], max_pieces)
            end += 1
        spans.append((start, end))
        if end == n:
            return spans
        next_start, overlap = end, 0
        while next_start - 1 > start and overlap + piece_counts[next_start - 1] <= context:
            next_start -= 1
            overlap += piece_counts[next_start]
        start = next_start


def _reference_owners(spans, num_words):
    best, best_score = [-1] * num_words, [-1] * num_words
    for k, (start, end) in enumerate(spans):
        for w in range(start, end):
            if min(w - start, end - 1 - w) > best_score[w]:
                best[w], best_score[w] = k, min(w - start, end - 1 - w)
    return best


def test_window_rules_equal_the_reference_loop_on_random_sentences():
    rng = np.random.default_rng(7)
    sentences = [rng.integers(1, 9, size=rng.integers(0, 60)).tolist() for _ in range(300)]
    for max_pieces, context in ((6, 3), (16, 5), (10, 0)):
        got = features.spans_and_owners(sentences, max_pieces, context)
        for counts, (spans, owner) in zip(sentences, got):
            assert spans == _reference_spans(counts, max_pieces, context), (counts, max_pieces, context)
            assert owner == _reference_owners(spans, len(counts))
