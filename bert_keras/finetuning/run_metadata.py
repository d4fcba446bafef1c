"""What serving a fine-tuned model needs besides its weights, written once by the shared trainer.

`trainer.run` exports `model.keras` and, beside it, `vocab.txt` and `run_metadata.json`: the lower-case flag,
the task family (`glue`, `squad`, `ner`) and task name, `max_seq_length`, and what the task's
`FineTuningTask.export_metadata` adds (GLUE/NER label names, SQuAD windowing and the v2.0 null threshold the
run found, NER window context). `python -m bert_keras.export --model_dir=DIR` reads it, so a run's export
directory exports with no extra flags.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from bert_keras.checkpoints.checkpoint import VOCAB_FILE
from bert_keras.vocab_file import write_vocab

if TYPE_CHECKING:
    from bert_keras.finetuning.task import FineTuningTask

METADATA_FILE = "run_metadata.json"
TASK_FAMILIES = ("glue", "squad", "ner")
_REQUIRED = {"task_family": str, "task": str, "max_seq_length": int, "lower_case": bool}


def write_run_metadata(task: FineTuningTask, export_dir: str) -> list[str]:
    """Writes `vocab.txt` (the task tokenizer's vocab) and `run_metadata.json` into `export_dir`."""
    tokenizer = task.tokenizer
    metadata = {"lower_case": tokenizer.lower_case, **task.export_metadata()}
    _check(metadata, f"{type(task).__name__}.export_metadata()")
    os.makedirs(export_dir, exist_ok=True)
    vocab_path = os.path.join(export_dir, VOCAB_FILE)
    write_vocab(tokenizer.vocab, vocab_path)
    metadata_path = os.path.join(export_dir, METADATA_FILE)
    with open(metadata_path, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=1)
    return [vocab_path, metadata_path]


def read_run_metadata(directory: str) -> dict[str, Any] | None:
    """`run_metadata.json` of `directory` (None when there is none), its required fields checked."""
    path = os.path.join(directory, METADATA_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        try:
            metadata = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
    _check(metadata, path)
    return metadata


def _check(metadata: Any, source: str) -> None:
    if not isinstance(metadata, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(metadata).__name__}")
    for field, kind in _REQUIRED.items():
        if field not in metadata:
            raise ValueError(f"{source}: missing field {field!r}")
        if not isinstance(metadata[field], kind) or (kind is int and isinstance(metadata[field], bool)):
            raise ValueError(f"{source}: field {field!r} must be {kind.__name__}, got {metadata[field]!r}")
    if metadata["task_family"] not in TASK_FAMILIES:
        raise ValueError(f"{source}: field 'task_family' is {metadata['task_family']!r}, not one of {TASK_FAMILIES}")
