"""In-graph BERT WordPiece tokenization that reproduces google-research/bert `tokenization.py` exactly.

Why not `tensorflow_text.BertTokenizer`/`FastBertNormalizer`: they case-fold with NFKC_Casefold (`½` -> `1⁄2`,
`ß` -> `ss`, `ς` -> `σ`, `ﬁ` -> `fi`), which the original does not. The original's BasicTokenizer is:
clean text (drop NUL, U+FFFD, Cc/Cf controls; whitespace -> space), put spaces around CJK ideographs, split on
whitespace, then per token `str.lower()` + NFD + drop Mn (uncased only), split on punctuation. Its
WordpieceTokenizer is greedy longest-match-first with `##` continuations and [UNK] for words over 100
characters or with an unmatched remainder.

Here the same steps are plain TF ops, so the layer runs in tf.data and in exported SavedModels:
an RE2 regex removes what `_clean_text` drops; `tf.strings.lower(encoding="utf-8")` is ICU full
lower-casing (= Python's `str.lower()`, incl. final sigma and `İ` -> `i̇`); `normalize_utf8(NFD)` + `\\p{Mn}`
removal strips accents; `FastWordpieceTokenizer` in end-to-end mode splits on whitespace, punctuation and
CJK ideographs with the original's character classes and does WordPiece (LinMaxMatch = greedy
longest-match-first). Lower-casing the whole cleaned string equals lower-casing each whitespace token:
whitespace ends Python's final-sigma context just as a token boundary does.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from bert_keras.vocab_file import read_vocab

REQUIRED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")

# Characters the original `_clean_text` drops: NUL, U+FFFD and `_is_control` (Cc/Cf except \t \n \r).
_REMOVED_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\p{Cf}\x{FFFD}]"


# The methods below have no data-dependent Python control flow; skipping AutoGraph conversion (which
# tf.data applies to mapped functions) cuts tracing from seconds to a fraction of a second.
_graph_ready = tf.autograph.experimental.do_not_convert


def _check_vocabulary(vocab: list[str], source: str) -> None:
    if not vocab:
        raise ValueError(f"BERT vocab {source} is empty")
    missing = [t for t in REQUIRED_TOKENS if t not in vocab]
    if missing:
        raise ValueError(f"BERT vocab {source} lacks the special tokens {missing}")
    empty = [i + 1 for i, t in enumerate(vocab) if not t]
    if empty:
        raise ValueError(f"BERT vocab {source} has empty tokens on lines {empty[:10]}")
    seen: dict[str, int] = {}
    for i, token in enumerate(vocab):
        if token in seen:
            raise ValueError(f"BERT vocab {source}: token {token!r} on line {i + 1} repeats line {seen[token] + 1}")
        seen[token] = i


def _as_string_tensor(strings) -> tf.Tensor | tf.RaggedTensor:
    if isinstance(strings, (tf.Tensor, tf.RaggedTensor)):
        return strings
    return tf.convert_to_tensor(strings, dtype=tf.string)


@keras.saving.register_keras_serializable(package="bert_keras")
class BertTokenizer(keras.layers.Layer):
    """Original-BERT WordPiece tokenizer as a Keras layer of pure TF ops; `call` = `tokenize`.

    Args:
      vocab_file: path of a BERT `vocab.txt`, or the vocabulary itself as a list of tokens (what
        `get_config` stores, so the vocab travels inside `.keras` files and SavedModels).
      lower_case: True for uncased vocabs (lower-case and strip accents), False for cased ones.
      max_chars_per_word: words longer than this (in characters) become [UNK], as in the original.
    """

    def __init__(
        self,
        vocab_file: str | os.PathLike | Sequence[str],
        lower_case: bool = True,
        max_chars_per_word: int = 100,
        **kwargs,
    ):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        # Strings in, ragged ids out: keep Keras from converting inputs to backend float tensors.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocab_file, (str, os.PathLike)):
            source = os.fspath(vocab_file)
            vocab = read_vocab(vocab_file)
        else:
            source = "(list)"
            vocab = [str(t) for t in vocab_file]
        _check_vocabulary(vocab, source)
        self.vocab = vocab
        self.lower_case = bool(lower_case)
        self.max_chars_per_word = int(max_chars_per_word)
        self._token_ids = {t: i for i, t in enumerate(vocab)}
        self.pad_id = self._token_ids["[PAD]"]
        self.unk_id = self._token_ids["[UNK]"]
        self.cls_id = self._token_ids["[CLS]"]
        self.sep_id = self._token_ids["[SEP]"]
        self.mask_id = self._token_ids.get("[MASK]", -1)
        # End-to-end mode splits on whitespace, punctuation (ASCII non-alphanumerics + Unicode P*) and CJK
        # ideographs exactly like the original BasicTokenizer (checked over all code points). Its word limit
        # is in bytes; the original's 100-character limit is applied afterwards (see `_wordpieces`).
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocab,
            suffix_indicator="##",
            max_bytes_per_word=4 * self.max_chars_per_word,
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            no_pretokenization=False,
        )
        self._vocab_tensor = tf.constant(vocab)
        # Word-initial pieces never start with "##" (a word cannot start with punctuation '#'), so the
        # suffix flag of each piece recovers word boundaries; piece lengths give each word's length.
        self._is_suffix = tf.constant([t.startswith("##") for t in vocab])
        self._piece_chars = tf.constant([len(t) - 2 if t.startswith("##") else len(t) for t in vocab], tf.int32)
        self.built = True

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def token_to_id(self, token: str) -> int:
        if token not in self._token_ids:
            raise KeyError(f"token {token!r} is not in the vocabulary")
        return self._token_ids[token]

    def id_to_token(self, token_id: int) -> str:
        if not 0 <= int(token_id) < len(self.vocab):
            raise IndexError(f"token id {token_id} outside the vocabulary [0, {len(self.vocab)})")
        return self.vocab[int(token_id)]

    # -- pipeline --------------------------------------------------------------------------------------
    def _normalize(self, text: tf.Tensor) -> tf.Tensor:
        """Original `_clean_text` removals, then (uncased) `str.lower()`, NFD and Mn stripping.

        Whitespace is left as is (the word splitter treats it like the original); lengths of removed or
        rewritten characters are recovered per character in `_normalized_char_lengths`.
        """
        text = tf.strings.regex_replace(text, _REMOVED_CHARS, "")
        if self.lower_case:
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        return text

    def _wordpieces(self, normalized: tf.Tensor, with_offsets: bool):
        """Split + WordPiece of normalized 1-D strings -> ids [batch, (pieces)] (and byte offsets into them).

        Words over `max_chars_per_word` characters become a single [UNK], as in the original.
        """
        if with_offsets:
            ids, starts, ends = self._wordpiece.tokenize_with_offsets(normalized)
        else:
            ids = self._wordpiece.tokenize(normalized)
        pieces = ids.values
        is_start = tf.logical_not(tf.gather(self._is_suffix, pieces))
        word = tf.cumsum(tf.cast(is_start, tf.int32)) - 1
        num_words = tf.reduce_sum(tf.cast(is_start, tf.int32))
        word_chars = tf.math.unsorted_segment_sum(tf.gather(self._piece_chars, pieces), word, num_words)
        in_long_word = tf.gather(word_chars > self.max_chars_per_word, word)
        keep = tf.logical_or(is_start, tf.logical_not(in_long_word))
        rows = ids.value_rowids()

        def packed(values):
            return tf.RaggedTensor.from_value_rowids(
                tf.boolean_mask(values, keep), tf.boolean_mask(rows, keep), nrows=ids.nrows(), validate=False
            )

        ids = packed(tf.where(in_long_word, self.unk_id, pieces))
        if not with_offsets:
            return ids
        word_ends = tf.math.unsorted_segment_max(ends.values, word, num_words)
        return ids, packed(starts.values), packed(tf.where(in_long_word, tf.gather(word_ends, word), ends.values))

    def _normalized_char_lengths(self, codepoints: tf.Tensor) -> tf.Tensor:
        """Byte length of each character after `_normalize` (0 if removed), computed once per distinct char.

        Normalizing character by character gives the same lengths as normalizing the whole string: NFD and
        Mn stripping act per character, and context-dependent lower-casing (final sigma) keeps lengths.
        """
        distinct, index = tf.unique(codepoints)
        chars = tf.strings.unicode_encode(distinct[:, tf.newaxis], "UTF-8")
        return tf.gather(tf.cast(tf.strings.length(self._normalize(chars)), tf.int64), index)

    @staticmethod
    def _batched(strings, method: str):
        strings = _as_string_tensor(strings)
        if isinstance(strings, tf.RaggedTensor):
            raise TypeError(f"{method} takes whole strings; tokenize() also takes pre-split words")
        if strings.shape.rank not in (0, 1):
            raise ValueError(f"{method} expects a scalar or 1-D batch of strings, got shape {strings.shape}")
        return strings

    # -- public API ------------------------------------------------------------------------------------
    @_graph_ready
    def tokenize(self, strings) -> tf.RaggedTensor | tf.Tensor:
        """Wordpiece ids without special tokens: [batch, (wordpieces)] int32 (a scalar gives [(wordpieces)]).

        A RaggedTensor of pre-split words [batch, (words)] gives [batch, (words), (wordpieces)]; each word
        still goes through the basic tokenizer, as in the original (e.g. CoNLL `U.S.` -> u . s .).
        """
        strings = _as_string_tensor(strings)
        if isinstance(strings, tf.RaggedTensor):
            return strings.with_flat_values(self.tokenize(strings.flat_values))
        strings = self._batched(strings, "tokenize")
        if strings.shape.rank == 0:
            return self.tokenize(strings[tf.newaxis])[0]
        return self._wordpieces(self._normalize(strings), with_offsets=False)

    @_graph_ready
    def tokenize_words(self, strings) -> tf.RaggedTensor:
        """Wordpiece ids grouped by basic-tokenizer word: [batch, (words), (wordpieces)] int32.

        Words are what the original BasicTokenizer yields (whole-word masking, label alignment).
        A scalar string gives [(words), (wordpieces)].
        """
        strings = self._batched(strings, "tokenize_words")
        if strings.shape.rank == 0:
            return self.tokenize_words(strings[tf.newaxis])[0]
        ids = self.tokenize(strings)
        is_start = tf.logical_not(tf.gather(self._is_suffix, ids.values))
        word_starts = tf.cast(tf.where(is_start)[:, 0], tf.int64)
        words = tf.RaggedTensor.from_row_starts(ids.values, word_starts, validate=False)
        words_per_row = tf.math.segment_sum(tf.cast(is_start, tf.int64), ids.value_rowids())
        words_per_row = tf.pad(words_per_row, [[0, ids.nrows() - tf.shape(words_per_row, tf.int64)[0]]])
        return tf.RaggedTensor.from_row_lengths(words, words_per_row, validate=False)

    @_graph_ready
    def tokenize_with_offsets(self, strings):
        """(ids, start_bytes, end_bytes), each [batch, (wordpieces)]: byte spans in the ORIGINAL UTF-8 input.

        `strings[start:end]` of a piece is the original text it came from (accents, case and removed control
        characters included), which is what SQuAD-style span extraction needs. Pieces of one character
        that decomposes into several (e.g. Hangul syllables under NFD) share that character's span.
        """
        strings = self._batched(strings, "tokenize_with_offsets")
        if strings.shape.rank == 0:
            ids, starts, ends = self.tokenize_with_offsets(strings[tf.newaxis])
            return ids[0], starts[0], ends[0]
        ids, norm_starts, norm_ends = self._wordpieces(self._normalize(strings), with_offsets=True)
        # Map byte positions in the normalized strings back to original characters: the normalized text is
        # the concatenation of each original character's normalization.
        codepoints, char_starts = tf.strings.unicode_decode_with_offsets(strings, "UTF-8")
        cum_ends = tf.cumsum(self._normalized_char_lengths(codepoints.flat_values))
        row_base = tf.gather(tf.concat([[0], cum_ends], 0), codepoints.row_splits[:-1])
        piece_base = tf.gather(row_base, ids.value_rowids())
        first_char = tf.searchsorted(cum_ends, piece_base + norm_starts.values, side="right")
        last_char = tf.searchsorted(cum_ends, piece_base + norm_ends.values, side="left")
        cps = codepoints.flat_values
        char_bytes = 1 + tf.cast(cps >= 0x80, tf.int64) + tf.cast(cps >= 0x800, tf.int64) + tf.cast(
            cps >= 0x10000, tf.int64
        )
        starts = tf.gather(char_starts.flat_values, first_char)
        ends = tf.gather(char_starts.flat_values + char_bytes, last_char)
        return ids, ids.with_values(starts), ids.with_values(ends)

    @_graph_ready
    def detokenize(self, ids) -> tf.Tensor:
        """Ids [batch, (wordpieces)] (or [batch, (words), (wordpieces)], or 1-D) -> text, `##` joins undone."""
        if isinstance(ids, tf.RaggedTensor):
            if ids.ragged_rank > 1:
                ids = ids.merge_dims(1, -1)
        else:
            ids = tf.convert_to_tensor(ids)
        tokens = tf.gather(self._vocab_tensor, ids)
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " ##", "")

    @_graph_ready
    def call(self, strings):
        return self.tokenize(strings)

    def compute_output_spec(self, strings):
        # Ragged output; Keras only needs this for symbolic use, which string layers do not support.
        return keras.KerasTensor(shape=(None, None), dtype="int32", ragged=True)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            vocab_file=list(self.vocab), lower_case=self.lower_case, max_chars_per_word=self.max_chars_per_word
        )
        return config


@keras.saving.register_keras_serializable(package="bert_keras")
class SegmentPacker(keras.layers.Layer):
    """Packs 1 or 2 token segments into `[CLS] A [SEP] (B [SEP])`, padded to `seq_length`.

    Truncation is original BERT's `_truncate_seq_pair`: drop the last token of the longer segment (B on
    ties) until the pair fits; a single segment keeps its first `seq_length - 2` tokens.
    Returns int32 `input_word_ids`, `input_mask`, `input_type_ids` of shape [batch, seq_length]
    (or [seq_length] for 1-D inputs).
    """

    def __init__(self, seq_length: int, cls_id: int, sep_id: int, pad_id: int = 0, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if int(seq_length) < 3:
            raise ValueError(f"seq_length must be >= 3 to hold [CLS] A [SEP] B [SEP], got {seq_length}")
        self.seq_length = int(seq_length)
        self.cls_id = int(cls_id)
        self.sep_id = int(sep_id)
        self.pad_id = int(pad_id)
        self.built = True

    def truncated_lengths(self, lengths: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """Per-row segment lengths after original-BERT truncation (closed form of `_truncate_seq_pair`)."""
        if len(lengths) == 1:
            return [tf.minimum(lengths[0], self.seq_length - 2)]
        len_a, len_b = lengths
        budget = tf.cast(self.seq_length - 3, len_a.dtype)
        # Popping from the longer (B on ties) leaves the shorter intact if it fits in half the budget,
        # otherwise splits the budget with A getting the extra token.
        keep_a = tf.minimum(len_a, tf.maximum(budget - len_b, (budget + 1) // 2))
        fits = len_a + len_b <= budget
        new_a = tf.where(fits, len_a, keep_a)
        new_b = tf.where(fits, len_b, budget - keep_a)
        return [new_a, new_b]

    @_graph_ready
    def call(self, segments):
        if isinstance(segments, (tf.Tensor, tf.RaggedTensor)):
            segments = [segments]
        segments = list(segments)
        if not 1 <= len(segments) <= 2:
            raise ValueError(f"SegmentPacker takes 1 or 2 segments, got {len(segments)}")
        unbatched = not isinstance(segments[0], tf.RaggedTensor) and segments[0].shape.rank == 1
        ragged = []
        for seg in segments:
            if not isinstance(seg, tf.RaggedTensor):
                seg = tf.convert_to_tensor(seg)
                seg = tf.RaggedTensor.from_tensor(seg[tf.newaxis] if unbatched else seg)
            if seg.ragged_rank > 1:
                seg = seg.merge_dims(1, -1)
            ragged.append(tf.cast(seg, tf.int32))
        new_lengths = self.truncated_lengths([seg.row_lengths() for seg in ragged])
        # Scatter tokens straight to their packed columns (cheap to trace, unlike ragged concat/padding).
        batch = ragged[0].nrows()
        sep_columns = [1 + new_lengths[0]]
        if len(ragged) == 2:
            sep_columns.append(sep_columns[0] + 1 + new_lengths[1])
        indices, updates = [], []
        for seg, keep, first_column in zip(ragged, new_lengths, [tf.ones_like(sep_columns[0]), sep_columns[0] + 1]):
            row_ids = seg.value_rowids()
            position = tf.range(tf.shape(seg.values, out_type=tf.int64)[0]) - tf.gather(seg.row_starts(), row_ids)
            kept = position < tf.gather(keep, row_ids)
            columns = tf.gather(first_column, row_ids) + position
            indices.append(tf.boolean_mask(tf.stack([row_ids, columns], axis=1), kept))
            updates.append(tf.boolean_mask(seg.values, kept))
        rows = tf.range(batch)
        for column, token in [(tf.zeros_like(rows), self.cls_id)] + [(c, self.sep_id) for c in sep_columns]:
            indices.append(tf.stack([rows, column], axis=1))
            updates.append(tf.fill([batch], tf.constant(token, tf.int32)))
        word_ids = tf.tensor_scatter_nd_update(
            tf.fill(tf.stack([batch, self.seq_length]), tf.constant(self.pad_id, tf.int32)),
            tf.concat(indices, 0),
            tf.concat(updates, 0),
        )
        columns = tf.range(self.seq_length, dtype=tf.int64)[tf.newaxis, :]
        in_sequence = columns <= sep_columns[-1][:, tf.newaxis]
        in_second = tf.logical_and(in_sequence, columns > sep_columns[0][:, tf.newaxis])
        outputs = {
            "input_word_ids": word_ids,
            "input_mask": tf.cast(in_sequence, tf.int32),
            "input_type_ids": tf.cast(in_second, tf.int32),
        }
        if unbatched:
            outputs = {k: v[0] for k, v in outputs.items()}
        return outputs

    def compute_output_spec(self, segments):
        spec = keras.KerasTensor(shape=(None, self.seq_length), dtype="int32")
        return {"input_word_ids": spec, "input_mask": spec, "input_type_ids": spec}

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(seq_length=self.seq_length, cls_id=self.cls_id, sep_id=self.sep_id, pad_id=self.pad_id)
        return config
