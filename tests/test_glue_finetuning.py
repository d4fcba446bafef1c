"""GLUE end to end with a tiny BERT on real excerpts: Python API, CLI, submission files, export."""

import json
import os

import keras
import numpy as np
import pytest
import sklearn.metrics
import tensorflow as tf

from bert_keras.finetuning import EvaluationCallback, FineTuningConfig, fit, load_pretrained, run, trim_padding
from bert_keras.finetuning.trainer import BEST_WEIGHTS
from bert_keras.tasks.glue import GlueClassifier, GlueTask

TINY = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2)


@pytest.fixture(scope="module")
def vocab_file(minilm_dir):
    return str(minilm_dir / "vocab.txt")


@pytest.fixture(scope="module")
def tiny(vocab_file):
    keras.utils.set_random_seed(0)
    return load_pretrained(preset="tiny", vocab_file=vocab_file, **TINY)


def _config(model_dir, **kw):
    return FineTuningConfig(model_dir=str(model_dir), learning_rate=1e-3, train_batch_size=16, verbose=0,
                            **{"num_train_epochs": 2, "tensorboard_update_freq": "epoch", **kw})


class _ScriptedMainMetric(GlueTask):
    """MRPC trained and scored for real, plus a main metric `score` that follows a script, so which epoch is
    best and when patience runs out are known in advance. Records the dev logits of every evaluation."""

    SCRIPT = (0.5, 0.7, 0.6, 0.65, 0.9)  # best: epoch 2; patience 2 must stop training after epoch 4

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.main_metric = "score"
        self.dev_logits = []

    def outputs(self, model, split):
        logits = super().outputs(model, split)
        if split == "dev":
            self.dev_logits.append(logits)
        return logits

    def evaluate(self, model, split=None):
        return {**super().evaluate(model, split), "score": self.SCRIPT[len(self.dev_logits) - 1]}


def test_fit_keeps_best_epoch_stops_early_and_writes_submission(tmp_path, test_data, tiny):
    encoder, tokenizer = tiny
    # pad_to_multiple=max_seq_length: one input shape, so Keras traces each function once (test speed).
    task = _ScriptedMainMetric("mrpc", str(test_data / "glue"), tokenizer, max_seq_length=64, eval_batch_size=32,
                               pad_to_multiple=64)
    # The default TensorBoard batch interval (50) is longer than these epochs: epoch scalars must still come.
    config = _config(tmp_path, num_train_epochs=5, early_stopping_patience=2, tensorboard_update_freq=50)
    model, summary = fit(task, task.build_model(encoder), config)

    # Epochs 3 and 4 bring no gain over epoch 2: patience 2 stops training there; epoch 5 never runs.
    history = summary["history"]
    assert len(history["loss"]) == 4 and history["val_score"] == list(task.SCRIPT[:4]) and history["loss"][-1] > 0
    logged = [json.loads(line) for line in (tmp_path / "eval_results.jsonl").read_text().splitlines()]
    assert [r.pop("epoch") for r in logged] == [1, 2, 3, 4] and [r["f1"] for r in logged] == history["val_f1"]
    assert summary["best_epoch"] == 2 and summary["best"] == logged[1]
    # The returned model (best.weights.h5 reloaded) is epoch 2's: its dev logits, not the last epoch's.
    assert os.path.isfile(tmp_path / BEST_WEIGHTS)
    logits = GlueTask.outputs(task, model, "dev")  # not recorded in task.dev_logits
    np.testing.assert_array_equal(logits, task.dev_logits[1])
    assert np.abs(logits - task.dev_logits[3]).max() > 1e-3
    # Official metrics over the whole dev excerpt, recomputed independently from the restored model.
    dev, predicted = task.examples("dev"), logits.argmax(-1)
    assert summary["best"]["f1"] == pytest.approx(sklearn.metrics.f1_score(dev.labels, predicted))
    assert summary["best"]["accuracy"] == pytest.approx(sklearn.metrics.accuracy_score(dev.labels, predicted))
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    def scalars(kind):
        events = EventAccumulator(str(tmp_path / "tensorboard" / kind), size_guidance={"tensors": 0})
        events.Reload()
        return {tag: [float(tf.make_ndarray(e.tensor_proto)) for e in events.Tensors(tag)]
                for tag in events.Tags()["tensors"]}

    train, validation = scalars("train"), scalars("validation")
    np.testing.assert_allclose(train["epoch_loss"], history["loss"], rtol=1e-6)
    np.testing.assert_allclose(validation["epoch_f1"], history["val_f1"], rtol=1e-6)  # the dev metrics
    assert validation["epoch_score"] == pytest.approx(list(task.SCRIPT[:4]))
    with pytest.raises(ValueError, match="patience must be >= 1"):
        EvaluationCallback(task, str(tmp_path), patience=0)

    written = task.write_predictions(model, str(tmp_path / "predictions"))
    assert [os.path.basename(p) for p in written] == ["MRPC.tsv"]
    lines = open(written[0], encoding="utf-8").read().splitlines()
    assert lines[0] == "index\tprediction"
    assert [line.split("\t")[0] for line in lines[1:]] == task.examples("test").index
    assert {line.split("\t")[1] for line in lines[1:]} <= {"0", "1"}


def test_dynamic_padding_does_not_change_outputs(test_data, tiny):
    encoder, tokenizer = tiny
    task = GlueTask("stsb", str(test_data / "glue"), tokenizer, max_seq_length=128)
    model = task.build_model(encoder)
    ex = task.examples("dev")
    full = task.packer([tokenizer.tokenize(tf.constant(ex.text_a[:8])), tokenizer.tokenize(tf.constant(ex.text_b[:8]))])
    trimmed = trim_padding(full)
    assert trimmed["input_word_ids"].shape[1] < 128 and trimmed["input_word_ids"].shape[1] % 8 == 0
    np.testing.assert_allclose(model(trimmed, training=False), model(full, training=False), atol=1e-5)


def test_classifier_round_trips_through_keras_file(tmp_path, tiny):
    from bert_keras.finetuning.trainer import save_keras_model

    encoder, _ = tiny
    model = GlueClassifier(encoder, 3)
    model.build()
    assert {id(v) for v in encoder.pooler.weights} <= {id(v) for v in model.trainable_weights}  # reads pooled_output
    inputs = encoder.dummy_inputs(batch_size=2, seq_length=8)
    reloaded = keras.models.load_model(save_keras_model(model, str(tmp_path)))
    assert reloaded.get_config()["num_classes"] == 3
    np.testing.assert_allclose(reloaded(inputs, training=False), model(inputs, training=False), atol=1e-6)


def test_cli_regression_task_with_flagfile_predictions_and_export(tmp_path, test_data, vocab_file, absl_cli):
    from absl import flags

    cli = absl_cli("bert_keras.tasks.glue.__main__")

    flagfile = tmp_path / "stsb.flags"
    flagfile.write_text("--task=stsb\n--max_seq_length=64\n--num_train_epochs=1\n--train_batch_size=16\n"
                        "--learning_rate=1e-3\n--pad_to_multiple=64\n", encoding="utf-8")
    argv = ["glue", f"--flagfile={flagfile}", f"--data_dir={test_data / 'glue'}", f"--model_dir={tmp_path / 'm'}",
            "--preset=tiny", f"--vocab_file={vocab_file}", "--do_predict", f"--export_dir={tmp_path / 'export'}"]
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        cli.main([])
    finally:
        flags.FLAGS.unparse_flags()
    results = json.loads((tmp_path / "m" / "eval_results.json").read_text())
    assert set(results) == {"pearson", "spearman"} and all(-1 <= v <= 1 for v in results.values())
    lines = (tmp_path / "m" / "STS-B.tsv").read_text().splitlines()
    assert lines[0] == "index\tprediction" and len(lines) == 17
    scores = [float(line.split("\t")[1]) for line in lines[1:]]
    assert all(np.isfinite(scores))
    # The export hook's .keras file reloads to the same model (get_config/from_config round trip).
    reloaded = keras.models.load_model(tmp_path / "export" / "model.keras")
    assert isinstance(reloaded, GlueClassifier) and reloaded.num_classes == 1


def test_mnli_predictions_include_ax(tmp_path, test_data, tiny):
    from test_glue_data import _mnli_dir

    encoder, tokenizer = tiny
    task = GlueTask("mnli", str(_mnli_dir(tmp_path, test_data)), tokenizer, max_seq_length=64, pad_to_multiple=64)
    model = task.build_model(encoder)
    results = task.evaluate(model)
    assert set(results) == {"accuracy", "dev_mismatched_accuracy"}
    written = task.write_predictions(model, str(tmp_path / "out"))
    assert [os.path.basename(p) for p in written] == ["MNLI-m.tsv", "MNLI-mm.tsv", "AX.tsv"]
    ax = open(written[2], encoding="utf-8").read().splitlines()
    assert len(ax) == 17 and {line.split("\t")[1] for line in ax[1:]} <= {"contradiction", "entailment", "neutral"}


def test_run_without_training_needs_finetuned_weights(tmp_path, test_data, tiny):
    encoder, tokenizer = tiny
    task = GlueTask("wnli", str(test_data / "glue"), tokenizer, max_seq_length=64)
    with pytest.raises(FileNotFoundError, match=BEST_WEIGHTS):
        run(task, encoder, _config(tmp_path), do_train=False)


def test_max_steps_stops_mid_epoch_with_the_schedule_ending_there(tmp_path, test_data, tiny):
    encoder, tokenizer = tiny
    task = GlueTask("mrpc", str(test_data / "glue"), tokenizer, max_seq_length=64, eval_batch_size=32,
                    pad_to_multiple=64)
    steps_per_epoch = -(-len(task.examples("train")) // 16)
    max_steps = steps_per_epoch + 2  # two updates into the second epoch
    updates = []

    class Updates(keras.callbacks.Callback):  # before fit restores the best epoch's weights (and slots)
        def on_train_end(self, logs=None):
            updates.append(int(self.model.optimizer.iterations.numpy()))

    model, summary = fit(task, task.build_model(encoder), _config(tmp_path, num_train_epochs=3, max_steps=max_steps),
                         callbacks=[Updates()])
    optimizer = model.optimizer
    assert updates == [max_steps]
    assert len(summary["history"]["loss"]) == 2  # the cut epoch was still evaluated
    assert len((tmp_path / "eval_results.jsonl").read_text().splitlines()) == 2
    schedule = optimizer.learning_rate if callable(optimizer.learning_rate) else optimizer._learning_rate
    assert float(schedule(max_steps)) == pytest.approx(0.0, abs=1e-12)  # decayed to zero at the last update
