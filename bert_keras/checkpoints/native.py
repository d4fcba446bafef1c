"""bert_keras's own checkpoint directory: config, Google-named safetensors weights, vocab.

    my_model/
      bert_keras_config.json   `BertConfig.to_json_file(path, "bert_keras")` ({"format": "bert_keras", ...})
      weights.safetensors      float32 arrays keyed by Google's variable names, in Google's layout;
                               header metadata {"format": "bert_keras", "format_version": "1"}
      vocab.txt                (optional) the WordPiece vocab, one token per line

Why not a `.keras` file: this directory is independent of Python class names and Keras versions, loads
without TensorFlow graph machinery (safetensors is a flat, memory-mappable, pickle-free format), keeps
the config exact (`gelu` vs `gelu_tanh`, layer_norm_eps) and names every array the way BERT users know.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np

from bert_keras.checkpoints.checkpoint import CheckpointError, check_vocab
from bert_keras.checkpoints.variables import encoder_of, google_weights
from bert_keras.config import BertConfig

CONFIG_FILE = "bert_keras_config.json"
WEIGHTS_FILE = "weights.safetensors"
VOCAB_FILE = "vocab.txt"
FORMAT_VERSION = "1"


def save_encoder(model_or_encoder: Any, directory: str | os.PathLike,
                 vocab_file: str | os.PathLike | None = None) -> str:
    """Saves a `BertEncoder` (or a pre-training model, heads included) in our format; returns `directory`."""
    from safetensors.numpy import save_file

    directory = os.fspath(directory)
    config: BertConfig = encoder_of(model_or_encoder).config
    if vocab_file is not None:
        check_vocab(vocab_file, config, f"of {type(model_or_encoder).__name__}")
    os.makedirs(directory, exist_ok=True)
    save_file(google_weights(model_or_encoder), os.path.join(directory, WEIGHTS_FILE),
              metadata={"format": "bert_keras", "format_version": FORMAT_VERSION})
    config.to_json_file(os.path.join(directory, CONFIG_FILE), "bert_keras")
    if vocab_file is not None and os.path.abspath(vocab_file) != os.path.abspath(
            os.path.join(directory, VOCAB_FILE)):
        shutil.copyfile(vocab_file, os.path.join(directory, VOCAB_FILE))
    return directory


def is_native_weight_file(path: str) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="numpy") as f:
            return (f.metadata() or {}).get("format") == "bert_keras"
    except Exception:  # not a safetensors file at all
        return False


def read_native(config_file: str, weight_file: str) -> tuple[BertConfig, dict[str, np.ndarray]]:
    from safetensors import safe_open

    config = BertConfig.from_json_file(config_file)
    if not os.path.isfile(weight_file):
        raise FileNotFoundError(f"weights file not found: {weight_file} (expected beside {config_file})")
    with safe_open(weight_file, framework="numpy") as f:
        version = (f.metadata() or {}).get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{weight_file}: bert_keras format version {version!r}, this package reads "
                                  f"{FORMAT_VERSION!r}")
        weights = {k: f.get_tensor(k) for k in f.keys()}
    return config, weights
