"""SQuAD as a `FineTuningTask`: windows for training, and evaluation that maps windows back to questions.

The shared trainer only sees `(features, labels)` batches and a metrics dict; everything that needs the
window -> question mapping (n-best over windows, null scores, official scoring) happens in `evaluate`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Sequence

import keras
import tensorflow as tf

from bert_keras.finetuning import FineTuningTask, predict_outputs, trim_padding
from bert_keras.tasks.squad import evaluate as squad_evaluate
from bert_keras.tasks.squad import postprocess
from bert_keras.tasks.squad.data import SquadExample
from bert_keras.tasks.squad.features import SquadFeatures, convert_examples_to_features
from bert_keras.tasks.squad.model import SquadModel

THRESHOLD_FILE = "best_null_threshold.json"
Answers = dict[str, postprocess.QuestionAnswer]  # question id -> post-processed answer


SERVING_SETTINGS = ("max_query_length", "doc_stride", "max_answer_length", "n_best_size", "null_score_diff_threshold")


@dataclasses.dataclass(frozen=True)
class SquadSettings:
    """Windowing and answer-selection settings (defaults: the original BERT run_squad.py)."""

    version: str = "1.1"
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64
    n_best_size: int = 20
    max_answer_length: int = 30
    null_score_diff_threshold: float = 0.0  # v2.0 only
    eval_batch_size: int = 64

    def __post_init__(self):
        if self.version not in ("1.1", "2.0"):
            raise ValueError(f"SQuAD version must be '1.1' or '2.0', got {self.version!r}")

    @property
    def with_null(self) -> bool:
        return self.version == "2.0"


@keras.saving.register_keras_serializable(package="bert_keras")
def span_loss(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
    """Half the cross-entropy of one boundary: start + end losses then average, as in the original BERT."""
    y_true = tf.reshape(tf.cast(y_true, tf.int32), [-1])
    return 0.5 * keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)


def _features_dataset(features: SquadFeatures, batch_size: int, *, with_labels: bool = False,
                      shuffle_seed: int | None = None) -> tf.data.Dataset:
    """Windows batched and trimmed to their longest; labels are the start/end positions (training windows)."""
    elements = features.model_inputs()
    if with_labels:
        elements = (elements, {"start_logits": features.start_positions, "end_logits": features.end_positions})
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(features), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(trim_padding).prefetch(tf.data.AUTOTUNE)


def predict_answers(model: keras.Model, examples: Sequence[SquadExample], features: SquadFeatures,
                    settings: SquadSettings) -> dict[str, postprocess.QuestionAnswer]:
    """Runs the model over every window and post-processes to one `QuestionAnswer` per question."""
    outputs = predict_outputs(model, _features_dataset(features, settings.eval_batch_size))
    return postprocess.postprocess(examples, features, outputs["start_logits"], outputs["end_logits"],
                                   n_best_size=settings.n_best_size, max_answer_length=settings.max_answer_length,
                                   with_null=settings.with_null)


def score(examples: Sequence[SquadExample], answers: dict[str, postprocess.QuestionAnswer],
          settings: SquadSettings) -> dict[str, float]:
    """Official metrics; for v2.0 also the best null threshold found on these examples."""
    dataset = squad_evaluate.dataset_from_examples(examples)
    if settings.version == "1.1":
        return squad_evaluate.evaluate_v1(dataset, postprocess.predictions(answers, None))
    result = squad_evaluate.evaluate_v2(dataset, postprocess.predictions(answers, settings.null_score_diff_threshold))
    best = postprocess.best_null_threshold(examples, answers)
    result.update(best_f1=best["best_f1"], best_f1_thresh=best["null_score_diff_threshold"],
                  best_exact=best["best_exact"], best_exact_thresh=best["best_exact_thresh"])
    return {k: float(v) for k, v in result.items()}


class SquadTask(FineTuningTask):
    """SQuAD v1.1/v2.0 over in-memory examples. `output_dir` is the run's `model_dir`, where
    `export_metadata` reads the v2.0 threshold the dev evaluation wrote (`best_null_threshold.json`)."""

    name = "squad"
    main_metric = "f1"
    model_class = SquadModel

    def __init__(self, tokenizer, settings: SquadSettings, *, train_examples: Sequence[SquadExample] = (),
                 eval_examples: Sequence[SquadExample] = (), predict_examples: Sequence[SquadExample] = (),
                 output_dir: str | None = None):
        self.tokenizer = tokenizer
        self.settings = settings
        self.examples = {"train": list(train_examples), "dev": list(eval_examples), "test": list(predict_examples)}
        self.output_dir = output_dir
        self._features: dict[str, SquadFeatures] = {}
        self.name = f"squad{settings.version}"

    def features(self, split: str) -> SquadFeatures:
        if split not in self._features:
            if not self.examples[split]:
                raise ValueError(f"SQuAD task has no {split} examples (give the {split} file)")
            s = self.settings
            self._features[split] = convert_examples_to_features(
                self.examples[split], self.tokenizer, max_seq_length=s.max_seq_length, doc_stride=s.doc_stride,
                max_query_length=s.max_query_length, is_training=split == "train")
        return self._features[split]

    def dataset(self, split: str, batch_size: int, *, with_labels: bool = True,
                shuffle_seed: int | None = None) -> tf.data.Dataset:
        """The windows of `split` as (features, {"start_logits", "end_logits"}) batches, or features only."""
        return _features_dataset(self.features(split), batch_size, with_labels=with_labels,
                                 shuffle_seed=shuffle_seed)

    def train_dataset(self, batch_size: int, seed: int = 0) -> tuple[tf.data.Dataset, int]:
        return self.dataset("train", batch_size, shuffle_seed=seed), len(self.features("train"))

    def build_model(self, encoder: keras.Model) -> keras.Model:
        model = SquadModel(encoder)
        model.build()
        return model

    def loss(self) -> dict[str, Callable[[tf.Tensor, tf.Tensor], tf.Tensor]]:
        return {"start_logits": span_loss, "end_logits": span_loss}

    def evaluate(self, model: keras.Model, split: str | None = None) -> dict[str, float]:
        return self._predict_and_score(model, split or self.eval_split)[0]

    def evaluate_with_outputs(self, model: keras.Model) -> tuple[dict[str, float], Answers]:
        """Dev metrics and the per-question answers they score (what `write_eval_outputs` writes)."""
        return self._predict_and_score(model, self.eval_split)

    def _predict_and_score(self, model: keras.Model, split: str):
        answers = predict_answers(model, self.examples[split], self.features(split), self.settings)
        return score(self.examples[split], answers, self.settings), answers

    def write_eval_outputs(self, outputs: Answers, metrics: dict[str, float], output_dir: str) -> list[str]:
        """`dev_predictions.json`, `dev_nbest_predictions.json`, for v2.0 `dev_null_odds.json` and
        `best_null_threshold.json` (the threshold search's result)."""
        return self._write(output_dir, outputs, metrics, prefix=f"{self.eval_split}_")

    def _write(self, output_dir: str, answers, metrics: dict[str, float], prefix: str) -> list[str]:
        threshold = self.settings.null_score_diff_threshold if self.settings.with_null else None
        paths = postprocess.write_prediction_files(output_dir, answers, threshold, prefix=prefix)
        if self.settings.with_null and metrics:
            path = os.path.join(output_dir, THRESHOLD_FILE)
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"null_score_diff_threshold": metrics["best_f1_thresh"], "best_f1": metrics["best_f1"],
                           "best_exact": metrics["best_exact"], "best_exact_thresh": metrics["best_exact_thresh"]},
                          f, indent=1)
            paths.append(path)
        return paths

    def export_metadata(self) -> dict:
        """Windowing settings; for v2.0 the null threshold the dev evaluation found (`best_null_threshold.json`
        in `output_dir`), else the configured one."""
        s = self.settings
        threshold = None
        if s.with_null:
            found = os.path.join(self.output_dir, THRESHOLD_FILE) if self.output_dir else None
            threshold = (postprocess.read_null_threshold(found) if found and os.path.isfile(found)
                         else s.null_score_diff_threshold)
        return {"task_family": "squad", "task": self.name, "max_seq_length": s.max_seq_length,
                "version": s.version, "doc_stride": s.doc_stride, "max_query_length": s.max_query_length,
                "max_answer_length": s.max_answer_length, "n_best_size": s.n_best_size,
                "null_score_diff_threshold": threshold}

    @classmethod
    def serving_module(cls, model: SquadModel, tokenizer, metadata: dict, seq_length: int | None = None):
        """Question + context in, answer text with character offsets out (windows and rules as trained)."""
        from bert_keras.tasks.squad.serving import SquadServing

        settings = {k: metadata[k] for k in SERVING_SETTINGS if k in metadata}
        return SquadServing(model, tokenizer, seq_length or metadata["max_seq_length"], **settings)

    def write_predictions(self, model: keras.Model, output_dir: str) -> list[str]:
        answers = predict_answers(model, self.examples["test"], self.features("test"), self.settings)
        return self._write(output_dir, answers, {}, prefix="")

