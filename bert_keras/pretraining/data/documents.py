"""Corpus files -> a stream of tokenized documents, in pure TF ops.

Input format of the original BERT: one sentence per line, a blank line between documents, many files.
Files are read line by line (`TextLineDataset`) in chunks, so memory stays bounded whatever the file size,
and the iterator state (file offsets, the partial document carried between chunks) can be checkpointed.
"""

from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import tensorflow as tf

if TYPE_CHECKING:
    from bert_keras.tokenizer import BertTokenizer

_LOG = logging.getLogger(__name__)

# Each document gets a unique int64 key: file index in the high bits, document number in the file below.
_DOC_BITS = 40

# Functions given to tf.data below use no data-dependent Python control flow: they skip AutoGraph
# conversion (`do_not_convert`), which would otherwise dominate the time to build a pipeline.


def expand_input_files(input_files: str | Sequence[str]) -> list[str]:
    """Expands comma lists and globs (as the original `--input_file`); raises naming a pattern with no match."""
    patterns: list[str] = []
    for item in [input_files] if isinstance(input_files, (str, os.PathLike)) else list(input_files):
        patterns.extend(_split_comma_list(os.fspath(item)))
    if not patterns:
        raise ValueError("No input files given.")
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(tf.io.gfile.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matched or not all(tf.io.gfile.exists(f) for f in matched):
            raise FileNotFoundError(f"Input file or pattern matches nothing: {pattern!r}")
        files.extend(m for m in matched if not tf.io.gfile.isdir(m))
    return files


def _matches(pattern: str) -> bool:
    return bool(tf.io.gfile.glob(pattern)) if glob.has_magic(pattern) else tf.io.gfile.exists(pattern)


def _split_comma_list(text: str) -> list[str]:
    """Splits a comma list, re-joining pieces while they name no file (for names like "Carroll, Lewis")."""
    items: list[str] = []
    current = None
    for piece in text.split(","):
        current = piece if current is None else current + "," + piece
        if _matches(current.strip()):
            items.append(current.strip())
            current = None
    if current is not None and current.strip():
        items.append(current.strip())  # reported as missing by the caller
    return items


@dataclass
class CorpusReport:
    """What a scan of the corpus files found (filled by `validate_corpus_files`)."""

    num_documents: int = 0
    num_sentences: int = 0
    empty_files: list[str] = field(default_factory=list)
    invalid_utf8: dict[str, int] = field(default_factory=dict)  # file -> number of replaced bytes


def validate_corpus_files(files: Iterable[str]) -> CorpusReport:
    """Streams every file once (bounded memory) and reports bad input by file name.

    Empty/blank-only files and non-UTF-8 bytes are warnings (the TF reader skips/replaces them); a corpus
    with fewer than two documents is an error because next-sentence prediction needs a second document.
    """
    report = CorpusReport()
    files = list(files)
    for path in files:
        docs_here = 0
        in_doc = False
        for line in iter_decoded_lines(path, report.invalid_utf8):
            if line.strip():
                report.num_sentences += 1
                docs_here += not in_doc
                in_doc = True
            else:
                in_doc = False
        report.num_documents += docs_here
        if docs_here == 0:
            report.empty_files.append(path)
            _LOG.warning("%s: empty or blank-only file; it contributes no documents.", path)
    if report.num_documents < 2:
        raise ValueError(
            f"The corpus has {report.num_documents} document(s) in {len(files)} file(s) ({', '.join(files)}); "
            "next-sentence prediction needs at least two documents separated by a blank line."
        )
    return report


def iter_decoded_lines(path: str, invalid_utf8: dict[str, int]) -> Iterator[str]:
    """Streams the lines of a file as text without line endings (`\n`, `\r\n`, BOM removed). Invalid
    UTF-8 bytes become U+FFFD; their count is stored in `invalid_utf8[path]` and logged with the file name."""
    bad = 0
    with tf.io.gfile.GFile(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", errors="replace")
            if "\ufffd" in line:
                bad += _count_invalid_bytes(raw)
            yield line.rstrip("\n").rstrip("\r").lstrip("\ufeff")
    if bad:
        invalid_utf8[path] = bad
        _LOG.warning("%s: %d byte(s) are not valid UTF-8; replaced by U+FFFD.", path, bad)


def _count_invalid_bytes(raw: bytes) -> int:
    """Counts bytes that strict UTF-8 decoding rejects (each replaced by U+FFFD in the reader)."""
    count = 0
    pos = 0
    while pos < len(raw):
        try:
            raw[pos:].decode("utf-8")
            break
        except UnicodeDecodeError as e:
            count += e.end - e.start
            pos += e.end
    return count


def _file_documents(file_index: tf.Tensor, path: tf.Tensor, chunk_lines: int) -> tf.data.Dataset:
    """Lines of one file -> chunks of complete documents: (doc_keys [D], sentence row lengths [D], lines).

    A `scan` carries the trailing, still-open document of each chunk into the next one; an appended blank
    line flushes the last document at end of file.
    """
    lines = tf.data.TextLineDataset(path).concatenate(tf.data.Dataset.from_tensors(tf.constant("")))

    @tf.autograph.experimental.do_not_convert
    def step(state, chunk):
        carry, next_doc = state
        chunk = tf.concat([carry, _clean_lines(chunk)], axis=0)
        blank = tf.equal(chunk, "")
        blank_positions = tf.cast(tf.where(blank)[:, 0], tf.int32)
        cut = tf.cond(
            tf.size(blank_positions) > 0, lambda: blank_positions[-1] + 1, lambda: tf.constant(0, tf.int32)
        )
        complete, carry = chunk[:cut], chunk[cut:]
        complete_blank = blank[:cut]
        # Document number of each line = running count of blank lines before it (runs of blanks collapse
        # below because empty documents are dropped).
        line_doc = tf.cumsum(tf.cast(complete_blank, tf.int32), exclusive=True)
        keep = tf.logical_not(complete_blank)
        sentences = tf.boolean_mask(complete, keep)
        sentence_doc = tf.boolean_mask(line_doc, keep)
        doc_numbers, compact_doc = tf.unique(sentence_doc)
        num_docs = tf.size(doc_numbers)
        row_lengths = tf.math.bincount(compact_doc, minlength=num_docs, maxlength=num_docs, dtype=tf.int32)
        keys = tf.cast(file_index, tf.int64) * (1 << _DOC_BITS) + next_doc + tf.range(num_docs, dtype=tf.int64)
        return (carry, next_doc + tf.cast(num_docs, tf.int64)), (keys, row_lengths, sentences)

    initial = (tf.constant([], tf.string), tf.constant(0, tf.int64))
    return lines.batch(chunk_lines).scan(initial, step)


def _clean_lines(lines: tf.Tensor) -> tf.Tensor:
    """Replaces invalid UTF-8 by U+FFFD (as the original's `errors="replace"` decoding, whose U+FFFD the
    tokenizer then drops) and strips whitespace (incl. Windows `\\r`). Only lines with a byte >= 0x80 can be
    invalid; transcoding just those halves the cost on English text."""
    non_ascii = tf.where(tf.logical_not(tf.strings.regex_full_match(lines, r"[\x00-\x7f]*")))
    fixed = tf.strings.unicode_transcode(tf.gather_nd(lines, non_ascii), "UTF-8", "UTF-8", errors="replace")
    return tf.strings.strip(tf.tensor_scatter_nd_update(lines, non_ascii, fixed))


def document_dataset(
    files: Sequence[str],
    tokenizer: BertTokenizer,
    *,
    whole_word_mask: bool = False,
    shuffle_files: bool = True,
    seed: int = 0,
    num_shards: int = 1,
    shard_index: int = 0,
    chunk_lines: int = 2048,
    cycle_length: int = 4,
) -> tf.data.Dataset:
    """Stream of tokenized documents (one epoch): dict `key` int64, `token_ids` int32 [T],
    `word_starts` bool [T] (True on the first WordPiece of each word), `sentence_lengths` int32 [N].

    Sharding: whole files when there are at least `num_shards` files, else every `num_shards`-th document.
    Sentences that tokenize to nothing and documents without sentences are dropped.
    """
    files = list(files)
    file_ds = tf.data.Dataset.from_tensor_slices((tf.range(len(files), dtype=tf.int64), tf.constant(files)))
    shard_docs = num_shards > 1 and len(files) < num_shards
    if num_shards > 1 and not shard_docs:
        file_ds = file_ds.shard(num_shards, shard_index)
    if shuffle_files:
        file_ds = file_ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    chunks = file_ds.interleave(
        tf.autograph.experimental.do_not_convert(lambda i, p: _file_documents(i, p, chunk_lines)),
        cycle_length=max(1, min(cycle_length, len(files))),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )

    @tf.autograph.experimental.do_not_convert
    def tokenize_chunk(keys, row_lengths, sentences):
        """A chunk's documents as ragged rows, tokenized in one call; sentences that tokenize to nothing and
        documents left without sentences are dropped here, vectorised (no per-document ops)."""
        if whole_word_mask:
            words = tokenizer.tokenize_words(sentences)  # [sentences, (words), (wordpieces)]
            pieces = words.merge_dims(1, 2)
            starts = tf.equal(_piece_index_in_word(words).merge_dims(1, 2).flat_values, 0)
        else:
            pieces = tokenizer.tokenize(sentences)
            starts = tf.ones_like(pieces.flat_values, tf.bool)
        num_docs = tf.size(keys)
        lengths = tf.cast(pieces.row_lengths(), tf.int32)
        non_empty = lengths > 0
        sentence_doc = tf.boolean_mask(tf.repeat(tf.range(num_docs), row_lengths), non_empty)
        lengths = tf.boolean_mask(lengths, non_empty)
        doc_sentences = tf.math.bincount(sentence_doc, minlength=num_docs, maxlength=num_docs, dtype=tf.int32)
        doc_tokens = tf.math.unsorted_segment_sum(lengths, sentence_doc, num_docs)
        keep = doc_sentences > 0
        # Empty sentences hold no WordPieces: the flat values stay as they are.
        doc_tokens, doc_sentences = tf.boolean_mask(doc_tokens, keep), tf.boolean_mask(doc_sentences, keep)
        return {
            "key": tf.boolean_mask(keys, keep),
            "token_ids": tf.RaggedTensor.from_row_lengths(tf.cast(pieces.flat_values, tf.int32), doc_tokens),
            "word_starts": tf.RaggedTensor.from_row_lengths(starts, doc_tokens),
            "sentence_lengths": tf.RaggedTensor.from_row_lengths(lengths, doc_sentences),
        }

    docs = chunks.map(tokenize_chunk, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    if shard_docs:
        docs = docs.shard(num_shards, shard_index)
    return docs.map(_dense_rows)


@tf.autograph.experimental.do_not_convert
def _dense_rows(doc: dict) -> dict:
    """Unbatched rows of a ragged batch come out as 0-ragged-rank RaggedTensors; make them plain tensors."""
    return {k: v.flat_values if isinstance(v, tf.RaggedTensor) else v for k, v in doc.items()}


def _piece_index_in_word(words: tf.RaggedTensor) -> tf.RaggedTensor:
    """For [sentences, (words), (pieces)], the index of every piece inside its word."""
    inner = words.values  # [(all words), (pieces)]
    index = tf.ragged.range(inner.row_lengths())
    return words.with_values(tf.cast(index, tf.int32))
