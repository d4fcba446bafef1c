"""In-graph BERT WordPiece tokenization that reproduces google-research/bert `tokenization.py` exactly.

Why not `tensorflow_text.BertTokenizer`/`FastBertNormalizer`: they case-fold with NFKC_Casefold (`½` -> `1⁄2`,
`ß` -> `ss`, `ς` -> `σ`, `ﬁ` -> `fi`), which the original does not. The original's BasicTokenizer is:
clean text (drop NUL, U+FFFD, Cc/Cf controls; whitespace -> space), put spaces around CJK ideographs, split on
whitespace, then per token `str.lower()` + NFD + drop Mn (uncased only), split on punctuation. Its
WordpieceTokenizer is greedy longest-match-first with `##` continuations and [UNK] for words over 100
characters or with an unmatched remainder.

Here the same steps are plain TF ops, so the layer runs in tf.data and in exported SavedModels:
`tf.strings.lower(encoding="utf-8")` is ICU full lower-casing (Python's `str.lower()` incl. final sigma and
`İ` -> `i̇`), `normalize_utf8(NFD)` + `\\p{Mn}` removal strips accents, RE2 regexes do cleaning/splitting,
and `FastWordpieceTokenizer` (LinMaxMatch, same result as greedy longest-match-first) does WordPiece.
Lower-casing the whole cleaned string equals lower-casing each whitespace token, because whitespace, CJK
ideographs and removed characters all end Python's final-sigma context just as token boundaries do.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import tensorflow as tf
import tensorflow_text as tf_text

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
REQUIRED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")

# Characters the original `_clean_text` drops: NUL, U+FFFD and `_is_control` (Cc/Cf except \t \n \r).
_REMOVED_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\p{Cf}\x{FFFD}]"
# `_is_whitespace` (\t \n \r and Zs) plus U+2028/U+2029, which `str.split()` also splits on. Other Python
# whitespace (\x0b, \x0c, \x1c-\x1f, \x85) is Cc and removed before splitting.
_WHITESPACE = r"[\t\n\r\p{Zs}\x{2028}\x{2029}]"
# `_is_punctuation` (ASCII non-alphanumerics and Unicode P*) and `_is_chinese_char`: each becomes its own word.
_PUNCTUATION_OR_CJK = (
    r"[!-/:-@\[-`{-~\p{P}"
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
    r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}]"
)


def load_vocabulary(vocab_file: str | os.PathLike) -> list[str]:
    """Reads a BERT `vocab.txt` (one token per line, id = line number, surrounding whitespace stripped)."""
    path = os.fspath(vocab_file)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"BERT vocab file not found: {path}")
    with tf.io.gfile.GFile(path, "r") as f:
        return [line.strip() for line in f.read().splitlines()]


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
            vocab = load_vocabulary(vocab_file)
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
        self._wordpiece = tf_text.FastWordpieceTokenizer(
            vocab=vocab,
            suffix_indicator="##",
            # Characters are counted below; a word within the limit is at most 4 bytes per character.
            max_bytes_per_word=4 * self.max_chars_per_word,
            token_out_type=tf.int32,
            unknown_token="[UNK]",
            no_pretokenization=True,
        )
        self._vocab_tensor = tf.constant(vocab)
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

    # -- normalization ---------------------------------------------------------------------------------
    def _normalize(self, text: tf.Tensor) -> tf.Tensor:
        """Original `_clean_text` removals, then (uncased) `str.lower()`, NFD and Mn stripping."""
        text = tf.strings.regex_replace(text, _REMOVED_CHARS, "")
        if self.lower_case:
            text = tf.strings.lower(text, encoding="utf-8")
            text = tf_text.normalize_utf8(text, "NFD")
            text = tf.strings.regex_replace(text, r"\p{Mn}", "")
        return text

    def _wordpiece_words(self, words: tf.Tensor) -> tf.RaggedTensor:
        """WordPiece ids [words, (pieces)] of basic-tokenized words; over-long words -> [UNK]."""
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > self.max_chars_per_word
        return self._wordpiece.tokenize(tf.where(too_long, "[UNK]", words))

    def _basic_words(self, text: tf.Tensor) -> tf.RaggedTensor:
        """Original BasicTokenizer on a 1-D string tensor -> [batch, (words)]."""
        text = self._normalize(text)
        return tf_text.regex_split(
            text, f"{_WHITESPACE}|{_PUNCTUATION_OR_CJK}", _PUNCTUATION_OR_CJK
        )

    # -- public API ------------------------------------------------------------------------------------
    def tokenize_words(self, strings) -> tf.RaggedTensor | tf.Tensor:
        """Wordpiece ids grouped by basic-tokenizer word: [batch, (words), (wordpieces)] int32.

        Words are what the original BasicTokenizer yields (whole-word masking, label alignment).
        A scalar string gives [(words), (wordpieces)].
        """
        strings = _as_string_tensor(strings)
        if isinstance(strings, tf.RaggedTensor):
            raise TypeError("tokenize_words takes whole strings; use tokenize() for pre-split words")
        if strings.shape.rank == 0:
            return self.tokenize_words(strings[tf.newaxis])[0]
        if strings.shape.rank != 1:
            raise ValueError(f"expected a scalar or 1-D batch of strings, got shape {strings.shape}")
        words = self._basic_words(strings)
        return words.with_flat_values(self._wordpiece_words(words.flat_values))

    def tokenize(self, strings) -> tf.RaggedTensor | tf.Tensor:
        """Wordpiece ids without special tokens: [batch, (wordpieces)] int32 (a scalar gives [(wordpieces)]).

        A RaggedTensor of pre-split words [batch, (words)] gives [batch, (words), (wordpieces)]; each word
        still goes through the basic tokenizer, as in the original (e.g. CoNLL `U.S.` -> u . s .).
        """
        strings = _as_string_tensor(strings)
        if isinstance(strings, tf.RaggedTensor):
            pieces = self.tokenize(strings.flat_values)
            return strings.with_flat_values(pieces)
        if strings.shape.rank == 0:
            return self.tokenize(strings[tf.newaxis])[0]
        return self.tokenize_words(strings).merge_dims(-2, -1)

    def tokenize_with_offsets(self, strings):
        """(ids, start_bytes, end_bytes), each [batch, (wordpieces)]: byte spans in the ORIGINAL UTF-8 input.

        `strings[start:end]` of a piece is the original text it came from (accents, case and removed control
        characters included), which is what SQuAD-style span extraction needs. Pieces of one character
        that decomposes into several (e.g. Hangul syllables under NFD) share that character's span.
        """
        strings = _as_string_tensor(strings)
        if isinstance(strings, tf.RaggedTensor):
            raise TypeError("tokenize_with_offsets takes whole strings")
        if strings.shape.rank == 0:
            ids, starts, ends = self.tokenize_with_offsets(strings[tf.newaxis])
            return ids[0], starts[0], ends[0]
        if strings.shape.rank != 1:
            raise ValueError(f"expected a scalar or 1-D batch of strings, got shape {strings.shape}")

        # 1) Whitespace tokens of the original text, exactly as `whitespace_tokenize` sees them. (The split
        #    op stops at NUL bytes, so NUL becomes \x01: same length, also removed by normalization.)
        no_nul = tf.strings.regex_replace(strings, r"\x00", "\x01")
        tokens, token_starts, _ = tf_text.regex_split_with_offsets(no_nul, _WHITESPACE)
        flat_tokens = tokens.flat_values
        # 2) Normalize each token and each of its characters; the per-character byte lengths align
        #    normalized bytes with original characters (normalization acts character by character, up to
        #    final sigma, which keeps the byte length).
        chars, char_starts = tf.strings.unicode_split_with_offsets(flat_tokens, "UTF-8")
        char_ends = char_starts.flat_values + tf.cast(tf.strings.length(chars.flat_values), tf.int64)
        normalized_lengths = tf.strings.length(self._normalize(chars.flat_values))
        cum_ends = tf.cumsum(tf.cast(normalized_lengths, tf.int64))
        token_base = tf.gather(tf.concat([[0], cum_ends], 0), chars.row_splits[:-1])
        # 3) Punctuation/CJK split and WordPiece on the normalized tokens.
        norm_tokens = self._normalize(flat_tokens)
        words, word_starts, _ = tf_text.regex_split_with_offsets(
            norm_tokens, _PUNCTUATION_OR_CJK, _PUNCTUATION_OR_CJK
        )
        flat_words = words.flat_values
        too_long = tf.strings.length(flat_words, unit="UTF8_CHAR") > self.max_chars_per_word
        ids, piece_starts, piece_ends = self._wordpiece.tokenize_with_offsets(
            tf.where(too_long, "[UNK]", flat_words)
        )
        word_bytes = tf.cast(tf.strings.length(flat_words), tf.int64)
        piece_ends = tf.where(
            tf.gather(too_long, ids.value_rowids()), tf.gather(word_bytes, ids.value_rowids()), piece_ends.values
        )
        # 4) Piece byte offsets within the normalized token -> global normalized positions -> original chars.
        piece_word = ids.value_rowids()
        piece_token = tf.gather(words.value_rowids(), piece_word)
        base = tf.gather(token_base, piece_token) + tf.gather(word_starts.flat_values, piece_word)
        first_char = tf.searchsorted(cum_ends, base + piece_starts.values, side="right")
        last_char = tf.searchsorted(cum_ends, base + piece_ends, side="left")
        original_base = tf.gather(token_starts.flat_values, piece_token)
        starts = original_base + tf.gather(char_starts.flat_values, first_char)
        ends = original_base + tf.gather(char_ends, last_char)
        # 5) Back to [batch, (wordpieces)].
        token_pieces = words.with_flat_values(ids).merge_dims(-2, -1)
        per_string = tokens.with_flat_values(token_pieces).merge_dims(-2, -1)
        return (
            per_string,
            per_string.with_flat_values(tf.cast(starts, tf.int64)),
            per_string.with_flat_values(tf.cast(ends, tf.int64)),
        )

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
        trimmed = [
            tf.ragged.boolean_mask(seg, tf.ragged.range(seg.row_lengths()) < keep[:, tf.newaxis])
            for seg, keep in zip(ragged, new_lengths)
        ]
        combined, type_ids = tf_text.combine_segments(trimmed, self.cls_id, self.sep_id)
        word_ids, mask = tf_text.pad_model_inputs(combined, self.seq_length, pad_value=self.pad_id)
        type_ids, _ = tf_text.pad_model_inputs(type_ids, self.seq_length, pad_value=0)
        outputs = {
            "input_word_ids": tf.cast(word_ids, tf.int32),
            "input_mask": tf.cast(mask, tf.int32),
            "input_type_ids": tf.cast(type_ids, tf.int32),
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
