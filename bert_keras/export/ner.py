"""NER (token classification) export: text or pre-split words in, typed entity spans out.

Each word is tagged by its first WordPiece (as the model was trained); IOB2 tags become entities the way
seqeval/conlleval read them (an I- that does not continue an entity of its type starts one). Text that does
not fit in `seq_length` is truncated: words past the cut get no tag and are in no entity.
"""

from __future__ import annotations

from typing import Callable, Sequence

import keras
import tensorflow as tf

from bert_keras.export.encoder import TEXT
from bert_keras.export.serving import ServingModule, graph_function
from bert_keras.export.text_ops import char_offsets, repair_utf8
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
      `num_entities` int32 [batch]; and `word_tags` string [batch, W] (tag of each basic-tokenizer word).
    - `words(words)`: pre-split words string [batch, W] ("" pads the shorter rows) -> the same outputs with
      `entity_starts`/`entity_ends` as word indices and `entity_texts` the words joined by spaces.
    - `token_ids(...)`: packed inputs -> `logits` [batch, seq, num_labels].
    """

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int = 128,
                 labels: Sequence[str] | None = None):
        super().__init__(model, tokenizer, seq_length, name="bert_ner_serving")
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

    def _tag(self, pieces: tf.RaggedTensor, is_start: tf.Tensor, piece_starts: tf.Tensor, piece_ends: tf.Tensor):
        """Pieces [batch, (p)] already cut to seq_length - 2, with flat per-piece word-start flags and spans
        -> flat per-word (row, label, probability, start, end), in text order."""
        logits = self.run_model(self.packer([pieces]))
        rows = pieces.value_rowids()
        position = tf.range(tf.size(rows, out_type=tf.int64)) - tf.gather(pieces.row_splits, rows)
        word_id = tf.cumsum(tf.cast(is_start, tf.int64)) - 1
        num_words = tf.reduce_sum(tf.cast(is_start, tf.int64))
        word_row = tf.boolean_mask(rows, is_start)
        first = tf.boolean_mask(position, is_start) + 1  # after [CLS]
        word_logits = tf.gather_nd(logits, tf.stack([word_row, first], -1))
        label = tf.argmax(word_logits, -1, output_type=tf.int32)
        probability = tf.reduce_max(tf.nn.softmax(word_logits, -1), -1)
        start = tf.math.unsorted_segment_min(piece_starts, word_id, num_words)
        end = tf.math.unsorted_segment_max(piece_ends, word_id, num_words)
        return word_row, label, probability, start, end

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
        text = repair_utf8(text)
        budget = self.seq_length - 2
        ids, byte_starts, byte_ends = self.tokenizer.tokenize_with_offsets(text)
        ids, byte_starts, byte_ends = ids[:, :budget], byte_starts[:, :budget], byte_ends[:, :budget]
        starts, ends = char_offsets(text, byte_starts), char_offsets(text, byte_ends)
        is_start = tf.logical_not(tf.gather(self.is_continuation, ids.values))
        batch = tf.shape(text, out_type=tf.int64)[0]
        word_row, label, probability, start, end = self._tag(ids, is_start, starts.values, ends.values)
        words_per_row = tf.RaggedTensor.from_value_rowids(word_row, word_row, nrows=batch)
        word_col = tf.ragged.range(words_per_row.row_lengths()).values
        out = self._entities(batch, tf.reduce_max(tf.concat([words_per_row.row_lengths(), [0]], 0)), word_row,
                             word_col, label, probability, start, end)
        starts, ends = out["entity_starts"], out["entity_ends"]
        rows = tf.broadcast_to(text[:, tf.newaxis], tf.shape(starts))
        out["entity_texts"] = tf.where(starts >= 0, tf.strings.substr(
            rows, tf.maximum(starts, 0), tf.maximum(ends - starts, 0), unit="UTF8_CHAR"), "")
        return out

    def tag_words(self, words: tf.Tensor) -> dict[str, tf.Tensor]:
        dense = repair_utf8(words)
        words = tf.RaggedTensor.from_tensor(dense, padding="")  # [batch, (words)]
        word_pieces = self.tokenize(words.flat_values)  # [all words, (pieces)]
        piece_word = word_pieces.value_rowids()  # index into words.flat_values
        piece_row = tf.gather(words.value_rowids(), piece_word)
        batch = tf.shape(dense, out_type=tf.int64)[0]
        by_row = tf.RaggedTensor.from_value_rowids(word_pieces.values, piece_row, nrows=batch)
        position = tf.range(tf.size(piece_row, out_type=tf.int64)) - tf.gather(by_row.row_splits, piece_row)
        keep = position < self.seq_length - 2
        piece_row, piece_word = tf.boolean_mask(piece_row, keep), tf.boolean_mask(piece_word, keep)
        pieces = tf.RaggedTensor.from_value_rowids(tf.boolean_mask(word_pieces.values, keep), piece_row, nrows=batch)
        is_start = tf.concat([[True], piece_word[1:] != piece_word[:-1]], 0)[:tf.size(piece_word)]
        column = piece_word - tf.gather(words.row_splits, piece_row)  # word index within its row
        word_row, label, probability, start, end = self._tag(pieces, is_start, column, column + 1)
        out = self._entities(batch, tf.shape(dense, out_type=tf.int64)[1], word_row, start, label, probability,
                             start, end)
        starts, ends = out["entity_starts"], out["entity_ends"]
        row_base = tf.gather(words.row_splits, tf.range(batch))[:, tf.newaxis]
        lengths = tf.where(starts >= 0, ends - starts, 0)
        ranges = tf.ragged.range(tf.reshape(row_base + tf.cast(tf.maximum(starts, 0), tf.int64), [-1]),
                                 tf.reshape(row_base + tf.cast(tf.maximum(starts, 0) + lengths, tf.int64), [-1]))
        joined = tf.strings.reduce_join(tf.gather(words.flat_values, ranges), axis=-1, separator=" ")
        out["entity_texts"] = tf.reshape(joined, tf.shape(starts))
        return out

    def signatures(self) -> dict[str, Callable]:
        return {
            "serving_default": graph_function(self.tag_text).get_concrete_function(TEXT),
            "words": graph_function(self.tag_words).get_concrete_function(WORDS),
            "token_ids": graph_function(lambda **ids: self.logits(ids)).get_concrete_function(
                **self.token_id_specs()),
        }
