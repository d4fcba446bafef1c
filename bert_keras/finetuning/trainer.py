"""The fine-tuning loop: Keras `model.fit` plus per-epoch official evaluation and best-checkpoint keeping."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from typing import Any, Callable

import keras

from bert_keras.distribution import resolve_jit_compile
from bert_keras.finetuning.run_metadata import write_run_metadata
from bert_keras.finetuning.task import FineTuningTask
from bert_keras.optimization import create_optimizer

BEST_WEIGHTS = "best.weights.h5"


@dataclasses.dataclass
class FineTuningConfig:
    """Hyper-parameters of one fine-tuning run (defaults: the BERT paper's GLUE recipe)."""

    model_dir: str
    learning_rate: float = 2e-5
    num_train_epochs: int = 3
    train_batch_size: int = 32
    eval_batch_size: int = 64
    warmup_proportion: float = 0.1
    weight_decay: float = 0.01
    clip_norm: float | None = 1.0
    early_stopping_patience: int | None = None  # stop after this many epochs in a row without main-metric gain
    seed: int = 0
    steps_per_execution: int = 1
    jit_compile: bool | str = "auto"  # "auto": XLA on GPUs/TPUs only (bert_keras.distribution.resolve_jit_compile)
    tensorboard_update_freq: int | str = 50  # batches between TensorBoard train scalars, or "epoch"
    verbose: int | str = "auto"  # Keras progbar verbosity


class EvaluationCallback(keras.callbacks.Callback):
    """After each epoch: the task's official metrics on its eval split, added to the epoch logs as `val_*`
    (so TensorBoard and History record them), best weights saved on `main_metric` (and the outputs behind
    the best metrics kept in `best_outputs` for `FineTuningTask.write_eval_outputs`), early stopping.

    Place it BEFORE the TensorBoard callback so the metrics it adds are written there too.
    """

    def __init__(self, task: FineTuningTask, model_dir: str, patience: int | None = None):
        super().__init__()
        self.task = task
        self.best_path = os.path.join(model_dir, BEST_WEIGHTS)
        self.results_path = os.path.join(model_dir, "eval_results.jsonl")
        if patience is not None and patience < 1:
            raise ValueError(f"early-stopping patience must be >= 1 epoch (or None: never stop), got {patience}")
        self.patience = patience
        self.best: dict[str, float] | None = None
        self.best_outputs: Any = None
        self.best_epoch = -1
        self._stale_epochs = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None):
        start = time.time()
        results, outputs = self.task.evaluate_with_outputs(self.model)
        main = self.task.main_metric
        if main not in results:
            raise KeyError(f"task {self.task.name!r}: evaluate() returned {sorted(results)}, "
                           f"without its main_metric {main!r}")
        if logs is not None:
            logs.update({f"val_{k}": float(v) for k, v in results.items()})
        improved = self.best is None or results[main] > self.best[main]
        if improved:
            self.best, self.best_outputs, self.best_epoch, self._stale_epochs = dict(results), outputs, epoch, 0
            self.model.save_weights(self.best_path)
        else:
            self._stale_epochs += 1
        with open(self.results_path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"epoch": epoch + 1, **results}) + "\n")
        shown = ", ".join(f"{k}={v:.4f}" for k, v in results.items())
        print(f"[{self.task.name}] epoch {epoch + 1} eval ({time.time() - start:.1f}s): {shown}"
              f"{'  (best, saved)' if improved else ''}", flush=True)
        if self.patience is not None and self._stale_epochs >= self.patience:
            print(f"[{self.task.name}] early stopping: no {main} gain for {self._stale_epochs} epochs", flush=True)
            self.model.stop_training = True


def fit(task: FineTuningTask, model: keras.Model, config: FineTuningConfig,
        callbacks: list[keras.callbacks.Callback] | None = None) -> tuple[keras.Model, dict[str, Any]]:
    """Compiles `model` with AdamW + warmup/linear decay, fits it on `task.train_dataset`, evaluating
    after each epoch; restores the best epoch's weights and writes that epoch's evaluation files
    (`task.write_eval_outputs`) into `model_dir`. Returns (model, summary dict); `summary["best"]` are
    the restored model's metrics."""
    os.makedirs(config.model_dir, exist_ok=True)
    dataset, num_examples = task.train_dataset(config.train_batch_size, seed=config.seed)
    steps_per_epoch = max(1, math.ceil(num_examples / config.train_batch_size))
    total_steps = steps_per_epoch * config.num_train_epochs
    optimizer = create_optimizer(config.learning_rate, total_steps,
                                 int(config.warmup_proportion * total_steps),
                                 weight_decay=config.weight_decay, clip_norm=config.clip_norm)
    model.compile(optimizer=optimizer, loss=task.loss(), metrics=task.compile_metrics(),
                  steps_per_execution=config.steps_per_execution,
                  jit_compile=resolve_jit_compile(config.jit_compile))
    # Slots now, not inside the first traced train step: creating variables there makes TF trace it twice.
    optimizer.build(model.trainable_variables)
    evaluation = EvaluationCallback(task, config.model_dir, config.early_stopping_patience)
    tensorboard = keras.callbacks.TensorBoard(os.path.join(config.model_dir, "tensorboard"),
                                              update_freq=config.tensorboard_update_freq)
    print(f"[{task.name}] fine-tuning on {num_examples} examples: {config.num_train_epochs} epochs x "
          f"{steps_per_epoch} steps, batch {config.train_batch_size}, peak lr {config.learning_rate}", flush=True)
    start = time.time()
    history = model.fit(dataset, epochs=config.num_train_epochs, verbose=config.verbose,
                        shuffle=False,  # the task's dataset reshuffles itself every epoch
                        callbacks=[evaluation, tensorboard, *(callbacks or [])])
    seconds = time.time() - start
    model.load_weights(evaluation.best_path)
    eval_files = task.write_eval_outputs(evaluation.best_outputs, evaluation.best, config.model_dir)
    summary = {"task": task.name, "main_metric": task.main_metric, "best_epoch": evaluation.best_epoch + 1,
               "best": evaluation.best, "eval_files": eval_files, "train_seconds": seconds,
               "num_train_examples": num_examples,
               "history": {k: [float(x) for x in v] for k, v in history.history.items()}}
    with open(os.path.join(config.model_dir, "fit_summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return model, summary


def save_keras_model(model: keras.Model, export_dir: str) -> str:
    """Default export hook: the task model as a `.keras` file (config + weights, reloadable anywhere)."""
    os.makedirs(export_dir, exist_ok=True)
    path = os.path.join(export_dir, "model.keras")
    model.save(path)
    return path


def run(task: FineTuningTask, encoder: keras.Model, config: FineTuningConfig, *, do_train: bool = True,
        do_eval: bool = True, do_predict: bool = False, export_dir: str | None = None,
        export_fn: Callable[[keras.Model, str], Any] = save_keras_model) -> dict[str, Any]:
    """The whole path a task CLI runs: build head, train (or reload `model_dir`'s best weights), evaluate
    (after training: the kept epoch's metrics and files, no second pass), write test predictions into
    `model_dir`, export (with `vocab.txt` + `run_metadata.json` beside it, what
    `python -m bert_keras.export --model_dir` reads). Returns what it did (metrics, files)."""
    keras.utils.set_random_seed(config.seed)
    model = task.build_model(encoder)
    report: dict[str, Any] = {"model_dir": config.model_dir}
    if do_train:
        model, report["fit"] = fit(task, model, config)
    else:
        best = os.path.join(config.model_dir, BEST_WEIGHTS)
        if not os.path.isfile(best):
            raise FileNotFoundError(f"no fine-tuned weights at {best}; train first (do_train) with this model_dir")
        model.load_weights(best)
    if do_eval:
        if do_train:
            report["eval"] = report["fit"]["best"]  # the restored weights are the epoch these metrics scored
        else:
            report["eval"], outputs = task.evaluate_with_outputs(model)
            task.write_eval_outputs(outputs, report["eval"], config.model_dir)
        with open(os.path.join(config.model_dir, "eval_results.json"), "w", encoding="utf-8") as f:
            json.dump(report["eval"], f, indent=1)
        print(f"[{task.name}] eval: {report['eval']}", flush=True)
    if do_predict:
        report["predictions"] = task.write_predictions(model, config.model_dir)
        print(f"[{task.name}] wrote {report['predictions']}", flush=True)
    if export_dir:
        report["export"] = export_fn(model, export_dir)
        report["export_metadata"] = write_run_metadata(task, export_dir)
    return report
