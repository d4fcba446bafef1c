"""Fine-tuning mechanics shared by every task family (`bert_keras.tasks`: GLUE, SQuAD, CoNLL, your own files).

Written once, used by every family:

* `pretrained.load_pretrained` — encoder from `--init_checkpoint` (any format `load_encoder` reads) or a
  preset, plus the `BertTokenizer` built from the checkpoint's vocab.
* `inputs.trim_padding` — dynamic padding: batches are packed at `max_seq_length`, then cut to the longest
  sequence of the batch (rounded up), which on short GLUE sentences saves most of the compute.
* `trainer.fit` — Keras `model.fit` with AdamW or LAMB + warmup/linear decay (`create_optimizer`), progbar,
  TensorBoard, official-metric evaluation after each epoch, best-checkpoint on the task's main metric and
  optional early stopping.  `trainer.run` is the whole train/eval/predict/export path the CLIs call;
  `trainer.training_scope(config)` sets up the distribution strategy and mixed-precision policy that the
  encoder must be loaded in.
* `train_step.GlobalBatchTrainStep` — the train step of every task model: the update of the whole global
  batch across gradient-accumulation micro-batches and replicas, globally clipped.
* `task_model.EncoderTaskModel` — base class of task heads: (de)serialises the wrapped encoder;
  `task_model.DenseHeadModel` — dropout + Dense over an encoder output (GLUE and CoNLL heads).
* `metrics` — accuracy, F1, Matthews correlation, Pearson, Spearman over a whole eval set (numpy).
* `flags.define_flags` / `flags.config_from_flags` — the absl flags every task CLI shares.

How a task family plugs in: a `FineTuningTask` subclass in its own folder under `tasks/` (see `task.py`;
`bert_keras.tasks.glue.task.GlueTask` is a complete one)::

    class MyTask(FineTuningTask):
        name, main_metric, model_class = "mine", "accuracy", MyModel
        def train_dataset(self, batch_size, seed):   # -> (tf.data of (features, labels[, weights]), n)
        def build_model(self, encoder):               # -> a built MyModel over the encoder
        def loss(self):                               # anything model.compile(loss=...) accepts
        def evaluate(self, model, split=None):        # official metrics over the WHOLE split
        def export_metadata(self):                    # what serving needs, saved as run_metadata.json
        @classmethod
        def serving_module(cls, model, tokenizer, metadata, seq_length=None):  # the SavedModel's signatures

    config = FineTuningConfig(model_dir="/tmp/mine")
    with training_scope(config):                      # strategy and dtype policy, as the config says
        encoder, tokenizer = load_pretrained(init_checkpoint=path)
        report = run(MyTask(...), encoder, config, export_dir="/tmp/mine/export")

Token classification (CoNLL) yields `(features, labels, sample_weight)` with weight 0 on ignored
sub-tokens and padding; `trim_padding` cuts every [batch, seq] tensor it is given, labels included.
"""

from bert_keras.finetuning.inputs import trim_padding
from bert_keras.finetuning.metrics import accuracy, f1_score, matthews_corrcoef, pearson, spearman
from bert_keras.finetuning.pretrained import load_pretrained
from bert_keras.finetuning.task import FineTuningTask, predict_outputs
from bert_keras.finetuning.task_model import DenseHeadModel, EncoderTaskModel
from bert_keras.finetuning.trainer import EvaluationCallback, FineTuningConfig, fit, run, training_scope

__all__ = [
    "DenseHeadModel", "EncoderTaskModel", "EvaluationCallback", "FineTuningConfig", "FineTuningTask", "accuracy",
    "f1_score", "fit", "load_pretrained", "matthews_corrcoef", "pearson", "predict_outputs", "run", "spearman",
    "training_scope", "trim_padding",
]
