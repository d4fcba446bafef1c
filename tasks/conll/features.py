"""Word -> WordPiece alignment for token classification, with windows for sentences longer than the model.

Each word is split into WordPieces; its label sits on the FIRST piece and the other pieces are ignored in
the loss (weight 0), as in the BERT paper's NER setup. A sentence whose pieces do not fit in
`max_seq_length - 2` is cut into overlapping windows at word boundaries; each word is *owned* by exactly
one window -- the one where it has the most context on both sides (SQuAD's max-context rule) -- and only
there does it carry a label (training) or yield its prediction (inference). So every word gets exactly one
prediction, however long the sentence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from bert_keras.tasks.conll import windows
from bert_keras.tasks.conll.data import Sentence

IGNORE = -1  # label id of positions that are not a word's first piece (or not owned by the window)


@dataclasses.dataclass(frozen=True)
class Window:
    """One model input: `[CLS] pieces [SEP]`, with per-position label ids and the owned word's index."""

    sentence_index: int
    input_word_ids: tuple[int, ...]
    label_ids: tuple[int, ...]  # IGNORE except on owned words' first pieces
    word_index: tuple[int, ...]  # index of the word predicted at this position, or -1


def word_pieces(sentences: Sequence[Sentence], tokenizer, batch_size: int = 2048) -> list[list[list[int]]]:
    """WordPiece ids of every word: [sentence][word][piece].

    `tokenizer` is a `bert_keras.tokenizer.BertTokenizer` (its `tokenize` on a ragged batch of words
    returns [batch, (words), (pieces)]). A word the tokenizer reduces to nothing (e.g. only control
    characters) becomes `[UNK]`, so it still has a first piece to predict from.
    """
    out: list[list[list[int]]] = []
    for start in range(0, len(sentences), batch_size):
        chunk = sentences[start:start + batch_size]
        words = tf.ragged.constant([list(s.words) for s in chunk], dtype=tf.string)
        pieces = tokenizer.tokenize(words)
        if pieces.shape.rank != 3:
            raise ValueError(f"tokenizer.tokenize on [batch, (words)] must return [batch, (words), (pieces)], "
                             f"got rank {pieces.shape.rank}")
        # Numpy splits: RaggedTensor.to_list() is orders of magnitude slower on rank-3 ragged tensors.
        flat = pieces.flat_values.numpy().tolist()
        piece_ends = np.cumsum(pieces.values.row_lengths().numpy()).tolist()
        word_ends = np.cumsum(pieces.row_lengths().numpy()).tolist()
        word_start = 0
        for word_end in word_ends:
            sentence = []
            for w in range(word_start, word_end):
                begin = piece_ends[w - 1] if w else 0
                sentence.append(flat[begin:piece_ends[w]] or [tokenizer.unk_id])
            out.append(sentence)
            word_start = word_end
    return out


def spans_and_owners(piece_counts: Sequence[Sequence[int]], max_pieces: int,
                     context: int) -> list[tuple[list[tuple[int, int]], list[int]]]:
    """For each sentence (its pieces per word): its windows' [start, end) word spans and, for each word, the
    index of the window that owns it, by the rules of `windows.py` (the serving graph's), for all at once."""
    if max_pieces < 1:
        raise ValueError(f"max_seq_length leaves no room for word pieces (max_pieces={max_pieces})")
    lengths = np.array([len(c) for c in piece_counts], np.int64)
    row_splits = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    counts = np.array([n for c in piece_counts for n in c], np.int64)
    start, end, row = windows.window_spans(tf.constant(counts), tf.constant(row_splits), max_pieces, context)
    owner = windows.owners(start, end, int(counts.size)).numpy()
    start, end, row = start.numpy(), end.numpy(), row.numpy()
    order = np.argsort(row, kind="stable")  # row by row, each row's windows in order
    first = np.searchsorted(row[order], np.arange(len(piece_counts) + 1))
    local = np.empty_like(order)
    out = []
    for i in range(len(piece_counts)):
        mine = order[first[i]:first[i + 1]]
        local[mine] = np.arange(len(mine))
        base = row_splits[i]
        spans = [(int(start[k] - base), int(end[k] - base)) for k in mine]
        out.append((spans, [int(local[k]) for k in owner[base:row_splits[i + 1]]]))
    return out


def _sentence_windows(sentence_index: int, pieces: list[list[int]], label_ids: Sequence[int] | None,
                      spans: list[tuple[int, int]], owner: list[int], max_pieces: int, cls_id: int,
                      sep_id: int) -> list[Window]:
    windows_ = []
    for k, (start, end) in enumerate(spans):
        ids, labels, word_index = [cls_id], [IGNORE], [-1]
        for w in range(start, end):
            word = pieces[w][:max_pieces]
            owned = owner[w] == k
            ids.extend(word)
            labels.extend([label_ids[w] if owned and label_ids is not None else IGNORE] + [IGNORE] * (len(word) - 1))
            word_index.extend([w if owned else -1] + [-1] * (len(word) - 1))
        ids.append(sep_id), labels.append(IGNORE), word_index.append(-1)
        windows_.append(Window(sentence_index, tuple(ids), tuple(labels), tuple(word_index)))
    return windows_


def sentence_windows(sentence_index: int, pieces: list[list[int]], label_ids: Sequence[int] | None, *,
                     max_seq_length: int, context: int, cls_id: int, sep_id: int) -> list[Window]:
    """The windows of one sentence (see the module docstring). `label_ids` None: inference only."""
    max_pieces = max_seq_length - 2
    [(spans, owner)] = spans_and_owners([[len(p) for p in pieces]], max_pieces, context)
    return _sentence_windows(sentence_index, pieces, label_ids, spans, owner, max_pieces, cls_id, sep_id)


def build_windows(sentences: Sequence[Sentence], tokenizer, labels: Sequence[str], *, max_seq_length: int,
                  context: int = 32) -> list[Window]:
    """All windows of `sentences`, labelled with ids into `labels` (the IOB2 label list)."""
    label_id = {label: i for i, label in enumerate(labels)}
    all_pieces = word_pieces(sentences, tokenizer)
    max_pieces = max_seq_length - 2
    layouts = spans_and_owners([[len(p) for p in pieces] for pieces in all_pieces], max_pieces, context)
    windows_ = []
    for i, (sentence, pieces, (spans, owner)) in enumerate(zip(sentences, all_pieces, layouts, strict=True)):
        try:
            ids = [label_id[tag] for tag in sentence.tags]
        except KeyError as e:
            raise ValueError(f"{sentence.source or f'sentence {i}'}: tag {e.args[0]!r} is not in the label list "
                             f"{list(labels)}") from None
        windows_.extend(_sentence_windows(i, pieces, ids, spans, owner, max_pieces, tokenizer.cls_id,
                                          tokenizer.sep_id))
    return windows_


def to_dataset(windows: Sequence[Window], batch_size: int, *, with_labels: bool, shuffle_seed: int | None = None,
               pad_id: int = 0) -> tf.data.Dataset:
    """Batches padded to the longest window in the batch (dynamic padding).

    With labels: `(features, label_ids, sample_weight)` -- ignored positions get label 0 and weight 0, so
    a loss reduced by the weight sum averages over words exactly. Without: `features` only.
    """
    lengths = [len(w.input_word_ids) for w in windows]
    ragged = lambda rows: tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)  # noqa: E731
    columns = {"input_word_ids": ragged([w.input_word_ids for w in windows])}
    if with_labels:
        columns["label_ids"] = ragged([w.label_ids for w in windows])
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(lengths), seed=shuffle_seed, reshuffle_each_iteration=True)

    def pack(batch):
        ids = batch["input_word_ids"]
        features = {"input_word_ids": ids.to_tensor(pad_id),
                    "input_mask": tf.ones_like(ids).to_tensor(0),
                    "input_type_ids": tf.zeros_like(ids).to_tensor(0)}
        if not with_labels:
            return features
        labels = batch["label_ids"].to_tensor(IGNORE)
        weights = tf.cast(labels != IGNORE, tf.float32)
        return features, tf.maximum(labels, 0), weights

    return dataset.ragged_batch(batch_size).map(pack, num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def merge_predictions(windows: Sequence[Window], predicted_ids: np.ndarray, sentences: Sequence[Sentence],
                      labels: Sequence[str]) -> list[list[str]]:
    """Per-word tags from per-window, per-position predicted label ids ([num_windows, >= window length]).

    Raises if any word ends up with zero or two predictions (the windowing invariant)."""
    tags: list[list[str | None]] = [[None] * len(s.words) for s in sentences]
    for window, row in zip(windows, predicted_ids, strict=True):
        sentence_tags = tags[window.sentence_index]
        for position, w in enumerate(window.word_index):
            if w < 0:
                continue
            if sentence_tags[w] is not None:
                raise AssertionError(f"sentence {window.sentence_index} word {w} predicted twice")
            sentence_tags[w] = labels[int(row[position])]
    for i, sentence_tags in enumerate(tags):
        missing = [w for w, t in enumerate(sentence_tags) if t is None]
        if missing:
            raise AssertionError(f"sentence {i} words {missing} got no prediction")
    return tags  # type: ignore[return-value]
