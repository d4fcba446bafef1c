"""Google's TF1 BERT checkpoints (google-research/bert): `bert_config.json` + `bert_model.ckpt.*`.

Reading uses `tf.train.load_checkpoint`, which needs no TF1 graph. Writing uses the `SaveV2` op directly,
so the files hold exactly Google's variable names and shapes (no object-graph metadata) and restore with
`tf.compat.v1.train.Saver` / `tf.compat.v1.train.init_from_checkpoint` where original checkpoints do.
"""

from __future__ import annotations

import glob
import os
import re

import numpy as np
import tensorflow as tf

from bert_keras.checkpoints.checkpoint import CheckpointError, name_list, prepare_output
from bert_keras.checkpoints.formats import CheckpointFormat, register_format
from bert_keras.checkpoints.names import GOOGLE_HEADS
from bert_keras.config import BertConfig

CONFIG_FILE = "bert_config.json"
DEFAULT_PREFIX = "bert_model.ckpt"
_DATA_SUFFIX = re.compile(r"\.data-\d{5}-of-\d{5}$")
# Training state that run_pretraining.py / run_classifier.py leave in their checkpoints.
_TRAINING_STATE = re.compile(r"(^|/)(adam_m|adam_v|global_step|beta1_power|beta2_power)$|"
                             r"^(good_steps|loss_scale|current_loss_scale)$")


def checkpoint_prefix(path: str) -> str | None:
    """`dir/bert_model.ckpt`, `...ckpt.index` or `...ckpt.data-00000-of-00001` -> the prefix, if it exists."""
    for prefix in (path, path[:-len(".index")] if path.endswith(".index") else None,
                   _DATA_SUFFIX.sub("", path)):
        if prefix and os.path.isfile(prefix + ".index"):
            return prefix
    return None


def find_checkpoint_prefix(directory: str) -> str | None:
    """The one checkpoint in `directory` (the newest per its `checkpoint` file if there are several)."""
    indexes = sorted(glob.glob(os.path.join(directory, "*.index")))
    if not indexes:
        return None
    if len(indexes) == 1:
        return indexes[0][:-len(".index")]
    latest = tf.train.latest_checkpoint(directory)
    if latest:
        return latest
    raise CheckpointError(f"{directory} holds several checkpoints "
                          f"({', '.join(os.path.basename(i)[:-6] for i in indexes)}) and no `checkpoint` file "
                          "says which is the latest; pass the prefix of the one to load")


def _is_bert_variable(name: str) -> bool:
    return name.startswith(("bert/", *GOOGLE_HEADS))


def read_google(prefix: str, config: BertConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """Reads BERT variables by their Google names; training state and task heads are returned as ignored.

    `config` is unused: Google's names need no config to map (the signature is that of every reader)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError(f"cannot read TF checkpoint {prefix}: {e}") from None
    weights, ignored = {}, []
    for name in sorted(reader.get_variable_to_shape_map()):
        if _TRAINING_STATE.search(name) or not _is_bert_variable(name):
            ignored.append(name)
        else:
            weights[name] = np.asarray(reader.get_tensor(name), dtype=np.float32)
    if not weights:
        raise CheckpointError(f"{prefix}: no variables with Google BERT names (bert/..., cls/...); found "
                              f"{name_list(ignored)}")
    return weights, ignored


def write_google_weights(weights: dict[str, np.ndarray], config: BertConfig, directory: str | os.PathLike,
                         vocab_file: str | os.PathLike | None = None, prefix: str = DEFAULT_PREFIX) -> str:
    """Writes Google-named weights as `directory/bert_config.json` + `<prefix>.{index,data-00000-of-00001}`
    (+ `vocab.txt`), named and shaped exactly as google-research/bert's (kernels (in, out),
    `cls/seq_relationship/output_weights` (2, hidden)). Returns the checkpoint prefix.
    """
    directory = prepare_output(weights, config, directory, vocab_file)
    path = os.path.join(directory, prefix)
    names = sorted(weights)
    tf.raw_ops.SaveV2(prefix=tf.constant(path), tensor_names=tf.constant(names),
                      shape_and_slices=tf.constant([""] * len(names)),
                      tensors=[tf.constant(np.asarray(weights[n], np.float32)) for n in names])
    config.to_json_file(os.path.join(directory, CONFIG_FILE), "google")
    return path


FORMAT = register_format(CheckpointFormat(
    "google", CONFIG_FILE, f"{CONFIG_FILE} + <prefix>.index/.data-*",
    find_in_directory=find_checkpoint_prefix, locate=checkpoint_prefix, read=read_google,
    write=write_google_weights))
