"""NER (token classification) export: text or pre-split words in, typed entity spans out.

Each word is tagged by its first WordPiece (as the model was trained); IOB2 tags become entities the way
seqeval/conlleval read them (an I- that does not continue an entity of its type starts one). Text longer than
`seq_length` is cut into overlapping windows of whole words in the graph, exactly as `tasks/conll/features.py`
does for long sentences, and every word takes its tag from the one window that owns it: the whole text is
tagged, however long.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import keras
import tensorflow as tf

from bert_keras.export.encoder import TEXT
from bert_keras.export.serving import ServingModule, graph_function, save_versioned
from bert_keras.export.text_ops import char_offsets, invalid_utf8, repair_utf8
from bert_keras.tasks.conll import windows
from bert_keras.tokenizer import BertTokenizer

WORDS = tf.TensorSpec([None, None], tf.string, name="words")
OUTSIDE, BEGIN, INSIDE = 0, 1, 2


def _parse_labels(labels: Sequence[str]) -> tuple[list[int], list[int], list[str]]:
    """IOB2 labels -> (kind per label, entity type index per label, entity type names)."""
    types: list[str] = []
    kinds, type_ids = [], []
    for label in labels:
        if label == "O":
            kinds.append(OUTSIDE)
            type_ids.append(0)
            continue
        prefix, _, entity = label.partition("-")
        if prefix not in ("B", "I") or not entity:
            raise ValueError(f"label {label!r} is not IOB2 ('O', 'B-TYPE' or 'I-TYPE')")
        if entity not in types:
            types.append(entity)
        kinds.append(BEGIN if prefix == "B" else INSIDE)
        type_ids.append(types.index(entity))
    return kinds, type_ids, types


class NerServing(ServingModule):
    """Signatures:

    - `serving_default(text)`: strings [batch] -> per entity (padded to the batch's most entities):
      `entity_types` string [batch, E], `entity_texts` string, `entity_starts`/`entity_ends` int32 (character
      offsets into the text, end exclusive), `entity_scores` float32 (mean tag probability over its words),
      `num_entities` int32 [batch]; `word_tags` string [batch, W] (tag of each basic-tokenizer word); and
      `invalid_utf8` bool [batch] (the text was not UTF-8 and was served repaired).
    - `words(words)`: pre-split words string [batch, W] ("" pads the shorter rows) -> the same outputs with
      `entity_starts`/`entity_ends` as word indices and `entity_texts` the words joined by spaces.
    - `token_ids(...)`: packed inputs -> `logits` [batch, seq, num_labels].
    """

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 128,
                 labels: Sequence[str] | None = None, *, window_context: int = 32):
        super().__init__(model, tokenizer, seq_length, name="bert_ner_serving")
        if window_context < 0:
            raise ValueError(f"window_context must be >= 0, got {window_context}")
        self.window_context = window_context
        labels = list(labels if labels is not None else (getattr(model, "labels", None) or []))
        if len(labels) != model.num_labels:
            raise ValueError(f"need the model's {model.num_labels} IOB2 label names (got {len(labels)}); "
                             "pass labels=")
        kinds, type_ids, types = _parse_labels(labels)
        self.label_names = tf.constant(labels)
        self.label_kinds = tf.constant(kinds, tf.int32)
        self.label_types = tf.constant(type_ids, tf.int32)
        self.type_names = tf.constant(types or [""])
        self.is_continuation = tf.constant([t.startswith("##") for t in tokenizer.vocab])

    def logits(self, inputs: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {"logits": self.run_model(inputs)}

    def _word_logits(self, pieces: tf.RaggedTensor) -> tf.Tensor:
        """WordPiece ids [batch, (words), (pieces)] (every word has >= 1 piece) -> logits [all words, labels],
        each word's from the first piece in the window that owns it (`windows.py`, the rules the training
        features use: windows of whole words of at most seq_length - 2 pieces overlapping by up to
        `window_context` pieces)."""
        max_pieces = self.seq_length - 2
        counts = pieces.values.row_lengths()
        kept = tf.ragged.range(counts).flat_values < max_pieces  # a word longer than a window: its first pieces
        kept_ids = tf.boolean_mask(pieces.flat_values, kept)
        cum_clipped = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(tf.minimum(counts, max_pieces))], 0)
        window_start, window_end, _ = windows.window_spans(counts, pieces.row_splits, max_pieces, self.window_context)

        window_pieces = tf.gather(kept_ids, tf.ragged.range(tf.gather(cum_clipped, window_start),
                                                            tf.gather(cum_clipped, window_end)))
        logits = self.run_model(self.packer([window_pieces]))

        num_words = tf.size(counts, out_type=tf.int64)
        owner = windows.owners(window_start, window_end, num_words)
        first = 1 + tf.gather(cum_clipped, tf.range(num_words)) - tf.gather(cum_clipped, tf.gather(window_start, owner))
        return tf.gather_nd(logits, tf.stack([owner, first], -1))  # after [CLS]

    def _tag(self, pieces: tf.RaggedTensor):
        """-> per word (label id, probability of that label)."""
        word_logits = self._word_logits(pieces)
        return tf.argmax(word_logits, -1, output_type=tf.int32), tf.reduce_max(tf.nn.softmax(word_logits, -1), -1)

    def _entities(self, batch, width, word_row, word_col, label, probability, start, end) -> dict[str, tf.Tensor]:
        """Per-word IOB2 labels -> entity outputs padded per row, and `word_tags` [batch, width]."""
        kind = tf.gather(self.label_kinds, label)
        etype = tf.gather(self.label_types, label)
        row_start = tf.concat([[True], word_row[1:] != word_row[:-1]], 0)
        prev_kind = tf.where(row_start, OUTSIDE, tf.concat([[OUTSIDE], kind[:-1]], 0))
        prev_type = tf.concat([[-1], etype[:-1]], 0)
        inside = kind != OUTSIDE
        begins = (kind == BEGIN) | ((kind == INSIDE) & ((prev_kind == OUTSIDE) | (prev_type != etype)))
        count = tf.reduce_sum(tf.cast(begins, tf.int64))
        # Words outside entities go to an extra segment that is dropped.
        segment = tf.where(inside, tf.cumsum(tf.cast(begins, tf.int64)) - 1, count)
        entity_row = tf.boolean_mask(word_row, begins)

        def per_row(values, default):
            return tf.RaggedTensor.from_value_rowids(values, entity_row, nrows=batch).to_tensor(default)

        tags = tf.tensor_scatter_nd_update(tf.fill(tf.stack([batch, width]), ""), tf.stack([word_row, word_col], -1),
                                           tf.gather(self.label_names, label))
        return {
            "entity_types": per_row(tf.gather(self.type_names, tf.boolean_mask(etype, begins)), ""),
            "entity_starts": per_row(tf.cast(tf.boolean_mask(start, begins), tf.int32), -1),
            "entity_ends": per_row(tf.cast(tf.math.unsorted_segment_max(end, segment, count + 1)[:count], tf.int32), -1),
            "entity_scores": per_row(tf.math.unsorted_segment_mean(probability, segment, count + 1)[:count], 0.0),
            "num_entities": tf.cast(tf.RaggedTensor.from_value_rowids(entity_row, entity_row, nrows=batch).row_lengths(),
                                    tf.int32),
            "word_tags": tags,
        }

    def tag_text(self, text: tf.Tensor) -> dict[str, tf.Tensor]:
        repaired = invalid_utf8(text)
        text = repair_utf8(text)
        ids, byte_starts, byte_ends = self.tokenizer.tokenize_with_offsets(text)
        starts, ends = char_offsets(text, byte_starts), char_offsets(text, byte_ends)
        position = tf.ragged.range(ids.row_lengths()).flat_values
        is_start = tf.logical_not(tf.gather(self.is_continuation, ids.values)) | (position == 0)
        piece_word = tf.cumsum(tf.cast(is_start, tf.int64)) - 1
        num_words = tf.reduce_sum(tf.cast(is_start, tf.int64))
        words_per_row = tf.math.unsorted_segment_sum(tf.cast(is_start, tf.int64), ids.value_rowids(), ids.nrows())
        pieces = tf.RaggedTensor.from_row_lengths(
            tf.RaggedTensor.from_value_rowids(ids.values, piece_word, nrows=num_words), words_per_row)
        label, probability = self._tag(pieces)
        start = tf.math.unsorted_segment_min(starts.values, piece_word, num_words)
        end = tf.math.unsorted_segment_max(ends.values, piece_word, num_words)
        word_col = tf.ragged.range(words_per_row).flat_values
        width = tf.reduce_max(tf.concat([words_per_row, [0]], 0))
        out = self._entities(ids.nrows(), width, pieces.value_rowids(), word_col, label, probability, start, end)
        starts, ends = out["entity_starts"], out["entity_ends"]
        rows = tf.broadcast_to(text[:, tf.newaxis], tf.shape(starts))
        out["entity_texts"] = tf.where(starts >= 0, tf.strings.substr(
            rows, tf.maximum(starts, 0), tf.maximum(ends - starts, 0), unit="UTF8_CHAR"), "")
        out["invalid_utf8"] = repaired
        return out

    def tag_words(self, words: tf.Tensor) -> dict[str, tf.Tensor]:
        repaired = invalid_utf8(words)
        dense = repair_utf8(words)
        words = tf.RaggedTensor.from_tensor(dense, padding="")  # [batch, (words)]
        word_pieces = self.tokenize(words.flat_values)  # [all words, (pieces)]
        # A word the tokenizer reduces to nothing is read as [UNK] (tasks/conll/features.word_pieces).
        with_unk = tf.concat([word_pieces, tf.fill([tf.size(words.flat_values), 1], self.tokenizer.unk_id)], 1)
        keep = tf.ragged.range(with_unk.row_lengths()) < tf.maximum(word_pieces.row_lengths(), 1)[:, tf.newaxis]
        pieces = tf.RaggedTensor.from_row_splits(tf.ragged.boolean_mask(with_unk, keep), words.row_splits)
        label, probability = self._tag(pieces)
        batch = tf.shape(dense, out_type=tf.int64)[0]
        column = tf.ragged.range(words.row_lengths()).flat_values  # word index within its row
        out = self._entities(batch, tf.shape(dense, out_type=tf.int64)[1], words.value_rowids(), column, label,
                             probability, column, column + 1)
        starts, ends = out["entity_starts"], out["entity_ends"]
        row_base = tf.gather(words.row_splits, tf.range(batch))[:, tf.newaxis]
        lengths = tf.where(starts >= 0, ends - starts, 0)
        ranges = tf.ragged.range(tf.reshape(row_base + tf.cast(tf.maximum(starts, 0), tf.int64), [-1]),
                                 tf.reshape(row_base + tf.cast(tf.maximum(starts, 0) + lengths, tf.int64), [-1]))
        joined = tf.strings.reduce_join(tf.gather(words.flat_values, ranges), axis=-1, separator=" ")
        out["entity_texts"] = tf.reshape(joined, tf.shape(starts))
        out["invalid_utf8"] = repaired
        return out

    def signatures(self) -> dict[str, Callable]:
        return {
            "serving_default": graph_function(self.tag_text).get_concrete_function(TEXT),
            "words": graph_function(self.tag_words).get_concrete_function(WORDS),
            "token_ids": graph_function(lambda **ids: self.logits(ids)).get_concrete_function(
                **self.token_id_specs()),
        }


def export_ner(model: keras.Model, tokenizer: BertTokenizer, export_dir: str | os.PathLike, *,
               seq_length: int = 128, labels: Sequence[str] | None = None, window_context: int = 32,
               version: int | None = None) -> str:
    """`bert_keras.tasks.conll.model.TokenClassifier`: text or pre-split words in, typed entity spans out."""
    return save_versioned(NerServing(model, tokenizer, seq_length, labels, window_context=window_context),
                          export_dir, version)
