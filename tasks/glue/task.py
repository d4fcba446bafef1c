"""`GlueTask`: one GLUE task plugged into the shared fine-tuning mechanics (`bert_keras.finetuning`)."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from bert_keras.finetuning import FineTuningTask, predict_outputs
from bert_keras.finetuning.metrics import compute
from bert_keras.tasks.glue.data import GlueExamples, make_dataset, read_split
from bert_keras.tasks.glue.model import GlueClassifier
from bert_keras.tasks.glue.tasks import GlueTaskSpec, get_task


class GlueTask(FineTuningTask):
    """A GLUE task bound to its data directory and a tokenizer.

    Plain-Keras use::

        task = GlueTask("mrpc", data_dir, tokenizer, max_seq_length=128)
        model = task.build_model(encoder)
        model.compile(optimizer, loss=task.loss())
        model.fit(task.dataset("train", 32, shuffle_seed=0), epochs=3)
        task.evaluate(model)  # {"f1": ..., "accuracy": ...}
    """

    model_class = GlueClassifier

    def __init__(self, spec: GlueTaskSpec | str, data_dir: str, tokenizer, max_seq_length: int = 128,
                 eval_batch_size: int = 64, source: str = "auto", pad_to_multiple: int = 8,
                 skip_malformed_rows: bool = False):
        from bert_keras.tokenizer import SegmentPacker

        self.spec = get_task(spec) if isinstance(spec, str) else spec
        self.name = self.spec.name
        self.main_metric = self.spec.main_metric
        self.eval_split = self.spec.eval_splits[0]
        self.data_dir = data_dir
        self.tokenizer = tokenizer
        self.packer = SegmentPacker(max_seq_length, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
        self.eval_batch_size = eval_batch_size
        self.source = source
        self.pad_to_multiple = pad_to_multiple
        self.skip_malformed_rows = skip_malformed_rows
        self._examples: dict[str, GlueExamples] = {}
        self._predict_datasets: dict[str, tf.data.Dataset] = {}

    def examples(self, split: str) -> GlueExamples:
        if split not in self._examples:
            self._examples[split] = read_split(self.spec, split, self.data_dir, self.source,
                                              self.skip_malformed_rows)
        return self._examples[split]

    def dataset(self, split: str, batch_size: int, *, with_labels: bool = True,
                shuffle_seed: int | None = None) -> tf.data.Dataset:
        return make_dataset(self.examples(split), self.tokenizer, self.packer, batch_size,
                            with_labels=with_labels, shuffle_seed=shuffle_seed,
                            pad_to_multiple=self.pad_to_multiple)

    # --- FineTuningTask ---------------------------------------------------------------------------
    def train_dataset(self, batch_size: int, seed: int = 0) -> tuple[tf.data.Dataset, int]:
        return self.dataset("train", batch_size, shuffle_seed=seed), len(self.examples("train"))

    def build_model(self, encoder: keras.Model) -> GlueClassifier:
        model = GlueClassifier(encoder, self.spec.num_classes)
        model.build()
        return model

    def loss(self) -> keras.losses.Loss:
        if self.spec.is_regression:
            return keras.losses.MeanSquaredError()
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def compile_metrics(self) -> list[keras.metrics.Metric] | None:
        return None if self.spec.is_regression else [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    @property
    def num_text_fields(self) -> int:
        return 2 if self.spec.splits["train"].columns.text_b is not None else 1

    def export_metadata(self) -> dict:
        return {"task_family": "glue", "task": self.name, "max_seq_length": self.packer.seq_length,
                "labels": list(self.spec.labels) if self.spec.labels else None,
                "num_text_fields": self.num_text_fields}

    @classmethod
    def serving_module(cls, model: GlueClassifier, tokenizer, metadata: dict, seq_length: int | None = None):
        """Text (or a text pair) in, label names and probabilities (or a score) out."""
        from bert_keras.tasks.glue.serving import ClassifierServing

        num_text_fields = metadata.get("num_text_fields")
        if num_text_fields is None:  # metadata written before the field existed: the GLUE task's layout
            spec = get_task(metadata["task"])
            num_text_fields = 2 if spec.splits["train"].columns.text_b is not None else 1
        return ClassifierServing(model, tokenizer, seq_length or metadata["max_seq_length"],
                                 label_names=metadata.get("labels"), num_text_fields=num_text_fields)

    def outputs(self, model: keras.Model, split: str) -> np.ndarray:
        """The model's logits (classification) or scores (regression) for `split`, in file order."""
        if split not in self._predict_datasets:  # built once: each build re-traces the tokenizer graph
            self._predict_datasets[split] = self.dataset(split, self.eval_batch_size, with_labels=False)
        return predict_outputs(model, self._predict_datasets[split])

    def predict(self, model: keras.Model, split: str) -> np.ndarray:
        """Predicted label ids (classification) or scores (regression), in file order."""
        outputs = self.outputs(model, split)
        return outputs if self.spec.is_regression else np.argmax(outputs, axis=-1)

    def evaluate(self, model: keras.Model, split: str | None = None) -> dict[str, float]:
        """Official metrics over whole eval split(s). With `split=None`, every eval split: MNLI's
        mismatched metrics get a `dev_mismatched_` prefix, the first (main) split's are unprefixed."""
        splits = [split] if split else list(self.spec.eval_splits)
        results: dict[str, float] = {}
        for i, name in enumerate(splits):
            labels = self.examples(name).labels
            if labels is None:
                raise ValueError(f"{self.examples(name).source}: split {name!r} has no labels to evaluate")
            prefix = "" if i == 0 else f"{name}_"
            for metric, value in compute(self.spec.metrics, self.predict(model, name), labels).items():
                results[prefix + metric] = value
        return results

    def write_predictions(self, model: keras.Model, output_dir: str) -> list[str]:
        """GLUE submission files (`CoLA.tsv`, `MNLI-m.tsv`, `MNLI-mm.tsv`, `AX.tsv`, ...): a header
        `index\\tprediction`, then one row per test example with the label name (or score)."""
        os.makedirs(output_dir, exist_ok=True)
        written = []
        for split in self.spec.test_splits:
            examples = self.examples(split)
            predictions = self.predict(model, split)
            path = os.path.join(output_dir, self.spec.splits[split].submission)
            with open(path, "w", encoding="utf-8") as f:
                f.write("index\tprediction\n")
                for index, value in zip(examples.index, predictions):
                    shown = f"{float(value):.3f}" if self.spec.is_regression else self.spec.labels[int(value)]
                    f.write(f"{index}\t{shown}\n")
            written.append(path)
        return written
