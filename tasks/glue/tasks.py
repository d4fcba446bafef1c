"""The nine GLUE tasks (+ the AX diagnostic) as data descriptions: files, columns, labels, metrics.

Adding a task = adding one `GlueTaskSpec`. Columns are header names, or 0-based positions for files
without a header (CoLA train/dev). Split names: "train", eval splits ("dev"; MNLI "dev_matched",
"dev_mismatched"), test splits ("test"; MNLI "test_matched", "test_mismatched", "ax").
"""

from __future__ import annotations

import dataclasses

Column = str | int


@dataclasses.dataclass(frozen=True)
class Columns:
    text_a: Column
    text_b: Column | None = None
    label: Column | None = None  # None: unlabeled (test) split
    index: Column | None = None  # the id written into submission files


@dataclasses.dataclass(frozen=True)
class Split:
    file: str  # relative to <data_dir>/<task directory>
    columns: Columns
    header: bool = True
    num_fields: int | None = None  # checked on files without a header (with one, the header's width)
    submission: str | None = None  # GLUE submission file for a test split, e.g. "MNLI-m.tsv"
    tfds: tuple[str, str] | None = None  # (tfds glue config, tfds split)


@dataclasses.dataclass(frozen=True)
class GlueTaskSpec:
    name: str
    directory: str
    labels: tuple[str, ...] | None  # label strings as written in the TSVs; None = regression
    metrics: tuple[str, ...]
    main_metric: str
    splits: dict[str, Split]
    eval_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    tfds_fields: tuple[str, ...] = ("sentence1", "sentence2")  # text features of tensorflow_datasets glue/*

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_classes(self) -> int:
        return 1 if self.labels is None else len(self.labels)


def _pair_task(name, directory, labels, metrics, main_metric, a, b, label, *, test_index="index",
               tfds_config=None, tfds_fields=("sentence1", "sentence2"), submission=None):
    """The common layout: headed train/dev/test TSVs with two text columns (test has an index column)."""
    tfds_config = tfds_config or name
    return GlueTaskSpec(
        name, directory, labels, metrics, main_metric, tfds_fields=tfds_fields, splits={
            "train": Split("train.tsv", Columns(a, b, label), tfds=(tfds_config, "train")),
            "dev": Split("dev.tsv", Columns(a, b, label), tfds=(tfds_config, "validation")),
            "test": Split("test.tsv", Columns(a, b, index=test_index),
                          submission=submission or f"{directory}.tsv", tfds=(tfds_config, "test")),
        })


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
_MNLI = ("contradiction", "entailment", "neutral")
_MNLI_COLUMNS = Columns("sentence1", "sentence2", "gold_label")
_MNLI_TEST = Columns("sentence1", "sentence2", index="index")

GLUE_TASKS: dict[str, GlueTaskSpec] = {
    "cola": GlueTaskSpec(
        "cola", "CoLA", _BINARY, ("matthews_corrcoef", "accuracy"), "matthews_corrcoef",
        tfds_fields=("sentence",), splits={
            # CoLA's train/dev have no header: source, label, original label, sentence.
            "train": Split("train.tsv", Columns(3, label=1), header=False, num_fields=4, tfds=("cola", "train")),
            "dev": Split("dev.tsv", Columns(3, label=1), header=False, num_fields=4, tfds=("cola", "validation")),
            "test": Split("test.tsv", Columns("sentence", index="index"), submission="CoLA.tsv",
                          tfds=("cola", "test")),
        }),
    "sst2": _pair_task("sst2", "SST-2", _BINARY, ("accuracy",), "accuracy", "sentence", None, "label",
                       tfds_fields=("sentence",), submission="SST-2.tsv"),
    "mrpc": _pair_task("mrpc", "MRPC", _BINARY, ("f1", "accuracy"), "f1", "#1 String", "#2 String",
                       "Quality"),
    "stsb": _pair_task("stsb", "STS-B", None, ("pearson", "spearman"), "spearman", "sentence1", "sentence2",
                       "score"),
    "qqp": _pair_task("qqp", "QQP", _BINARY, ("f1", "accuracy"), "f1", "question1", "question2",
                      "is_duplicate", test_index="id", tfds_fields=("question1", "question2")),
    "mnli": GlueTaskSpec(
        "mnli", "MNLI", _MNLI, ("accuracy",), "accuracy", tfds_fields=("premise", "hypothesis"),
        eval_splits=("dev_matched", "dev_mismatched"), test_splits=("test_matched", "test_mismatched", "ax"),
        splits={
            "train": Split("train.tsv", _MNLI_COLUMNS, tfds=("mnli", "train")),
            "dev_matched": Split("dev_matched.tsv", _MNLI_COLUMNS, tfds=("mnli", "validation_matched")),
            "dev_mismatched": Split("dev_mismatched.tsv", _MNLI_COLUMNS, tfds=("mnli", "validation_mismatched")),
            "test_matched": Split("test_matched.tsv", _MNLI_TEST, submission="MNLI-m.tsv",
                                  tfds=("mnli", "test_matched")),
            "test_mismatched": Split("test_mismatched.tsv", _MNLI_TEST, submission="MNLI-mm.tsv",
                                     tfds=("mnli", "test_mismatched")),
            # The diagnostic set sits beside the task directories and is predicted with the MNLI model.
            "ax": Split("../diagnostic/diagnostic.tsv", _MNLI_TEST, submission="AX.tsv", tfds=("ax", "test")),
        }),
    "qnli": _pair_task("qnli", "QNLI", _NLI2, ("accuracy",), "accuracy", "question", "sentence", "label",
                       tfds_fields=("question", "sentence")),
    "rte": _pair_task("rte", "RTE", _NLI2, ("accuracy",), "accuracy", "sentence1", "sentence2", "label"),
    "wnli": _pair_task("wnli", "WNLI", _BINARY, ("accuracy",), "accuracy", "sentence1", "sentence2", "label"),
}


def get_task(name: str) -> GlueTaskSpec:
    key = name.lower().replace("-", "")
    if key not in GLUE_TASKS:
        raise ValueError(f"unknown GLUE task {name!r}; choose from {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]
