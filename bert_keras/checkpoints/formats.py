"""The one table of checkpoint formats: each format module adds its row (name, detection, reader, writer).

`read_checkpoint` detects a format from this table, `save_checkpoint`/`convert` write through it, and error
messages list the layouts it holds; a new format is one module that calls `register_format`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Callable

import numpy as np

from bert_keras.checkpoints.checkpoint import CheckpointError
from bert_keras.config import BertConfig

Weights = dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class CheckpointFormat:
    """How one checkpoint layout is found, read and written (weights always by Google's variable names)."""

    name: str
    config_file: str  # the config JSON that sits beside the weights
    layout: str  # what a directory of this format holds, for error messages
    find_in_directory: Callable[[str], str | None]  # directory (config present) -> weight file / TF prefix
    locate: Callable[[str], str | None]  # a weight-file or prefix path -> its location, if it is this format
    read: Callable[[str, BertConfig], tuple[Weights, list[str]]]  # -> (weights, ignored names)
    write: Callable[..., str]  # (weights, config, directory, vocab_file) -> directory or TF prefix


FORMATS: dict[str, CheckpointFormat] = {}


def register_format(checkpoint_format: CheckpointFormat) -> CheckpointFormat:
    if checkpoint_format.name in FORMATS:
        raise ValueError(f"checkpoint format {checkpoint_format.name!r} is registered already")
    FORMATS[checkpoint_format.name] = checkpoint_format
    return checkpoint_format


def get_format(name: str) -> CheckpointFormat:
    if name not in FORMATS:
        raise ValueError(f"unknown checkpoint format {name!r}; choose from {sorted(FORMATS)}")
    return FORMATS[name]


def _by_name() -> list[CheckpointFormat]:
    return [FORMATS[name] for name in sorted(FORMATS)]


def expected_layouts() -> str:
    return ", ".join(f"{f.name} ({f.layout})" for f in _by_name())


def detect_directory(directory: str) -> tuple[CheckpointFormat, str]:
    """(format, weight file or prefix) of a checkpoint directory; an error if none or several match."""
    found = []
    for checkpoint_format in _by_name():
        if os.path.isfile(os.path.join(directory, checkpoint_format.config_file)):
            location = checkpoint_format.find_in_directory(directory)
            if location:
                found.append((checkpoint_format, location))
    if len(found) > 1:
        raise CheckpointError(f"{directory} holds checkpoints in several formats "
                              f"({', '.join(f.name for f, _ in found)}); pass the path of the one to load: "
                              f"{', '.join(p for _, p in found)}")
    if not found:
        present = sorted(os.listdir(directory))
        raise CheckpointError(f"{directory} is not a known BERT checkpoint layout; expected {expected_layouts()}; "
                              f"found files: {present[:20]}")
    return found[0]


def detect_file(path: str) -> tuple[CheckpointFormat, str]:
    """(format, weight file or prefix) for the path of a weight file or TF checkpoint prefix."""
    for checkpoint_format in _by_name():  # the formats' `locate` rules exclude each other
        location = checkpoint_format.locate(path)
        if location:
            return checkpoint_format, location
    raise CheckpointError(f"{path} is not a checkpoint file this package reads; expected a directory with "
                          f"{expected_layouts()}, or the path of such a weight file / checkpoint prefix")
