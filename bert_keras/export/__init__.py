"""SavedModel export for TF Serving: raw text in, task answers out, tokenization inside the graph.

    from bert_keras.export import export_checkpoint, export_encoder
    path = export_checkpoint("path/to/hf_or_google_checkpoint", "/models/bert")  # -> /models/bert/1
    path = export_encoder(encoder, tokenizer, "/models/bert", seq_length=128)

or `python -m bert_keras.export --checkpoint=PATH --export_dir=DIR` (`--model_dir=DIR` for a fine-tuned or
pre-trained model). The exported graph needs only `tensorflow` and `tensorflow_text` (for its ops) to run.
Fine-tuned task models are served by their task family's own module (`bert_keras.tasks.glue.serving`,
`bert_keras.tasks.squad.serving`, `bert_keras.tasks.conll.serving`), found through the run's metadata.
"""

from __future__ import annotations

import os
import keras

from bert_keras.export.encoder import EncoderServing
from bert_keras.export.pretraining import PretrainingServing
from bert_keras.export.serving import ServingModule, next_version, save_versioned
from bert_keras.tokenizer import BertTokenizer

DEFAULT_SEQ_LENGTH = 128


def export_encoder(encoder: keras.Model, tokenizer: BertTokenizer, export_dir: str | os.PathLike, *,
                   seq_length: int = DEFAULT_SEQ_LENGTH, version: int | None = None) -> str:
    """Writes a TF-Hub-style encoder (text or token ids in; pooled/sequence outputs) to export_dir/<version>."""
    return save_versioned(EncoderServing(encoder, tokenizer, seq_length), export_dir, version)


def export_pretraining(model: keras.Model, tokenizer: BertTokenizer, export_dir: str | os.PathLike, *,
                       seq_length: int = DEFAULT_SEQ_LENGTH, top_k: int = 5, max_masks: int = 20,
                       version: int | None = None) -> str:
    """`BertPretrainingModel`: text with [MASK]s in, top-k words per mask and NSP probability out."""
    module = PretrainingServing(model, tokenizer, seq_length, top_k=top_k, max_masks=max_masks)
    return save_versioned(module, export_dir, version)


def export_model_dir(model_dir: str | os.PathLike, export_dir: str | os.PathLike, *,
                     seq_length: int | None = None, vocab_file: str | None = None, lower_case: bool | None = None,
                     version: int | None = None) -> str:
    """Exports what a training run wrote to `model_dir` (pre-training checkpoint or fine-tuned `model.keras`)."""
    from bert_keras.export.model_dir import serving_module_for_model_dir

    module = serving_module_for_model_dir(os.fspath(model_dir), seq_length=seq_length, vocab_file=vocab_file,
                                          lower_case=lower_case)
    return save_versioned(module, export_dir, version)


def export_checkpoint(checkpoint: str | os.PathLike, export_dir: str | os.PathLike, *,
                      vocab_file: str | None = None, lower_case: bool | None = None,
                      seq_length: int = DEFAULT_SEQ_LENGTH, version: int | None = None) -> str:
    """Exports the encoder of any checkpoint `bert_keras.checkpoints.load_encoder` reads (Hugging Face,
    Google TF1, ours) with its vocab; `lower_case=None` follows the checkpoint's tokenizer config."""
    from bert_keras.finetuning.pretrained import load_pretrained

    encoder, tokenizer = load_pretrained(os.fspath(checkpoint), vocab_file=vocab_file, lower_case=lower_case)
    return export_encoder(encoder, tokenizer, export_dir, seq_length=seq_length, version=version)


__all__ = ["DEFAULT_SEQ_LENGTH", "EncoderServing", "PretrainingServing", "ServingModule", "export_checkpoint",
           "export_encoder", "export_model_dir", "export_pretraining", "next_version", "save_versioned"]
