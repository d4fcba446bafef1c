"""What serving a fine-tuned model needs besides its weights, written once by the shared trainer.

`trainer.run` exports `model.keras` and, beside it, `vocab.txt` and `run_metadata.json`: the lower-case flag,
the task family and task name, `max_seq_length`, the import path of the `FineTuningTask` class that trained
it (`task_class`), and what that task's `export_metadata` adds (label names, SQuAD windowing and the v2.0 null
threshold the run found, NER window context). `python -m bert_keras.export --model_dir=DIR` reads it and asks
that class for its serving module, so a run's export directory exports with no extra flags, and the library
needs to know no task family by name.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import TYPE_CHECKING, Any

from bert_keras.checkpoints.checkpoint import VOCAB_FILE
from bert_keras.vocab_file import write_vocab

if TYPE_CHECKING:
    from bert_keras.finetuning.task import FineTuningTask

METADATA_FILE = "run_metadata.json"
_REQUIRED = {"task_family": str, "task": str, "max_seq_length": int, "lower_case": bool}


def task_class_path(task_class: type) -> str:
    """`module:QualifiedName` of a task class, what `task_class_from_metadata` imports."""
    return f"{task_class.__module__}:{task_class.__qualname__}"


def write_run_metadata(task: FineTuningTask, export_dir: str) -> list[str]:
    """Writes `vocab.txt` (the task tokenizer's vocab) and `run_metadata.json` into `export_dir`."""
    tokenizer = task.tokenizer
    metadata = {"lower_case": tokenizer.lower_case, "task_class": task_class_path(type(task)),
                **task.export_metadata()}
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


def task_class_from_metadata(metadata: dict[str, Any], source: str) -> type[FineTuningTask]:
    """Imports the task class that `metadata` names (which also registers its Keras model classes)."""
    from bert_keras.finetuning.task import FineTuningTask

    path = metadata.get("task_class")
    if not isinstance(path, str) or ":" not in path:
        raise ValueError(f"{source}: field 'task_class' must be 'module:ClassName' (the FineTuningTask that "
                         f"trained the model), got {path!r}")
    module_name, _, qualname = path.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"{source}: cannot import task_class {path!r} ({e})") from None
    if not (isinstance(target, type) and issubclass(target, FineTuningTask)):
        raise ValueError(f"{source}: task_class {path!r} is not a FineTuningTask")
    return target


def _check(metadata: Any, source: str) -> None:
    if not isinstance(metadata, dict):
        raise ValueError(f"{source}: expected a JSON object, got {type(metadata).__name__}")
    for field, kind in _REQUIRED.items():
        if field not in metadata:
            raise ValueError(f"{source}: missing field {field!r}")
        if not isinstance(metadata[field], kind) or (kind is int and isinstance(metadata[field], bool)):
            raise ValueError(f"{source}: field {field!r} must be {kind.__name__}, got {metadata[field]!r}")
