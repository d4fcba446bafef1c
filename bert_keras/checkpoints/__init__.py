"""Checkpoint import/export: Hugging Face, Google TF1 and bert_keras's own format, all via Google names.

    encoder = load_encoder("path/to/checkpoint")            # any of the three layouts, detected
    ckpt = read_checkpoint("path")                          # config + Google-named weights (+ heads) + vocab
    assign_google_weights(pretraining_model, ckpt.weights)  # heads included
    save_encoder(encoder, "out_dir", vocab_file)            # our format
    write_google_checkpoint(model, "tf1_dir", vocab_file)   # loads where google-research/bert's do
    convert_checkpoint("hf_dir", "tf1_dir", "google")       # also: python -m bert_keras.checkpoints.convert
"""

from bert_keras.checkpoints.checkpoint import CheckpointError, LoadedCheckpoint
from bert_keras.checkpoints.formats import FORMATS, CheckpointFormat, register_format
from bert_keras.checkpoints.huggingface import google_to_hf, hf_to_google
from bert_keras.checkpoints.loading import build_encoder, load_encoder, read_checkpoint
from bert_keras.checkpoints.saving import (convert_checkpoint, save_checkpoint, save_encoder,
                                           write_google_checkpoint, write_huggingface_checkpoint)
from bert_keras.checkpoints.variables import assign_google_weights, google_weights

__all__ = ["FORMATS", "CheckpointError", "CheckpointFormat", "LoadedCheckpoint", "assign_google_weights",
           "build_encoder", "convert_checkpoint", "google_to_hf", "google_weights", "hf_to_google", "load_encoder",
           "read_checkpoint", "register_format", "save_checkpoint", "save_encoder", "write_google_checkpoint",
           "write_huggingface_checkpoint"]
