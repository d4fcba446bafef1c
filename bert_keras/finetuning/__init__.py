"""Fine-tuning mechanics shared by every task family (GLUE, SQuAD, CoNLL).

Written once, used by `tasks/glue`, `tasks/squad` and `tasks/conll`:

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

How a task family plugs in: subclass `FineTuningTask` (see `task.py`), e.g. for SQuAD::

    class SquadTask(FineTuningTask):
        main_metric = "f1"
        def __init__(self, data_dir, tokenizer, max_seq_length): ...
        def train_dataset(self, batch_size, seed):       # -> (tf.data of (features, labels[, weights]), n)
            ...                                           #    features: input_word_ids/input_mask/...
        def build_model(self, encoder):                   # -> keras.Model over the encoder
            return SquadModel(encoder)
        def loss(self):                                   # anything model.compile(loss=...) accepts
            return {"start_logits": ce, "end_logits": ce}
        def evaluate(self, model, split="dev"):          # official metrics over the WHOLE split
            logits = predict_outputs(model, dev_ds)      #   (custom post-processing lives here)
            return {"exact_match": ..., "f1": ...}
        def evaluate_with_outputs(self, model):          # optional: (metrics, answers) on the dev split;
            ...                                           #   the trainer keeps the best epoch's answers
        def write_eval_outputs(self, answers, metrics, output_dir):  # optional: dev files, written once
            ...                                           #   from those answers (no second dev pass)
        def write_predictions(self, model, output_dir):  # -> list of files written
            ...

    encoder, tokenizer = load_pretrained(init_checkpoint=path)
    task = SquadTask(data_dir, tokenizer, 384)
    model, results = fit(task, task.build_model(encoder), FineTuningConfig(model_dir="/tmp/squad"))

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
