"""The pieces every exported model shares: in-graph tokenization + packing, and TF Serving's directory layout.

A `ServingModule` is a `tf.Module` holding a Keras model, a `BertTokenizer` and a `SegmentPacker`; each task's
subclass adds `tf.function` signatures. `save_versioned` writes `export_dir/<version>/` the way TF Serving
expects (integer version directories, highest served) and only renames the finished directory into place,
so a running server never sees a half-written version.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable

import keras
import tensorflow as tf

from bert_keras.export.text_ops import repair_utf8
from bert_keras.tokenizer import BertTokenizer, SegmentPacker

TOKEN_ID_NAMES = ("input_word_ids", "input_mask", "input_type_ids")
STRINGS = tf.TensorSpec([None], tf.string)


class ServingModule(tf.Module):
    """Base of every export: `self.model`, `self.tokenizer`, `self.packer` and the token-id input specs."""

    def __init__(self, model: keras.Model, tokenizer: BertTokenizer, seq_length: int, name: str | None = None):
        super().__init__(name=name)
        max_positions = _max_positions(model)
        if max_positions is not None and seq_length > max_positions:
            raise ValueError(f"seq_length {seq_length} exceeds the model's max_position_embeddings "
                             f"{max_positions}")
        self.model = model
        # The tokenizer's state is graph constants that SavedModel captures with the functions using them;
        # tracking the layer itself would only make `save` walk its 30k-entry vocab list and dict.
        self._text_layers = _Untracked(
            tokenizer, SegmentPacker(seq_length, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id))
        self.seq_length = seq_length
        # Traced once and shared by every signature (tracing the tokenizer and the model dominates export
        # time); saved with the module, so they are also callable on the loaded object.
        self.tokenize = graph_function(lambda strings: self.tokenizer.tokenize(repair_utf8(strings)),
                                       [STRINGS])
        self.run_model = graph_function(lambda inputs: self.model(inputs, training=False),
                                        [self.token_id_specs()])

    @property
    def tokenizer(self) -> BertTokenizer:
        return self._text_layers.tokenizer

    @property
    def packer(self) -> SegmentPacker:
        return self._text_layers.packer

    def token_id_specs(self) -> dict[str, tf.TensorSpec]:
        return {name: tf.TensorSpec([None, self.seq_length], tf.int32, name=name) for name in TOKEN_ID_NAMES}

    def pack_text(self, *texts: tf.Tensor) -> dict[str, tf.Tensor]:
        """One or two [batch] string tensors -> packed int32 [batch, seq_length] model inputs."""
        return self.packer([self.tokenize(t) for t in texts])

    def signatures(self) -> dict[str, Callable]:
        raise NotImplementedError


class _Untracked:
    """Holds objects outside SavedModel's dependency tracking (a plain object is not a trackable)."""

    def __init__(self, tokenizer: BertTokenizer, packer: SegmentPacker):
        self.tokenizer = tokenizer
        self.packer = packer


def graph_function(fn: Callable, input_signature: list | None = None) -> tf.types.experimental.PolymorphicFunction:
    """`tf.function` without AutoGraph: everything exported is plain TF ops, and AutoGraph's source
    conversion of the tokenizer and model otherwise dominates export time."""
    return tf.function(fn, input_signature=input_signature, autograph=False)


def _max_positions(model: keras.Model) -> int | None:
    encoder = getattr(model, "encoder", model)
    config = getattr(encoder, "config", None)
    return getattr(config, "max_position_embeddings", None)


def next_version(export_dir: str | os.PathLike) -> int:
    """1 + the largest integer version directory already in `export_dir` (1 for a new directory)."""
    export_dir = os.fspath(export_dir)
    versions = [int(d) for d in os.listdir(export_dir) if d.isdigit()] if os.path.isdir(export_dir) else []
    return max(versions, default=0) + 1


def save_versioned(module: ServingModule, export_dir: str | os.PathLike, version: int | None = None,
                   extra_assets: dict[str, bytes] | None = None) -> str:
    """Saves `module` with its signatures to `export_dir/<version>/` and returns that path.

    `extra_assets` are written under `assets.extra/` (TF Serving reads `tf_serving_warmup_requests` there).
    """
    export_dir = os.fspath(export_dir)
    version = next_version(export_dir) if version is None else int(version)
    final = os.path.join(export_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"{final} already exists; TF Serving versions are immutable, pick another version")
    os.makedirs(export_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{version}-", dir=export_dir)
    try:
        tf.saved_model.save(module, staging, signatures=module.signatures())
        if extra_assets:
            extra_dir = os.path.join(staging, "assets.extra")
            os.makedirs(extra_dir, exist_ok=True)
            for name, payload in extra_assets.items():
                with open(os.path.join(extra_dir, name), "wb") as f:
                    f.write(payload)
        os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
