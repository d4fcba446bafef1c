"""`--model_dir`: export what a bert_keras training run left on disk, dispatching on what it finds there.

Two layouts are read:
- a pre-training export (`bert_keras.pretrain` writes `<output_dir>/export/bert_keras`: config, Google-named
  weights WITH the `cls/*` heads, vocab.txt; the run's `output_dir` itself is accepted too) -> the pre-training
  (MLM + NSP) export; a checkpoint without heads -> the encoder export;
- a fine-tuning export: `model.keras` (what the task CLIs' `--export_dir` writes) with `vocab.txt` and
  `run_metadata.json` beside it (`bert_keras.finetuning.run_metadata`). The metadata names the
  `FineTuningTask` class that trained the model; that class builds the serving module
  (`FineTuningTask.serving_module`), so no task family is named here. `vocab_file`, `lower_case` and
  `seq_length` override what the metadata says.
"""

from __future__ import annotations

import os

import keras

from bert_keras.checkpoints.checkpoint import VOCAB_FILE
from bert_keras.checkpoints.native import CONFIG_FILE
from bert_keras.export.serving import ServingModule

KERAS_MODEL = "model.keras"
PRETRAINING_EXPORT = os.path.join("export", "bert_keras")  # where a pre-training run puts its final weights


def _tokenizer(model_dir: str, vocab_file: str | None, lower_case: bool | None):
    from bert_keras.tokenizer import BertTokenizer

    vocab_file = vocab_file or os.path.join(model_dir, VOCAB_FILE)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"{model_dir}: no vocab.txt beside the model; pass vocab_file (--vocab_file)")
    return BertTokenizer(vocab_file, lower_case=True if lower_case is None else lower_case)


def _pretraining_module(model_dir: str, seq_length: int | None, vocab_file: str | None,
                        lower_case: bool | None) -> ServingModule:
    from bert_keras.checkpoints import assign_google_weights, build_encoder, read_checkpoint
    from bert_keras.export.encoder import EncoderServing
    from bert_keras.export.pretraining import PretrainingServing
    from bert_keras.pretraining_model import BertPretrainingModel

    checkpoint = read_checkpoint(model_dir, vocab_file)
    tokenizer = _tokenizer(model_dir, checkpoint.vocab_file, lower_case)
    if not checkpoint.has_heads:
        return EncoderServing(build_encoder(checkpoint), tokenizer, seq_length or 128)
    model = BertPretrainingModel(checkpoint.config)
    model.build()
    assign_google_weights(model, checkpoint.weights)
    return PretrainingServing(model, tokenizer, seq_length or 128)


def serving_module_for_model_dir(model_dir: str, *, seq_length: int | None = None, vocab_file: str | None = None,
                                 lower_case: bool | None = None) -> ServingModule:
    """The serving module for what `model_dir` holds (see the module docstring)."""
    from bert_keras.finetuning.run_metadata import METADATA_FILE, read_run_metadata, task_class_from_metadata

    if not os.path.isfile(os.path.join(model_dir, CONFIG_FILE)) and not os.path.isfile(
            os.path.join(model_dir, KERAS_MODEL)) and os.path.isfile(
            os.path.join(model_dir, PRETRAINING_EXPORT, CONFIG_FILE)):
        model_dir = os.path.join(model_dir, PRETRAINING_EXPORT)  # a pre-training run's output_dir
    if os.path.isfile(os.path.join(model_dir, CONFIG_FILE)):
        return _pretraining_module(model_dir, seq_length, vocab_file, lower_case)

    path = os.path.join(model_dir, KERAS_MODEL)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir}: neither a bert_keras checkpoint ({CONFIG_FILE}) nor a fine-tuned "
                                f"{KERAS_MODEL}; point --model_dir at a pre-training run's output_dir or a "
                                f"fine-tuning run's --export_dir")
    metadata_path = os.path.join(model_dir, METADATA_FILE)
    metadata = read_run_metadata(model_dir)
    if metadata is None:
        raise FileNotFoundError(f"{model_dir}: {KERAS_MODEL} has no {METADATA_FILE} beside it (the fine-tuning "
                                "trainer writes one with every export); it names the task that serves the model")
    task_class = task_class_from_metadata(metadata, metadata_path)  # importing it registers the model classes
    model = keras.saving.load_model(path, compile=False)
    if not isinstance(model, task_class.model_class):
        raise ValueError(f"{metadata_path}: task_family {metadata['task_family']!r} but {KERAS_MODEL} is a "
                         f"{type(model).__name__} (not a {task_class.model_class.__name__})")
    tokenizer = _tokenizer(model_dir, vocab_file, metadata["lower_case"] if lower_case is None else lower_case)
    return task_class.serving_module(model, tokenizer, metadata, seq_length)
