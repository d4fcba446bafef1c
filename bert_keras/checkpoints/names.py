"""The one table that maps every BERT weight between Google's TF1 names, Hugging Face names and our layers.

Google's variable names (`bert/encoder/layer_0/attention/self/query/kernel`, ...) are the canonical names
of the whole package: every reader converts to them, every writer converts from them, and both directions
use the `WEIGHTS` table below, so a mapping fixed here is fixed everywhere.

Layouts: Google kernels are (in, out) like Keras `Dense` kernels; Hugging Face `nn.Linear` weights are
(out, in). Google's NSP weight `cls/seq_relationship/output_weights` is (2, hidden), like Hugging Face's,
while our `NextSentenceHead.dense.kernel` is (hidden, 2).
"""

from __future__ import annotations

import dataclasses
from typing import Any
from bert_keras.config import BertConfig

# Name prefixes of the pre-training heads (Google / Hugging Face); present only in pre-training checkpoints.
GOOGLE_HEAD_PREFIX = "cls/"
HF_HEAD_PREFIX = "cls."
# The two heads, each present or absent as a whole (BertForMaskedLM checkpoints have only the first).
GOOGLE_HEADS = ("cls/predictions/", "cls/seq_relationship/")


def head_of(google_name: str) -> str | None:
    """The head (one of `GOOGLE_HEADS`) a weight belongs to; None for encoder weights."""
    return next((h for h in GOOGLE_HEADS if google_name.startswith(h)), None)


@dataclasses.dataclass(frozen=True)
class WeightName:
    """One weight: its name in each world and its Google shape."""

    google: str  # `{i}` stands for the layer index
    hf: str  # relative to the BERT body (no `bert.` prefix); heads start with `cls.`
    ours: str  # attribute path from the model root; `encoder.` is the `BertEncoder` itself
    shape: tuple[str | int, ...]  # `BertConfig` field names, or fixed sizes
    hf_transposed: bool = False  # Hugging Face stores the transpose of Google's layout
    ours_transposed: bool = False  # our variable stores the transpose of Google's layout

    def expand(self, layer: int | None) -> "WeightName":
        if layer is None:
            return self
        return dataclasses.replace(self, google=self.google.format(i=layer), hf=self.hf.format(i=layer),
                                   ours=self.ours.format(i=layer))

    def google_shape(self, config: BertConfig) -> tuple[int, ...]:
        return tuple(d if isinstance(d, int) else getattr(config, d) for d in self.shape)

    @property
    def is_head(self) -> bool:
        return self.google.startswith(GOOGLE_HEAD_PREFIX)


def _dense(google: str, hf: str, ours: str, fan_in: str, fan_out: str) -> list[WeightName]:
    return [WeightName(f"{google}/kernel", f"{hf}.weight", f"{ours}.kernel", (fan_in, fan_out),
                       hf_transposed=True),
            WeightName(f"{google}/bias", f"{hf}.bias", f"{ours}.bias", (fan_out,))]


def _layer_norm(google: str, hf: str, ours: str) -> list[WeightName]:
    return [WeightName(f"{google}/LayerNorm/gamma", f"{hf}.LayerNorm.weight", f"{ours}.gamma", ("hidden_size",)),
            WeightName(f"{google}/LayerNorm/beta", f"{hf}.LayerNorm.bias", f"{ours}.beta", ("hidden_size",))]


_H, _I = "hidden_size", "intermediate_size"
_EMBEDDINGS = [
    WeightName("bert/embeddings/word_embeddings", "embeddings.word_embeddings.weight",
               "encoder.embeddings.word_embeddings", ("vocab_size", _H)),
    WeightName("bert/embeddings/token_type_embeddings", "embeddings.token_type_embeddings.weight",
               "encoder.embeddings.token_type_embeddings", ("type_vocab_size", _H)),
    WeightName("bert/embeddings/position_embeddings", "embeddings.position_embeddings.weight",
               "encoder.embeddings.position_embeddings", ("max_position_embeddings", _H)),
    *_layer_norm("bert/embeddings", "embeddings", "encoder.embeddings.layer_norm"),
]
_G, _F, _O = "bert/encoder/layer_{i}", "encoder.layer.{i}", "encoder.transformer_blocks.{i}"
_LAYER = [
    *_dense(f"{_G}/attention/self/query", f"{_F}.attention.self.query", f"{_O}.attention.query", _H, _H),
    *_dense(f"{_G}/attention/self/key", f"{_F}.attention.self.key", f"{_O}.attention.key", _H, _H),
    *_dense(f"{_G}/attention/self/value", f"{_F}.attention.self.value", f"{_O}.attention.value", _H, _H),
    *_dense(f"{_G}/attention/output/dense", f"{_F}.attention.output.dense", f"{_O}.attention.output_dense",
            _H, _H),
    *_layer_norm(f"{_G}/attention/output", f"{_F}.attention.output", f"{_O}.attention_layer_norm"),
    *_dense(f"{_G}/intermediate/dense", f"{_F}.intermediate.dense", f"{_O}.intermediate", _H, _I),
    *_dense(f"{_G}/output/dense", f"{_F}.output.dense", f"{_O}.output_dense", _I, _H),
    *_layer_norm(f"{_G}/output", f"{_F}.output", f"{_O}.output_layer_norm"),
]
_POOLER = _dense("bert/pooler/dense", "pooler.dense", "encoder.pooler.dense", _H, _H)
_HEADS = [
    *_dense("cls/predictions/transform/dense", "cls.predictions.transform.dense", "masked_lm_head.transform",
            _H, _H),
    *_layer_norm("cls/predictions/transform", "cls.predictions.transform", "masked_lm_head.layer_norm"),
    WeightName("cls/predictions/output_bias", "cls.predictions.bias", "masked_lm_head.output_bias",
               ("vocab_size",)),
    WeightName("cls/seq_relationship/output_weights", "cls.seq_relationship.weight",
               "next_sentence_head.dense.kernel", (2, _H), ours_transposed=True),
    WeightName("cls/seq_relationship/output_bias", "cls.seq_relationship.bias", "next_sentence_head.dense.bias",
               (2,)),
]


def weight_names(config: BertConfig, heads: bool = True) -> list[WeightName]:
    """Every weight of an encoder with `config` (plus the pre-training heads if `heads`), in a fixed order."""
    names = list(_EMBEDDINGS)
    for layer in range(config.num_hidden_layers):
        names += [w.expand(layer) for w in _LAYER]
    names += _POOLER
    if heads:
        names += _HEADS
    return names


def google_shapes(config: BertConfig, heads: bool = True) -> dict[str, tuple[int, ...]]:
    """Google name -> the shape Google's BERT gives that variable under `config`."""
    return {w.google: w.google_shape(config) for w in weight_names(config, heads)}


def resolve_ours(model: Any, path: str) -> Any:
    """Follows an attribute path such as `encoder.transformer_blocks.3.attention.query.kernel`.

    `encoder.` resolves to `model` itself when `model` is a `BertEncoder` (it has no `.encoder`).
    """
    obj = model
    parts = path.split(".")
    if parts[0] == "encoder" and not hasattr(model, "encoder"):
        parts = parts[1:]
    for part in parts:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj
