"""CLI: `python -m bert_keras.export (--checkpoint=PATH | --model_dir=DIR) --export_dir=DIR`."""

from __future__ import annotations

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Export the encoder of this checkpoint (Hugging Face dir, Google TF1 "
                    "checkpoint, or ours) as a raw-text-in TF-Hub-style encoder.")
flags.DEFINE_string("model_dir", None, "Export what a bert_keras training run wrote here: a pre-training "
                    "run's output_dir or export (MLM + NSP), or a fine-tuning run's --export_dir (model.keras "
                    "with the run_metadata.json that names the task serving it).")
flags.DEFINE_string("export_dir", None, "Base directory; the SavedModel goes to <export_dir>/<version>/.")
flags.DEFINE_integer("version", None, "Version directory name; default: 1 + the highest existing version.")
flags.DEFINE_integer("seq_length", None, "Packed sequence length of the text signatures (default: 128, or "
                     "the training run's max_seq_length for --model_dir).")
flags.DEFINE_string("vocab_file", None, "Vocab to use instead of the checkpoint's vocab.txt.")
flags.DEFINE_bool("lower_case", None, "Lower-case input text; default: what the --model_dir run's "
                  "run_metadata.json or the checkpoint's tokenizer config says, else True.")
flags.mark_flag_as_required("export_dir")


def main(argv):
    del argv
    from bert_keras import export

    if bool(FLAGS.checkpoint) == bool(FLAGS.model_dir):
        raise app.UsageError("give exactly one of --checkpoint or --model_dir")
    if FLAGS.checkpoint:
        path = export.export_checkpoint(
            FLAGS.checkpoint, FLAGS.export_dir, vocab_file=FLAGS.vocab_file, lower_case=FLAGS.lower_case,
            seq_length=FLAGS.seq_length or export.DEFAULT_SEQ_LENGTH, version=FLAGS.version)
    else:
        path = export.export_model_dir(FLAGS.model_dir, FLAGS.export_dir, seq_length=FLAGS.seq_length,
                                       vocab_file=FLAGS.vocab_file, lower_case=FLAGS.lower_case,
                                       version=FLAGS.version)
    print(f"SavedModel written to {path}")


if __name__ == "__main__":
    app.run(main)
