"""Moving Google-named weights into and out of our Keras models (`BertEncoder` or the pre-training model)."""

from __future__ import annotations

from typing import Any

import numpy as np

from bert_keras.checkpoints.checkpoint import CheckpointError, name_list
from bert_keras.checkpoints.names import GOOGLE_HEAD_PREFIX, WeightName, resolve_ours, weight_names
from bert_keras.encoder import BertEncoder


def encoder_of(model: Any) -> BertEncoder:
    encoder = model if isinstance(model, BertEncoder) else getattr(model, "encoder", None)
    if not isinstance(encoder, BertEncoder):
        raise TypeError(f"expected a BertEncoder or a model with an `.encoder` BertEncoder, "
                        f"got {type(model).__name__}")
    return encoder


def _has_heads(model: Any) -> bool:
    return hasattr(model, "masked_lm_head") and hasattr(model, "next_sentence_head")


def model_weight_names(model: Any) -> list[WeightName]:
    """The `WeightName`s of `model`: the encoder's, plus the heads' if it is a pre-training model.

    Any other model with an `.encoder` (e.g. a fine-tuning model) maps through its encoder alone.
    """
    encoder = encoder_of(model)
    heads = _has_heads(model)
    owner = model if heads else encoder
    if not owner.built:
        owner.build()  # our encoder and pre-training model create every weight in build() without data
    return weight_names(encoder.config, heads=heads)


def google_weights(model: Any) -> dict[str, np.ndarray]:
    """Google name -> float32 array in Google's layout, for every weight of `model`."""
    weights = {}
    for w in model_weight_names(model):
        value = np.asarray(resolve_ours(model, w.ours).numpy(), dtype=np.float32)
        weights[w.google] = np.ascontiguousarray(value.T) if w.ours_transposed else value
    return weights


def assign_google_weights(model: Any, weights: dict[str, np.ndarray], *,
                          skip_missing_heads: bool = False) -> None:
    """Sets every variable of `model` from Google-named arrays, after checking names and shapes.

    A bare `BertEncoder` has no heads, so `cls/*` entries are skipped for it (loading an encoder from a
    pre-training checkpoint is the usual case). For a pre-training model, missing head weights are an error
    unless `skip_missing_heads` (then the heads keep their initialisation, e.g. when starting pre-training
    from an encoder-only checkpoint).
    """
    names = model_weight_names(model)
    known = {w.google for w in names}
    is_encoder = not _has_heads(model)
    unexpected = [n for n in weights if n not in known and not (is_encoder and n.startswith(GOOGLE_HEAD_PREFIX))]
    missing = [w.google for w in names if w.google not in weights
               and not (skip_missing_heads and w.is_head)]
    problems = []
    if unexpected:
        problems.append(f"unexpected variables: {name_list(unexpected)}")
    if missing:
        problems.append(f"missing variables: {name_list(missing)}")
    pairs = []
    for w in names:
        if w.google not in weights:
            continue
        variable = resolve_ours(model, w.ours)
        value = np.asarray(weights[w.google])
        value = value.T if w.ours_transposed else value
        if tuple(value.shape) != tuple(variable.shape):
            expected = tuple(variable.shape)[::-1] if w.ours_transposed else tuple(variable.shape)
            problems.append(f"shape mismatch for {w.google}: weights have {tuple(weights[w.google].shape)}, "
                            f"the model expects {expected}")
            continue
        pairs.append((variable, value))
    if problems:
        raise CheckpointError(f"cannot assign weights to {type(model).__name__}:\n  " + "\n  ".join(problems))
    for variable, value in pairs:
        variable.assign(value.astype(variable.dtype))
