"""Hugging Face BERT checkpoints: `config.json` + `model.safetensors` / `pytorch_model.bin` (or sharded).

Covers the layouts of `BertModel` (no prefix) and of `BertForPreTraining`, `BertForMaskedLM`,
`BertForNextSentencePrediction` and the fine-tuning classes (`bert.` prefix, `cls.*` heads, task heads).
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from bert_keras.checkpoints import native
from bert_keras.checkpoints.checkpoint import CheckpointError, name_list, prepare_output
from bert_keras.checkpoints.formats import CheckpointFormat, register_format
from bert_keras.checkpoints.names import GOOGLE_HEAD_PREFIX, HF_HEAD_PREFIX, weight_names
from bert_keras.config import BertConfig

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
# Single-file and sharded weight files, in the order Hugging Face itself prefers them.
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
_BODY_PREFIX = "bert."
# Buffers and tied copies that carry no weight of their own.
_DROPPED = ("embeddings.position_ids",)
_TIED_DECODER = "cls.predictions.decoder.weight"
_DECODER_BIAS, _BIAS = "cls.predictions.decoder.bias", "cls.predictions.bias"


def find_weight_file(directory: str) -> str | None:
    for name in WEIGHT_FILES:
        if os.path.isfile(os.path.join(directory, name)):
            return os.path.join(directory, name)
    return None


def _load_safetensors(path: str) -> dict[str, np.ndarray]:
    """All tensors of a safetensors file as numpy; bfloat16 (which numpy lacks) is widened to float32."""
    with open(path, "rb") as f:
        header_size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(header_size))
    out = {}
    with safe_open(path, framework="numpy") as f:
        for key in f.keys():
            if header[key]["dtype"] != "BF16":
                out[key] = f.get_tensor(key)
    bf16 = [k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "BF16"]
    if bf16:
        raw = np.memmap(path, dtype=np.uint8, mode="r")
        for key in bf16:
            start, end = header[key]["data_offsets"]
            bits = np.frombuffer(raw[8 + header_size + start:8 + header_size + end], dtype="<u2")
            out[key] = (bits.astype(np.uint32) << 16).view(np.float32).reshape(header[key]["shape"])
    return out


def _load_torch(path: str) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise ImportError(f"reading {path} needs PyTorch (`pip install torch`); a model.safetensors file "
                          "does not") from None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v.detach().to(torch.float32).numpy() if v.is_floating_point() else v.numpy()
            for k, v in state.items()}


def _load_file(path: str) -> dict[str, np.ndarray]:
    if path.endswith(".index.json"):
        with open(path, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state = {}
        for shard in shards:
            state.update(_load_file(os.path.join(os.path.dirname(path), shard)))
        return state
    if path.endswith(".safetensors"):
        return _load_safetensors(path)
    return _load_torch(path)


def hf_to_google(state: dict[str, np.ndarray], config: BertConfig,
                 source: str) -> tuple[dict[str, np.ndarray], list[str]]:
    """Hugging Face state dict -> (Google-named weights, ignored names).

    Names inside BERT that map to nothing are an error; top-level task heads of fine-tuned models
    (`classifier.*`, `qa_outputs.*`) are returned as ignored.
    """
    state = dict(state)
    prefixed = any(k.startswith(_BODY_PREFIX) for k in state)
    body, ignored = {}, []
    for key, value in state.items():
        if prefixed and key.startswith(_BODY_PREFIX):
            key = key[len(_BODY_PREFIX):]
        elif prefixed and not key.startswith(HF_HEAD_PREFIX):
            ignored.append(key)
            continue
        # Checkpoints from transformers < 4 name LayerNorm parameters like TF: gamma/beta.
        key = key.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")
        body[key] = value
    for key in _DROPPED:
        body.pop(key, None)
    decoder = body.pop(_TIED_DECODER, None)
    if decoder is not None and "embeddings.word_embeddings.weight" in body and not np.array_equal(
            decoder, body["embeddings.word_embeddings.weight"]):
        raise CheckpointError(f"{source}: {_TIED_DECODER} differs from the word embeddings; BERT ties them")
    decoder_bias = body.pop(_DECODER_BIAS, None)
    if decoder_bias is not None:
        body.setdefault(_BIAS, decoder_bias)

    table = {w.hf: w for w in weight_names(config, heads=True)}
    unknown = [k for k in body if k not in table]
    if unknown:
        raise CheckpointError(f"{source}: unexpected variables (not BERT weights): {name_list(unknown)}")
    weights = {}
    for key, value in body.items():
        w = table[key]
        value = np.asarray(value, dtype=np.float32)
        weights[w.google] = value.T if w.hf_transposed else value
    if ignored:
        logger.info("%s: ignored %d non-BERT variables: %s", source, len(ignored), name_list(ignored))
    return weights, sorted(ignored)


def google_to_hf(weights: dict[str, np.ndarray], config: BertConfig) -> dict[str, np.ndarray]:
    """Google-named weights -> Hugging Face state dict: `BertModel` names for an encoder alone,
    `BertForPreTraining` names (`bert.` prefix, `cls.*`) when head weights are present."""
    prefix = _BODY_PREFIX if any(w.startswith(GOOGLE_HEAD_PREFIX) for w in weights) else ""
    out = {}
    for w in weight_names(config, heads=True):
        if w.google in weights:
            value = weights[w.google]
            name = w.hf if w.is_head else prefix + w.hf
            out[name] = np.ascontiguousarray(value.T if w.hf_transposed else value, np.float32)
    return out


def write_hf_weights(weights: dict[str, np.ndarray], config: BertConfig, directory: str | os.PathLike,
                     vocab_file: str | os.PathLike | None = None) -> str:
    """Writes `config.json` + `model.safetensors` (+ vocab.txt) that `transformers` loads; returns `directory`."""
    directory = prepare_output(weights, config, directory, vocab_file)
    state = google_to_hf(weights, config)
    save_file(state, os.path.join(directory, "model.safetensors"), metadata={"format": "pt"})
    values = config.to_hf_dict()
    if any(k.startswith(HF_HEAD_PREFIX) for k in state):
        values["architectures"] = ["BertForPreTraining"]
    with open(os.path.join(directory, CONFIG_FILE), "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2, sort_keys=True)
    return directory


def read_huggingface(weight_file: str, config: BertConfig) -> tuple[dict[str, np.ndarray], list[str]]:
    """-> (Google-named weights, ignored non-BERT names) of a Hugging Face weight file or shard index."""
    return hf_to_google(_load_file(weight_file), config, weight_file)


def _locate(path: str) -> str | None:
    if path.endswith((".bin", ".index.json")):
        return path
    return path if path.endswith(".safetensors") and native.FORMAT.locate(path) is None else None


FORMAT = register_format(CheckpointFormat(
    "huggingface", CONFIG_FILE, f"{CONFIG_FILE} + one of {', '.join(WEIGHT_FILES)}",
    find_in_directory=find_weight_file, locate=_locate, read=read_huggingface, write=write_hf_weights))
