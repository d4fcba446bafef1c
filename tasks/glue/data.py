"""Reading GLUE splits (original TSV directories or local tensorflow_datasets) into `tf.data` pipelines.

TSV quirks handled: MRPC's UTF-8 BOM (utf-8-sig), stray quote characters (csv.QUOTE_NONE: a `"` is just
a character, as in the original BERT/GLUE readers), CoLA train/dev without a header, STS-B float scores,
MNLI's two dev files. Every bad input names its file (and line): missing split file, missing column,
wrong field count, a label outside the task's label set, an unparsable score.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import tensorflow as tf

from bert_keras.finetuning.inputs import trim_padding
from bert_keras.tasks.glue.tasks import Column, GlueTaskSpec, Split
from bert_keras.text_files import open_text

csv.field_size_limit(1 << 24)


@dataclasses.dataclass
class GlueExamples:
    """One split in memory: texts, label ids (int32; float32 scores for STS-B; None if unlabeled), ids."""

    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray | None
    index: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.text_a)


def split_file(spec: GlueTaskSpec, split: str, data_dir: str) -> str:
    return os.path.normpath(os.path.join(data_dir, spec.directory, _split(spec, split).file))


def _split(spec: GlueTaskSpec, split: str) -> Split:
    if split not in spec.splits:
        raise ValueError(f"GLUE task {spec.name!r} has no split {split!r}; it has {sorted(spec.splits)}")
    return spec.splits[split]


def _label_converter(spec: GlueTaskSpec, path: str):
    if spec.is_regression:
        def convert(value: str, line: int) -> float:
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"{path}:{line}: score {value!r} is not a number") from None
        return convert
    ids = {label: i for i, label in enumerate(spec.labels)}

    def convert(value: str, line: int) -> int:
        if value not in ids:
            raise ValueError(f"{path}:{line}: label {value!r} is not in the {spec.name} label set "
                             f"{list(spec.labels)}")
        return ids[value]
    return convert


def read_tsv(spec: GlueTaskSpec, split: str, data_dir: str, skip_malformed_rows: bool = False) -> GlueExamples:
    """Reads one split of an original GLUE directory (`<data_dir>/<task dir>/<file>`).

    A row with the wrong number of fields is an error naming file and line, unless `skip_malformed_rows`
    (the public QQP train.tsv has a few truncated rows, which other readers silently drop): then each
    skipped line is reported once on stdout.
    """
    desc = _split(spec, split)
    path = split_file(spec, split, data_dir)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"GLUE {spec.name} split {split!r}: file not found: {path}")
    columns = desc.columns
    convert = _label_converter(spec, path) if columns.label is not None else None
    text_a, text_b, labels, index = [], [], [], []
    with open_text(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        width = desc.num_fields
        position: dict[Column, int] = {}
        if desc.header:
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file (expected a header line)")
            width = len(header)
            for column in (columns.text_a, columns.text_b, columns.label, columns.index):
                if column is None:
                    continue
                if column not in header:
                    raise ValueError(f"{path}:1: header has no column {column!r} (columns: {header})")
                position[column] = header.index(column)
        else:
            position = {c: c for c in (columns.text_a, columns.text_b, columns.label, columns.index)
                        if c is not None}
        for row in reader:
            line = reader.line_num
            if not row:  # a blank line (e.g. a final empty line)
                continue
            if (width is not None and len(row) != width) or len(row) <= max(position.values()):
                message = (f"{path}:{line}: malformed row: expected {width or 'more'} tab-separated fields, "
                           f"got {len(row)}")
                if skip_malformed_rows:
                    print(f"skipping {message}", flush=True)
                    continue
                raise ValueError(message + " (--skip_malformed_rows drops such rows)")
            text_a.append(row[position[columns.text_a]])
            if columns.text_b is not None:
                text_b.append(row[position[columns.text_b]])
            if convert is not None:
                labels.append(convert(row[position[columns.label]], line))
            index.append(row[position[columns.index]] if columns.index is not None else str(len(index)))
    if not text_a:
        raise ValueError(f"{path}: no examples")
    return GlueExamples(text_a, text_b if columns.text_b is not None else None,
                        _label_array(spec, labels) if convert is not None else None, index, path)


def _label_array(spec: GlueTaskSpec, labels) -> np.ndarray:
    return np.asarray(labels, np.float32 if spec.is_regression else np.int32)


def read_tfds(spec: GlueTaskSpec, split: str, data_dir: str) -> GlueExamples:
    """Reads one split of a tensorflow_datasets `glue/<config>` already prepared under `data_dir`
    (never downloads). tfds label ids are mapped onto this task's label set by name, or for the 0/1 tasks
    by id (tfds's id 1 is the TSVs' "1": acceptable, positive, equivalent, duplicate, entailment)."""
    import tensorflow_datasets as tfds

    desc = _split(spec, split)
    config, tfds_split = desc.tfds
    source = f"tensorflow_datasets glue/{config} split {tfds_split!r} in {data_dir}"
    try:
        builder = tfds.builder(f"glue/{config}", data_dir=data_dir)
    except Exception as e:  # tfds raises several types for a missing/unreadable dataset
        raise FileNotFoundError(f"{source}: cannot open: {e}") from None
    if not builder.is_prepared():
        raise FileNotFoundError(f"{source}: not prepared there (this reader does not download)")
    if tfds_split not in builder.info.splits:
        raise FileNotFoundError(f"{source}: no such split (has {sorted(builder.info.splits)})")
    label_feature = builder.info.features["label"]
    names = getattr(label_feature, "names", None)
    text_a, text_b, labels, index = [], [], [], []
    for example in tfds.as_numpy(builder.as_dataset(split=tfds_split, shuffle_files=False)):
        text_a.append(example[spec.tfds_fields[0]].decode("utf-8"))
        if len(spec.tfds_fields) > 1:
            text_b.append(example[spec.tfds_fields[1]].decode("utf-8"))
        index.append(str(int(example["idx"])))
        labels.append(example["label"])
    if not text_a:
        raise ValueError(f"{source}: no examples")
    has_labels = desc.columns.label is not None and not np.all(np.asarray(labels) == -1)
    ids = None
    if has_labels:
        convert = _label_converter(spec, source)
        if spec.is_regression:
            ids = _label_array(spec, [float(x) for x in labels])
        else:
            ids = _label_array(spec, [convert(names[x] if names[x] in spec.labels else str(x), i)
                                      for i, x in enumerate(labels)])
    return GlueExamples(text_a, text_b or None, ids, index, source)


def read_split(spec: GlueTaskSpec, split: str, data_dir: str, source: str = "auto",
               skip_malformed_rows: bool = False) -> GlueExamples:
    """`source`: "tsv", "tfds", or "auto" (the GLUE TSV directory if `<data_dir>/<task dir>` exists)."""
    if not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data_dir {data_dir!r} does not exist (expected the GLUE data folder, with "
                                f"{spec.directory}/ inside, or a prepared tensorflow_datasets folder)")
    if source == "auto":
        source = "tsv" if os.path.isdir(os.path.join(data_dir, spec.directory)) else "tfds"
    if source == "tsv":
        return read_tsv(spec, split, data_dir, skip_malformed_rows)
    if source == "tfds":
        return read_tfds(spec, split, data_dir)
    raise ValueError(f"unknown GLUE data source {source!r}; use 'tsv', 'tfds' or 'auto'")


def make_dataset(examples: GlueExamples, tokenizer, packer, batch_size: int, *, with_labels: bool = True,
                 shuffle_seed: int | None = None, pad_to_multiple: int = 8) -> tf.data.Dataset:
    """Batches of packed features and, if `with_labels`, labels; in file order unless `shuffle_seed` is
    given (then reshuffled every epoch). Dynamic padding: each batch is cut to its longest sequence
    rounded up to `pad_to_multiple` (use max_seq_length for fixed shapes)."""
    texts = {"text_a": tf.constant(examples.text_a)}
    if examples.text_b is not None:
        texts["text_b"] = tf.constant(examples.text_b)
    if with_labels:
        if examples.labels is None:
            raise ValueError(f"{examples.source}: this split has no labels")
        dataset = tf.data.Dataset.from_tensor_slices((texts, examples.labels))
    else:
        dataset = tf.data.Dataset.from_tensor_slices((texts,))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(examples), seed=shuffle_seed, reshuffle_each_iteration=True)

    def encode(texts, *labels):
        segments = [tokenizer.tokenize(texts["text_a"])]
        if "text_b" in texts:
            segments.append(tokenizer.tokenize(texts["text_b"]))
        return trim_padding(packer(segments), *labels, multiple=pad_to_multiple)

    return dataset.batch(batch_size).map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
