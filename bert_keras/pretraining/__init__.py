"""BERT pre-training (masked LM + next-sentence prediction), from raw text to an exported checkpoint.

* `config.PretrainingConfig` — every setting of a run (the command-line flags' names), `validate()`d
  before any work; `config.Phase` — the 128-then-512 phases it derives.
* `trainer.train(config)` — runs or resumes a run; `trainer.Pretrainer` — its model, optimizer, datasets and
  compiled loops. `loop` — the compiled `tf.distribute` train/eval loops; `run_checkpoints` — run
  checkpoints that survive SIGKILL.
* `flags` — the absl flags of `python -m bert_keras.pretrain` and `config_from_flags`.
* `data` — the input pipeline: corpus preparation (`python -m bert_keras.pretraining.data.prepare`), NSP
  instances, dynamic masking, TFRecords (`... .data.create_pretraining_data`), WordPiece vocab training
  (`... .data.vocab`).

    from bert_keras.pretraining import PretrainingConfig, train
    metrics = train(PretrainingConfig(preset="tiny", vocab_file="demo", input_file="demo:train",
                                      eval_input_file="demo:heldout", output_dir="runs/demo"))

The model itself (`BertPretrainingModel`, the MLM/NSP heads) is model code: `bert_keras.pretraining_model`,
`bert_keras.heads`. `flags` is not imported here: importing it defines absl flags.
"""

from bert_keras.pretraining.config import ConfigError, Phase, PretrainingConfig
from bert_keras.pretraining.trainer import PREEMPTED_EXIT_CODE, NonFiniteTraining, Preempted, Pretrainer, train

__all__ = ["PREEMPTED_EXIT_CODE", "ConfigError", "NonFiniteTraining", "Phase", "Preempted", "PretrainingConfig",
           "Pretrainer", "train"]
