"""BERT pre-training (masked LM + next-sentence prediction): `python -m bert_keras.pretrain --flagfile=...`.

Flag names follow google-research/bert's `run_pretraining.py` so existing commands carry over. The loop is
a custom `tf.distribute` loop running `--iterations_per_loop` steps per `tf.function` call; checkpoints hold
the model, optimizer, step and data-iterator state, so a killed run restarted with the same command
continues exactly where its last checkpoint left off.

This module is only the command line: flags -> `PretrainingConfig` -> `bert_keras.pretraining.train`, which
Python code calls directly. Exit codes: 0 done, 1 a bad setting or non-finite training values (nothing bad
saved), 75 stopped by SIGTERM after saving a checkpoint (run the same command again to resume).
"""

from __future__ import annotations

import sys

from absl import app, flags

from bert_keras.pretraining import flags as pretraining_flags
from bert_keras.pretraining.config import ConfigError
from bert_keras.pretraining.trainer import PREEMPTED_EXIT_CODE, NonFiniteTraining, Preempted, train

pretraining_flags.define_flags()
flags.adopt_module_key_flags(pretraining_flags)  # `--help` lists them as this program's flags


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    try:
        train(pretraining_flags.config_from_flags())
    except ConfigError as e:  # a bad setting: absl prints the message and the usage, exit code 1
        raise app.UsageError(str(e)) from None
    except Preempted as e:  # SIGTERM: saved; the scheduler (or you) runs the same command again
        print(e, file=sys.stderr, flush=True)
        sys.exit(PREEMPTED_EXIT_CODE)
    except NonFiniteTraining as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)


def run() -> None:
    app.run(main, argv=pretraining_flags.resolve_flagfile_args(sys.argv))


if __name__ == "__main__":
    run()
