"""The absl flags of `python -m bert_keras.pretrain` and their mapping onto `PretrainingConfig`.

Each setting's flag has the field's name and default (google-research/bert's `run_pretraining.py` names, so
existing commands carry over), plus the aliases `--steps_per_loop` (= `--iterations_per_loop`),
`--model_dir` (= `--output_dir`) and `--use_tpu` (= `--distribution_strategy=tpu`). `define_flags()` adds
them to a `FlagValues` (the global one by default, as the CLI does); `config_from_flags()` reads them back.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from absl import flags

from bert_keras.distribution import PRECISION_POLICIES, STRATEGIES
from bert_keras.optimization import OPTIMIZERS
from bert_keras.pretraining.config import PretrainingConfig

# The repository root (where configs/ lives) in a source checkout.
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PretrainingConfig)}


def define_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Defines one flag per `PretrainingConfig` field, with the field's default, and the aliases."""

    def define(kind: str, name: str, help: str, **kwargs: Any) -> None:
        getattr(flags, f"DEFINE_{kind}")(name, _DEFAULTS[name], help=help, flag_values=flag_values, **kwargs)

    # --- model -----------------------------------------------------------------------------------------
    define("string", "preset", "Model size: tiny|mini|small|medium|base|large (Turc et al. sizes). Its vocab_size "
                               "is taken from --vocab_file. Ignored when --bert_config_file is set.")
    define("string", "bert_config_file", "Model config JSON (Google bert_config.json, HF config.json or ours). "
                                         "Overrides --preset.")
    define("string", "init_checkpoint", "Start from these weights (Google TF1, Hugging Face or bert_keras "
                                        "checkpoint); missing MLM/NSP heads start fresh. Ignored when resuming "
                                        "from --output_dir.")
    define("string", "vocab_file", "WordPiece vocab, one token per line. 'demo' = the vocab shipped with the "
                                   "package. Defaults to the init checkpoint's vocab.")
    define("bool", "do_lower_case", "Lower-case and strip accents before WordPiece (uncased models).")
    define("bool", "remat", "Recompute transformer-block activations in the backward pass instead of storing "
                            "them: less memory per step, about a third more compute.")
    # --- data ------------------------------------------------------------------------------------------
    define("string", "input_file", "Training text: comma-separated files or globs (one sentence per line, blank "
                                   "line between documents). 'demo:train' = the corpus shipped with the package.")
    define("string", "eval_input_file", "Held-out text for evaluation, same format; 'demo:heldout' = the shipped "
                                        "held-out books. No evaluation when unset.")
    define("integer", "max_seq_length", "Tokens per sequence, [CLS] and [SEP]s included.")
    define("integer", "max_predictions_per_seq", "Masked positions per sequence (padding included).")
    define("float", "masked_lm_prob", "Share of tokens masked.")
    define("float", "short_seq_prob", "Probability of a shorter-than-maximal training sequence.")
    define("bool", "whole_word_mask", "Mask all WordPieces of a word together.")
    # --- optimisation ----------------------------------------------------------------------------------
    define("integer", "train_batch_size", "Global batch size (all replicas, all accumulation micro-steps).")
    define("integer", "eval_batch_size", "Global evaluation batch size.")
    define("integer", "num_train_steps", "Optimizer steps (of the first phase when two-phase).")
    define("integer", "num_warmup_steps", "Linear learning-rate warmup steps.")
    define("float", "learning_rate", "Peak learning rate; decays linearly to 0 at the last step.")
    define("enum", "optimizer", "AdamW (BERT's) or LAMB (large-batch).", enum_values=list(OPTIMIZERS))
    define("float", "weight_decay", "Decoupled weight decay (LayerNorm and biases excluded).")
    define("float", "clip_norm", "Clip the global gradient norm to this (0 = no clipping).")
    define("integer", "gradient_accumulation_steps", "Split each global batch into this many micro-batches and "
                                                     "sum their gradients before one optimizer step (less memory, "
                                                     "same batch).")
    # --- second phase (the paper's 128-then-512 recipe) ------------------------------------------------
    define("integer", "phase2_num_train_steps", "If > 0, continue for this many steps with the phase-2 sequence "
                                                "length; the learning-rate schedule spans both phases.")
    define("integer", "phase2_max_seq_length", "max_seq_length of phase 2.")
    define("integer", "phase2_max_predictions_per_seq", "max_predictions_per_seq of phase 2.")
    define("integer", "phase2_train_batch_size", "train_batch_size of phase 2 (default: phase 1's).")
    # --- speed and distribution ------------------------------------------------------------------------
    define("enum", "mixed_precision", "Keras dtype policy; mixed_float16 adds dynamic loss scaling.",
           enum_values=list(PRECISION_POLICIES))
    define("bool", "jit_compile", "Compile the train step with XLA. Default: on GPUs and TPUs, off on CPU (where "
                                  "TF's own kernels measured faster).")
    define("enum", "distribution_strategy", "tf.distribute strategy; multi_worker_mirrored reads TF_CONFIG.",
           enum_values=list(STRATEGIES))
    # google-research/bert's spelling of --distribution_strategy=tpu; `config_from_flags` folds it in.
    flags.DEFINE_bool("use_tpu", False, "Same as --distribution_strategy=tpu (google-research/bert's flag).",
                      flag_values=flag_values)
    define("string", "tpu_name", "TPU name or grpc:// address for TPUClusterResolver.")
    define("integer", "iterations_per_loop", "Steps per tf.function call; also the logging interval.")
    flags.DEFINE_alias("steps_per_loop", "iterations_per_loop", flag_values=flag_values)
    # --- checkpoints, evaluation, logging --------------------------------------------------------------
    define("string", "output_dir", "Where checkpoints, TensorBoard logs and the final export go. An existing run "
                                   "there is resumed.")
    flags.DEFINE_alias("model_dir", "output_dir", flag_values=flag_values)
    define("integer", "save_checkpoints_steps", "Checkpoint every this many steps (and at the end).")
    define("integer", "keep_checkpoint_max", "Checkpoints kept; older ones are deleted.")
    define("integer", "eval_every_n_steps", "Evaluate on --eval_input_file every this many steps (0 = only at the "
                                            "end).")
    define("integer", "max_eval_steps", "Evaluation batches per evaluation.")
    define("bool", "unigram_baseline", "Also print what frequency predictors fitted on the training data score on "
                                       "the held-out batches: a unigram predictor's MLM loss, and the NSP "
                                       "loss/accuracy of predicting the NSP label frequencies (always the "
                                       "majority label), to show the model learned more than frequencies. (NSP "
                                       "labels are not balanced: single-segment chunks always pair at random, so "
                                       "0.5 is not the accuracy to beat.)")
    define("integer", "seed", "Seed for initialisation, masking, shuffling and dropout.")


def config_from_flags(values: flags.FlagValues = flags.FLAGS) -> PretrainingConfig:
    """The parsed flags as a `PretrainingConfig` (not yet validated: `train` does that first)."""
    settings = {name: values[name].value for name in _DEFAULTS}
    if values["use_tpu"].value:
        settings["distribution_strategy"] = "tpu"
    return PretrainingConfig(**settings)


def resolve_flagfile_args(argv: list[str]) -> list[str]:
    """Lets `--flagfile=configs/x.flags` work from any directory: relative paths that do not exist under the
    working directory are looked up beside the package (the repository root)."""
    resolved = []
    for arg in argv:
        if arg.startswith("--flagfile="):
            path = arg.split("=", 1)[1]
            if not os.path.isabs(path) and not os.path.exists(path):
                candidate = os.path.join(PACKAGE_ROOT, path)
                if os.path.exists(candidate):
                    arg = "--flagfile=" + candidate
        resolved.append(arg)
    return resolved
