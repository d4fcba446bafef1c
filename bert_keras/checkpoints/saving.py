"""Writing models and checkpoints in any of the three formats, and converting between them."""

from __future__ import annotations

import os
from typing import Any

from bert_keras.checkpoints.formats import get_format
from bert_keras.checkpoints.loading import read_checkpoint
from bert_keras.checkpoints.variables import encoder_of, google_weights


def save_checkpoint(model_or_encoder: Any, directory: str | os.PathLike, format: str = "bert_keras",
                    vocab_file: str | os.PathLike | None = None) -> str:
    """Writes a `BertEncoder` or pre-training model (heads included) in `format`, a name in `FORMATS`."""
    writer = get_format(format).write
    config = encoder_of(model_or_encoder).config
    return writer(google_weights(model_or_encoder), config, directory, vocab_file)


def save_encoder(model_or_encoder: Any, directory: str | os.PathLike,
                 vocab_file: str | os.PathLike | None = None) -> str:
    """Saves in bert_keras's own format (see `bert_keras.checkpoints.native`); returns `directory`."""
    return save_checkpoint(model_or_encoder, directory, "bert_keras", vocab_file)


def write_google_checkpoint(model_or_encoder: Any, directory: str | os.PathLike,
                            vocab_file: str | os.PathLike | None = None) -> str:
    """Writes `bert_config.json` + `bert_model.ckpt.*` (+ vocab.txt) in google-research/bert's exact
    layout, so the result loads wherever an original BERT checkpoint does. Returns the TF prefix."""
    return save_checkpoint(model_or_encoder, directory, "google", vocab_file)


def write_huggingface_checkpoint(model_or_encoder: Any, directory: str | os.PathLike,
                                 vocab_file: str | os.PathLike | None = None) -> str:
    """Writes `config.json` + `model.safetensors` for `transformers` (`BertModel`, or `BertForPreTraining`
    names when the model has heads). Returns `directory`."""
    return save_checkpoint(model_or_encoder, directory, "huggingface", vocab_file)


def convert_checkpoint(source: str | os.PathLike, directory: str | os.PathLike, format: str,
                       vocab_file: str | os.PathLike | None = None) -> str:
    """Reads any supported checkpoint and writes it in `format`, heads included, without building a model."""
    writer = get_format(format).write
    checkpoint = read_checkpoint(source, vocab_file)
    return writer(checkpoint.weights, checkpoint.config, directory, checkpoint.vocab_file)
