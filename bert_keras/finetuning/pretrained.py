"""Where fine-tuning starts: a pre-trained encoder (or a fresh preset) and the tokenizer matching its vocab."""

from __future__ import annotations

import json
import os

from bert_keras.config import preset as config_preset
from bert_keras.encoder import BertEncoder


def _checkpoint_lower_case(directory: str) -> bool | None:
    """do_lower_case from a Hugging Face `tokenizer_config.json`, when the checkpoint has one."""
    path = os.path.join(directory, "tokenizer_config.json")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        value = json.load(f).get("do_lower_case")
    return None if value is None else bool(value)


def load_pretrained(init_checkpoint: str | None = None, *, preset: str | None = None,
                    vocab_file: str | None = None, lower_case: bool | None = None, **preset_overrides):
    """Returns `(encoder, tokenizer)`.

    `init_checkpoint`: anything `bert_keras.checkpoints.load_encoder` reads (Hugging Face dir, Google TF1
    checkpoint, ours); its `vocab.txt` is used unless `vocab_file` is given. Without a checkpoint, `preset`
    names a randomly initialised `BertConfig` preset and `vocab_file` is required (its size sets the
    config's vocab_size). `lower_case=None` follows the checkpoint's tokenizer_config.json, else True.
    """
    from bert_keras.tokenizer import BertTokenizer  # imported late: heavy tensorflow_text import

    if init_checkpoint:
        from bert_keras.checkpoints import read_checkpoint, load_encoder

        if vocab_file is None:
            candidate = os.path.join(init_checkpoint, "vocab.txt") if os.path.isdir(init_checkpoint) else None
            vocab_file = candidate if candidate and os.path.isfile(candidate) else read_checkpoint(
                init_checkpoint).vocab_file
        if not vocab_file:
            raise ValueError(f"{init_checkpoint}: no vocab.txt found next to the checkpoint; pass vocab_file")
        encoder = load_encoder(init_checkpoint, vocab_file=vocab_file)
        if lower_case is None and os.path.isdir(init_checkpoint):
            lower_case = _checkpoint_lower_case(init_checkpoint)
    elif preset:
        if not vocab_file:
            raise ValueError(f"preset {preset!r} needs a vocab_file (no checkpoint to take it from)")
        tokenizer = BertTokenizer(vocab_file, lower_case=True if lower_case is None else lower_case)
        config = config_preset(preset, vocab_size=tokenizer.vocab_size, **preset_overrides)
        encoder = BertEncoder(config)
        encoder.build()
        return encoder, tokenizer
    else:
        raise ValueError("give init_checkpoint (pre-trained weights) or preset (random initialisation)")
    tokenizer = BertTokenizer(vocab_file, lower_case=True if lower_case is None else lower_case)
    if tokenizer.vocab_size != encoder.config.vocab_size:
        raise ValueError(f"{vocab_file} has {tokenizer.vocab_size} tokens but the checkpoint "
                         f"{init_checkpoint} has vocab_size {encoder.config.vocab_size}")
    return encoder, tokenizer
