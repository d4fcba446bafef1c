"""python -m bert_keras.tasks.glue --task=mrpc --data_dir=glue_data --init_checkpoint=ckpt --model_dir=out [--do_predict]

Fine-tunes on train, evaluates the official dev metrics after every epoch (best checkpoint kept on the
task's main metric), and with --do_predict writes the GLUE submission file(s) into --model_dir
(MNLI also writes AX.tsv from the diagnostic set).
"""

from __future__ import annotations

from absl import app, flags

from bert_keras.finetuning.flags import config_from_flags, define_flags, pretrained_from_flags, run_from_flags
from bert_keras.finetuning.trainer import training_scope
from bert_keras.tasks.glue.tasks import GLUE_TASKS

define_flags(max_seq_length=128, learning_rate=2e-5, num_train_epochs=3, train_batch_size=32)
flags.DEFINE_enum("task", None, sorted(GLUE_TASKS), "GLUE task.")
flags.DEFINE_enum("data_source", "auto", ["auto", "tsv", "tfds"], "Original GLUE TSV directory, or a "
                  "prepared tensorflow_datasets dir (auto: TSV if <data_dir>/<task dir> exists).")
flags.DEFINE_integer("pad_to_multiple", 8, "Dynamic padding: cut each batch to its longest sequence rounded up "
                     "to this multiple (= --max_seq_length for fixed shapes).")
flags.DEFINE_boolean("skip_malformed_rows", False, "Drop (and report) TSV rows with a wrong field count "
                     "instead of failing (QQP's public train.tsv has a few).")
flags.mark_flags_as_required(["task", "data_dir", "model_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from bert_keras.tasks.glue.task import GlueTask

    config = config_from_flags(FLAGS)
    with training_scope(config):  # the encoder's variables live under the strategy and dtype policy
        encoder, tokenizer = pretrained_from_flags(FLAGS)
        task = GlueTask(FLAGS.task, FLAGS.data_dir, tokenizer, FLAGS.max_seq_length,
                        eval_batch_size=FLAGS.eval_batch_size, source=FLAGS.data_source,
                        pad_to_multiple=FLAGS.pad_to_multiple, skip_malformed_rows=FLAGS.skip_malformed_rows)
        run_from_flags(task, encoder, config, FLAGS)


if __name__ == "__main__":
    app.run(main)
