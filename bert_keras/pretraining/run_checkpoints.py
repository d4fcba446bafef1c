"""Checkpoints of a training run that survive being killed at any moment.

`tf.train.CheckpointManager` writes a checkpoint's files under a temporary name, renames them into
place, and only then atomically rewrites the `checkpoint` state file, so a SIGKILL mid-save leaves the
previous checkpoint as the latest. A latest checkpoint that is unreadable anyway (truncated or empty data
file, checksum error, missing index, disk error) is skipped with a warning naming it, and the newest one that
reads back is restored.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import tensorflow as tf
from absl import logging


class CheckpointWriteError(RuntimeError):
    """Writing a checkpoint failed (full disk, unwritable directory); the previous one is intact."""


class TrainingCheckpoints:
    """Saves `objects` (model, optimizer, step, data iterators, random states, ...) as one `tf.train.Checkpoint`
    every call to `save`, keeping the newest `max_to_keep`; `restore_latest` restores the newest one that reads
    back intact.

    `optional` names objects that checkpoints written by earlier versions lack (e.g. the dropout random
    states): such a checkpoint is restored without them, with a warning that the resume is not bit-exact.
    On a multi-worker run every worker must call `save` (it is a collective), but only the chief
    (`is_chief=True`) writes into `directory`; the others write to a scratch directory they delete.
    Every worker restores from `directory` (a file system all workers share), so they resume in sync.
    """

    def __init__(self, objects: dict[str, Any], directory: str, max_to_keep: int = 5, is_chief: bool = True,
                 worker_id: int = 0, optional: tuple[str, ...] = ()):
        self.objects = objects
        self.optional = optional
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.directory = directory
        self.is_chief = is_chief
        self.max_to_keep = max_to_keep
        self.write_directory = directory if is_chief else os.path.join(directory, f".worker_{worker_id}_scratch")
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.write_directory, max_to_keep=max_to_keep)

    def save(self, step: int) -> str:
        try:
            path = self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            latest = tf.train.latest_checkpoint(self.directory)
            raise CheckpointWriteError(
                f"could not write the step-{step} checkpoint into {self.write_directory} "
                f"({type(e).__name__}: {str(e).splitlines()[0][:300]}); the previous checkpoint "
                f"{latest or '(none)'} is untouched and a restart resumes from it") from None
        if not self.is_chief:
            shutil.rmtree(self.write_directory, ignore_errors=True)
            self.manager = tf.train.CheckpointManager(self.checkpoint, self.write_directory,
                                                      max_to_keep=self.max_to_keep)
        return path

    def latest(self) -> str | None:
        return tf.train.latest_checkpoint(self.directory)

    def _restore(self, path: str) -> None:
        saved = {name.split("/")[0] for name, _ in tf.train.list_variables(path)}
        missing = [name for name in self.optional if name in self.objects and name not in saved]
        checkpoint = self.checkpoint
        if missing:
            logging.warning("checkpoint %s has no %s (written by an earlier version): resuming without them, "
                            "so this resume is not bit-exact", path, ", ".join(missing))
            checkpoint = tf.train.Checkpoint(**{k: v for k, v in self.objects.items() if k not in missing})
        checkpoint.restore(path).assert_existing_objects_matched()

    def restore_latest(self) -> str | None:
        """Restores the newest readable checkpoint; returns its path, or None when there is none."""
        state = tf.train.get_checkpoint_state(self.directory)
        candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
        for path in candidates:
            try:
                self._restore(path)
            except Exception as e:  # noqa: BLE001 - any unreadable file (IndexError on a truncated one, ...)
                files = sorted(f for f in os.listdir(os.path.dirname(path) or ".")
                               if f.startswith(os.path.basename(path) + "."))
                logging.warning("checkpoint %s (%s) is unreadable (%s: %s); falling back to the previous one",
                                path, ", ".join(files) or "no files", type(e).__name__,
                                str(e).splitlines()[0][:200] if str(e) else "")
                continue
            return path
        if candidates:
            raise RuntimeError(f"no readable checkpoint in {self.directory}: all of {candidates} failed; "
                               f"delete them or use a new model_dir")
        return None
