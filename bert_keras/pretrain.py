"""BERT pre-training (masked LM + next-sentence prediction): `python -m bert_keras.pretrain --flagfile=...`.

Flag names follow google-research/bert's `run_pretraining.py` so existing commands carry over. The loop is
a custom `tf.distribute` loop running `--iterations_per_loop` steps per `tf.function` call; checkpoints hold
the model, optimizer, step and data-iterator state, so a killed run restarted with the same command
continues exactly where its last checkpoint left off.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from typing import Any, Callable

from absl import app, flags, logging

FLAGS = flags.FLAGS
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRECISION_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")

# --- model -----------------------------------------------------------------------------------------
flags.DEFINE_string("preset", None, "Model size: tiny|mini|small|medium|base|large (Turc et al. sizes). "
                    "Its vocab_size is taken from --vocab_file. Ignored when --bert_config_file is set.")
flags.DEFINE_string("bert_config_file", None, "Model config JSON (Google bert_config.json, HF config.json or "
                    "ours). Overrides --preset.")
flags.DEFINE_string("init_checkpoint", None, "Start from these weights (Google TF1, Hugging Face or bert_keras "
                    "checkpoint); missing MLM/NSP heads start fresh. Ignored when resuming from --output_dir.")
flags.DEFINE_string("vocab_file", None, "WordPiece vocab, one token per line. 'demo' = the vocab shipped with "
                    "the package. Defaults to the init checkpoint's vocab.")
flags.DEFINE_bool("do_lower_case", True, "Lower-case and strip accents before WordPiece (uncased models).")
flags.DEFINE_bool("remat", False, "Recompute transformer-block activations in the backward pass instead of "
                  "storing them: less memory per step, about a third more compute.")
# --- data ------------------------------------------------------------------------------------------
flags.DEFINE_string("input_file", None, "Training text: comma-separated files or globs (one sentence per line, "
                    "blank line between documents). 'demo:train' = the corpus shipped with the package.")
flags.DEFINE_string("eval_input_file", None, "Held-out text for evaluation, same format; 'demo:heldout' = the "
                    "shipped held-out books. No evaluation when unset.")
flags.DEFINE_integer("max_seq_length", 128, "Tokens per sequence, [CLS] and [SEP]s included.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "Masked positions per sequence (padding included).")
flags.DEFINE_float("masked_lm_prob", 0.15, "Share of tokens masked.")
flags.DEFINE_float("short_seq_prob", 0.1, "Probability of a shorter-than-maximal training sequence.")
flags.DEFINE_bool("whole_word_mask", False, "Mask all WordPieces of a word together.")
# --- optimisation ----------------------------------------------------------------------------------
flags.DEFINE_integer("train_batch_size", 32, "Global batch size (all replicas, all accumulation micro-steps).")
flags.DEFINE_integer("eval_batch_size", 8, "Global evaluation batch size.")
flags.DEFINE_integer("num_train_steps", 100000, "Optimizer steps (of the first phase when two-phase).")
flags.DEFINE_integer("num_warmup_steps", 10000, "Linear learning-rate warmup steps.")
flags.DEFINE_float("learning_rate", 5e-5, "Peak learning rate; decays linearly to 0 at the last step.")
flags.DEFINE_enum("optimizer", "adamw", ["adamw", "lamb"], "AdamW (BERT's) or LAMB (large-batch).")
flags.DEFINE_float("weight_decay", 0.01, "Decoupled weight decay (LayerNorm and biases excluded).")
flags.DEFINE_float("clip_norm", 1.0, "Clip the global gradient norm to this (0 = no clipping).")
flags.DEFINE_integer("gradient_accumulation_steps", 1, "Split each global batch into this many micro-batches "
                     "and sum their gradients before one optimizer step (less memory, same batch).")
# --- second phase (the paper's 128-then-512 recipe) ------------------------------------------------
flags.DEFINE_integer("phase2_num_train_steps", 0, "If > 0, continue for this many steps with the phase-2 "
                     "sequence length; the learning-rate schedule spans both phases.")
flags.DEFINE_integer("phase2_max_seq_length", 512, "max_seq_length of phase 2.")
flags.DEFINE_integer("phase2_max_predictions_per_seq", 80, "max_predictions_per_seq of phase 2.")
flags.DEFINE_integer("phase2_train_batch_size", None, "train_batch_size of phase 2 (default: phase 1's).")
# --- speed and distribution ------------------------------------------------------------------------
flags.DEFINE_enum("mixed_precision", "float32", list(PRECISION_POLICIES), "Keras dtype policy; mixed_float16 "
                  "adds dynamic loss scaling.")
flags.DEFINE_bool("jit_compile", None, "Compile the train step with XLA. Default: on GPUs and TPUs, off on CPU "
                  "(where TF's own kernels measured faster).")
flags.DEFINE_enum("distribution_strategy", "one_device", ["one_device", "mirrored", "multi_worker_mirrored",
                  "tpu"], "tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.")
flags.DEFINE_bool("use_tpu", False, "Same as --distribution_strategy=tpu (google-research/bert's flag).")
flags.DEFINE_string("tpu_name", None, "TPU name or grpc:// address for TPUClusterResolver.")
flags.DEFINE_integer("iterations_per_loop", 100, "Steps per tf.function call; also the logging interval.")
flags.DEFINE_alias("steps_per_loop", "iterations_per_loop")
# --- checkpoints, evaluation, logging --------------------------------------------------------------
flags.DEFINE_string("output_dir", None, "Where checkpoints, TensorBoard logs and the final export go. An "
                    "existing run there is resumed.")
flags.DEFINE_alias("model_dir", "output_dir")
flags.DEFINE_integer("save_checkpoints_steps", 1000, "Checkpoint every this many steps (and at the end).")
flags.DEFINE_integer("keep_checkpoint_max", 5, "Checkpoints kept; older ones are deleted.")
flags.DEFINE_integer("eval_every_n_steps", 0, "Evaluate on --eval_input_file every this many steps (0 = only at "
                     "the end).")
flags.DEFINE_integer("max_eval_steps", 100, "Evaluation batches per evaluation.")
flags.DEFINE_bool("unigram_baseline", False, "Also print what frequency predictors fitted on the training data "
                  "score on the held-out batches: a unigram predictor's MLM loss, and the NSP loss/accuracy of "
                  "predicting the NSP label frequencies (always the majority label), to show the model learned "
                  "more than frequencies. (NSP labels are not balanced: single-segment chunks always pair at "
                  "random, so 0.5 is not the accuracy to beat.)")
flags.DEFINE_integer("seed", 0, "Seed for initialisation, masking, shuffling and dropout.")


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with one input shape."""

    seq_length: int
    max_predictions: int
    batch_size: int
    end_step: int  # global step at which the phase ends


def _resolve_flagfile_args(argv: list[str]) -> list[str]:
    """Lets `--flagfile=configs/x.flags` work from any directory: relative paths that do not exist under the
    working directory are looked up beside the package (the repository root)."""
    resolved = []
    for arg in argv:
        if arg.startswith("--flagfile="):
            path = arg.split("=", 1)[1]
            if not os.path.isabs(path) and not os.path.exists(path):
                candidate = os.path.join(PACKAGE_ROOT, path)
                if os.path.exists(candidate):
                    arg = "--flagfile=" + candidate
        resolved.append(arg)
    return resolved


def _demo_resources():
    try:
        from bert_keras import resources
    except ImportError as e:
        raise app.UsageError(f"the demo corpus is not installed with this package ({e})") from None
    return resources


def _resolve_files(spec: str, flag: str) -> list[str]:
    from bert_keras.data.documents import expand_input_files

    if spec.startswith("demo:"):
        return list(_demo_resources().demo_corpus_files(spec.split(":", 1)[1]))
    try:
        files = expand_input_files(spec)
    except (FileNotFoundError, ValueError) as e:
        raise app.UsageError(f"--{flag}: {e}") from None
    if not files:
        raise app.UsageError(f"--{flag}={spec!r} matches no files")
    return files


def _resolve_vocab() -> str:
    if FLAGS.vocab_file == "demo":
        return _demo_resources().demo_vocab_file()
    if FLAGS.vocab_file:
        if not os.path.isfile(FLAGS.vocab_file):
            raise app.UsageError(f"--vocab_file={FLAGS.vocab_file!r} does not exist")
        return FLAGS.vocab_file
    raise app.UsageError("--vocab_file is required (or an --init_checkpoint that ships a vocab.txt)")


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise app.UsageError(message)


def validate_flags() -> None:
    """Every check that can fail before any work starts."""
    _check(FLAGS.output_dir, "--output_dir (or --model_dir) is required")
    _check(FLAGS.input_file, "--input_file is required")
    _check(FLAGS.preset or FLAGS.bert_config_file or FLAGS.init_checkpoint,
           "give the model size: --preset, --bert_config_file or --init_checkpoint")
    if FLAGS.preset:
        from bert_keras.config import PRESETS

        _check(FLAGS.preset in PRESETS, f"--preset={FLAGS.preset!r}: choose from {sorted(PRESETS)}")
    if FLAGS.bert_config_file:
        _check(os.path.isfile(FLAGS.bert_config_file), f"--bert_config_file={FLAGS.bert_config_file!r} "
               "does not exist")
    if FLAGS.init_checkpoint:
        _check(os.path.exists(FLAGS.init_checkpoint) or os.path.exists(FLAGS.init_checkpoint + ".index"),
               f"--init_checkpoint={FLAGS.init_checkpoint!r} does not exist")
    for name in ("max_seq_length", "max_predictions_per_seq", "train_batch_size", "eval_batch_size",
                 "num_train_steps", "iterations_per_loop", "save_checkpoints_steps", "keep_checkpoint_max",
                 "max_eval_steps", "gradient_accumulation_steps"):
        _check(getattr(FLAGS, name) > 0, f"--{name} must be positive, got {getattr(FLAGS, name)}")
    _check(FLAGS.max_seq_length >= 5, f"--max_seq_length={FLAGS.max_seq_length} is too short (minimum 5)")
    _check(FLAGS.max_predictions_per_seq <= FLAGS.max_seq_length,
           f"--max_predictions_per_seq={FLAGS.max_predictions_per_seq} exceeds --max_seq_length")
    total = FLAGS.num_train_steps + max(FLAGS.phase2_num_train_steps, 0)
    _check(0 <= FLAGS.num_warmup_steps <= total,
           f"--num_warmup_steps={FLAGS.num_warmup_steps} must be in [0, total steps {total}]")
    _check(FLAGS.learning_rate > 0, f"--learning_rate must be positive, got {FLAGS.learning_rate}")
    _check(0 < FLAGS.masked_lm_prob < 1, f"--masked_lm_prob must be in (0, 1), got {FLAGS.masked_lm_prob}")
    _check(0 <= FLAGS.short_seq_prob <= 1, f"--short_seq_prob must be in [0, 1], got {FLAGS.short_seq_prob}")
    _check(FLAGS.weight_decay >= 0, f"--weight_decay must be >= 0, got {FLAGS.weight_decay}")
    _check(FLAGS.clip_norm >= 0, f"--clip_norm must be >= 0, got {FLAGS.clip_norm}")
    _check(FLAGS.eval_every_n_steps >= 0, "--eval_every_n_steps must be >= 0")
    _check(FLAGS.phase2_num_train_steps >= 0, "--phase2_num_train_steps must be >= 0")
    if FLAGS.phase2_num_train_steps:
        _check(FLAGS.phase2_max_predictions_per_seq <= FLAGS.phase2_max_seq_length,
               "--phase2_max_predictions_per_seq exceeds --phase2_max_seq_length")
    for phase in phases():
        _check(phase.batch_size % FLAGS.gradient_accumulation_steps == 0,
               f"train batch size {phase.batch_size} is not divisible by --gradient_accumulation_steps="
               f"{FLAGS.gradient_accumulation_steps}")
    if FLAGS.unigram_baseline:
        _check(FLAGS.eval_input_file, "--unigram_baseline needs --eval_input_file")
    if FLAGS.mixed_precision == "mixed_float16" and (FLAGS.use_tpu or FLAGS.distribution_strategy == "tpu"):
        raise app.UsageError("TPUs train in mixed_bfloat16, not mixed_float16")


def phases() -> list[Phase]:
    result = [Phase(FLAGS.max_seq_length, FLAGS.max_predictions_per_seq, FLAGS.train_batch_size,
                    FLAGS.num_train_steps)]
    if FLAGS.phase2_num_train_steps:
        result.append(Phase(FLAGS.phase2_max_seq_length, FLAGS.phase2_max_predictions_per_seq,
                            FLAGS.phase2_train_batch_size or FLAGS.train_batch_size,
                            FLAGS.num_train_steps + FLAGS.phase2_num_train_steps))
    return result


def _model_config(vocab_size: int):
    from bert_keras.checkpoints import read_checkpoint
    from bert_keras.config import BertConfig, preset

    if FLAGS.bert_config_file:
        config = BertConfig.from_json_file(FLAGS.bert_config_file)
    elif FLAGS.preset:
        config = preset(FLAGS.preset, vocab_size=vocab_size)
    else:
        config = read_checkpoint(FLAGS.init_checkpoint, load_weights=False).config
    if config.vocab_size != vocab_size:
        raise app.UsageError(f"model vocab_size {config.vocab_size} differs from the {vocab_size} tokens of "
                             f"--vocab_file")
    longest = max(p.seq_length for p in phases())
    if longest > config.max_position_embeddings:
        raise app.UsageError(f"sequence length {longest} exceeds the model's max_position_embeddings="
                             f"{config.max_position_embeddings}")
    return config


class Pretrainer:
    """The model, optimizer, datasets and compiled loops of one run, built under the strategy."""

    def __init__(self, strategy, config, vocab_file: str, train_files: list[str], eval_files: list[str] | None):
        import keras
        import tensorflow as tf

        from bert_keras import data
        from bert_keras.optimization import create_optimizer
        from bert_keras.pretraining_model import BertPretrainingModel
        from bert_keras.tokenizer import BertTokenizer

        self.tf = tf
        self.strategy = strategy
        self.config = config
        self.phases = phases()
        self.accumulation = FLAGS.gradient_accumulation_steps
        self.tokenizer = BertTokenizer(vocab_file, lower_case=FLAGS.do_lower_case)
        self._data = data
        self.train_files, self.eval_files = train_files, eval_files
        self._eval_cache: dict[int, list[dict]] = {}

        keras.mixed_precision.set_global_policy(FLAGS.mixed_precision)
        keras.utils.set_random_seed(FLAGS.seed)
        total_steps = self.phases[-1].end_step
        with strategy.scope():
            self.model = BertPretrainingModel(config, remat=FLAGS.remat, name="bert_pretraining")
            self.model.build()
            optimizer = create_optimizer(
                FLAGS.learning_rate, total_steps, FLAGS.num_warmup_steps, optimizer=FLAGS.optimizer,
                weight_decay=FLAGS.weight_decay, clip_norm=None, gradients_are_reduced=True)
            if FLAGS.mixed_precision == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(self.model.trainable_variables)
            self.optimizer = optimizer
            self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step",
                                    aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        # Plain tf.data iterators (a distributed iterator cannot be checkpointed); `split_batch` hands
        # each replica its slice of the global batch inside the compiled loop.
        self.train_iterators = [iter(self._dataset(train_files, p, seed=FLAGS.seed + i, micro=True))
                                for i, p in enumerate(self.phases)]
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, optimizer=self.optimizer, step=self.step,
            **{f"train_iterator_phase{i + 1}": it for i, it in enumerate(self.train_iterators)})
        self._build_loops()

    # --- data ------------------------------------------------------------------------------------
    def _dataset(self, files, phase: Phase, seed: int, micro: bool, batch_size: int | None = None):
        batch = batch_size or (phase.batch_size // self.accumulation if micro else phase.batch_size)
        dataset = self._data.pretraining_dataset(
            files, self.tokenizer, seq_length=phase.seq_length, max_predictions_per_seq=phase.max_predictions,
            batch_size=batch, masked_lm_prob=FLAGS.masked_lm_prob, short_seq_prob=FLAGS.short_seq_prob,
            whole_word_mask=FLAGS.whole_word_mask, seed=seed, repeat=True)
        options = self.tf.data.Options()
        options.deterministic = True
        return dataset.with_options(options).prefetch(self.tf.data.AUTOTUNE)

    def _build_loops(self) -> None:
        from bert_keras.distribution import resolve_jit_compile
        from bert_keras.pretraining_loop import build_eval_loop, build_train_loop

        jit_compile = resolve_jit_compile(FLAGS.jit_compile)
        self.train_loop = build_train_loop(
            self.model, self.optimizer, self.strategy, jit_compile=jit_compile,
            clip_norm=FLAGS.clip_norm, accumulation_steps=self.accumulation, step_counter=self.step)
        self.eval_loop = build_eval_loop(self.model, self.strategy, jit_compile=jit_compile)

    # --- evaluation ------------------------------------------------------------------------------
    def _eval_batches(self) -> list[dict]:
        """The held-out batches, built once per phase and kept in memory: every evaluation (and the
        unigram baseline) sees exactly the same sequences and masks."""
        phase_index = 0 if int(self.step.numpy()) < self.phases[0].end_step else len(self.phases) - 1
        if phase_index not in self._eval_cache:
            dataset = self._dataset(self.eval_files, self.phases[phase_index], seed=FLAGS.seed + 1000,
                                    micro=False, batch_size=FLAGS.eval_batch_size)
            self._eval_cache[phase_index] = list(dataset.take(FLAGS.max_eval_steps).as_numpy_iterator())
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

        counts = np.ones(self.config.vocab_size, np.float64)
        labels = np.ones(2, np.float64)
        phase = self.phases[0]
        train = self._dataset(self.train_files, phase, seed=FLAGS.seed + 2000, micro=False).take(train_batches)
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


def _initialize_from_checkpoint(model) -> None:
    from bert_keras.checkpoints import assign_google_weights, read_checkpoint

    loaded = read_checkpoint(FLAGS.init_checkpoint)
    if loaded.config != model.config:
        raise app.UsageError(f"--init_checkpoint config {loaded.config} differs from the model's {model.config}")
    assign_google_weights(model, loaded.weights, skip_missing_heads=True)
    logging.info("initialised from %s (%s format)", FLAGS.init_checkpoint, loaded.format)


def train(log: Callable[[str], None] = print) -> dict[str, Any]:
    """Runs (or resumes) pre-training as the flags say; returns the final evaluation metrics."""
    import numpy as np
    import tensorflow as tf

    from bert_keras.distribution import create_strategy, is_chief
    from bert_keras.pretraining_model import summarize_statistics
    from bert_keras.training_checkpoints import TrainingCheckpoints

    validate_flags()
    vocab_file = FLAGS.vocab_file
    if not vocab_file and FLAGS.init_checkpoint:
        from bert_keras.checkpoints import read_checkpoint

        vocab_file = read_checkpoint(FLAGS.init_checkpoint, load_weights=False).vocab_file
        _check(vocab_file, f"--init_checkpoint={FLAGS.init_checkpoint!r} has no vocab.txt; pass --vocab_file")
    else:
        vocab_file = _resolve_vocab()
    train_files = _resolve_files(FLAGS.input_file, "input_file")
    eval_files = _resolve_files(FLAGS.eval_input_file, "eval_input_file") if FLAGS.eval_input_file else None
    vocab_size = sum(1 for _ in open(vocab_file, encoding="utf-8"))
    config = _model_config(vocab_size)
    strategy = create_strategy("tpu" if FLAGS.use_tpu else FLAGS.distribution_strategy, FLAGS.tpu_name)
    replicas = strategy.num_replicas_in_sync
    for phase in phases():
        micro = phase.batch_size // FLAGS.gradient_accumulation_steps
        _check(micro % replicas == 0, f"micro-batch size {micro} is not divisible by the {replicas} replicas")
    _check(FLAGS.eval_batch_size % replicas == 0,
           f"--eval_batch_size={FLAGS.eval_batch_size} is not divisible by the {replicas} replicas")

    chief = is_chief(strategy)
    resolver = getattr(strategy, "cluster_resolver", None)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    trainer = Pretrainer(strategy, config, vocab_file, train_files, eval_files)
    checkpoints = TrainingCheckpoints(trainer.checkpoint, os.path.join(FLAGS.output_dir, "checkpoints"),
                                      FLAGS.keep_checkpoint_max, is_chief=chief,
                                      worker_id=getattr(resolver, "task_id", 0) or 0)
    restored = checkpoints.restore_latest()
    if restored:
        log(f"resumed from {restored} at step {int(trainer.step.numpy())}")
    elif FLAGS.init_checkpoint:
        _initialize_from_checkpoint(trainer.model)
    if chief:
        config.to_json_file(os.path.join(FLAGS.output_dir, "bert_config.json"), "google")

    writers = {}
    if chief:
        writers = {name: tf.summary.create_file_writer(os.path.join(FLAGS.output_dir, name))
                   for name in ("train", "eval")}
    metrics_log = open(os.path.join(FLAGS.output_dir, "metrics.jsonl"), "a", encoding="utf-8") if chief else None

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
    log(f"BERT pre-training: {config.num_hidden_layers} layers, hidden {config.hidden_size}, vocab "
        f"{config.vocab_size}, {trainer.model.count_params():,} parameters; {replicas} replica(s) "
        f"({type(strategy).__name__}); steps {step}->{total_steps}; output_dir={FLAGS.output_dir}")
    start_time, start_step = time.time(), step
    while step < total_steps:
        phase_index = next(i for i, p in enumerate(trainer.phases) if step < p.end_step)
        phase = trainer.phases[phase_index]
        boundaries = [phase.end_step, (step // FLAGS.save_checkpoints_steps + 1) * FLAGS.save_checkpoints_steps]
        if FLAGS.eval_every_n_steps and eval_files:
            boundaries.append((step // FLAGS.eval_every_n_steps + 1) * FLAGS.eval_every_n_steps)
        num_steps = min(FLAGS.iterations_per_loop, min(boundaries) - step)
        loop_start = time.time()
        totals = trainer.train_loop(trainer.train_iterators[phase_index], tf.constant(num_steps)).numpy()
        elapsed = time.time() - loop_start
        step += num_steps
        values = summarize_statistics(totals[:-1])
        values.update(
            learning_rate=float(trainer.optimizer.learning_rate.numpy()),
            grad_norm=float(totals[-1]) / num_steps, steps_per_sec=num_steps / elapsed,
            sequences_per_sec=num_steps * phase.batch_size / elapsed)
        if not all(math.isfinite(v) for v in values.values()):
            logging.warning("non-finite training metrics at step %d: %s", step, values)
        record("train", step, values)
        rate = (step - start_step) / max(time.time() - start_time, 1e-9)
        eta = (total_steps - step) / max(rate, 1e-9)
        log(f"step {step}/{total_steps} {_format(values)} eta={eta / 60:.1f}min")
        if step % FLAGS.save_checkpoints_steps == 0 or step == total_steps:
            checkpoints.save(step)
        if eval_files and FLAGS.eval_every_n_steps and step % FLAGS.eval_every_n_steps == 0 and step < total_steps:
            values = trainer.evaluate()
            record("eval", step, values)
            log(f"eval at step {step}: {_format(values)}")

    results: dict[str, Any] = {}
    if eval_files:
        results = trainer.evaluate()
        record("eval", step, results)
        log(f"final held-out eval: {_format(results)}")
        if FLAGS.unigram_baseline:
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

        export = os.path.join(FLAGS.output_dir, "export")
        save_encoder(trainer.model, os.path.join(export, "bert_keras"), vocab_file)
        write_google_checkpoint(trainer.model, os.path.join(export, "google"), vocab_file)
        log(f"wrote {export}/bert_keras (bert_keras format) and {export}/google (Google TF1 names)")
        metrics_log.close()
    return results


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    train()


def run() -> None:
    app.run(main, argv=_resolve_flagfile_args(sys.argv))


if __name__ == "__main__":
    run()
