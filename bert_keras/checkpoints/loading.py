"""Format detection, `read_checkpoint` and `load_encoder`: one entry point for every checkpoint layout."""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import keras

from bert_keras.checkpoints import google, huggingface, native  # noqa: F401 (each registers its format)
from bert_keras.checkpoints.checkpoint import (VOCAB_FILE, CheckpointError, LoadedCheckpoint, check_vocab,
                                               validate_weights)
from bert_keras.checkpoints.formats import detect_directory, detect_file
from bert_keras.checkpoints.variables import assign_google_weights
from bert_keras.config import BertConfig
from bert_keras.encoder import BertEncoder

def _config_beside(weights_path: str, name: str, kind: str) -> str:
    config_file = os.path.join(os.path.dirname(weights_path), name)
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"{kind} checkpoint {weights_path} needs its config file {config_file}, "
                                "which does not exist")
    return config_file


def read_checkpoint(path: str | os.PathLike, vocab_file: str | os.PathLike | None = None, *,
                    load_weights: bool = True) -> LoadedCheckpoint:
    """Reads a Hugging Face, Google TF1 or bert_keras checkpoint (directory, weight file or TF prefix).

    Returns Google-named float32 weights (pre-training heads included when the checkpoint has them),
    checked against the checkpoint's config. The vocab is `vocab_file` if given, else `vocab.txt` beside
    the weights if present; its size must equal the config's vocab_size. `load_weights=False` reads only
    config and vocab (cheap, `weights` is empty), e.g. to size a model before loading it.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        fmt, location = detect_directory(path)
    elif os.path.exists(path) or google.checkpoint_prefix(path):
        fmt, location = detect_file(path)
    else:
        raise FileNotFoundError(f"checkpoint not found: {path} (no such file, directory or TF checkpoint prefix)")

    config = BertConfig.from_json_file(_config_beside(location, fmt.config_file, fmt.name))
    weights, ignored = {}, []
    if load_weights:
        weights, ignored = fmt.read(location, config)
        validate_weights(weights, config, location)
    directory = os.path.dirname(location)
    if vocab_file is None and os.path.isfile(os.path.join(directory, VOCAB_FILE)):
        vocab_file = os.path.join(directory, VOCAB_FILE)
    vocab_file = check_vocab(vocab_file, config, location)
    return LoadedCheckpoint(config, weights, vocab_file, fmt.name, location, tuple(ignored))


@contextlib.contextmanager
def _skip_random_init() -> Iterator[None]:
    """Truncated-normal initializers (every random weight of our layers) return zeros inside this block.

    Only for building a model whose weights are all assigned from a checkpoint right after: sampling ~N(0, 0.02)
    for every weight (22M values for MiniLM, 110M for BERT-base) was most of `load_encoder`'s time, and all of it
    is overwritten. Keras initializers draw their seed when constructed, not when called, so skipping the call
    leaves every random stream (e.g. the task head built next) exactly as it was.
    """
    initializer = keras.initializers.TruncatedNormal
    sample = initializer.__call__
    initializer.__call__ = lambda self, shape, dtype=None: keras.ops.zeros(shape, dtype=dtype)
    try:
        yield
    finally:
        initializer.__call__ = sample


def build_encoder(checkpoint: LoadedCheckpoint, **config_overrides: Any) -> BertEncoder:
    """A `BertEncoder` holding `checkpoint`'s weights; overrides change e.g. dropout, never shapes.

    Weights are created without random sampling (see `_skip_random_init`); `assign_google_weights` then sets
    every one of them or raises, so no zero placeholder survives.
    """
    encoder = BertEncoder(checkpoint.config.replace(**config_overrides))
    with _skip_random_init():
        encoder.build()
    assign_google_weights(encoder, checkpoint.encoder_weights)
    return encoder


def load_encoder(path: str | os.PathLike, vocab_file: str | os.PathLike | None = None,
                 **config_overrides: Any) -> BertEncoder:
    """`BertEncoder` from a Hugging Face, Google TF1 or bert_keras checkpoint (see `read_checkpoint`).

    `config_overrides` replace config fields such as `hidden_dropout_prob` for fine-tuning.
    """
    return build_encoder(read_checkpoint(path, vocab_file), **config_overrides)
