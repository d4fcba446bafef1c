"""Pre-training (masked LM + next-sentence prediction) driven by a `PretrainingConfig`, from Python or the CLI.

    from bert_keras.pretraining import PretrainingConfig, train
    train(PretrainingConfig(preset="tiny", vocab_file="demo", input_file="demo:train", output_dir="runs/x"))

The loop is a custom `tf.distribute` loop running `iterations_per_loop` steps per `tf.function` call;
checkpoints hold the model, optimizer, step, data-iterator and dropout random states, so a killed run restarted
with the same config continues exactly where its last checkpoint left off (`metrics.jsonl` and the TensorBoard
logs are cut back to that step). SIGTERM saves at the end of the current loop and raises `Preempted`
(the CLI exits with `PREEMPTED_EXIT_CODE`); a non-finite loss or gradient norm raises `NonFiniteTraining`
before anything non-finite is saved.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from typing import TYPE_CHECKING, Any, Callable

from absl import logging

from bert_keras.output_paths import check_writable
from bert_keras.pretraining.config import ConfigError, Phase, PretrainingConfig
from bert_keras.vocab_file import count_vocab

if TYPE_CHECKING:
    from bert_keras.config import BertConfig

PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL: stopped by SIGTERM after saving; run the same command again to resume
# Checkpoint objects that runs written before they existed lack (restored without them, with a warning).
OPTIONAL_CHECKPOINT_OBJECTS = ("dropout_seed_states",)


class Preempted(Exception):
    """SIGTERM arrived: the run saved a checkpoint at `step` (`checkpoint`) and stopped."""

    def __init__(self, step: int, checkpoint: str | None):
        super().__init__(f"stopped by SIGTERM at step {step} after saving {checkpoint}; run the same command "
                         f"again to resume")
        self.step, self.checkpoint = step, checkpoint


class NonFiniteTraining(Exception):
    """The loss or gradient norm stopped being finite; nothing from those steps was saved."""


def resolve_model_config(config: PretrainingConfig, vocab_size: int) -> BertConfig:
    """The model's `BertConfig` (from `bert_config_file`, `preset` or `init_checkpoint`), checked against the
    vocab and the phases' sequence lengths."""
    from bert_keras.checkpoints import read_checkpoint
    from bert_keras.config import BertConfig, preset

    if config.bert_config_file:
        result = BertConfig.from_json_file(config.bert_config_file)
    elif config.preset:
        result = preset(config.preset, vocab_size=vocab_size)
    else:
        result = read_checkpoint(config.init_checkpoint, load_weights=False).config
    if result.vocab_size != vocab_size:
        raise ConfigError(f"model vocab_size {result.vocab_size} differs from the {vocab_size} tokens of "
                          f"--vocab_file")
    longest = max(p.seq_length for p in config.phases())
    if longest > result.max_position_embeddings:
        raise ConfigError(f"sequence length {longest} exceeds the model's max_position_embeddings="
                          f"{result.max_position_embeddings}")
    return result


class Pretrainer:
    """The model, optimizer, datasets and compiled loops of one run, built under the strategy.

    `config` is the run's settings, `model_config` the model's; `train_files`/`eval_files` are resolved paths
    (`PretrainingConfig.resolve_train_files`). The `tf.train.Checkpoint` object names (model, optimizer, step,
    train_iterator_phase<N>) are the layout of existing runs' checkpoints: renaming them breaks resuming.
    """

    def __init__(self, config: PretrainingConfig, strategy, model_config: BertConfig, vocab_file: str,
                 train_files: list[str], eval_files: list[str] | None):
        import keras
        import tensorflow as tf

        from bert_keras.optimization import create_optimizer
        from bert_keras.pretraining import data
        from bert_keras.pretraining_model import BertPretrainingModel
        from bert_keras.tokenizer import BertTokenizer

        self.tf = tf
        self.strategy = strategy
        self.config = config
        self.model_config = model_config
        self.phases = config.phases()
        self.accumulation = config.gradient_accumulation_steps
        self.tokenizer = BertTokenizer(vocab_file, lower_case=config.do_lower_case)
        self._data = data
        self.train_files, self.eval_files = train_files, eval_files
        self._eval_cache: dict[int, list[dict]] = {}

        keras.mixed_precision.set_global_policy(config.mixed_precision)
        keras.utils.set_random_seed(config.seed)
        total_steps = self.phases[-1].end_step
        with strategy.scope():
            self.model = BertPretrainingModel(model_config, remat=config.remat, name="bert_pretraining")
            self.model.build()
            optimizer = create_optimizer(
                config.learning_rate, total_steps, config.num_warmup_steps, optimizer=config.optimizer,
                weight_decay=config.weight_decay, clip_norm=None, gradients_are_reduced=True)
            if config.mixed_precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.model.trainable_variables)
            self.optimizer = optimizer
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        # Plain tf.data iterators (a distributed iterator cannot be checkpointed); `split_batch` hands
        # each replica its slice of the global batch inside the compiled loop.
        self.train_iterators = [iter(self._dataset(train_files, p, seed=config.seed + i, micro=True))
                                for i, p in enumerate(self.phases)]
        # The dropout layers' seed-generator states: Keras keeps them outside the model's trackable
        # dependencies, and without them a resumed run draws different masks than an uninterrupted one.
        seed_states = [v.value for v in self.model.variables if v.path.endswith("seed_generator_state")]
        self.checkpoint_objects = {
            "model": self.model, "optimizer": self.optimizer, "step": self.step,
            **{f"train_iterator_phase{i + 1}": it for i, it in enumerate(self.train_iterators)},
            "dropout_seed_states": seed_states}
        self._build_loops()

    # --- data ------------------------------------------------------------------------------------
    def _dataset(self, files, phase: Phase, seed: int, micro: bool, batch_size: int | None = None):
        batch = batch_size or (phase.batch_size // self.accumulation if micro else phase.batch_size)
        dataset = self._data.pretraining_dataset(
            files, self.tokenizer, seq_length=phase.seq_length, max_predictions_per_seq=phase.max_predictions,
            batch_size=batch, masked_lm_prob=self.config.masked_lm_prob,
            short_seq_prob=self.config.short_seq_prob, whole_word_mask=self.config.whole_word_mask, seed=seed,
            repeat=True)
        options = self.tf.data.Options()
        options.deterministic = True
        return dataset.with_options(options).prefetch(self.tf.data.AUTOTUNE)

    def _build_loops(self) -> None:
        from bert_keras.distribution import resolve_jit_compile
        from bert_keras.pretraining.loop import build_eval_loop, build_train_loop

        jit_compile = resolve_jit_compile(self.config.jit_compile)
        self.train_loop = build_train_loop(
            self.model, self.optimizer, self.strategy, jit_compile=jit_compile,
            clip_norm=self.config.clip_norm, accumulation_steps=self.accumulation, step_counter=self.step)
        self.eval_loop = build_eval_loop(self.model, self.strategy, jit_compile=jit_compile)

    # --- evaluation ------------------------------------------------------------------------------
    def _eval_batches(self) -> list[dict]:
        """The held-out batches, built once per phase and kept in memory: every evaluation (and the
        unigram baseline) sees exactly the same sequences and masks."""
        phase_index = 0 if int(self.step.numpy()) < self.phases[0].end_step else len(self.phases) - 1
        if phase_index not in self._eval_cache:
            dataset = self._dataset(self.eval_files, self.phases[phase_index], seed=self.config.seed + 1000,
                                    micro=False, batch_size=self.config.eval_batch_size)
            self._eval_cache[phase_index] = list(dataset.take(self.config.max_eval_steps).as_numpy_iterator())
        return self._eval_cache[phase_index]

    def evaluate(self) -> dict[str, float]:
        """Held-out MLM/NSP loss and accuracy over the same `max_eval_steps` batches every time."""
        from bert_keras.pretraining_model import summarize_statistics

        batches = self._eval_batches()
        stacked = {k: self.tf.stack([b[k] for b in batches]) for k in batches[0]}
        iterator = iter(self.tf.data.Dataset.from_tensor_slices(stacked))
        totals = self.eval_loop(iterator, self.tf.constant(len(batches)))
        return summarize_statistics(totals.numpy())

    def frequency_baselines(self, train_batches: int = 200) -> dict[str, float]:
        """Held-out scores of predictors that know only training-data frequencies: `unigram_mlm_loss` (every
        masked token by its add-one-smoothed frequency), `nsp_prior_loss` and `nsp_majority_accuracy`
        (every pair by the NSP label frequencies)."""
        import numpy as np

        counts = np.ones(self.model_config.vocab_size, np.float64)
        labels = np.ones(2, np.float64)
        phase = self.phases[0]
        train = self._dataset(self.train_files, phase, seed=self.config.seed + 2000, micro=False).take(train_batches)
        for batch in train.as_numpy_iterator():
            np.add.at(counts, batch["masked_lm_ids"], batch["masked_lm_weights"])
            np.add.at(labels, batch["next_sentence_labels"].reshape(-1), 1.0)
        log_prob = np.log(counts / counts.sum())
        label_log_prob = np.log(labels / labels.sum())
        mlm_total = weight = nsp_total = nsp_hits = pairs = 0.0
        for batch in self._eval_batches():
            mlm_total -= float((log_prob[batch["masked_lm_ids"]] * batch["masked_lm_weights"]).sum())
            weight += float(batch["masked_lm_weights"].sum())
            held_out = batch["next_sentence_labels"].reshape(-1)
            nsp_total -= float(label_log_prob[held_out].sum())
            nsp_hits += float((held_out == labels.argmax()).sum())
            pairs += held_out.size
        return {"unigram_mlm_loss": mlm_total / max(weight, 1e-9), "nsp_prior_loss": nsp_total / max(pairs, 1),
                "nsp_majority_accuracy": nsp_hits / max(pairs, 1)}


def _format(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def _initialize_from_checkpoint(model, init_checkpoint: str) -> None:
    from bert_keras.checkpoints import assign_google_weights, read_checkpoint

    loaded = read_checkpoint(init_checkpoint)
    if loaded.config != model.config:
        raise ConfigError(f"--init_checkpoint config {loaded.config} differs from the model's {model.config}")
    assign_google_weights(model, loaded.weights, skip_missing_heads=True)
    logging.info("initialised from %s (%s format)", init_checkpoint, loaded.format)


def train(config: PretrainingConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs (or resumes) pre-training as `config` says; returns the final evaluation metrics (held-out
    `mlm_loss`, `mlm_accuracy`, `nsp_loss`, `nsp_accuracy` when there is an `eval_input_file`, the
    frequency baselines with `unigram_baseline`) and `weights_fingerprint`. `log` receives the progress lines.
    Settings that cannot work raise `ConfigError` before any work starts."""
    import numpy as np
    import tensorflow as tf

    from bert_keras.distribution import create_strategy, is_chief
    from bert_keras.pretraining.run_checkpoints import TrainingCheckpoints
    from bert_keras.pretraining_model import summarize_statistics

    config.validate()
    try:
        check_writable(config.output_dir, "output_dir")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    vocab_file = config.resolve_vocab_file()
    train_files = config.resolve_train_files()
    eval_files = config.resolve_eval_files()
    bert_config = resolve_model_config(config, count_vocab(vocab_file))
    strategy = create_strategy(config.distribution_strategy, config.tpu_name)
    replicas = strategy.num_replicas_in_sync
    for phase in config.phases():
        micro = phase.batch_size // config.gradient_accumulation_steps
        if micro % replicas:
            raise ConfigError(f"micro-batch size {micro} is not divisible by the {replicas} replicas")
    if config.eval_batch_size % replicas:
        raise ConfigError(f"--eval_batch_size={config.eval_batch_size} is not divisible by the {replicas} replicas")

    chief = is_chief(strategy)
    resolver = getattr(strategy, "cluster_resolver", None)
    os.makedirs(config.output_dir, exist_ok=True)
    trainer = Pretrainer(config, strategy, bert_config, vocab_file, train_files, eval_files)
    checkpoints = TrainingCheckpoints(trainer.checkpoint_objects, os.path.join(config.output_dir, "checkpoints"),
                                      config.keep_checkpoint_max, is_chief=chief,
                                      worker_id=getattr(resolver, "task_id", 0) or 0,
                                      optional=OPTIONAL_CHECKPOINT_OBJECTS)
    restored = checkpoints.restore_latest()
    if chief:  # the records of steps after the restored checkpoint are redone: drop them
        truncate_records(config.output_dir, int(trainer.step.numpy()))
    if restored:
        log(f"resumed from {restored} at step {int(trainer.step.numpy())}")
    elif config.init_checkpoint:
        _initialize_from_checkpoint(trainer.model, config.init_checkpoint)
    if chief:
        bert_config.to_json_file(os.path.join(config.output_dir, "bert_config.json"), "google")

    writers = {}
    if chief:
        writers = {name: tf.summary.create_file_writer(os.path.join(config.output_dir, name))
                   for name in ("train", "eval")}
    metrics_log = open(os.path.join(config.output_dir, "metrics.jsonl"), "a", encoding="utf-8") if chief else None

    def record(kind: str, step: int, values: dict[str, float]) -> None:
        if not chief:
            return
        with writers[kind].as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, value)
        metrics_log.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        metrics_log.flush()

    total_steps = trainer.phases[-1].end_step
    step = int(trainer.step.numpy())
    log(f"BERT pre-training: {bert_config.num_hidden_layers} layers, hidden {bert_config.hidden_size}, vocab "
        f"{bert_config.vocab_size}, {trainer.model.count_params():,} parameters; {replicas} replica(s) "
        f"({type(strategy).__name__}); steps {step}->{total_steps}; output_dir={config.output_dir}")
    if restored and eval_files and config.eval_every_n_steps and step % config.eval_every_n_steps == 0 \
            and step < total_steps:  # the evaluation that followed the restored checkpoint's save
        values = trainer.evaluate()
        record("eval", step, values)
        log(f"eval at step {step}: {_format(values)}")
    start_time, start_step = time.time(), step
    stop = _SigtermFlag()  # only while training steps: the final evaluation and export may be cut (and redone)
    try:
        while step < total_steps:
            phase_index = next(i for i, p in enumerate(trainer.phases) if step < p.end_step)
            phase = trainer.phases[phase_index]
            boundaries = [phase.end_step,
                          (step // config.save_checkpoints_steps + 1) * config.save_checkpoints_steps]
            if config.eval_every_n_steps and eval_files:
                boundaries.append((step // config.eval_every_n_steps + 1) * config.eval_every_n_steps)
            num_steps = min(config.iterations_per_loop, min(boundaries) - step)
            loop_start = time.time()
            totals = trainer.train_loop(trainer.train_iterators[phase_index], tf.constant(num_steps)).numpy()
            elapsed = time.time() - loop_start
            step += num_steps
            values = summarize_statistics(totals[:-1])
            values.update(
                learning_rate=float(trainer.optimizer.learning_rate.numpy()),
                grad_norm=float(totals[-1]) / num_steps, steps_per_sec=num_steps / elapsed,
                sequences_per_sec=num_steps * phase.batch_size / elapsed)
            # float16's loss scale skips its own overflowing steps: there only the losses are checked.
            checked = ("mlm_loss", "nsp_loss") + (() if config.mixed_precision == "mixed_float16" else ("grad_norm",))
            if not all(math.isfinite(values[k]) for k in checked):
                raise NonFiniteTraining(
                    f"non-finite training values in steps {step - num_steps + 1}-{step} "
                    f"({', '.join(f'{k}={values[k]}' for k in checked)}); nothing from these steps was saved. "
                    f"Resume from {checkpoints.latest() or 'the start (no checkpoint yet)'} with a lower "
                    f"--learning_rate (or more --num_warmup_steps, or --clip_norm)")
            record("train", step, values)
            rate = (step - start_step) / max(time.time() - start_time, 1e-9)
            eta = (total_steps - step) / max(rate, 1e-9)
            log(f"step {step}/{total_steps} {_format(values)} eta={eta / 60:.1f}min")
            if step % config.save_checkpoints_steps == 0 or step == total_steps or stop.requested:
                saved = checkpoints.save(step)
                if stop.requested:
                    log(f"SIGTERM: saved {saved} at step {step}; stopping (exit code {PREEMPTED_EXIT_CODE})")
                    raise Preempted(step, saved)
            if (eval_files and config.eval_every_n_steps and step % config.eval_every_n_steps == 0
                    and step < total_steps):
                values = trainer.evaluate()
                record("eval", step, values)
                log(f"eval at step {step}: {_format(values)}")
    finally:
        stop.restore()

    results: dict[str, Any] = {}
    if eval_files:
        results = trainer.evaluate()
        record("eval", step, results)
        log(f"final held-out eval: {_format(results)}")
        if config.unigram_baseline:
            baselines = trainer.frequency_baselines()
            results.update(baselines)
            log(f"held-out MLM loss {results['mlm_loss']:.4f} vs unigram-frequency predictor "
                f"{baselines['unigram_mlm_loss']:.4f}; held-out NSP loss {results['nsp_loss']:.4f}, accuracy "
                f"{results['nsp_accuracy']:.3f} vs label-frequency predictor {baselines['nsp_prior_loss']:.4f}, "
                f"{baselines['nsp_majority_accuracy']:.3f} (always the majority label)")
    # Identical on every worker of a synchronous run; lets a multi-worker run be checked at a glance.
    fingerprint = sum(float(np.sum(np.abs(v.numpy().astype(np.float64)))) for v in trainer.model.weights)
    log(f"final weights fingerprint (sum of |w|): {fingerprint!r}")
    results["weights_fingerprint"] = fingerprint
    if chief:
        from bert_keras.checkpoints import save_encoder, write_google_checkpoint

        export = os.path.join(config.output_dir, "export")
        save_encoder(trainer.model, os.path.join(export, "bert_keras"), vocab_file)
        write_google_checkpoint(trainer.model, os.path.join(export, "google"), vocab_file)
        log(f"wrote {export}/bert_keras (bert_keras format) and {export}/google (Google TF1 names)")
        metrics_log.close()
    return results


class _SigtermFlag:
    """While training, SIGTERM only sets `requested`; the loop saves at its next boundary and stops.
    (A Python handler runs between compiled loop calls, so the save comes after the current
    `iterations_per_loop` steps.)"""

    def __init__(self):
        self.requested = False
        self._previous = None
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: leave SIGTERM alone
            pass

    def _handle(self, signum, frame) -> None:
        logging.warning("SIGTERM received: saving a checkpoint at the end of the current loop, then stopping")
        self.requested = True

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None


def truncate_records(output_dir: str, step: int) -> None:
    """Drops the `metrics.jsonl` lines and TensorBoard events that a run resumed at `step` writes again:
    training records after `step`, evaluation records from `step` on (an evaluation at the checkpoint's step
    runs after the save, so the resumed run repeats it). The records of an interrupted-and-resumed run then
    equal an uninterrupted run's. Files are replaced atomically."""
    import tensorflow as tf

    def kept(kind: str, record_step: int) -> bool:
        return record_step <= step if kind == "train" else record_step < step

    path = os.path.join(output_dir, "metrics.jsonl")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            lines = f.readlines()
        lines_kept = []
        for line in lines:
            try:
                record = json.loads(line)
                if kept(record["kind"], record["step"]):
                    lines_kept.append(line)
            except (ValueError, KeyError):  # a line cut short by a kill
                continue
        if lines_kept != lines:
            _replace(path, "".join(lines_kept).encode("utf-8"))
    for kind in ("train", "eval"):
        for event_file in tf.io.gfile.glob(os.path.join(output_dir, kind, "events.out.tfevents.*")):
            records, changed = [], False
            try:
                for record in tf.data.TFRecordDataset(event_file).as_numpy_iterator():
                    if kept(kind, tf.compat.v1.Event.FromString(record).step):
                        records.append(record)
                    else:
                        changed = True
            except tf.errors.DataLossError:  # the last record was cut short by a kill
                changed = True
            if changed:
                temporary = event_file + ".truncating"
                with tf.io.TFRecordWriter(temporary) as writer:
                    for record in records:
                        writer.write(record)
                os.replace(temporary, event_file)


def _replace(path: str, data: bytes) -> None:
    temporary = path + ".truncating"
    with open(temporary, "wb") as f:
        f.write(data)
    os.replace(temporary, path)
