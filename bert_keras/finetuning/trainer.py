"""The fine-tuning loop: Keras `model.fit` plus per-epoch official evaluation and best-checkpoint keeping.

Scaling out uses the same pieces as pre-training: `bert_keras.distribution.create_strategy` (one_device,
mirrored, multi_worker_mirrored, tpu), a Keras mixed-precision policy (float16 with loss scaling) and
`create_optimizer` (AdamW or LAMB). Variables must be created under the strategy and policy, so a run that
uses them loads its encoder and calls `run`/`fit` inside `training_scope(config)`::

    with training_scope(config):
        encoder, tokenizer = load_pretrained(checkpoint)
        run(MyTask(data_dir, tokenizer), encoder, config)

`train_batch_size` is the global batch (all replicas, all accumulation micro-batches) and one training
step is one optimizer update (`train_step.GlobalBatchTrainStep`), so the learning-rate schedule counts
updates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Iterator

import keras
import tensorflow as tf

from bert_keras.distribution import PRECISION_POLICIES, STRATEGIES, create_strategy, is_chief, resolve_jit_compile
from bert_keras.finetuning.run_metadata import write_run_metadata
from bert_keras.finetuning.task import FineTuningTask
from bert_keras.finetuning.train_step import GlobalBatchTrainStep
from bert_keras.optimization import OPTIMIZERS, create_optimizer
from bert_keras.output_paths import check_writable

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
    max_steps: int | None = None  # a quick try: stop after this many optimizer updates (the schedule ends there)
    seed: int = 0
    steps_per_execution: int = 1
    jit_compile: bool | str = "auto"  # "auto": XLA on GPUs/TPUs only (bert_keras.distribution.resolve_jit_compile)
    tensorboard_update_freq: int | str = 50  # batches between TensorBoard train scalars, or "epoch"
    verbose: int | str = "auto"  # Keras progbar verbosity
    distribution_strategy: str = "one_device"  # bert_keras.distribution.STRATEGIES
    tpu_name: str | None = None  # for distribution_strategy="tpu": name or grpc:// address ("" = local TPU VM)
    mixed_precision: str = "float32"  # PRECISION_POLICIES; mixed_float16 trains with dynamic loss scaling
    gradient_accumulation_steps: int = 1  # micro-batches per update; train_batch_size stays the global batch
    optimizer: str = "adamw"  # OPTIMIZERS


def validate_config(config: FineTuningConfig, replicas: int = 1) -> None:
    """Raises ValueError naming the bad field, before any data is read or model built."""
    def check(ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(f"FineTuningConfig: {message}")

    check(config.distribution_strategy in STRATEGIES, f"distribution_strategy={config.distribution_strategy!r}; "
          f"choose from {list(STRATEGIES)}")
    check(config.mixed_precision in PRECISION_POLICIES, f"mixed_precision={config.mixed_precision!r}; choose "
          f"from {list(PRECISION_POLICIES)}")
    check(not (config.mixed_precision == "mixed_float16" and config.distribution_strategy == "tpu"),
          "TPUs train in mixed_bfloat16, not mixed_float16")
    check(config.optimizer in OPTIMIZERS, f"optimizer={config.optimizer!r}; choose from {list(OPTIMIZERS)}")
    for name in ("train_batch_size", "eval_batch_size", "num_train_epochs", "gradient_accumulation_steps",
                 "steps_per_execution"):
        check(getattr(config, name) >= 1, f"{name} must be >= 1, got {getattr(config, name)}")
    check(config.max_steps is None or config.max_steps >= 1, f"max_steps must be >= 1, got {config.max_steps}")
    check(config.learning_rate > 0, f"learning_rate must be positive, got {config.learning_rate}")
    check(0 <= config.warmup_proportion <= 1, f"warmup_proportion must be in [0, 1], got {config.warmup_proportion}")
    check(config.clip_norm is None or config.clip_norm > 0, f"clip_norm must be positive or None, got "
          f"{config.clip_norm}")
    parts = config.gradient_accumulation_steps * replicas
    check(config.train_batch_size % parts == 0,
          f"train_batch_size={config.train_batch_size} (the global batch) is not divisible by "
          f"gradient_accumulation_steps={config.gradient_accumulation_steps} x {replicas} replica(s)")


@contextlib.contextmanager
def training_scope(config: FineTuningConfig) -> Iterator[tf.distribute.Strategy]:
    """Validates `config`, creates its strategy and sets its dtype policy (restored on exit); yields the
    strategy with its scope entered. Load the encoder and call `run`/`fit` inside."""
    validate_config(config)
    strategy = create_strategy(config.distribution_strategy, config.tpu_name)
    validate_config(config, strategy.num_replicas_in_sync)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        with strategy.scope():
            yield strategy
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _current_strategy(config: FineTuningConfig, model: keras.Model) -> tf.distribute.Strategy:
    """The strategy of the enclosing `training_scope`, after checking `model` was built inside it."""
    if not tf.distribute.has_strategy():
        if config.distribution_strategy != "one_device" or config.mixed_precision != "float32":
            raise RuntimeError(f"FineTuningConfig(distribution_strategy={config.distribution_strategy!r}, "
                               f"mixed_precision={config.mixed_precision!r}) needs the encoder loaded and "
                               "fit/run called inside `with training_scope(config):`")
        strategy = tf.distribute.get_strategy()
    else:
        strategy = tf.distribute.get_strategy()
        first = next(iter(model.weights), None)
        if first is not None and not strategy.extended.variable_created_in_scope(
                first.value if isinstance(first, keras.Variable) else first):
            raise RuntimeError("the model's weights were created outside this strategy's scope: load the "
                               "encoder inside `with training_scope(config):` too")
    validate_config(config, strategy.num_replicas_in_sync)
    return strategy


class _StopAfterSteps(keras.callbacks.Callback):
    """Ends training after `total_steps` updates, mid-epoch if need be; that epoch's evaluation still runs."""

    def __init__(self, total_steps: int, steps_per_epoch: int):
        super().__init__()
        self.total_steps, self.steps_per_epoch, self.epoch = total_steps, steps_per_epoch, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch * self.steps_per_epoch + batch + 1 >= self.total_steps:
            self.model.stop_training = True


class EpochScalarsTensorBoard(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, except that the epoch scalars (train loss, and the dev metrics that
    `EvaluationCallback` adds to the logs) are written whatever `update_freq` is: Keras records them only
    when an epoch happens to end on a multiple of `update_freq` batches."""

    def on_epoch_end(self, epoch, logs=None):
        with tf.summary.record_if(True):
            super().on_epoch_end(epoch, logs)


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
    """Compiles `model` with AdamW or LAMB + warmup/linear decay, fits it on `task.train_dataset`, evaluating
    after each epoch; restores the best epoch's weights and writes that epoch's evaluation files
    (`task.write_eval_outputs`) into `model_dir`. Returns (model, summary dict); `summary["best"]` are
    the restored model's metrics. Under a multi-worker strategy only the chief writes into `model_dir`
    (the other workers use a temporary directory, removed afterwards)."""
    if not isinstance(model, GlobalBatchTrainStep):
        raise TypeError(f"fit needs a task model with GlobalBatchTrainStep (an EncoderTaskModel), got "
                        f"{type(model).__name__}")
    strategy = _current_strategy(config, model)
    if is_chief(strategy):
        return _fit(task, model, config, strategy, callbacks)
    worker_dir = tempfile.mkdtemp(prefix="finetune_worker_")
    try:
        return _fit(task, model, dataclasses.replace(config, model_dir=worker_dir), strategy, callbacks)
    finally:
        shutil.rmtree(worker_dir, ignore_errors=True)


def _fit(task: FineTuningTask, model: keras.Model, config: FineTuningConfig, strategy: tf.distribute.Strategy,
         callbacks: list[keras.callbacks.Callback] | None) -> tuple[keras.Model, dict[str, Any]]:
    os.makedirs(config.model_dir, exist_ok=True)
    dataset, num_examples = task.train_dataset(config.train_batch_size, seed=config.seed)
    steps_per_epoch = max(1, math.ceil(num_examples / config.train_batch_size))
    total_steps = steps_per_epoch * config.num_train_epochs  # optimizer updates: one per global batch
    epochs = config.num_train_epochs
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
        epochs = min(epochs, math.ceil(total_steps / steps_per_epoch))
        callbacks = [*(callbacks or []), _StopAfterSteps(total_steps, steps_per_epoch)]
    # All-reduce and clipping happen in the train step, on the global gradient.
    optimizer = create_optimizer(config.learning_rate, total_steps, int(config.warmup_proportion * total_steps),
                                 optimizer=config.optimizer, weight_decay=config.weight_decay, clip_norm=None,
                                 gradients_are_reduced=True)
    if config.mixed_precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.configure_train_step(config.gradient_accumulation_steps, config.clip_norm)
    model.compile(optimizer=optimizer, loss=task.loss(), metrics=task.compile_metrics(),
                  steps_per_execution=config.steps_per_execution,
                  jit_compile=resolve_jit_compile(config.jit_compile))
    # Slots now, not inside the first traced train step: creating variables there makes TF trace it twice.
    optimizer.build(model.trainable_variables)
    evaluation = EvaluationCallback(task, config.model_dir, config.early_stopping_patience)
    tensorboard = EpochScalarsTensorBoard(os.path.join(config.model_dir, "tensorboard"),
                                          update_freq=config.tensorboard_update_freq)
    print(f"[{task.name}] fine-tuning on {num_examples} examples: {epochs} epochs x {steps_per_epoch} steps "
          f"({total_steps} updates), batch {config.train_batch_size} ({strategy.num_replicas_in_sync} replica(s) x "
          f"{config.gradient_accumulation_steps} micro-batch(es)), {config.optimizer}, peak lr "
          f"{config.learning_rate}, {config.mixed_precision}", flush=True)
    start = time.time()
    history = model.fit(dataset, epochs=epochs, verbose=config.verbose,
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
    `python -m bert_keras.export --model_dir` reads). Returns what it did (metrics, files). With a strategy
    or mixed precision, call it (and load `encoder`) inside `training_scope(config)`; under multi-worker
    training only the chief writes files and exports."""
    chief = is_chief(_current_strategy(config, encoder))
    check_writable(config.model_dir, "model_dir")  # before training, not after it
    if export_dir:
        check_writable(export_dir, "export_dir")
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
            if chief:
                task.write_eval_outputs(outputs, report["eval"], config.model_dir)
        if chief:
            with open(os.path.join(config.model_dir, "eval_results.json"), "w", encoding="utf-8") as f:
                json.dump(report["eval"], f, indent=1)
        print(f"[{task.name}] eval: {report['eval']}", flush=True)
    if not chief:
        return report
    if do_predict:
        report["predictions"] = task.write_predictions(model, config.model_dir)
        print(f"[{task.name}] wrote {report['predictions']}", flush=True)
    if export_dir:
        report["export"] = export_fn(model, export_dir)
        report["export_metadata"] = write_run_metadata(task, export_dir)
    return report
