"""The user's own classification files (CSV, TSV, JSON Lines) read and checked before any model exists.

Why everything up front: a typo in a column name or one bad row found after an hour of training wastes the
hour, and a crash half-way leaves a half-written model_dir. So every file is read completely here, each
problem is reported as `file:line: column 'x': what is wrong`, and nothing is written anywhere.

Formats, by extension:
- `.csv`: RFC 4180 (Python's csv "excel" dialect): quoted fields may hold commas, quotes and newlines;
- `.tsv`: one row per line, tab-separated, no quoting (as the GLUE TSVs: a `"` is just a character);
- `.jsonl` / `.json`: JSON Lines, one object per line; a multi-label label may be a JSON list.
CSV/TSV files start with a header naming the columns. Bytes that are not UTF-8 are a row error (the row and
column are named), not a crash of the whole read; `skip_bad_rows` drops such rows and counts them.

Label order (`labels`): the `--labels` order when given, else SORTED label names of the training file
(numerically when every name is a number, so "2" < "10"), not first appearance: the label ids -- and so the
classifier head's rows -- then do not depend on the order of the training rows, and shuffling or
re-exporting the training file yields the same head layout.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bert_keras.tasks.glue.data import GlueExamples

csv.field_size_limit(1 << 24)

FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "jsonl"}
PROBLEM_TYPES = ("single_label", "multi_label", "regression")
SPLITS = ("train", "validation", "test")

_NOT_UTF8 = re.compile("[\udc80-\udcff]")  # what undecodable bytes become under errors="surrogateescape"
_INTEGER = re.compile(r"[+-]?\d+")


class DataError(ValueError):
    """Bad input data; the message names the file and, for a row, its line and column."""


@dataclasses.dataclass(frozen=True)
class Columns:
    """Which fields of a row hold the text, the optional second text (pairs) and the label."""

    text: str = "text"
    text_pair: str | None = None
    label: str = "label"

    @property
    def text_fields(self) -> list[str]:
        return [self.text] + ([self.text_pair] if self.text_pair else [])


@dataclasses.dataclass
class Row:
    """One row as read: line where it starts (1-based), its text(s), the raw label (None if not read)."""

    line: int
    text_a: str
    text_b: str | None
    label: Any


@dataclasses.dataclass
class ClassifyData:
    """Every split read, checked and converted: what `ClassifyTask` trains, evaluates and predicts on.

    `splits[name]` are `GlueExamples` (texts, labels: int32 ids / float32 scores / float32 multi-hot
    [n, num_labels], `index` = the line each row starts on); `skipped[path]` counts rows dropped by
    `skip_bad_rows`; `problem_type_source` says how the problem type was decided (for the log and the run)."""

    problem_type: str
    labels: list[str] | None
    columns: Columns
    splits: dict[str, GlueExamples]
    files: dict[str, str]
    skipped: dict[str, int]
    problem_type_source: str
    label_source: str
    label_delimiter: str | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-able description of the data of a run (written into its model_dir)."""
        return {"problem_type": self.problem_type, "problem_type_source": self.problem_type_source,
                "labels": self.labels, "label_source": self.label_source,
                "text_column": self.columns.text, "text_pair_column": self.columns.text_pair,
                "label_column": self.columns.label, "label_delimiter": self.label_delimiter,
                "files": {split: {"path": path, "rows": len(self.splits[split]),
                                  "skipped_rows": self.skipped.get(path, 0)}
                          for split, path in self.files.items()}}


def file_format(path: str) -> str:
    """"csv", "tsv" or "jsonl" from the file name's extension."""
    extension = os.path.splitext(path)[1].lower()
    if extension not in FORMATS:
        raise DataError(f"{path}: unknown format {extension or '(no extension)'!r}; name the file .csv, .tsv, "
                        f".jsonl or .json (JSON Lines)")
    return FORMATS[extension]


def _read_text(path: str) -> str:
    if not os.path.exists(path):
        raise DataError(f"{path}: file not found")
    if not os.path.isfile(path):
        raise DataError(f"{path}: not a file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if not raw.strip():
        raise DataError(f"{path}: empty file")
    # Undecodable bytes become lone surrogates, found per row and column below.
    return raw.decode("utf-8-sig", errors="surrogateescape")


def _records(path: str, fmt: str, text: str, needed: Sequence[str]):
    """Yields (line, record dict or an error message) per row; raises DataError for file-level problems."""
    if fmt == "jsonl":
        if text.lstrip().startswith("["):
            raise DataError(f"{path}:1: a JSON array; write JSON Lines instead (one object per line)")
        for line, content in enumerate(text.split("\n"), 1):  # not splitlines(): JSON strings may hold U+2028
            if not content.strip():
                continue
            try:
                record = json.loads(content)
            except json.JSONDecodeError as e:
                yield line, f"malformed JSON ({e.msg} at character {e.colno})"
                continue
            if not isinstance(record, dict):
                yield line, f"expected a JSON object, got {type(record).__name__}"
                continue
            missing = [c for c in needed if c not in record]
            yield line, (f"no field {missing[0]!r} (fields: {sorted(record)})" if missing else record)
        return
    if fmt == "csv":
        reader = csv.reader(io.StringIO(text, newline=""))
    else:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    try:
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file")
        bad = _NOT_UTF8.search("".join(header))
        if bad:
            raise DataError(f"{path}:1: header: bytes that are not UTF-8")
        header = [h.strip() for h in header]
        for column in needed:
            if column not in header:
                raise DataError(f"{path}:1: header has no column {column!r} (columns: {header})")
        last = reader.line_num
        for row in reader:
            start, last = last + 1, reader.line_num
            if not row:
                continue
            if len(row) != len(header):
                yield start, (f"expected {len(header)} {'comma' if fmt == 'csv' else 'tab'}-separated fields "
                              f"as in the header, got {len(row)}")
                continue
            yield start, dict(zip(header, row))
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: unreadable {fmt.upper()} ({e})") from None


def _text(record: dict, column: str) -> str:
    value = record[column]
    if not isinstance(value, str):
        raise ValueError(f"column {column!r}: expected a string, got {json.dumps(value)[:40]}")
    if _NOT_UTF8.search(value):
        raise ValueError(f"column {column!r}: bytes that are not UTF-8")
    if not value.strip():
        raise ValueError(f"column {column!r}: empty text")
    return value


def _label(record: dict, column: str) -> Any:
    value = record[column]
    if isinstance(value, str) and _NOT_UTF8.search(value):
        raise ValueError(f"column {column!r}: bytes that are not UTF-8")
    return value


class _Rows:
    """Collects rows of one file; a bad row raises, or with `skip` is counted and reported once."""

    def __init__(self, path: str, skip: bool, log: Callable[[str], None]):
        self.path, self.skip, self.log = path, skip, log
        self.skipped = 0

    def bad(self, line: int, message: str) -> None:
        message = f"{self.path}:{line}: {message}"
        if not self.skip:
            raise DataError(message + " (--skip_bad_rows drops such rows)")
        self.skipped += 1
        self.log(f"skipping {message}")


def read_rows(path: str, columns: Columns, *, with_labels: bool, skip_bad_rows: bool = False,
              log: Callable[[str], None] = print) -> tuple[list[Row], int]:
    """Reads and checks one file's texts (labels are kept raw, see `convert_labels`).
    Returns (rows, number of rows skipped)."""
    fmt = file_format(path)
    text = _read_text(path)
    needed = columns.text_fields + ([columns.label] if with_labels else [])
    collector = _Rows(path, skip_bad_rows, log)
    rows = []
    for line, record in _records(path, fmt, text, needed):
        if isinstance(record, str):
            collector.bad(line, record)
            continue
        try:
            text_a = _text(record, columns.text)
            text_b = _text(record, columns.text_pair) if columns.text_pair else None
            label = _label(record, columns.label) if with_labels else None
        except ValueError as e:
            collector.bad(line, str(e))
            continue
        rows.append(Row(line, text_a, text_b, label))
    if not rows:
        raise DataError(f"{path}: no usable rows" + (f" ({collector.skipped} skipped)" if collector.skipped else ""))
    return rows, collector.skipped


# --- labels -------------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return math.isfinite(value)
    if isinstance(value, str):
        try:
            return math.isfinite(float(value))
        except ValueError:
            return False
    return False


def _looks_integer(value: Any) -> bool:
    return isinstance(value, int) or (isinstance(value, str) and bool(_INTEGER.fullmatch(value.strip())))


def infer_problem_type(values: Sequence[Any], label_delimiter: str | None = None) -> tuple[str, str]:
    """(problem type, why) from the training file's raw labels: JSON lists or a `label_delimiter` ->
    multi_label; all numbers with at least one not integer-looking (e.g. "3.8", 1.0) -> regression;
    otherwise single_label (integer labels like 0/1 or 1..5 stars are classes)."""
    lists = [v for v in values if isinstance(v, list)]
    if lists:
        return "multi_label", f"{len(lists)} training labels are JSON lists"
    if label_delimiter:
        return "multi_label", f"--label_delimiter={label_delimiter!r} given"
    if values and all(_is_number(v) for v in values):
        fractional = next((v for v in values if not _looks_integer(v)), None)
        if fractional is not None:
            return "regression", f"every training label is a number and some are not integers (e.g. {fractional!r})"
    distinct = len({_name(v) for v in values if isinstance(v, (str, int, float))})
    return "single_label", f"{distinct} distinct training labels, not lists, not fractional numbers"


def _name(value: Any) -> str:
    """A scalar label as its name: strings stripped, JSON numbers/booleans as written in JSON."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, int, float)):
        return json.dumps(value)
    raise ValueError(f"expected a label name, got {json.dumps(value)[:40]}")


def _names(value: Any, problem_type: str, delimiter: str | None) -> list[str]:
    if problem_type == "single_label":
        if isinstance(value, list):
            raise ValueError("a list of labels, but the problem type is single_label")
        if value is None or _name(value) == "":
            raise ValueError("empty label")
        return [_name(value)]
    if value is None:
        return []
    if isinstance(value, list):
        names = [_name(v) for v in value]
    elif isinstance(value, str) and delimiter:
        names = value.split(delimiter)
    else:
        names = [_name(value)]
    names = [n.strip() for n in names if n.strip()]
    return list(dict.fromkeys(names))  # each label once, in the order given


def _score(value: Any) -> float:
    if isinstance(value, bool) or not _is_number(value):
        raise ValueError(f"regression label {value!r} is not a finite number")
    return float(value)


def sort_labels(names: Sequence[str]) -> list[str]:
    """Sorted, numerically when every name is a number."""
    names = sorted(set(names))
    if all(_is_number(n) for n in names):
        return sorted(names, key=lambda n: (float(n), n))
    return names


def parse_labels(value: str | Sequence[str]) -> list[str]:
    """`--labels`: a list, a comma-separated string, or the path of a file with one label per line."""
    if isinstance(value, str):
        if os.path.isfile(value):
            text = _read_text(value)
            if _NOT_UTF8.search(text):
                raise DataError(f"{value}: bytes that are not UTF-8")
            names = [line.strip() for line in text.splitlines() if line.strip()]
            source = value
        elif "," not in value and (os.sep in value or value.endswith(".txt")):
            raise DataError(f"--labels: labels file not found: {value}")
        else:
            names, source = [n.strip() for n in value.split(",")], "--labels"
    else:
        names, source = [str(n).strip() for n in value], "labels"
    if not names or any(not n for n in names):
        raise DataError(f"{source}: empty label name in {names}")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise DataError(f"{source}: labels listed twice: {duplicates}")
    return names


def convert_labels(rows: list[Row], path: str, columns: Columns, problem_type: str, labels: list[str] | None,
                   delimiter: str | None, collector: _Rows) -> tuple[list[Row], np.ndarray]:
    """Label ids / multi-hot vectors / scores of `rows`; rows whose label is unusable are errors (or skipped)."""
    ids = {name: i for i, name in enumerate(labels or [])}
    kept, converted = [], []
    for row in rows:
        try:
            if problem_type == "regression":
                value = _score(row.label)
            else:
                names = _names(row.label, problem_type, delimiter)
                unknown = [n for n in names if n not in ids]
                if unknown:
                    raise ValueError(f"label {unknown[0]!r} is not in the label set {labels}")
                if problem_type == "single_label":
                    value = ids[names[0]]
                else:
                    value = np.zeros(len(ids), np.float32)
                    value[[ids[n] for n in names]] = 1.0
        except ValueError as e:
            collector.bad(row.line, f"column {columns.label!r}: {e}")
            continue
        kept.append(row)
        converted.append(value)
    if not kept:
        raise DataError(f"{path}: no usable rows ({collector.skipped} skipped)")
    dtype = np.int32 if problem_type == "single_label" else np.float32
    if problem_type == "multi_label":
        return kept, np.stack(converted).astype(dtype)
    return kept, np.asarray(converted, dtype)


def _examples(rows: list[Row], labels: np.ndarray | None, path: str, columns: Columns) -> GlueExamples:
    return GlueExamples([r.text_a for r in rows], [r.text_b for r in rows] if columns.text_pair else None,
                        labels, [str(r.line) for r in rows], path)


def load_files(train_file: str | None = None, validation_file: str | None = None, test_file: str | None = None,
               *, columns: Columns = Columns(), problem_type: str | None = None,
               labels: str | Sequence[str] | None = None, label_delimiter: str | None = None,
               skip_bad_rows: bool = False, log: Callable[[str], None] = print) -> ClassifyData:
    """Reads and checks every given file; raises `DataError` (file, line, column) on the first problem, or
    with `skip_bad_rows` drops bad rows (each reported through `log`, counted in `skipped`).

    Without `train_file` (evaluating or predicting with a trained run), `problem_type` and, for
    classification, `labels` must be given."""
    files = {s: p for s, p in zip(SPLITS, (train_file, validation_file, test_file)) if p}
    if not files:
        raise DataError("no data file given (train, validation or test)")
    if problem_type is not None and problem_type not in PROBLEM_TYPES:
        raise DataError(f"problem type must be one of {PROBLEM_TYPES}, got {problem_type!r}")
    if problem_type == "regression" and labels:
        raise DataError("--labels names classes; a regression problem has none")
    given_labels = parse_labels(labels) if labels else None
    for path in files.values():  # every named file exists and has a known format before any is parsed
        file_format(path)
        if not os.path.isfile(path):
            raise DataError(f"{path}: file not found")
    raw: dict[str, list[Row]] = {}
    collectors: dict[str, _Rows] = {}
    for split, path in files.items():
        rows, skipped = read_rows(path, columns, with_labels=split != "test", skip_bad_rows=skip_bad_rows, log=log)
        raw[split] = rows
        collectors[split] = _Rows(path, skip_bad_rows, log)
        collectors[split].skipped = skipped

    if problem_type is not None:
        problem_type_source = "--problem_type"
    elif "train" in raw:
        problem_type, why = infer_problem_type([r.label for r in raw["train"]], label_delimiter)
        problem_type_source = f"inferred from {files['train']}: {why}"
    else:
        raise DataError("without a training file, give the problem type (--problem_type)")
    if problem_type == "regression":
        label_list, label_source = None, "none (regression)"
    elif given_labels is not None:
        label_list, label_source = given_labels, "--labels (in that order)"
    elif "train" in raw:
        found = []
        for row in raw["train"]:
            try:
                found.extend(_names(row.label, problem_type, label_delimiter))
            except ValueError:
                pass  # reported with its line by convert_labels below
        label_list, label_source = sort_labels(found), f"sorted names found in {files['train']}"
    else:
        raise DataError("without a training file, give the label names (--labels)")
    if problem_type == "single_label" and label_list is not None and len(label_list) < 2:
        raise DataError(f"{files.get('train', '--labels')}: single_label classification needs at least 2 "
                        f"labels, found {label_list}")
    if problem_type == "multi_label" and not label_list:
        raise DataError(f"{files.get('train', '--labels')}: multi_label classification found no label names")

    log(f"problem type {problem_type} ({problem_type_source}); labels {label_list} ({label_source})")
    splits: dict[str, GlueExamples] = {}
    for split, rows in raw.items():
        if split == "test":
            splits[split] = _examples(rows, None, files[split], columns)
            continue
        rows, values = convert_labels(rows, files[split], columns, problem_type, label_list, label_delimiter,
                                      collectors[split])
        splits[split] = _examples(rows, values, files[split], columns)
    skipped = {files[s]: c.skipped for s, c in collectors.items()}
    for path, count in skipped.items():
        if count:
            log(f"{path}: skipped {count} bad rows (--skip_bad_rows)")
    return ClassifyData(problem_type, label_list, columns, splits, files, skipped, problem_type_source,
                        label_source, label_delimiter)
