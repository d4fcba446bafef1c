"""Convert a BERT checkpoint between Hugging Face, Google TF1 and bert_keras formats.

    python -m bert_keras.checkpoints.convert --input path/to/checkpoint --output_dir out --format google
"""

from __future__ import annotations

import argparse
import logging
import sys
import time

from bert_keras.checkpoints.formats import FORMATS
from bert_keras.checkpoints.saving import convert_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_keras.checkpoints.convert",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True,
                        help="checkpoint directory, weight file or TF checkpoint prefix (any supported format)")
    parser.add_argument("--output_dir", required=True, help="directory to write")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="format to write")
    parser.add_argument("--vocab_file", default=None, help="vocab to copy (default: vocab.txt beside --input)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    written = convert_checkpoint(args.input, args.output_dir, args.format, args.vocab_file)
    logging.info("wrote %s checkpoint %s in %.1f s", args.format, written, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
