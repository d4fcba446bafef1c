"""Raw text -> BERT's pre-training input format (one sentence per line, a blank line between documents).

    python -m bert_keras.pretraining.data.prepare --input='books/*.txt' --output=corpus.txt

Handles Project Gutenberg books (header/footer license text stripped), wiki-style paragraphs, hard-wrapped
lines, Windows line endings and non-UTF-8 bytes (replaced, counted and reported per file). Paragraphs are
blank-line separated; a document ends at the end of a file, at a heading (CHAPTER IV, BOOK II, a roman
numeral, a wiki `= Title =` line) or after `max_sentences_per_document` sentences (at a paragraph end), so
that long books give many documents for next-sentence prediction. Files are streamed: memory stays bounded.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator, TextIO

import tensorflow as tf

from bert_keras.pretraining.data.documents import expand_input_files, iter_decoded_lines
from bert_keras.pretraining.data.sentences import split_sentences

_LOG = logging.getLogger(__name__)

_GUTENBERG_START = re.compile(r"^\s*\*\*\*\s*START OF (THIS|THE) PROJECT GUTENBERG", re.IGNORECASE)
_HEADER_LINES = 400  # a start marker further in than this is not a Gutenberg header
_GUTENBERG_END = re.compile(
    r"^\s*(\*\*\*\s*END OF (THIS|THE) PROJECT GUTENBERG|End of (the )?Project Gutenberg)", re.IGNORECASE
)
_HEADING = re.compile(
    r"""^\s*(
        (chapter|book|part|volume|stave|letter|section)\b[\s\w.,:;'’-]{0,60}   # CHAPTER IV. The Pool of Tears
      | [IVXLCDM]+\.?                                                       # IV.
      | =+\s[^=].*\s=+                                                      # = Title = (wiki)
    )\s*$""",
    re.IGNORECASE | re.VERBOSE,
)


@dataclass
class PrepareReport:
    """Counts for the log: per-file replaced (non-UTF-8) bytes and documents/sentences written."""

    documents: int = 0
    sentences: int = 0
    invalid_utf8: dict[str, int] = field(default_factory=dict)
    empty_files: list[str] = field(default_factory=list)


def _without_gutenberg_boilerplate(lines: Iterable[str]) -> Iterator[str]:
    """Drops the Project Gutenberg header and footer: everything through the last `*** START OF ...` marker
    among the first lines (some files repeat their header, and a marker may wrap onto the next line), and
    everything from `*** END OF ...` on. Files without a start marker there keep their beginning."""
    lines = iter(lines)
    head = list(itertools.islice(lines, _HEADER_LINES))
    starts = [i for i, line in enumerate(head) if _GUTENBERG_START.match(line)]
    if starts:
        head = head[_marker_end(head, starts[-1]) + 1:]
    for line in itertools.chain(head, lines):
        if _GUTENBERG_END.match(line):
            return
        yield line


def _marker_end(lines: list[str], start: int) -> int:
    """Index of the line holding the closing `***` of the marker that opens at `lines[start]`."""
    for i in range(start, min(start + 3, len(lines))):
        if lines[i].rstrip().endswith("***"):
            return i
    return start


def _paragraphs(lines: Iterable[str]) -> Iterator[tuple[str, bool]]:
    """(paragraph text, is_heading) from blank-line separated, possibly hard-wrapped lines."""
    current: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped:
            if current:
                yield " ".join(current), False
                current = []
            continue
        if not current and _HEADING.match(stripped):
            yield stripped, True
            continue
        current.append(stripped)
    if current:
        yield " ".join(current), False


def prepare_file(path: str, out: TextIO, report: PrepareReport, max_sentences_per_document: int = 200,
                 max_documents: int | None = None) -> None:
    """Writes the documents of one raw text file to `out` (each followed by a blank line); with
    `max_documents`, only its first ones (an excerpt, so a small corpus can hold many books)."""
    documents_before = report.documents
    doc_sentences = 0

    def end_document():
        nonlocal doc_sentences
        if doc_sentences:
            out.write("\n")
            report.documents += 1
        doc_sentences = 0

    lines = _without_gutenberg_boilerplate(iter_decoded_lines(path, report.invalid_utf8))
    for paragraph, is_heading in _paragraphs(lines):
        if max_documents is not None and report.documents - documents_before >= max_documents:
            break
        if is_heading:
            end_document()
            continue
        for sentence in split_sentences(paragraph):
            out.write(sentence + "\n")
            doc_sentences += 1
            report.sentences += 1
        if doc_sentences >= max_sentences_per_document:
            end_document()
    end_document()
    if report.documents == documents_before:
        report.empty_files.append(path)
        _LOG.warning("%s: no text found (empty or blank-only file).", path)


def prepare(input_files, output_file: str, max_sentences_per_document: int = 200,
            max_documents_per_file: int | None = None) -> PrepareReport:
    """Converts every input file (paths, globs or comma lists) into one output file."""
    report = PrepareReport()
    with tf.io.gfile.GFile(output_file, "w") as out:
        for path in expand_input_files(input_files):
            prepare_file(path, out, report, max_sentences_per_document, max_documents_per_file)
    return report


def main(argv=None) -> None:
    from absl import app, flags

    flags.DEFINE_string("input", None, "Raw text files: path, glob or comma list.", required=True)
    flags.DEFINE_string("output", None, "Output text file in BERT pre-training format.", required=True)
    flags.DEFINE_integer("max_sentences_per_document", 200, "Split longer documents at a paragraph end.")
    flags.DEFINE_integer("max_documents_per_file", None, "Keep only the first N documents of each file.",
                         lower_bound=1)
    flags_values = flags.FLAGS

    def run(_):
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
        report = prepare(flags_values.input, flags_values.output, flags_values.max_sentences_per_document,
                         flags_values.max_documents_per_file)
        bad = sum(report.invalid_utf8.values())
        _LOG.info(
            "Wrote %d documents, %d sentences to %s (%d invalid UTF-8 bytes replaced in %d file(s); %d empty file(s)).",
            report.documents, report.sentences, flags_values.output, bad, len(report.invalid_utf8),
            len(report.empty_files),
        )

    app.run(run, argv)


if __name__ == "__main__":
    main()
