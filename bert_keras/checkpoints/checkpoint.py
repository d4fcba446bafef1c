"""`LoadedCheckpoint`, the one in-memory form every reader returns, and the checks it must pass.

Readers of every format produce Google-named float32 arrays; `validate_weights` then checks them against
the config once, so a missing, unexpected or wrongly shaped variable is reported the same way whatever
the file format was.
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import numpy as np

from bert_keras.checkpoints.names import GOOGLE_HEAD_PREFIX, GOOGLE_HEADS, google_shapes, head_of
from bert_keras.config import BertConfig
from bert_keras.vocab_file import count_vocab

class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded as asked; the message names the file and the variables."""


@dataclasses.dataclass
class LoadedCheckpoint:
    """A checkpoint read into memory: config, Google-named weights, vocab path and source format
    (`format` is "huggingface", "google" or "bert_keras"; `path` the weight file or TF prefix read).

    `weights` holds the encoder's variables and, for pre-training checkpoints, the `cls/*` head variables
    in Google's layout. `ignored` lists variables of the file that are not part of BERT (optimizer slots,
    fine-tuning heads) and were skipped.
    """

    config: BertConfig
    weights: dict[str, np.ndarray]
    vocab_file: str | None
    format: str
    path: str = ""
    ignored: tuple[str, ...] = ()

    @property
    def has_heads(self) -> bool:
        return any(name.startswith(GOOGLE_HEAD_PREFIX) for name in self.weights)

    @property
    def encoder_weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.weights.items() if not k.startswith(GOOGLE_HEAD_PREFIX)}


def name_list(names, limit: int = 20) -> str:
    """Sorted, comma-separated, cut after `limit` names so errors stay readable."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def validate_weights(weights: dict[str, np.ndarray], config: BertConfig, source: str) -> None:
    """Raises `CheckpointError` listing every unexpected, missing or mis-shaped variable at once.

    Each pre-training head (masked LM, next sentence) is optional, but all-or-nothing.
    """
    expected = google_shapes(config, heads=True)
    problems = []
    unexpected = set(weights) - set(expected)
    if unexpected:
        problems.append(f"unexpected variables: {name_list(unexpected)}")
    for group in (None, *GOOGLE_HEADS):
        members = [n for n in expected if head_of(n) == group]
        missing = [n for n in members if n not in weights]
        if group is None and missing:
            problems.append(f"missing variables: {name_list(missing)}")
        elif missing and len(missing) < len(members):
            problems.append(f"incomplete pre-training head {group}*, missing: {name_list(missing)}")
    for name, value in weights.items():
        if name in expected and tuple(value.shape) != expected[name]:
            problems.append(f"shape mismatch for {name}: checkpoint has {tuple(value.shape)}, "
                            f"the config implies {expected[name]}")
    if problems:
        raise CheckpointError(f"{source}: does not match its BERT config:\n  " + "\n  ".join(problems))


def check_vocab(vocab_file: str | os.PathLike | None, config: BertConfig, source: str) -> str | None:
    """Returns the vocab path after checking it exists and has exactly `config.vocab_size` tokens."""
    if vocab_file is None:
        return None
    vocab_file = os.fspath(vocab_file)
    if not os.path.isfile(vocab_file):
        raise FileNotFoundError(f"vocab file not found: {vocab_file}")
    size = count_vocab(vocab_file)
    if size != config.vocab_size:
        raise CheckpointError(f"vocab file {vocab_file} has {size} tokens but the checkpoint {source} has "
                              f"vocab_size {config.vocab_size}")
    return vocab_file


VOCAB_FILE = "vocab.txt"


def prepare_output(weights: dict[str, np.ndarray], config: BertConfig, directory: str | os.PathLike,
                   vocab_file: str | os.PathLike | None) -> str:
    """Checks weights and vocab against `config` BEFORE anything is written, creates `directory`, copies
    the vocab to `directory/vocab.txt`; every writer starts here. Returns `directory` as a str."""
    directory = os.fspath(directory)
    validate_weights(weights, config, "weights to write")
    vocab_file = check_vocab(vocab_file, config, "being written")
    os.makedirs(directory, exist_ok=True)
    target = os.path.join(directory, VOCAB_FILE)
    if vocab_file is not None and os.path.abspath(vocab_file) != os.path.abspath(target):
        shutil.copyfile(vocab_file, target)
    return directory
