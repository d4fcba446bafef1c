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

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from bert_keras.checkpoints.checkpoint import CheckpointError, prepare_output
from bert_keras.checkpoints.formats import CheckpointFormat, register_format
from bert_keras.config import BertConfig

CONFIG_FILE = "bert_keras_config.json"
WEIGHTS_FILE = "weights.safetensors"
FORMAT_VERSION = "1"


def write_native_weights(weights: dict[str, np.ndarray], config: BertConfig, directory: str | os.PathLike,
                         vocab_file: str | os.PathLike | None = None) -> str:
    """Writes Google-named weights in our format (layout in the module docstring); returns `directory`."""
    directory = prepare_output(weights, config, directory, vocab_file)
    save_file({k: np.ascontiguousarray(v, np.float32) for k, v in weights.items()},
              os.path.join(directory, WEIGHTS_FILE),
              metadata={"format": "bert_keras", "format_version": FORMAT_VERSION})
    config.to_json_file(os.path.join(directory, CONFIG_FILE), "bert_keras")
    return directory


def is_native_weight_file(path: str) -> bool:
    try:
        with safe_open(path, framework="numpy") as f:
            return (f.metadata() or {}).get("format") == "bert_keras"
    except Exception:  # not a safetensors file at all
        return False


def read_native(weight_file: str, config: BertConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """-> (Google-named weights, ignored names: always none in our own format)."""
    if not os.path.isfile(weight_file):
        raise FileNotFoundError(f"weights file not found: {weight_file} (expected beside {CONFIG_FILE})")
    with safe_open(weight_file, framework="numpy") as f:
        version = (f.metadata() or {}).get("format_version")
        if version != FORMAT_VERSION:
            raise CheckpointError(f"{weight_file}: bert_keras format version {version!r}, this package reads "
                                  f"{FORMAT_VERSION!r}")
        return {k: f.get_tensor(k) for k in f.keys()}, []


def _locate(path: str) -> str | None:
    return path if path.endswith(".safetensors") and is_native_weight_file(path) else None


FORMAT = register_format(CheckpointFormat(
    "bert_keras", CONFIG_FILE, f"{CONFIG_FILE} + {WEIGHTS_FILE}",
    find_in_directory=lambda directory: os.path.join(directory, WEIGHTS_FILE), locate=_locate,
    read=read_native, write=write_native_weights))
