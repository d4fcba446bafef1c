"""python -m bert_keras.tasks.classify --train_file=train.csv --validation_file=dev.csv --text_column=review
    --label_column=sentiment --init_checkpoint=ckpt --model_dir=out [--test_file=test.csv] [--export_dir=exp]

Fine-tunes on your own CSV / TSV / JSON Lines files (see `bert_keras.tasks.classify`). Every named file is
read and checked before the model is loaded, so bad data stops the run with `file:line: column ...` and
nothing written. The problem type (single_label, multi_label, regression) is inferred from the training
labels unless --problem_type is given, and the log says what was inferred. The validation metrics after
every epoch pick the best checkpoint; --test_file writes `predictions_test.jsonl` into --model_dir;
`python -m bert_keras.export --model_dir=<export_dir>` then serves the run with your label names.
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from bert_keras.finetuning.flags import config_from_flags, define_flags, pretrained_from_flags, run_from_flags
from bert_keras.finetuning.trainer import training_scope
from bert_keras.tasks.classify.data import PROBLEM_TYPES, Columns, DataError, load_files, parse_labels

define_flags(max_seq_length=128, learning_rate=2e-5, num_train_epochs=3, train_batch_size=32)
flags.DEFINE_string("train_file", None, "Training data: .csv, .tsv or .jsonl/.json (JSON Lines); relative "
                    "paths are taken in --data_dir when given.")
flags.DEFINE_string("validation_file", None, "Validation data (same columns as train), scored after every epoch.")
flags.DEFINE_string("test_file", None, "Data to predict (label column optional): writes predictions_test.jsonl "
                    "into --model_dir (implies --do_predict).")
flags.DEFINE_string("text_column", "text", "Column (CSV/TSV header name or JSON field) holding the text.")
flags.DEFINE_string("text_pair_column", None, "Column with a second text, for sentence-pair tasks.")
flags.DEFINE_string("label_column", "label", "Column holding the label: a name or number, a score "
                    "(regression), a JSON list or a --label_delimiter-joined field (multi_label).")
flags.DEFINE_enum("problem_type", None, list(PROBLEM_TYPES), "Default: inferred from the training labels "
                  "(JSON lists or --label_delimiter -> multi_label; numbers with a fraction -> regression; "
                  "else single_label).")
flags.DEFINE_string("labels", None, "Label names in the order of the model's outputs: comma-separated, or a "
                    "file with one per line. Default: the sorted names found in --train_file.")
flags.DEFINE_string("label_delimiter", None, "Multi-label: the separator of label names in one field (e.g. '|').")
flags.DEFINE_string("class_weights", None, "single_label loss weights: 'balanced', one weight per label "
                    "('1,3') or by name ('spam=3').")
flags.DEFINE_string("main_metric", None, "Metric that picks the best epoch. Default: accuracy (single_label), "
                    "micro_f1 (multi_label), pearson (regression); also macro_f1, matthews_corrcoef, "
                    "exact_match, spearman, neg_mse.")
flags.DEFINE_float("multi_label_threshold", 0.5, "multi_label: a label is predicted when its sigmoid >= this.")
flags.DEFINE_boolean("skip_bad_rows", False, "Drop (report and count) rows with bad data instead of failing.")
flags.DEFINE_integer("pad_to_multiple", 8, "Dynamic padding: cut each batch to its longest sequence rounded up "
                     "to this multiple (= --max_seq_length for fixed shapes).")
flags.mark_flags_as_required(["model_dir"])
FLAGS = flags.FLAGS


def _path(name: str) -> str | None:
    value = FLAGS[name].value
    if value and FLAGS.data_dir and not os.path.isabs(value):
        return os.path.join(FLAGS.data_dir, value)
    return value


def data_from_flags():
    """Checks the flags and reads every file they name (no model, nothing written); returns the data."""
    from bert_keras.tasks.classify.task import DATA_SUMMARY

    train, validation, test = _path("train_file"), _path("validation_file"), _path("test_file")
    if FLAGS.do_train and not (train and validation):
        raise app.UsageError("training needs --train_file and --validation_file (scored after every epoch)")
    if FLAGS.do_eval and not validation:
        raise app.UsageError("--do_eval needs --validation_file (or pass --nodo_eval)")
    if FLAGS.do_predict and not test:
        raise app.UsageError("--do_predict needs --test_file")
    problem_type, labels, delimiter = FLAGS.problem_type, FLAGS.labels, FLAGS.label_delimiter
    summary_path = os.path.join(FLAGS.model_dir, DATA_SUMMARY)
    if not FLAGS.do_train and os.path.isfile(summary_path):  # a trained run: its problem type and label order
        with open(summary_path, encoding="utf-8") as f:
            trained = json.load(f)
        if (problem_type and problem_type != trained["problem_type"]) or (
                labels and trained["labels"] and parse_labels(labels) != trained["labels"]):
            raise DataError(f"{summary_path}: the run was trained as {trained['problem_type']} with labels "
                            f"{trained['labels']}; --problem_type/--labels disagree")
        problem_type, labels = trained["problem_type"], trained["labels"]
        delimiter = delimiter or trained.get("label_delimiter")
    return load_files(train if FLAGS.do_train else None, validation, test,
                      columns=Columns(FLAGS.text_column, FLAGS.text_pair_column, FLAGS.label_column),
                      problem_type=problem_type, labels=labels, label_delimiter=delimiter,
                      skip_bad_rows=FLAGS.skip_bad_rows)


def main(argv):
    del argv
    from bert_keras.tasks.classify.task import ClassifyTask

    if FLAGS.test_file:
        FLAGS.do_predict = True
    config = config_from_flags(FLAGS)
    data = data_from_flags()
    class_weights = FLAGS.class_weights if FLAGS.do_train else None  # only the training loss uses them
    ClassifyTask.check_options(data, class_weights, FLAGS.main_metric, FLAGS.multi_label_threshold)
    with training_scope(config):  # the encoder's variables live under the strategy and dtype policy
        encoder, tokenizer = pretrained_from_flags(FLAGS)
        task = ClassifyTask(data, tokenizer, FLAGS.max_seq_length, eval_batch_size=FLAGS.eval_batch_size,
                            pad_to_multiple=FLAGS.pad_to_multiple, class_weights=class_weights,
                            main_metric=FLAGS.main_metric, threshold=FLAGS.multi_label_threshold)
        if FLAGS.do_train:
            task.write_summary(FLAGS.model_dir)
        run_from_flags(task, encoder, config, FLAGS)


if __name__ == "__main__":
    app.run(main)
