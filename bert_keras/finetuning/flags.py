"""absl flags shared by the task CLIs (`python -m bert_keras.tasks.glue`, `tasks.squad`, `tasks.conll`).

Each CLI calls `define_flags()` at import, adds its own task flags, and turns the parsed flags into a
`FineTuningConfig` with `config_from_flags()` (validated there, before any work); inside
`trainer.training_scope(config)` (strategy + dtype policy) it loads the encoder/tokenizer with
`pretrained_from_flags()` and `run_from_flags()` runs its task (`trainer.run` with
--do_train/--do_eval/--do_predict/--export_dir). Flag files (`--flagfile=configs/glue/mrpc.flags`) work as
in any absl program.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from absl import flags

from bert_keras.distribution import PRECISION_POLICIES, STRATEGIES
from bert_keras.finetuning.pretrained import load_pretrained
from bert_keras.finetuning.task import FineTuningTask
from bert_keras.finetuning.trainer import FineTuningConfig, run, validate_config
from bert_keras.optimization import OPTIMIZERS

if TYPE_CHECKING:
    import keras

    from bert_keras.tokenizer import BertTokenizer


def define_flags(*, max_seq_length: int = 128, learning_rate: float = 2e-5, num_train_epochs: int = 3,
                 train_batch_size: int = 32) -> None:
    """Defines the shared flags; the keyword arguments are the task family's defaults."""
    flags.DEFINE_string("init_checkpoint", None, "Pre-trained checkpoint: Hugging Face dir, Google TF1 "
                        "checkpoint or bert_keras dir (its vocab.txt is used unless --vocab_file).")
    flags.DEFINE_string("preset", None, "Instead of --init_checkpoint: a randomly initialised BertConfig preset.")
    flags.DEFINE_string("vocab_file", None, "WordPiece vocab (default: the checkpoint's vocab.txt).")
    flags.DEFINE_enum("lower_case", "auto", ["auto", "true", "false"],
                      "Lower-case input (auto: the checkpoint's tokenizer_config.json, else true).")
    flags.DEFINE_string("data_dir", None, "Directory with the task's data files.")
    flags.DEFINE_string("model_dir", None, "Output directory: best weights, TensorBoard logs, eval results, "
                        "predictions.")
    flags.DEFINE_string("export_dir", None, "If set, export the fine-tuned model here.")
    flags.DEFINE_integer("max_seq_length", max_seq_length, "Maximum tokens per example, special tokens included.")
    flags.DEFINE_integer("train_batch_size", train_batch_size, "Global training batch size (all replicas, all "
                         "accumulation micro-batches); one optimizer update per batch.")
    flags.DEFINE_integer("eval_batch_size", 64, "Evaluation/prediction batch size.")
    flags.DEFINE_float("learning_rate", learning_rate, "Peak learning rate.")
    flags.DEFINE_enum("optimizer", "adamw", list(OPTIMIZERS), "AdamW or LAMB (bert_keras.optimization).")
    flags.DEFINE_integer("num_train_epochs", num_train_epochs, "Training epochs.")
    flags.DEFINE_float("warmup_proportion", 0.1, "Fraction of steps with linear learning-rate warmup.")
    flags.DEFINE_float("weight_decay", 0.01, "Weight decay (not on LayerNorm and biases).")
    flags.DEFINE_integer("max_steps", None, "A quick try: stop after this many optimizer updates (the learning-rate "
                         "schedule ends there); the dev set is still evaluated. Default: all epochs.")
    flags.DEFINE_integer("early_stopping_patience", None, "Stop after this many epochs without a gain in "
                         "the task's main metric (default: never).")
    flags.DEFINE_integer("seed", 0, "Random seed (head init, dropout, shuffling).")
    flags.DEFINE_integer("steps_per_execution", 1, "Batches per compiled training call.")
    flags.DEFINE_integer("gradient_accumulation_steps", 1, "Split each global batch into this many "
                         "micro-batches (per replica) whose gradients are summed into one update.")
    flags.DEFINE_enum("distribution_strategy", "one_device", list(STRATEGIES), "tf.distribute strategy, as "
                      "in pre-training; multi_worker_mirrored reads TF_CONFIG.")
    flags.DEFINE_string("tpu_name", None, "With --distribution_strategy=tpu: TPU name or grpc:// address "
                        "(default: the local TPU VM).")
    flags.DEFINE_enum("mixed_precision", "float32", list(PRECISION_POLICIES), "Keras dtype policy; "
                      "mixed_float16 trains with dynamic loss scaling.")
    flags.DEFINE_boolean("do_train", True, "Fine-tune.")
    flags.DEFINE_boolean("do_eval", True, "Evaluate the official metrics on the dev set.")
    flags.DEFINE_boolean("do_predict", False, "Write test-set predictions into --model_dir.")


def config_from_flags(values: flags.FlagValues = flags.FLAGS) -> FineTuningConfig:
    """The run's `FineTuningConfig`; bad values raise `flags.ValidationError` naming the flag. (Divisibility
    of the batch by the replicas is checked once the strategy exists, in `training_scope`.)"""
    if not values.model_dir:
        raise flags.ValidationError("--model_dir is required")
    config = FineTuningConfig(
        model_dir=values.model_dir, learning_rate=values.learning_rate,
        num_train_epochs=values.num_train_epochs, train_batch_size=values.train_batch_size,
        eval_batch_size=values.eval_batch_size, warmup_proportion=values.warmup_proportion,
        weight_decay=values.weight_decay, early_stopping_patience=values.early_stopping_patience,
        seed=values.seed, steps_per_execution=values.steps_per_execution,
        distribution_strategy=values.distribution_strategy, tpu_name=values.tpu_name,
        mixed_precision=values.mixed_precision, gradient_accumulation_steps=values.gradient_accumulation_steps,
        optimizer=values.optimizer, max_steps=values.max_steps)
    try:
        validate_config(config)
    except ValueError as e:
        raise flags.ValidationError(str(e).replace("FineTuningConfig: ", "--")) from None
    return config


def pretrained_from_flags(values: flags.FlagValues = flags.FLAGS) -> tuple[keras.Model, BertTokenizer]:
    """(encoder, tokenizer) from --init_checkpoint or --preset, --vocab_file, --lower_case."""
    lower_case = {"auto": None, "true": True, "false": False}[values.lower_case]
    return load_pretrained(values.init_checkpoint, preset=values.preset, vocab_file=values.vocab_file,
                           lower_case=lower_case)


def run_from_flags(task: FineTuningTask, encoder: keras.Model, config: FineTuningConfig,
                   values: flags.FlagValues = flags.FLAGS) -> dict[str, Any]:
    """`trainer.run` as the flags ask; prints and returns its report (without the per-epoch history)."""
    report = run(task, encoder, config, do_train=values.do_train, do_eval=values.do_eval,
                 do_predict=values.do_predict, export_dir=values.export_dir)
    print(json.dumps({k: v for k, v in report.items() if k != "fit"}, indent=1, default=str), flush=True)
    return report
