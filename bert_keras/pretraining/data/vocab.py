"""Train a WordPiece vocabulary on a corpus with tensorflow-text's BERT vocab learner.

    python -m bert_keras.pretraining.data.vocab --input='corpus/*.txt' --vocab_size=8000 --output=vocab.txt \\
      [--nolower_case]

Our vocab files put the reserved tokens first: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3, [MASK]=4 (Google's
released vocabs have them at 0/100/101/102/103). Code must therefore never hard-code ids; it reads them
from the tokenizer (`tokenizer.cls_id`, ...). The words are split the way `BertTokenizer` splits them
(original BERT basic tokenization; lower-cased and accent-stripped unless `lower_case=False`).
"""

from __future__ import annotations

import logging
import time
from typing import Sequence

import tensorflow as tf

from bert_keras.pretraining.data.documents import expand_input_files
from bert_keras.vocab_file import write_vocab

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

_LOG = logging.getLogger(__name__)


def _text_lines(files: Sequence[str]) -> tf.data.Dataset:
    lines = tf.data.TextLineDataset(list(files))
    lines = lines.map(lambda s: tf.strings.unicode_transcode(s, "UTF-8", "UTF-8", errors="replace"))
    return lines.filter(lambda s: tf.strings.length(tf.strings.strip(s)) > 0)


def train_vocab(
    input_files: str | Sequence[str],
    vocab_size: int,
    *,
    lower_case: bool = True,
    reserved_tokens: Sequence[str] = RESERVED_TOKENS,
    max_input_tokens: int = 5_000_000,
    min_count: int = 10,
) -> list[str]:
    """Learns a WordPiece vocabulary (reserved tokens first) from text files.

    `max_input_tokens` caps how many word occurrences the learner counts (its memory bound). The learner
    keeps only pieces seen at least `min_count` times, so on a small corpus the result can be smaller than
    `vocab_size` (lower `min_count` to get closer); it is never exactly `vocab_size`.
    """
    from tensorflow_text.tools.wordpiece_vocab import bert_vocab_from_dataset as learner

    files = expand_input_files(input_files)
    start = time.time()
    vocab = learner.bert_vocab_from_dataset(
        _text_lines(files).batch(1024).prefetch(2),
        vocab_size=vocab_size,
        reserved_tokens=list(reserved_tokens),
        bert_tokenizer_params=dict(lower_case=lower_case),
        learn_params=dict(max_input_tokens=max_input_tokens, lower_thresh=min_count),
    )
    _LOG.info("Learned %d tokens from %d file(s) in %.1fs.", len(vocab), len(files), time.time() - start)
    return vocab


def unknown_token_rate(tokenizer, input_files: str | Sequence[str]) -> tuple[float, int]:
    """Fraction of WordPieces that are [UNK] when `tokenizer` reads the files, and the WordPiece count."""
    files = expand_input_files(input_files)
    unknown = total = 0
    for batch in _text_lines(files).batch(4096):
        pieces = tokenizer.tokenize(batch).flat_values
        unknown += int(tf.reduce_sum(tf.cast(tf.equal(pieces, tokenizer.unk_id), tf.int64)))
        total += int(tf.size(pieces))
    return unknown / max(total, 1), total


def main(argv=None) -> None:
    from absl import app, flags

    flags.DEFINE_string("input", None, "Training text: path, glob or comma list.", required=True)
    flags.DEFINE_string("output", None, "Where to write vocab.txt.", required=True)
    flags.DEFINE_integer("vocab_size", 8000, "Target vocabulary size (including reserved tokens).")
    flags.DEFINE_bool("lower_case", True, "Uncased vocab (lower-case, strip accents); --nolower_case for cased.")
    flags.DEFINE_integer("max_input_tokens", 5_000_000, "Word occurrences the learner counts at most.")
    flags.DEFINE_integer("min_count", 10, "Keep only WordPieces seen at least this often.")
    values = flags.FLAGS

    def run(_):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        vocab = train_vocab(
            values.input,
            values.vocab_size,
            lower_case=values.lower_case,
            max_input_tokens=values.max_input_tokens,
            min_count=values.min_count,
        )
        write_vocab(vocab, values.output)
        _LOG.info("Wrote %d tokens to %s (reserved: %s at ids 0..%d).", len(vocab), values.output,
                  " ".join(RESERVED_TOKENS), len(RESERVED_TOKENS) - 1)

    app.run(run, argv)


if __name__ == "__main__":
    main()
