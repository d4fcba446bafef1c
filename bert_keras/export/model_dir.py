"""`--model_dir`: export what a bert_keras training run left on disk, dispatching on the model it finds.

Two layouts are read:
- a pre-training export (`bert_keras.pretrain` writes `<output_dir>/export/bert_keras`: config, Google-named
  weights WITH the `cls/*` heads, vocab.txt) -> the pre-training (MLM + NSP) export; a checkpoint without
  heads -> the encoder export;
- a fine-tuning export: `model.keras` (what the task CLIs' `--export_dir` writes) -> GLUE / SQuAD / NER export by
  the model's class. The shared trainer writes `vocab.txt` and `run_metadata.json`
  (`bert_keras.finetuning.run_metadata`) beside it: lower-case flag, task, max_seq_length, SQuAD windows and
  v2.0 null threshold, NER window context. `vocab_file`, `lower_case`, `glue_task` and `seq_length`
  override what it says (and stand in for it in directories written without one).
"""

from __future__ import annotations

import os
from typing import Any

import keras

from bert_keras.checkpoints.checkpoint import VOCAB_FILE
from bert_keras.checkpoints.native import CONFIG_FILE
from bert_keras.export.serving import ServingModule

KERAS_MODEL = "model.keras"
SQUAD_SETTINGS = ("max_query_length", "doc_stride", "max_answer_length", "n_best_size", "null_score_diff_threshold")


def _tokenizer(model_dir: str, vocab_file: str | None, lower_case: bool | None):
    from bert_keras.tokenizer import BertTokenizer

    vocab_file = vocab_file or os.path.join(model_dir, VOCAB_FILE)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"{model_dir}: no vocab.txt beside the model; pass vocab_file (--vocab_file)")
    return BertTokenizer(vocab_file, lower_case=True if lower_case is None else lower_case)


def _glue_task(model_dir: str, glue_task: str | None):
    from tasks.glue.tasks import GLUE_TASKS

    if glue_task is None or glue_task.lower() not in GLUE_TASKS:
        raise ValueError(f"{model_dir}: cannot tell which GLUE task the classifier is for (got {glue_task!r}); "
                         f"pass glue_task (--glue_task), one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[glue_task.lower()]


def serving_module_for_model_dir(model_dir: str, *, seq_length: int | None = None, vocab_file: str | None = None,
                                 lower_case: bool | None = None, glue_task: str | None = None) -> ServingModule:
    """The serving module for what `model_dir` holds (see the module docstring)."""
    from bert_keras.export.classifier import ClassifierServing
    from bert_keras.export.encoder import EncoderServing
    from bert_keras.export.ner import NerServing
    from bert_keras.export.pretraining import PretrainingServing
    from bert_keras.export.squad import SquadServing

    if os.path.isfile(os.path.join(model_dir, CONFIG_FILE)):
        from bert_keras.checkpoints import assign_google_weights, build_encoder, read_checkpoint
        from bert_keras.pretraining_model import BertPretrainingModel

        checkpoint = read_checkpoint(model_dir, vocab_file)
        tokenizer = _tokenizer(model_dir, checkpoint.vocab_file, lower_case)
        if not checkpoint.has_heads:
            return EncoderServing(build_encoder(checkpoint), tokenizer, seq_length or 128)
        model = BertPretrainingModel(checkpoint.config)
        model.build()
        assign_google_weights(model, checkpoint.weights)
        return PretrainingServing(model, tokenizer, seq_length or 128)

    path = os.path.join(model_dir, KERAS_MODEL)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{model_dir}: neither a bert_keras checkpoint ({CONFIG_FILE}) nor a fine-tuned "
                                f"{KERAS_MODEL}; point --model_dir at a training run's export directory")
    from bert_keras.finetuning.run_metadata import METADATA_FILE, read_run_metadata
    from tasks.conll.model import TokenClassifier  # importing the task models registers their classes
    from tasks.glue.model import GlueClassifier
    from tasks.squad.model import SquadModel

    metadata: dict[str, Any] = read_run_metadata(model_dir) or {}
    model = keras.saving.load_model(path, compile=False)
    family = {GlueClassifier: "glue", SquadModel: "squad", TokenClassifier: "ner"}.get(type(model))
    if family is None:
        raise ValueError(f"{path}: no serving export for a {type(model).__name__}")
    if metadata and metadata["task_family"] != family:
        raise ValueError(f"{os.path.join(model_dir, METADATA_FILE)}: task_family {metadata['task_family']!r} but "
                         f"{KERAS_MODEL} is a {type(model).__name__} ({family!r})")
    tokenizer = _tokenizer(model_dir, vocab_file, metadata.get("lower_case") if lower_case is None else lower_case)
    seq_length = seq_length or metadata.get("max_seq_length")
    if family == "glue":
        spec = _glue_task(model_dir, glue_task or metadata.get("task"))
        if spec.num_classes != model.num_classes:
            raise ValueError(f"{path}: {model.num_classes} outputs, but GLUE {spec.name} has {spec.num_classes}")
        num_text_fields = 2 if spec.splits["train"].columns.text_b is not None else 1
        return ClassifierServing(model, tokenizer, seq_length or 128, label_names=spec.labels,
                                 num_text_fields=num_text_fields)
    if family == "squad":
        settings = {k: metadata[k] for k in SQUAD_SETTINGS if k in metadata}
        return SquadServing(model, tokenizer, seq_length or 384, **settings)
    window = {"window_context": metadata["window_context"]} if "window_context" in metadata else {}
    return NerServing(model, tokenizer, seq_length or 128, **window)
