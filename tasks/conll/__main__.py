"""python -m bert_keras.tasks.conll --data_dir=conll2003 --init_checkpoint=ckpt --model_dir=out [--do_predict]

Fine-tunes BERT for named-entity recognition on CoNLL column files (`train.txt`, `valid.txt`,
`test.txt`; IOB1 or IOB2) or a prepared tensorflow_datasets `conll2003` (`--data_format=tfds`). Entity F1
on the validation set after every epoch picks the best checkpoint; --do_predict writes
`predictions_{validation,test}.txt` in conlleval's format (score one with `python -m bert_keras.tasks.conll.evaluate`)
and their scores into --model_dir. Typical settings: `--flagfile=configs/conll/minilm.flags`.
"""

from __future__ import annotations

from absl import app, flags

from bert_keras.finetuning.flags import config_from_flags, define_flags, pretrained_from_flags, run_from_flags
from bert_keras.finetuning.trainer import training_scope

define_flags(max_seq_length=128, learning_rate=5e-5, num_train_epochs=3, train_batch_size=32)
flags.DEFINE_enum("data_format", "conll", ["conll", "tfds"], "CoNLL column files in --data_dir, or a "
                  "prepared tensorflow_datasets conll2003 under --data_dir (never downloaded).")
flags.DEFINE_integer("window_context", 32, "Sentences longer than max_seq_length are split into windows "
                     "overlapping by up to this many WordPieces; each word is predicted in exactly one.")
flags.mark_flags_as_required(["data_dir", "model_dir"])
FLAGS = flags.FLAGS


def main(argv):
    del argv
    from bert_keras.tasks.conll.task import ConllTask

    config = config_from_flags(FLAGS)
    with training_scope(config):  # the encoder's variables live under the strategy and dtype policy
        encoder, tokenizer = pretrained_from_flags(FLAGS)
        task = ConllTask(FLAGS.data_dir, tokenizer, FLAGS.max_seq_length, window_context=FLAGS.window_context,
                         eval_batch_size=FLAGS.eval_batch_size, data_format=FLAGS.data_format)
        run_from_flags(task, encoder, config, FLAGS)


if __name__ == "__main__":
    app.run(main)
