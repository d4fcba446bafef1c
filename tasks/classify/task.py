"""`ClassifyTask`: the user's own text-classification data plugged into the shared fine-tuning mechanics."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from bert_keras.finetuning import FineTuningTask, predict_outputs
from bert_keras.tasks.classify.data import ClassifyData, DataError
from bert_keras.tasks.classify.metrics import MAIN_CHOICES, MAIN_METRICS, compute
from bert_keras.tasks.classify.model import MultiLabelClassifier
from bert_keras.tasks.glue.data import GlueExamples, make_dataset
from bert_keras.tasks.glue.model import GlueClassifier

DATA_SUMMARY = "classify_data.json"  # what a run trained on: problem type, label order, files, skipped rows


def resolve_class_weights(spec: str | Sequence[float] | Mapping[str, float], labels: Sequence[str],
                          train_labels: np.ndarray) -> np.ndarray:
    """Per-class loss weights: "balanced" (n / (num_classes * count), scikit-learn's rule), one weight per
    label in label order ("2,1" or a list), or some labels by name ("spam=3" or a dict; others 1)."""
    if isinstance(spec, str) and spec.strip() == "balanced":
        counts = np.bincount(train_labels, minlength=len(labels))
        if np.any(counts == 0):
            missing = [labels[i] for i in np.flatnonzero(counts == 0)]
            raise DataError(f"balanced class weights: no training rows with label(s) {missing}")
        return (len(train_labels) / (len(labels) * counts)).astype(np.float32)
    if isinstance(spec, str):
        parts = [p.strip() for p in spec.split(",") if p.strip()]
        spec = dict(p.split("=", 1) for p in parts) if all("=" in p for p in parts) else parts
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(labels))
        if unknown:
            raise DataError(f"class weights: unknown label(s) {unknown}; labels are {list(labels)}")
        values = [spec.get(name, 1.0) for name in labels]
    else:
        values = list(spec)
        if len(values) != len(labels):
            raise DataError(f"class weights: {len(values)} weights for {len(labels)} labels {list(labels)}")
    try:
        weights = np.asarray([float(v) for v in values], np.float32)
    except ValueError:
        raise DataError(f"class weights: not numbers: {values}") from None
    if np.any(~np.isfinite(weights)) or np.any(weights < 0):
        raise DataError(f"class weights must be finite and >= 0, got {weights.tolist()}")
    return weights


class ClassifyTask(FineTuningTask):
    """Text (pair) classification -- single-label, multi-label -- or regression on checked `ClassifyData`.

    Plain-Keras use::

        data = load_files("train.csv", "dev.csv", columns=Columns("review", label="sentiment"))
        task = ClassifyTask(data, tokenizer, max_seq_length=128)
        model = task.build_model(encoder)
        model.compile(optimizer, loss=task.loss())
        model.fit(task.train_dataset(32)[0], epochs=3)
        task.evaluate(model)  # {"accuracy": ..., "macro_f1": ..., "micro_f1": ..., "matthews_corrcoef": ...}
    """

    name = "classify"
    eval_split = "validation"
    model_class = GlueClassifier  # MultiLabelClassifier is one too

    def __init__(self, data: ClassifyData, tokenizer, max_seq_length: int = 128, *, eval_batch_size: int = 64,
                 pad_to_multiple: int = 8, class_weights: str | Sequence[float] | Mapping[str, float] | None = None,
                 main_metric: str | None = None, threshold: float = 0.5):
        from bert_keras.tokenizer import SegmentPacker

        self.data = data
        self.problem_type = data.problem_type
        self.labels = data.labels
        self.main_metric, self.class_weights = self.check_options(data, class_weights, main_metric, threshold)
        self.threshold = float(threshold)
        self.tokenizer = tokenizer
        self.packer = SegmentPacker(max_seq_length, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
        self.eval_batch_size = eval_batch_size
        self.pad_to_multiple = pad_to_multiple
        self._predict_datasets: dict[str, tf.data.Dataset] = {}

    @staticmethod
    def check_options(data: ClassifyData, class_weights: Any = None, main_metric: str | None = None,
                      threshold: float = 0.5) -> tuple[str, np.ndarray | None]:
        """(main metric, class weights array or None) for `data`; a CLI calls this before loading a model."""
        problem_type = data.problem_type
        main_metric = main_metric or MAIN_METRICS[problem_type]
        if main_metric not in MAIN_CHOICES[problem_type]:
            raise DataError(f"main metric {main_metric!r} is not one of {problem_type}'s "
                            f"{list(MAIN_CHOICES[problem_type])}")
        if not 0.0 < threshold < 1.0:
            raise DataError(f"multi-label threshold must be in (0, 1), got {threshold}")
        if class_weights is None:
            return main_metric, None
        if problem_type != "single_label":
            raise DataError(f"class weights apply to single_label problems, not {problem_type}")
        if "train" not in data.splits:
            raise DataError("class weights need a training file")
        return main_metric, resolve_class_weights(class_weights, data.labels, data.splits["train"].labels)

    def examples(self, split: str) -> GlueExamples:
        if split not in self.data.splits:
            raise ValueError(f"no {split} file was given (have: {sorted(self.data.splits)})")
        return self.data.splits[split]

    def dataset(self, split: str, batch_size: int, *, with_labels: bool = True,
                shuffle_seed: int | None = None) -> tf.data.Dataset:
        """GLUE's pipeline (`tasks.glue.data.make_dataset`); with class weights, `(features, labels,
        sample_weight)` where each row weighs its class's weight."""
        dataset = make_dataset(self.examples(split), self.tokenizer, self.packer, batch_size,
                               with_labels=with_labels, shuffle_seed=shuffle_seed,
                               pad_to_multiple=self.pad_to_multiple)
        if with_labels and self.class_weights is not None:
            weights = tf.constant(self.class_weights)
            dataset = dataset.map(lambda features, labels: (features, labels, tf.gather(weights, labels)))
        return dataset

    # --- FineTuningTask ---------------------------------------------------------------------------
    def train_dataset(self, batch_size: int, seed: int = 0) -> tuple[tf.data.Dataset, int]:
        return self.dataset("train", batch_size, shuffle_seed=seed), len(self.examples("train"))

    def build_model(self, encoder: keras.Model) -> GlueClassifier:
        if self.problem_type == "multi_label":
            model = MultiLabelClassifier(encoder, len(self.labels))
        else:
            model = GlueClassifier(encoder, 1 if self.problem_type == "regression" else len(self.labels))
        model.build()
        return model

    def loss(self) -> keras.losses.Loss:
        if self.problem_type == "regression":
            return keras.losses.MeanSquaredError()
        if self.problem_type == "multi_label":
            return keras.losses.BinaryCrossentropy(from_logits=True)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile_metrics(self) -> list[keras.metrics.Metric] | None:
        if self.problem_type == "single_label":
            return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
        return None

    def outputs(self, model: keras.Model, split: str) -> np.ndarray:
        """Logits (classification) or scores (regression) for `split`, in file order."""
        if split not in self._predict_datasets:  # built once: each build re-traces the tokenizer graph
            self._predict_datasets[split] = self.dataset(split, self.eval_batch_size, with_labels=False)
        return predict_outputs(model, self._predict_datasets[split])

    def decide(self, outputs: np.ndarray) -> np.ndarray:
        """Label ids (single-label), 0/1 matrix of sigmoid >= threshold (multi-label) or the scores."""
        if self.problem_type == "single_label":
            return np.argmax(outputs, axis=-1)
        if self.problem_type == "multi_label":
            return (_sigmoid(outputs) >= self.threshold).astype(np.int32)
        return outputs

    def predict(self, model: keras.Model, split: str) -> np.ndarray:
        return self.decide(self.outputs(model, split))

    def evaluate(self, model: keras.Model, split: str | None = None) -> dict[str, float]:
        return self._evaluate(self.outputs(model, split or self.eval_split), split or self.eval_split)

    def evaluate_with_outputs(self, model: keras.Model) -> tuple[dict[str, float], np.ndarray]:
        outputs = self.outputs(model, self.eval_split)
        return self._evaluate(outputs, self.eval_split), outputs

    def _evaluate(self, outputs: np.ndarray, split: str) -> dict[str, float]:
        return compute(self.problem_type, self.decide(outputs), self.examples(split).labels, self.main_metric)

    def write_eval_outputs(self, outputs: np.ndarray | None, metrics: dict[str, float],
                           output_dir: str) -> list[str]:
        """`predictions_validation.jsonl`: the kept epoch's prediction for every validation row."""
        if outputs is None:
            return []
        return [self._write_jsonl(self.eval_split, outputs, output_dir)]

    def write_predictions(self, model: keras.Model, output_dir: str) -> list[str]:
        """`predictions_test.jsonl`: one object per test row, `line` (where the row starts in the test file),
        its text field(s) and, under the label column's name, the predicted label name (single-label), the
        list of predicted names (multi-label) or the score (regression); classification adds
        `probabilities` {name: p}. The same field names as the input, so the file reads back as data."""
        return [self._write_jsonl("test", self.outputs(model, "test"), output_dir)]

    def _write_jsonl(self, split: str, outputs: np.ndarray, output_dir: str) -> str:
        os.makedirs(output_dir, exist_ok=True)
        examples = self.examples(split)
        columns = self.data.columns
        decided = self.decide(outputs)
        if self.problem_type == "single_label":
            probabilities = _softmax(outputs)
        elif self.problem_type == "multi_label":
            probabilities = _sigmoid(outputs)
        path = os.path.join(output_dir, f"predictions_{split}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for i, line in enumerate(examples.index):
                row: dict[str, Any] = {"line": int(line), columns.text: examples.text_a[i]}
                if examples.text_b is not None:
                    row[columns.text_pair] = examples.text_b[i]
                if self.problem_type == "regression":
                    row[columns.label] = float(decided[i])
                else:
                    if self.problem_type == "single_label":
                        row[columns.label] = self.labels[int(decided[i])]
                    else:
                        row[columns.label] = [self.labels[j] for j in np.flatnonzero(decided[i])]
                    row["probabilities"] = {name: round(float(p), 6)
                                            for name, p in zip(self.labels, probabilities[i])}
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        return path

    # --- a run's description ------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        return {**self.data.summary(), "main_metric": self.main_metric,
                "class_weights": None if self.class_weights is None else self.class_weights.tolist(),
                "threshold": self.threshold if self.problem_type == "multi_label" else None}

    def write_summary(self, model_dir: str) -> str:
        """`classify_data.json` in `model_dir`: the problem type and label order a run trains with (read back
        by `--do_train=false` runs), files and skipped-row counts."""
        os.makedirs(model_dir, exist_ok=True)
        path = os.path.join(model_dir, DATA_SUMMARY)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.summary(), f, indent=1, ensure_ascii=False)
        return path

    def export_metadata(self) -> dict[str, Any]:
        columns = self.data.columns
        return {"task_family": "classify", "task": self.name, "max_seq_length": self.packer.seq_length,
                "problem_type": self.problem_type, "labels": self.labels,
                "num_text_fields": len(columns.text_fields), "text_fields": columns.text_fields,
                "label_column": columns.label, "threshold": self.threshold}

    @classmethod
    def serving_module(cls, model: GlueClassifier, tokenizer, metadata: dict, seq_length: int | None = None):
        """Text (or a pair) in; the user's label name(s) and probabilities, or a score, out."""
        from bert_keras.tasks.glue.serving import ClassifierServing

        problem_type = metadata.get("problem_type")
        if problem_type not in MAIN_METRICS:
            raise ValueError(f"run metadata: problem_type must be one of {list(MAIN_METRICS)}, got {problem_type!r}")
        if (problem_type == "multi_label") != isinstance(model, MultiLabelClassifier):
            raise ValueError(f"run metadata says {problem_type} but the model is a {type(model).__name__}")
        seq_length = seq_length or metadata["max_seq_length"]
        fields = metadata["num_text_fields"]
        if problem_type == "multi_label":
            from bert_keras.tasks.classify.serving import MultiLabelServing

            return MultiLabelServing(model, tokenizer, seq_length, label_names=metadata["labels"],
                                     num_text_fields=fields, threshold=metadata.get("threshold", 0.5))
        if problem_type == "single_label" and len(metadata["labels"] or ()) != model.num_classes:
            raise ValueError(f"run metadata has labels {metadata['labels']} for a model with {model.num_classes} "
                             "classes")
        return ClassifierServing(model, tokenizer, seq_length, num_text_fields=fields,
                                 label_names=metadata["labels"] if problem_type == "single_label" else None)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
