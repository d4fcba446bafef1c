"""Fine-tuning at scale on a tiny BERT and real GLUE excerpts: MirroredStrategy on 2 logical CPUs and
MultiWorkerMirroredStrategy on 2 local workers train exactly as one device does; mixed precision trains;
accumulated micro-batches make the update of the concatenated batch; bad settings fail before any work."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.finetuning import FineTuningConfig, fit, load_pretrained
from bert_keras.finetuning.trainer import training_scope, validate_config
from bert_keras.optimization import create_optimizer
from bert_keras.tasks.conll.model import TokenClassifier
from bert_keras.tasks.glue import GlueClassifier, GlueTask
from test_pretrain import ENV, TIMEOUT, _free_port

# A 453-token vocab keeps the embedding table (and the runs) small. Dropout off: replicas draw other dropout
# masks than one device would, and the runs are compared exactly.
TINY = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)

# One process: fine-tunes MRPC under the strategies in argv[3] (with training_scope, as the CLIs do) and prints
# per strategy the replica count, epoch losses, dev metrics, dev logits and a weight fingerprint.
_CHILD = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    if sys.argv[4] == "2":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from bert_keras.finetuning import FineTuningConfig, fit, load_pretrained
    from bert_keras.finetuning.trainer import training_scope
    from bert_keras.tasks.glue import GlueTask

    vocab_file, data_dir, strategies, _, model_dir = sys.argv[1:6]
    tiny = json.loads(sys.argv[6])
    results = {}

    class Updates(keras.callbacks.Callback):  # optimizer steps when training ends (before the best epoch reloads)
        def on_train_end(self, logs=None):
            self.count = int(self.model.optimizer.iterations.numpy())

    for strategy in strategies.split(","):
        # clip_norm 0.05 binds on every step: clipping per replica instead of globally would show.
        config = FineTuningConfig(model_dir=f"{model_dir}/{strategy}", learning_rate=5e-3, train_batch_size=16,
                                  num_train_epochs=2, clip_norm=0.05, tensorboard_update_freq="epoch", verbose=0,
                                  distribution_strategy=strategy)
        with training_scope(config) as scope:
            keras.utils.set_random_seed(0)
            encoder, tokenizer = load_pretrained(preset="tiny", vocab_file=vocab_file, **tiny)
            task = GlueTask("mrpc", data_dir, tokenizer, max_seq_length=64, eval_batch_size=32, pad_to_multiple=64)
            keras.utils.set_random_seed(0)
            updates = Updates()
            model, summary = fit(task, task.build_model(encoder), config, callbacks=[updates])
            logits = task.outputs(model, "dev")
            results[strategy] = {
                "replicas": scope.num_replicas_in_sync, "loss": summary["history"]["loss"], "best": summary["best"],
                "logits": logits.tolist(), "iterations": updates.count,
                "fingerprint": sum(float(np.abs(v.numpy()).astype(np.float64).sum()) for v in model.weights)}
    print("RESULTS" + json.dumps(results))
""")


@pytest.fixture(scope="module")
def vocab_file(test_data):
    return str(test_data / "pretrain" / "vocab.txt")


def _child(args, env):
    return subprocess.Popen([sys.executable, "-c", _CHILD, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def distributed_runs(tmp_path_factory, vocab_file, test_data):
    """One device and Mirrored on 2 logical CPUs in one process; 2 MultiWorkerMirrored workers beside it."""
    tmp = tmp_path_factory.mktemp("scale")
    common = [vocab_file, str(test_data / "glue")]
    local = _child(common + ["one_device,mirrored", "2", str(tmp), json.dumps(TINY)], ENV)
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    workers = [_child(common + ["multi_worker_mirrored", "1", str(tmp), json.dumps(TINY)],
                      {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})})
               for i in range(2)]
    try:
        outputs = [p.communicate(timeout=TIMEOUT) for p in (local, *workers)]
    finally:
        for process in (local, *workers):
            process.kill()
    results = []
    for process, (out, err) in zip((local, *workers), outputs):
        assert process.returncode == 0, err[-3000:]
        results.append(json.loads(out.split("RESULTS", 1)[1]))
    return {**results[0], "workers": [r["multi_worker_mirrored"] for r in results[1:]], "model_dir": tmp}


def _assert_same_training(run, reference):
    assert run["iterations"] == reference["iterations"] == 8  # 64 examples / 16 x 2 epochs: updates, once each
    np.testing.assert_allclose(run["loss"], reference["loss"], rtol=1e-5)
    np.testing.assert_allclose(run["logits"], reference["logits"], atol=1e-5)
    assert run["best"] == pytest.approx(reference["best"], abs=1e-6)
    assert run["fingerprint"] == pytest.approx(reference["fingerprint"], rel=1e-6)


def test_mirrored_on_two_devices_trains_as_one_device(distributed_runs):
    one, mirrored = distributed_runs["one_device"], distributed_runs["mirrored"]
    assert (one["replicas"], mirrored["replicas"]) == (1, 2)
    assert len(mirrored["logits"]) == 32  # the dev excerpt, predicted once (not once per replica)
    assert one["loss"][1] < one["loss"][0]  # it learns: the comparison is not between two idle runs
    _assert_same_training(mirrored, one)


def test_two_workers_train_as_one_device(distributed_runs):
    one = distributed_runs["one_device"]
    chief, other = distributed_runs["workers"]
    assert chief["replicas"] == other["replicas"] == 2
    assert chief["fingerprint"] == other["fingerprint"]  # both workers hold the same weights
    _assert_same_training(chief, one)
    # Only the chief wrote into the shared model_dir (the other worker's files went to a temporary dir).
    written = distributed_runs["model_dir"] / "multi_worker_mirrored"
    assert (written / "best.weights.h5").is_file()
    results = [json.loads(line) for line in (written / "eval_results.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in results] == [1, 2]


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_finite_losses_and_float32_outputs(tmp_path, test_data, vocab_file, policy):
    config = FineTuningConfig(model_dir=str(tmp_path), learning_rate=1e-3, train_batch_size=16, num_train_epochs=1,
                              tensorboard_update_freq="epoch", verbose=0, mixed_precision=policy)
    with training_scope(config):
        keras.utils.set_random_seed(0)
        encoder, tokenizer = load_pretrained(preset="tiny", vocab_file=vocab_file, **TINY)
        task = GlueTask("mrpc", str(test_data / "glue"), tokenizer, max_seq_length=64, pad_to_multiple=64)
        model = task.build_model(encoder)
        before = [v.numpy().copy() for v in model.trainable_variables]
        model, summary = fit(task, model, config)
        inputs = encoder.dummy_inputs(batch_size=2, seq_length=8)
        assert encoder.transformer_blocks[0].intermediate.compute_dtype == policy.split("_")[1]  # half precision
        assert keras.backend.standardize_dtype(model(inputs).dtype) == "float32"  # logits for losses, metrics
    assert keras.mixed_precision.global_policy().name == "float32"  # restored on leaving the scope
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    assert np.isfinite(summary["history"]["loss"]).all() and summary["history"]["loss"][0] > 0
    assert 0 <= summary["best"]["accuracy"] <= 1
    assert any(np.abs(v.numpy() - b).max() > 0 for v, b in zip(model.trainable_variables, before))


@pytest.mark.parametrize("head", ["sequence", "token"])
def test_accumulated_micro_batches_make_the_update_of_the_concatenated_batch(vocab_file, head):
    """7 examples in 3 micro-batches (2, 2, 3). Token classification: loss averaged over the weighted tokens
    of the whole batch, with micro-batches holding different numbers of weighted tokens."""
    rng = np.random.default_rng(0)
    batch, seq = 7, 12
    ids = rng.integers(5, 453, (batch, seq)).astype("int32")
    mask = (np.arange(seq)[None] < rng.integers(4, seq + 1, (batch, 1))).astype("int32")
    features = {"input_word_ids": ids, "input_mask": mask, "input_type_ids": np.zeros_like(ids)}
    if head == "token":
        labels = rng.integers(0, 5, (batch, seq)).astype("int32")
        weights = (mask * (rng.random((batch, seq)) < 0.6)).astype("float32")
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="mean_with_sample_weight")
        model_class, units = TokenClassifier, 5
    else:
        labels, weights = rng.integers(0, 3, batch).astype("int32"), None
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model_class, units = GlueClassifier, 3

    keras.utils.set_random_seed(0)
    encoder, _ = load_pretrained(preset="tiny", vocab_file=vocab_file, **{**TINY, "num_hidden_layers": 1})
    initial = [v.numpy() for v in encoder.weights]

    def train(accumulation, optimizer, steps=1, clip_norm=None):
        for v, value in zip(encoder.weights, initial):
            v.assign(value)
        keras.utils.set_random_seed(1)
        model = model_class(encoder, units)
        model.build()
        model.configure_train_step(accumulation, clip_norm=clip_norm)
        model.compile(optimizer=optimizer, loss=loss)
        before = [v.numpy() for v in model.trainable_variables]
        for _ in range(steps):
            model.train_on_batch(features, labels, sample_weight=weights)
        return [v.numpy() - b for v, b in zip(model.trainable_variables, before)], model

    # Plain SGD (lr 1): the weight change IS the gradient, so a wrongly weighted micro-batch shows directly.
    whole, _ = train(1, keras.optimizers.SGD(1.0))
    accumulated, _ = train(3, keras.optimizers.SGD(1.0))
    assert max(np.abs(w).max() for w in whole) > 1e-3
    for w, a in zip(whole, accumulated):
        np.testing.assert_allclose(a, w, rtol=2e-4, atol=1e-6)

    # BERT's AdamW on its warmup schedule, global-norm clipping binding: 2 accumulated updates are 2 optimizer
    # steps (LR and bias correction count updates, not micro-batches), equal to the concatenated batches'.
    def adamw():
        return create_optimizer(1e-3, 10, 4, clip_norm=None, gradients_are_reduced=True)

    whole, reference = train(1, adamw(), steps=2, clip_norm=0.05)
    accumulated, model = train(3, adamw(), steps=2, clip_norm=0.05)
    assert int(model.optimizer.iterations.numpy()) == int(reference.optimizer.iterations.numpy()) == 2
    for w, a in zip(whole, accumulated):
        # Adam divides by sqrt(v) + 1e-6: entries whose clipped gradient is below eps move linearly in it, so
        # float rounding of the summed gradient shows up to ~1e-6 there; a schedule or bias correction
        # counting micro-batches would move weights by ~lr = 2.5e-4.
        np.testing.assert_allclose(a, w, rtol=1e-3, atol=5e-6)


def test_bad_settings_fail_before_any_work(tmp_path, vocab_file, test_data, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)

    def config(**kw):
        return FineTuningConfig(model_dir=str(tmp_path), **kw)

    with pytest.raises(ValueError, match=r"train_batch_size=30 .* not divisible by gradient_accumulation_steps=4"):
        validate_config(config(train_batch_size=30, gradient_accumulation_steps=4))
    with pytest.raises(ValueError, match=r"train_batch_size=6 .*=4 x 2 replica"):
        validate_config(config(train_batch_size=6, gradient_accumulation_steps=4), replicas=2)
    with pytest.raises(ValueError, match="mixed_precision='float8'"):
        validate_config(config(mixed_precision="float8"))
    with pytest.raises(ValueError, match="optimizer='sgd'"):
        validate_config(config(optimizer="sgd"))
    with pytest.raises(ValueError, match="TPUs train in mixed_bfloat16"):
        validate_config(config(distribution_strategy="tpu", mixed_precision="mixed_float16"))
    with pytest.raises(ValueError, match="TF_CONFIG is not set"), training_scope(
            config(distribution_strategy="multi_worker_mirrored")):
        pass

    encoder, tokenizer = load_pretrained(preset="tiny", vocab_file=vocab_file, **TINY)
    task = GlueTask("mrpc", str(test_data / "glue"), tokenizer, max_seq_length=64)
    with pytest.raises(RuntimeError, match="inside `with training_scope"):
        fit(task, task.build_model(encoder), config(mixed_precision="mixed_bfloat16"))
    with pytest.raises(RuntimeError, match="created outside this strategy's scope"), training_scope(config()):
        fit(task, task.build_model(encoder), config())
    assert not os.listdir(tmp_path)  # nothing was written
