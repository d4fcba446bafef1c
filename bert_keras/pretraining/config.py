"""`PretrainingConfig`: every setting of a pre-training run, checked before any work starts.

Field names are the command-line flag names (google-research/bert's `run_pretraining.py` names where it has
them), so `--name=value` on the command line and `PretrainingConfig(name=value)` in Python are the same
setting, and error messages name it once for both: `--name`. `bert_keras.pretraining.flags` maps the flags
onto this class; `bert_keras.pretraining.trainer.train` takes it.
"""

from __future__ import annotations

import dataclasses
import os

from bert_keras.distribution import PRECISION_POLICIES, STRATEGIES
from bert_keras.optimization import OPTIMIZERS


class ConfigError(ValueError):
    """A setting that cannot work; the message names it (`--name`). Raised before any long work starts."""


@dataclasses.dataclass(frozen=True)
class Phase:
    """A stretch of training with one input shape."""

    seq_length: int
    max_predictions: int
    batch_size: int
    end_step: int  # global step at which the phase ends


@dataclasses.dataclass(frozen=True)
class PretrainingConfig:
    """One pre-training run. The help text of each setting is its flag's (`python -m bert_keras.pretrain
    --helpfull`). `output_dir`, `input_file` and one of `preset`/`bert_config_file`/`init_checkpoint` are
    required; `vocab_file` too unless the init checkpoint ships one. Special values: `vocab_file="demo"` and
    `input_file="demo:train"` / `eval_input_file="demo:heldout"` are the files shipped in `bert_keras.resources`.
    """

    # model
    preset: str | None = None
    bert_config_file: str | None = None
    init_checkpoint: str | None = None
    vocab_file: str | None = None
    do_lower_case: bool = True
    remat: bool = False
    # data
    input_file: str | None = None
    eval_input_file: str | None = None
    max_seq_length: int = 128
    max_predictions_per_seq: int = 20
    masked_lm_prob: float = 0.15
    short_seq_prob: float = 0.1
    whole_word_mask: bool = False
    # optimisation
    train_batch_size: int = 32
    eval_batch_size: int = 8
    num_train_steps: int = 100000
    num_warmup_steps: int = 10000
    learning_rate: float = 5e-5
    optimizer: str = "adamw"
    weight_decay: float = 0.01
    clip_norm: float = 1.0
    gradient_accumulation_steps: int = 1
    # second phase
    phase2_num_train_steps: int = 0
    phase2_max_seq_length: int = 512
    phase2_max_predictions_per_seq: int = 80
    phase2_train_batch_size: int | None = None
    # speed and distribution
    mixed_precision: str = "float32"
    jit_compile: bool | None = None  # None: XLA on GPUs/TPUs, off on CPU (distribution.resolve_jit_compile)
    distribution_strategy: str = "one_device"
    tpu_name: str | None = None
    iterations_per_loop: int = 100
    # checkpoints, evaluation, logging
    output_dir: str | None = None
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    eval_every_n_steps: int = 0
    max_eval_steps: int = 100
    unigram_baseline: bool = False
    seed: int = 0

    def phases(self) -> list[Phase]:
        """Phase 1, and phase 2 when `phase2_num_train_steps` > 0 (the learning-rate schedule spans both)."""
        result = [Phase(self.max_seq_length, self.max_predictions_per_seq, self.train_batch_size,
                        self.num_train_steps)]
        if self.phase2_num_train_steps:
            result.append(Phase(self.phase2_max_seq_length, self.phase2_max_predictions_per_seq,
                                self.phase2_train_batch_size or self.train_batch_size,
                                self.num_train_steps + self.phase2_num_train_steps))
        return result

    def validate(self) -> None:
        """Every check that can fail before any work starts (files that must exist included); raises
        `ConfigError` naming the setting."""
        _check(self.output_dir, "--output_dir (or --model_dir) is required")
        _check(self.input_file, "--input_file is required")
        _check(self.preset or self.bert_config_file or self.init_checkpoint,
               "give the model size: --preset, --bert_config_file or --init_checkpoint")
        if self.preset:
            from bert_keras.config import PRESETS

            _check(self.preset in PRESETS, f"--preset={self.preset!r}: choose from {sorted(PRESETS)}")
        if self.bert_config_file:
            _check(os.path.isfile(self.bert_config_file), f"--bert_config_file={self.bert_config_file!r} "
                   "does not exist")
        if self.init_checkpoint:
            _check(os.path.exists(self.init_checkpoint) or os.path.exists(self.init_checkpoint + ".index"),
                   f"--init_checkpoint={self.init_checkpoint!r} does not exist")
        # The flags restrict these to their choices; a config built in Python is checked here.
        for name, choices in (("optimizer", OPTIMIZERS), ("mixed_precision", PRECISION_POLICIES),
                              ("distribution_strategy", STRATEGIES)):
            _check(getattr(self, name) in choices, f"--{name}={getattr(self, name)!r}: choose from {list(choices)}")
        for name in ("max_seq_length", "max_predictions_per_seq", "train_batch_size", "eval_batch_size",
                     "num_train_steps", "iterations_per_loop", "save_checkpoints_steps", "keep_checkpoint_max",
                     "max_eval_steps", "gradient_accumulation_steps"):
            _check(getattr(self, name) > 0, f"--{name} must be positive, got {getattr(self, name)}")
        _check(self.max_seq_length >= 5, f"--max_seq_length={self.max_seq_length} is too short (minimum 5)")
        _check(self.max_predictions_per_seq <= self.max_seq_length,
               f"--max_predictions_per_seq={self.max_predictions_per_seq} exceeds --max_seq_length")
        total = self.num_train_steps + max(self.phase2_num_train_steps, 0)
        _check(0 <= self.num_warmup_steps <= total,
               f"--num_warmup_steps={self.num_warmup_steps} must be in [0, total steps {total}]")
        _check(self.learning_rate > 0, f"--learning_rate must be positive, got {self.learning_rate}")
        _check(0 < self.masked_lm_prob < 1, f"--masked_lm_prob must be in (0, 1), got {self.masked_lm_prob}")
        _check(0 <= self.short_seq_prob <= 1, f"--short_seq_prob must be in [0, 1], got {self.short_seq_prob}")
        _check(self.weight_decay >= 0, f"--weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.clip_norm >= 0, f"--clip_norm must be >= 0, got {self.clip_norm}")
        _check(self.eval_every_n_steps >= 0, "--eval_every_n_steps must be >= 0")
        _check(self.phase2_num_train_steps >= 0, "--phase2_num_train_steps must be >= 0")
        if self.phase2_num_train_steps:
            _check(self.phase2_max_predictions_per_seq <= self.phase2_max_seq_length,
                   "--phase2_max_predictions_per_seq exceeds --phase2_max_seq_length")
        for phase in self.phases():
            _check(phase.batch_size % self.gradient_accumulation_steps == 0,
                   f"train batch size {phase.batch_size} is not divisible by --gradient_accumulation_steps="
                   f"{self.gradient_accumulation_steps}")
        if self.unigram_baseline:
            _check(self.eval_input_file, "--unigram_baseline needs --eval_input_file")
        if self.mixed_precision == "mixed_float16" and self.distribution_strategy == "tpu":
            raise ConfigError("TPUs train in mixed_bfloat16, not mixed_float16")

    # --- paths: the demo resources, globs, the init checkpoint's vocab --------------------------------
    def resolve_vocab_file(self) -> str:
        """`vocab_file` as a path: "demo" is the shipped vocab; unset, the init checkpoint's vocab.txt."""
        if not self.vocab_file and self.init_checkpoint:
            from bert_keras.checkpoints import read_checkpoint

            vocab_file = read_checkpoint(self.init_checkpoint, load_weights=False).vocab_file
            _check(vocab_file, f"--init_checkpoint={self.init_checkpoint!r} has no vocab.txt; pass --vocab_file")
            return vocab_file
        if self.vocab_file == "demo":
            return _demo_resources().demo_vocab_file()
        if self.vocab_file:
            _check(os.path.isfile(self.vocab_file), f"--vocab_file={self.vocab_file!r} does not exist")
            return self.vocab_file
        raise ConfigError("--vocab_file is required (or an --init_checkpoint that ships a vocab.txt)")

    def resolve_train_files(self) -> list[str]:
        return _resolve_files(self.input_file, "input_file")

    def resolve_eval_files(self) -> list[str] | None:
        """The held-out files, or None when there is no evaluation."""
        return _resolve_files(self.eval_input_file, "eval_input_file") if self.eval_input_file else None


def _check(condition, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _demo_resources():
    try:
        from bert_keras import resources
    except ImportError as e:
        raise ConfigError(f"the demo corpus is not installed with this package ({e})") from None
    return resources


def _resolve_files(spec: str, flag: str) -> list[str]:
    from bert_keras.pretraining.data.documents import expand_input_files

    try:
        if spec.startswith("demo:"):
            return list(_demo_resources().demo_corpus_files(spec.split(":", 1)[1]))
        files = expand_input_files(spec)
    except (FileNotFoundError, ValueError) as e:
        raise ConfigError(f"--{flag}: {e}") from None
    if not files:
        raise ConfigError(f"--{flag}={spec!r} matches no files")
    return files
