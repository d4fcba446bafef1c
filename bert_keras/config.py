"""BERT hyper-parameters, presets, and the two on-disk config dialects (Google, Hugging Face).

Google's `bert_config.json` and Hugging Face's `config.json` use almost the same keys but mean different
things by `"hidden_act": "gelu"`: Google's TF1 `modeling.py` computed GELU with the tanh approximation,
while Hugging Face's `"gelu"` is the exact erf form. `BertConfig.hidden_act` is unambiguous:
`"gelu"` is exact, `"gelu_tanh"` is the approximation.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "tanh")

# Hugging Face activation names -> ours.
_HF_ACT = {
    "gelu": "gelu",
    "gelu_python": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
    "tanh": "tanh",
}
# Google's modeling.py `get_activation` names -> ours ("gelu" there is the tanh form).
_GOOGLE_ACT = {"gelu": "gelu_tanh", "relu": "relu", "tanh": "tanh", "linear": None}


@dataclasses.dataclass(frozen=True)
class BertConfig:
    """Shape and regularisation of a BERT encoder. Field names follow Google's `bert_config.json`."""

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"BertConfig.hidden_size ({self.hidden_size}) must be divisible by "
                f"num_attention_heads ({self.num_attention_heads})")
        if self.hidden_act not in ACTIVATIONS:
            raise ValueError(f"BertConfig.hidden_act must be one of {ACTIVATIONS}, got {self.hidden_act!r}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def replace(self, **changes: Any) -> "BertConfig":
        return dataclasses.replace(self, **changes)

    # --- plain dicts (our own format) -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "config") -> "BertConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown BertConfig field(s) {unknown}")
        return cls(**values)

    # --- Google's bert_config.json ----------------------------------------------------------------
    def to_google_dict(self) -> dict[str, Any]:
        values = self.to_dict()
        values.pop("layer_norm_eps")  # modeling.py hard-codes 1e-12
        # Google's code only knows the tanh form; keep our exact choice in a side key for round trips.
        values["hidden_act"] = "gelu" if self.hidden_act in ("gelu", "gelu_tanh") else self.hidden_act
        if self.hidden_act == "gelu":
            values["bert_keras_hidden_act"] = "gelu"
        return values

    @classmethod
    def from_google_dict(cls, values: dict[str, Any], source: str = "bert_config.json") -> "BertConfig":
        values = dict(values)
        exact = values.pop("bert_keras_hidden_act", None)
        act = values.get("hidden_act", "gelu")
        if exact is not None:
            values["hidden_act"] = exact
        elif act in _GOOGLE_ACT and _GOOGLE_ACT[act]:
            values["hidden_act"] = _GOOGLE_ACT[act]
        else:
            raise ValueError(f"{source}: hidden_act {act!r} is not supported")
        values.setdefault("layer_norm_eps", 1e-12)
        values.pop("directionality", None)  # present in multilingual configs
        for key in [k for k in values if k.startswith("pooler_")]:
            values.pop(key)  # optional pooler fields in some Chinese/multilingual configs
        return cls.from_dict(values, source)

    # --- Hugging Face config.json -----------------------------------------------------------------
    def to_hf_dict(self) -> dict[str, Any]:
        values = self.to_dict()
        values["hidden_act"] = {"gelu_tanh": "gelu_new"}.get(self.hidden_act, self.hidden_act)
        values.update(model_type="bert", architectures=["BertModel"], pad_token_id=0,
                      position_embedding_type="absolute")
        return values

    @classmethod
    def from_hf_dict(cls, values: dict[str, Any], source: str = "config.json") -> "BertConfig":
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(f"{source}: model_type {model_type!r} is not a BERT model")
        if values.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError(f"{source}: only absolute position embeddings are supported")
        act = values.get("hidden_act", "gelu")
        if act not in _HF_ACT:
            raise ValueError(f"{source}: hidden_act {act!r} is not supported")
        fields = {f.name for f in dataclasses.fields(cls)}
        picked = {k: v for k, v in values.items() if k in fields}
        picked["hidden_act"] = _HF_ACT[act]
        return cls(**picked)

    # --- files ------------------------------------------------------------------------------------
    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "BertConfig":
        """Reads Google's `bert_config.json`, Hugging Face's `config.json` or our own config file.

        Hugging Face files are told apart by their `model_type` key; Google's by its absence.
        """
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                values = json.load(f)
        except FileNotFoundError:
            raise FileNotFoundError(f"BERT config file not found: {path}") from None
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}): {e.msg}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object")
        if values.get("format") == "bert_keras":
            return cls.from_dict(values["config"], path)
        if "model_type" in values or "architectures" in values:
            return cls.from_hf_dict(values, path)
        return cls.from_google_dict(values, path)

    def to_json_file(self, path: str | os.PathLike, dialect: str = "bert_keras") -> None:
        """Writes `dialect` = "bert_keras" (ours), "google" (bert_config.json) or "hf" (config.json)."""
        if dialect == "google":
            values = self.to_google_dict()
        elif dialect == "hf":
            values = self.to_hf_dict()
        elif dialect == "bert_keras":
            values = {"format": "bert_keras", "config": self.to_dict()}
        else:
            raise ValueError(f"unknown config dialect {dialect!r}; use 'bert_keras', 'google' or 'hf'")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(values, f, indent=2, sort_keys=True)
            f.write("\n")


def _preset(layers: int, hidden: int) -> BertConfig:
    return BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=hidden // 64,
                      intermediate_size=4 * hidden)


# The BERT model family of Turc et al. (2019) "Well-Read Students Learn Better" plus the paper's two sizes.
PRESETS: dict[str, BertConfig] = {
    "tiny": _preset(2, 128),
    "mini": _preset(4, 256),
    "small": _preset(4, 512),
    "medium": _preset(8, 512),
    "base": _preset(12, 768),
    "large": _preset(24, 1024),
}


def preset(name: str, **overrides: Any) -> BertConfig:
    """Returns a preset config, e.g. `preset("mini", vocab_size=8000)`."""
    if name not in PRESETS:
        raise ValueError(f"unknown BERT preset {name!r}; choose from {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)
