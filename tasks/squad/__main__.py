"""CLI: fine-tune and evaluate BERT on SQuAD v1.1 / v2.0.

    python -m bert_keras.tasks.squad --flagfile=configs/squad/v1.1.flags --init_checkpoint=PATH \
        --data_dir=DIR_WITH_JSON --model_dir=/tmp/squad11

Data: `--train_file` / `--dev_file` (official JSON; default `<data_dir>/train-v<version>.json` and
`dev-v<version>.json`), or `--tfds_data_dir` with TFDS `squad/v<version>` prepared there. `--predict_file`
(with --do_predict) writes predictions for a file without answers. Outputs in `--model_dir`:
`dev_predictions.json`, `dev_nbest_predictions.json`, for v2.0 `dev_null_odds.json` and
`best_null_threshold.json` (reuse it with `--null_threshold_file`), plus the shared driver's files.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from bert_keras.finetuning.flags import config_from_flags, define_flags, pretrained_from_flags, run_from_flags
from bert_keras.finetuning.trainer import training_scope

define_flags(max_seq_length=384, learning_rate=3e-5, num_train_epochs=2, train_batch_size=32)
flags.DEFINE_enum("version", "1.1", ["1.1", "2.0"], "SQuAD version (2.0 adds unanswerable questions).")
flags.DEFINE_string("train_file", None, "Training JSON (default <data_dir>/train-v<version>.json).")
flags.DEFINE_string("dev_file", None, "Evaluation JSON with answers (default <data_dir>/dev-v<version>.json).")
flags.DEFINE_string("predict_file", None, "JSON to write predictions for with --do_predict (answers not needed).")
flags.DEFINE_string("tfds_data_dir", None, "Read TFDS squad/v<version> (train/validation) prepared in this dir.")
flags.DEFINE_integer("doc_stride", 128, "Tokens between the starts of consecutive context windows.")
flags.DEFINE_integer("max_query_length", 64, "Question tokens kept (longer questions are truncated).")
flags.DEFINE_integer("n_best_size", 20, "Start and end candidates per window; n-best list length.")
flags.DEFINE_integer("max_answer_length", 30, "Longest answer, in wordpieces.")
flags.DEFINE_float("null_score_diff_threshold", 0.0, "v2.0: answer '' if null score - best span score "
                   "exceeds this.")
flags.DEFINE_string("null_threshold_file", None, "v2.0: read the threshold from a best_null_threshold.json "
                    "written by a previous dev evaluation (overrides --null_score_diff_threshold).")
FLAGS = flags.FLAGS


def _read_split(path_flag: str | None, default_name: str, tfds_split: str, needed: bool):
    from bert_keras.tasks.squad.data import read_squad_json, read_squad_tfds

    if FLAGS.tfds_data_dir and not path_flag:
        return read_squad_tfds(f"squad/v{FLAGS.version}", tfds_split, FLAGS.tfds_data_dir)[0]
    path = path_flag or (os.path.join(FLAGS.data_dir, default_name) if FLAGS.data_dir else None)
    if path is None:
        if needed:
            raise app.UsageError(f"give --data_dir, --tfds_data_dir or the file for {default_name}")
        return []
    return read_squad_json(path)[0]


def main(argv):
    del argv
    from bert_keras.tasks.squad.postprocess import read_null_threshold
    from bert_keras.tasks.squad.task import SquadSettings, SquadTask

    config = config_from_flags()
    threshold = FLAGS.null_score_diff_threshold
    if FLAGS.null_threshold_file:
        threshold = read_null_threshold(FLAGS.null_threshold_file)
        logging.info("null_score_diff_threshold %.4f from %s", threshold, FLAGS.null_threshold_file)
    settings = SquadSettings(version=FLAGS.version, max_seq_length=FLAGS.max_seq_length, doc_stride=FLAGS.doc_stride,
                             max_query_length=FLAGS.max_query_length, n_best_size=FLAGS.n_best_size,
                             max_answer_length=FLAGS.max_answer_length, null_score_diff_threshold=threshold,
                             eval_batch_size=FLAGS.eval_batch_size)
    version = FLAGS.version
    train = _read_split(FLAGS.train_file, f"train-v{version}.json", "train", FLAGS.do_train) if FLAGS.do_train else []
    needs_dev = FLAGS.do_eval or FLAGS.do_train  # training evaluates after every epoch
    dev = _read_split(FLAGS.dev_file, f"dev-v{version}.json", "validation", True) if needs_dev else []
    test = []
    if FLAGS.do_predict:
        if not FLAGS.predict_file:
            raise app.UsageError("--do_predict needs --predict_file")
        test = _read_split(FLAGS.predict_file, "", "", True)
    with training_scope(config):  # the encoder's variables live under the strategy and dtype policy
        encoder, tokenizer = pretrained_from_flags()
        task = SquadTask(tokenizer, settings, train_examples=train, eval_examples=dev, predict_examples=test,
                         output_dir=config.model_dir)
        run_from_flags(task, encoder, config, FLAGS)


if __name__ == "__main__":
    app.run(main)
