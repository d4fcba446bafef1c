"""The small object through which a task family (GLUE, SQuAD, CoNLL) plugs into the shared trainer."""

from __future__ import annotations

import abc
import weakref
from typing import Any, Callable

import keras
import numpy as np
import tensorflow as tf


class FineTuningTask(abc.ABC):
    """A task: its data (already bound to a tokenizer and data_dir), head, loss and official evaluation.

    The trainer only calls the methods below; everything task-specific (file formats, post-processing,
    submission files) stays inside the task. `evaluate` must score the WHOLE split with the official
    metrics and return plain floats; `main_metric` names the key (higher is better) that picks the best
    checkpoint and drives early stopping.
    """

    name: str = "task"
    main_metric: str = "accuracy"
    eval_split: str = "dev"
    model_class: type[keras.Model] = keras.Model  # what `build_model` returns (checked when exporting a run)

    @abc.abstractmethod
    def train_dataset(self, batch_size: int, seed: int = 0) -> tuple[tf.data.Dataset, int]:
        """(finite, shuffled dataset of `(features, labels)` or `(features, labels, sample_weight)`,
        number of training examples)."""

    @abc.abstractmethod
    def build_model(self, encoder: keras.Model) -> keras.Model:
        """The task model over `encoder` (a `BertEncoder`), built (weights created), with get_config."""

    @abc.abstractmethod
    def loss(self) -> Any:
        """What `model.compile(loss=...)` takes (a loss, or a dict keyed by the model's output names)."""

    def compile_metrics(self) -> Any:
        """Cheap per-batch metrics for the progbar (optional; official metrics come from `evaluate`)."""
        return None

    @abc.abstractmethod
    def evaluate(self, model: keras.Model, split: str | None = None) -> dict[str, float]:
        """Official metrics over the whole `split` (default `eval_split`); must contain `main_metric`.
        No side effects: files derived from an evaluation come from `write_eval_outputs`."""

    def evaluate_with_outputs(self, model: keras.Model) -> tuple[dict[str, float], Any]:
        """`evaluate` on `eval_split`, plus the predictions behind the metrics that `write_eval_outputs` needs
        (default: none). The trainer keeps the best epoch's, so nothing is predicted twice."""
        return self.evaluate(model), None

    def write_eval_outputs(self, outputs: Any, metrics: dict[str, float], output_dir: str) -> list[str]:
        """Writes the files an `eval_split` evaluation leaves in `model_dir` (e.g. SQuAD's dev predictions)
        from `evaluate_with_outputs`' results; returns their paths. Default: no files."""
        return []

    def write_predictions(self, model: keras.Model, output_dir: str) -> list[str]:
        """Writes test-set prediction files (e.g. a benchmark's submission format); returns their paths."""
        raise NotImplementedError(f"task {self.name!r} does not write predictions")

    def export_metadata(self) -> dict[str, Any]:
        """What serving the trained model needs (JSON values), saved beside its export by the trainer:
        `task_family` (e.g. "glue"), `task`, `max_seq_length`, plus task settings. The trainer adds the
        tokenizer's vocab and lower-case flag (`task.tokenizer`) and this class's import path, through which
        `python -m bert_keras.export --model_dir` finds `serving_module`."""
        raise NotImplementedError(f"task {self.name!r} does not describe itself for export")

    @classmethod
    def serving_module(cls, model: keras.Model, tokenizer: Any, metadata: dict[str, Any],
                       seq_length: int | None = None) -> Any:
        """The raw-text serving module (a `bert_keras.export.ServingModule`) for `model`, a model this task
        family trained, from the run metadata its `export_metadata` wrote; `seq_length` overrides the run's.
        A classmethod: exporting needs the run directory only, not the task's data."""
        raise NotImplementedError(f"{cls.__name__} has no serving export")


def predict_outputs(model: keras.Model, dataset: tf.data.Dataset) -> Any:
    """Runs `model` over a features-only dataset and concatenates the outputs along the batch axis.

    Unlike `model.predict`, tolerates dynamic padding: outputs of rank >= 2 (e.g. [batch, seq] logits)
    are right-padded with zeros to the longest batch before concatenation.
    """
    predict = _predict_function(model)
    batches = [keras.tree.map_structure(np.asarray, predict(features)) for features in dataset]
    if not batches:
        raise ValueError("predict_outputs: the dataset is empty")

    def concat(*parts):
        if parts[0].ndim >= 2:
            width = max(p.shape[1] for p in parts)
            parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts]
        return np.concatenate(parts, axis=0)

    return keras.tree.map_structure(concat, *batches)


_SINGLE_COPY_PREDICT: "weakref.WeakKeyDictionary[keras.Model, Callable]" = weakref.WeakKeyDictionary()


def _predict_function(model: keras.Model) -> Callable:
    """`model.predict_on_batch`, except under several replicas: there Keras runs the whole (undistributed)
    batch on every replica and concatenates the copies, so a compiled call of the model in the cross-replica
    context (mirrored variables read once) runs it once instead."""
    if model.distribute_strategy.num_replicas_in_sync == 1:
        return model.predict_on_batch
    if model not in _SINGLE_COPY_PREDICT:
        held = weakref.ref(model)  # the cached function must not keep its key alive
        _SINGLE_COPY_PREDICT[model] = tf.function(lambda features: held()(features, training=False),
                                                  reduce_retracing=True)
    return _SINGLE_COPY_PREDICT[model]
