"""`ConllTask`: CoNLL-2003 NER plugged into the shared fine-tuning mechanics (`bert_keras.finetuning`)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from bert_keras.finetuning import FineTuningTask, predict_outputs
from bert_keras.tasks.conll import data, evaluate, features
from bert_keras.tasks.conll.model import TokenClassifier


class ConllTask(FineTuningTask):
    """NER on CoNLL-2003 (or any CoNLL column files with train/valid/test.txt) bound to a tokenizer.

    Plain-Keras use::

        task = ConllTask(data_dir, tokenizer, max_seq_length=128)
        model = task.build_model(encoder)
        model.compile(optimizer, loss=task.loss())
        dataset, _ = task.train_dataset(32)
        model.fit(dataset, epochs=3)
        task.evaluate(model)  # {"f1": ..., "precision": ..., "recall": ..., "PER_f1": ..., ...}
    """

    name = "conll2003"
    main_metric = "f1"
    eval_split = "validation"
    model_class = TokenClassifier

    def __init__(self, data_dir: str, tokenizer, max_seq_length: int = 128, *, window_context: int = 32,
                 eval_batch_size: int = 64, data_format: str = "conll",
                 entity_types: Sequence[str] = data.CONLL2003_ENTITY_TYPES,
                 sentences: dict[str, list[data.Sentence]] | None = None):
        """`sentences` (split -> sentences) replaces reading those splits from `data_dir` (e.g. a subset)."""
        if data_format not in ("conll", "tfds"):
            raise ValueError(f"data_format must be 'conll' or 'tfds', got {data_format!r}")
        self.data_dir = data_dir
        self.tokenizer = tokenizer
        self.max_seq_length = max_seq_length
        self.window_context = window_context
        self.eval_batch_size = eval_batch_size
        self.data_format = data_format
        self.entity_types = tuple(entity_types)
        self.labels = data.label_list(self.entity_types)
        self._sentences: dict[str, list[data.Sentence]] = dict(sentences or {})
        self._windows: dict[str, list[features.Window]] = {}

    def sentences(self, split: str) -> list[data.Sentence]:
        if split not in self._sentences:
            if self.data_format == "tfds":
                self._sentences[split] = data.read_tfds(split, self.data_dir)
            else:
                path = os.path.join(self.data_dir, data.SPLIT_FILES[split])
                self._sentences[split] = data.read_conll(path, self.entity_types)
        return self._sentences[split]

    def windows(self, split: str) -> list[features.Window]:
        if split not in self._windows:
            self._windows[split] = features.build_windows(
                self.sentences(split), self.tokenizer, self.labels, max_seq_length=self.max_seq_length,
                context=self.window_context)
        return self._windows[split]

    # --- FineTuningTask ---------------------------------------------------------------------------
    def train_dataset(self, batch_size: int, seed: int = 0) -> tuple[tf.data.Dataset, int]:
        windows = self.windows("train")
        return features.to_dataset(windows, batch_size, with_labels=True, shuffle_seed=seed,
                                   pad_id=self.tokenizer.pad_id), len(windows)

    def build_model(self, encoder: keras.Model) -> TokenClassifier:
        model = TokenClassifier(encoder, len(self.labels), labels=self.labels)
        model.build()
        return model

    def loss(self) -> keras.losses.Loss:
        # Averaged over the weighted (first-piece) positions only, like PyTorch's ignore_index=-100.
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")

    def export_metadata(self) -> dict:
        return {"task_family": "ner", "task": self.name, "max_seq_length": self.max_seq_length,
                "labels": list(self.labels), "window_context": self.window_context}

    @classmethod
    def serving_module(cls, model: TokenClassifier, tokenizer, metadata: dict, seq_length: int | None = None):
        """Text or pre-split words in, typed entity spans out (long text windowed as in training)."""
        from bert_keras.tasks.conll.serving import NerServing

        window = {"window_context": metadata["window_context"]} if "window_context" in metadata else {}
        return NerServing(model, tokenizer, seq_length or metadata["max_seq_length"], **window)

    def predict(self, model: keras.Model, split: str) -> list[list[str]]:
        """One IOB2 tag per word of every sentence of `split`."""
        windows = sorted(self.windows(split), key=lambda w: len(w.input_word_ids))  # less padding per batch
        dataset = features.to_dataset(windows, self.eval_batch_size, with_labels=False, pad_id=self.tokenizer.pad_id)
        logits = predict_outputs(model, dataset)
        return features.merge_predictions(windows, np.argmax(logits, axis=-1), self.sentences(split), self.labels)

    def score(self, model: keras.Model, split: str) -> tuple[evaluate.Report, list[list[str]]]:
        predicted = self.predict(model, split)
        return evaluate.score([s.tags for s in self.sentences(split)], predicted), predicted

    def evaluate(self, model: keras.Model, split: str | None = None) -> dict[str, float]:
        report, _ = self.score(model, split or self.eval_split)
        return report.as_dict()

    def write_predictions(self, model: keras.Model, output_dir: str) -> list[str]:
        """`predictions_<split>.txt` (conlleval's `token gold predicted` format) and `<split>_results.json`
        for the validation and test sets."""
        os.makedirs(output_dir, exist_ok=True)
        written = []
        for split in ("validation", "test"):
            report, predicted = self.score(model, split)
            sentences = self.sentences(split)
            path = os.path.join(output_dir, f"predictions_{split}.txt")
            evaluate.write_predictions(path, [s.words for s in sentences], [s.tags for s in sentences], predicted)
            results = os.path.join(output_dir, f"{split}_results.json")
            with open(results, "w", encoding="utf-8") as f:
                json.dump(report.as_dict(), f, indent=1)
            print(f"[{self.name}] {split}:\n{report.format()}", flush=True)
            written += [path, results]
        return written
