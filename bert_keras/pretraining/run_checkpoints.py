"""Checkpoints of a training run that survive being killed at any moment.

`tf.train.CheckpointManager` writes a checkpoint's files under a temporary name, renames them into
place, and only then atomically rewrites the `checkpoint` state file, so a SIGKILL mid-save leaves the
previous checkpoint as the latest. A latest checkpoint that is corrupt anyway (disk error, truncated
copy) is skipped with a warning and the one before it restored.
"""

from __future__ import annotations

import os
import shutil

import tensorflow as tf
from absl import logging


class TrainingCheckpoints:
    """Saves `checkpoint` (model, optimizer, step, data iterator, ...) every call to `save`, keeping the
    newest `max_to_keep`; `restore_latest` restores the newest one that reads back intact.

    On a multi-worker run every worker must call `save` (it is a collective), but only the chief
    (`is_chief=True`) writes into `directory`; the others write to a scratch directory they delete.
    Every worker restores from `directory` (a file system all workers share), so they resume in sync.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: str, max_to_keep: int = 5,
                 is_chief: bool = True, worker_id: int = 0):
        self.checkpoint = checkpoint
        self.directory = directory
        self.is_chief = is_chief
        self.max_to_keep = max_to_keep
        self.write_directory = directory if is_chief else os.path.join(directory, f".worker_{worker_id}_scratch")
        self.manager = tf.train.CheckpointManager(checkpoint, self.write_directory, max_to_keep=max_to_keep)

    def save(self, step: int) -> str:
        path = self.manager.save(checkpoint_number=step)
        if not self.is_chief:
            shutil.rmtree(self.write_directory, ignore_errors=True)
            self.manager = tf.train.CheckpointManager(self.checkpoint, self.write_directory,
                                                      max_to_keep=self.max_to_keep)
        return path

    def restore_latest(self) -> str | None:
        """Restores the newest readable checkpoint; returns its path, or None when there is none."""
        state = tf.train.get_checkpoint_state(self.directory)
        candidates = list(reversed(state.all_model_checkpoint_paths)) if state else []
        for path in candidates:
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (tf.errors.OpError, ValueError, AssertionError) as e:
                logging.warning("checkpoint %s is unreadable (%s: %s); falling back to the previous one",
                                path, type(e).__name__, str(e).splitlines()[0][:200])
                continue
            return path
        if candidates:
            raise RuntimeError(f"no readable checkpoint in {self.directory}: all of {candidates} failed; "
                               f"delete them or use a new model_dir")
        return None
