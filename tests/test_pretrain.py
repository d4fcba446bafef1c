"""End-to-end pre-training runs on a tiny model: exact resume after SIGKILL, checkpoint fall-back, equality of
one-device, Mirrored and MultiWorkerMirrored training, mixed precision and XLA, flag validation."""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data", "pretrain")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO, "CUDA_VISIBLE_DEVICES": "-1"}
ENV.pop("TF_CONFIG", None)
TIMEOUT = 900


def _config_file(tmp_path) -> str:
    """A 2-layer, 32-wide BERT without dropout, so that data-parallel runs are comparable step by step."""
    from bert_keras.config import BertConfig

    path = str(tmp_path / "bert_config.json")
    BertConfig(vocab_size=sum(1 for _ in open(os.path.join(DATA, "vocab.txt"), encoding="utf-8")),
               hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
               max_position_embeddings=64, hidden_dropout_prob=0.0,
               attention_probs_dropout_prob=0.0).to_json_file(path)
    return path


def _args(output_dir, config_file=None, **overrides) -> list[str]:
    flags = dict(vocab_file=os.path.join(DATA, "vocab.txt"), input_file=os.path.join(DATA, "train.txt"),
                 output_dir=str(output_dir), max_seq_length=32, max_predictions_per_seq=5, train_batch_size=8,
                 num_train_steps=8, num_warmup_steps=2, learning_rate=2e-3, iterations_per_loop=1,
                 save_checkpoints_steps=4, keep_checkpoint_max=3, jit_compile=False, seed=3)
    if config_file:
        flags["bert_config_file"] = config_file
    else:
        flags["preset"] = "tiny"
    flags.update(overrides)
    out = []
    for key, value in flags.items():
        if isinstance(value, bool):
            out.append(f"--{key}" if value else f"--no{key}")
        else:
            out.append(f"--{key}={value}")
    return out


def _train_steps(output_dir) -> list[dict]:
    with open(os.path.join(output_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [r for r in map(json.loads, f) if r["kind"] == "train"]


def _losses(records) -> dict[int, tuple[float, float]]:
    return {r["step"]: (r["mlm_loss"], r["nsp_loss"]) for r in records}


def _run_in_process(argv, absl_cli):
    pretrain = absl_cli("bert_keras.pretrain")
    pretrain.FLAGS.unparse_flags()
    pretrain.FLAGS(["pretrain"] + argv)
    try:
        return pretrain.train(log=lambda line: None)
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")


def test_sigkilled_run_resumes_with_exactly_the_uninterrupted_losses(tmp_path):
    config = _config_file(tmp_path)
    common = dict(num_train_steps=40, save_checkpoints_steps=5, keep_checkpoint_max=2)
    cmd = [sys.executable, "-m", "bert_keras.pretrain"]
    reference = subprocess.Popen(cmd + _args(tmp_path / "reference", config, **common), env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    killed_dir = tmp_path / "killed"
    victim = subprocess.Popen(cmd + _args(killed_dir, config, **common), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + TIMEOUT
        # The `checkpoint` state file is written last: from then on ckpt-5 is the committed latest.
        while not (killed_dir / "checkpoints" / "checkpoint").exists():
            assert victim.poll() is None, "the run ended before its first checkpoint"
            assert time.time() < deadline
            time.sleep(0.01)
        assert victim.poll() is None, "the run finished before it could be killed"
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
    finally:
        victim.kill()
    before = len(_train_steps(killed_dir))
    restarted = subprocess.run(cmd + _args(killed_dir, config, **common), env=ENV, capture_output=True,
                               text=True, timeout=TIMEOUT)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    assert "resumed from" in restarted.stdout
    assert reference.wait(TIMEOUT) == 0

    after_restart = _train_steps(killed_dir)[before:]
    resumed_at = after_restart[0]["step"] - 1
    assert resumed_at % 5 == 0 and 5 <= resumed_at < 40
    expected = _losses(_train_steps(tmp_path / "reference"))
    got = _losses(after_restart)
    assert sorted(got) == list(range(resumed_at + 1, 41))
    assert all(got[s] == expected[s] for s in got), [(s, got[s], expected[s]) for s in got if got[s] != expected[s]]
    # Training did something: the loss moved over the run.
    assert expected[40][0] < expected[1][0]


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, caplog):
    from bert_keras.training_checkpoints import TrainingCheckpoints

    value = tf.Variable(np.zeros(1000, np.float32))
    checkpoints = TrainingCheckpoints(tf.train.Checkpoint(value=value), str(tmp_path), max_to_keep=3)
    for step in (1, 2):
        value.assign(np.full(1000, float(step), np.float32))
        checkpoints.save(step)
    latest = checkpoints.manager.latest_checkpoint
    data_file = latest + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:  # flip bytes inside the tensor: the CRC check must catch it
        f.seek(100)
        f.write(b"\xff" * 16)
    value.assign(np.zeros(1000, np.float32))
    with caplog.at_level("WARNING"):
        restored = TrainingCheckpoints(tf.train.Checkpoint(value=value), str(tmp_path), 3).restore_latest()
    assert restored.endswith("ckpt-1")
    assert float(value[0]) == 1.0
    assert "unreadable" in caplog.text

    os.truncate(restored + ".index", 10)  # now the previous one is broken too
    with pytest.raises(RuntimeError, match="no readable checkpoint"):
        TrainingCheckpoints(tf.train.Checkpoint(value=value), str(tmp_path), 3).restore_latest()


_MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from bert_keras import pretrain
    results = {}
    for strategy in ("one_device", "mirrored"):
        pretrain.FLAGS.unparse_flags()
        pretrain.FLAGS(["pretrain"] + json.loads(sys.argv[1]) + [
            "--distribution_strategy=" + strategy, "--output_dir=" + sys.argv[2] + "/" + strategy])
        results[strategy] = pretrain.train(log=lambda line: None)
    print("RESULTS" + json.dumps(results))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_and_multi_worker_runs_match_one_device(tmp_path):
    config = _config_file(tmp_path)
    args = _args(tmp_path, config, num_train_steps=6, save_checkpoints_steps=6, iterations_per_loop=3,
                 eval_input_file=os.path.join(DATA, "eval.txt"), max_eval_steps=2, eval_batch_size=4)
    args = [a for a in args if not a.startswith("--output_dir")]
    mirrored = subprocess.Popen([sys.executable, "-c", _MIRRORED, json.dumps(args), str(tmp_path)], env=ENV,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    workers = []
    for index in range(2):
        env = {**ENV, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(
            [sys.executable, "-m", "bert_keras.pretrain", *args, f"--output_dir={tmp_path}/multi_worker",
             "--distribution_strategy=multi_worker_mirrored"], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True))
    try:
        out, err = mirrored.communicate(timeout=TIMEOUT)
        assert mirrored.returncode == 0, err[-3000:]
        results = json.loads(out.split("RESULTS", 1)[1])
        outputs = [w.communicate(timeout=TIMEOUT) for w in workers]
    finally:
        for process in (mirrored, *workers):
            process.kill()
    for worker, (out, err) in zip(workers, outputs):
        assert worker.returncode == 0, err[-3000:]

    one, two = results["one_device"], results["mirrored"]
    for key in ("mlm_loss", "nsp_loss", "mlm_accuracy", "weights_fingerprint"):
        assert one[key] == pytest.approx(two[key], rel=1e-5), key
    single = _losses(_train_steps(tmp_path / "one_device"))
    for step, (mlm, nsp) in _losses(_train_steps(tmp_path / "mirrored")).items():
        assert (mlm, nsp) == pytest.approx(single[step], rel=1e-5)

    fingerprints = [out.split("final weights fingerprint (sum of |w|): ")[1].split()[0] for out, _ in outputs]
    assert fingerprints[0] == fingerprints[1]  # both workers hold identical weights
    assert float(fingerprints[0]) == pytest.approx(one["weights_fingerprint"], rel=1e-5)
    multi = _losses(_train_steps(tmp_path / "multi_worker"))
    assert multi.keys() == single.keys()
    for step in multi:
        assert multi[step] == pytest.approx(single[step], rel=1e-5)


@pytest.mark.parametrize("policy,jit", [("mixed_bfloat16", True), ("mixed_float16", False), ("float32", True)])
def test_mixed_precision_and_xla_steps_train_with_finite_losses(policy, jit):
    import keras

    from bert_keras.config import BertConfig
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining_loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel, summarize_statistics

    rng = np.random.default_rng(0)
    b, s, p = 4, 16, 3
    batch = {"input_word_ids": rng.integers(5, 97, (b, s)).astype("int32"), "input_mask": np.ones((b, s), "int32"),
             "input_type_ids": np.zeros((b, s), "int32"),
             "masked_lm_positions": np.tile(np.arange(1, 1 + p, dtype="int32"), (b, 1)),
             "masked_lm_ids": rng.integers(5, 97, (b, p)).astype("int32"),
             "masked_lm_weights": np.ones((b, p), "float32"), "next_sentence_labels": np.array([0, 1, 0, 1], "int32")}
    keras.mixed_precision.set_global_policy(policy)
    try:
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        with strategy.scope():
            model = BertPretrainingModel(BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=64))
            model.build()
            optimizer = create_optimizer(1e-2, 10, 0, clip_norm=None, gradients_are_reduced=True)
            if policy == "mixed_float16":
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(model.trainable_variables)
        loop = build_train_loop(model, optimizer, strategy, jit_compile=jit, clip_norm=1.0)
        iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
        first = summarize_statistics(loop(iterator, tf.constant(1)).numpy()[:-1])
        totals = loop(iterator, tf.constant(5)).numpy()
        last = summarize_statistics(loop(iterator, tf.constant(1)).numpy()[:-1])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(totals))
    assert model.encoder.transformer_blocks[0].intermediate.compute_dtype == (
        {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(policy, "float32"))
    assert last["mlm_loss"] < first["mlm_loss"]  # 7 steps on one batch: it memorises


@pytest.mark.parametrize("flag,message", [
    ("--max_predictions_per_seq=40", "exceeds --max_seq_length"),
    ("--num_warmup_steps=100", "num_warmup_steps"),
    ("--input_file=/nonexistent/*.txt", "input_file"),
    ("--gradient_accumulation_steps=3", "not divisible"),
    ("--preset=huge", "choose from"),
])
def test_bad_flags_fail_before_any_work(tmp_path, flag, message, absl_cli):
    from absl import app

    with pytest.raises(app.UsageError, match=message):
        _run_in_process(_args(tmp_path) + [flag], absl_cli)
    assert not (tmp_path / "checkpoints").exists()


def test_strategies_without_their_hardware_or_cluster_fail_clearly(monkeypatch):
    from bert_keras.distribution import create_strategy

    with pytest.raises(RuntimeError, match="no TPU found"):
        create_strategy("tpu", None)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG is not set"):
        create_strategy("multi_worker_mirrored")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        create_strategy("multi_worker_mirrored")
