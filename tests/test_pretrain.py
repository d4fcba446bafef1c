"""End-to-end pre-training runs on a tiny model: exact resume after SIGKILL, checkpoint fall-back, equality of
one-device, Mirrored and MultiWorkerMirrored training, mixed precision and XLA, config validation, and the
command line's flags and flag files mapped onto `PretrainingConfig`."""

import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from bert_keras.pretraining import ConfigError, PretrainingConfig, train
from bert_keras.vocab_file import count_vocab

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "tests", "data", "pretrain")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO, "CUDA_VISIBLE_DEVICES": "-1"}
ENV.pop("TF_CONFIG", None)
TIMEOUT = 900


def _config_file(tmp_path, dropout: float = 0.0) -> str:
    """A 2-layer, 32-wide BERT, without dropout unless asked (data-parallel runs then compare step by step)."""
    from bert_keras.config import BertConfig

    path = str(tmp_path / "bert_config.json")
    BertConfig(vocab_size=count_vocab(os.path.join(DATA, "vocab.txt")),
               hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
               max_position_embeddings=64, hidden_dropout_prob=dropout,
               attention_probs_dropout_prob=dropout).to_json_file(path)
    return path


def _settings(output_dir, config_file=None, **overrides) -> dict:
    settings = dict(vocab_file=os.path.join(DATA, "vocab.txt"), input_file=os.path.join(DATA, "train.txt"),
                    output_dir=str(output_dir), max_seq_length=32, max_predictions_per_seq=5, train_batch_size=8,
                    num_train_steps=8, num_warmup_steps=2, learning_rate=2e-3, iterations_per_loop=1,
                    save_checkpoints_steps=4, keep_checkpoint_max=3, jit_compile=False, seed=3)
    if config_file:
        settings["bert_config_file"] = config_file
    else:
        settings["preset"] = "tiny"
    settings.update(overrides)
    return settings


def _config(output_dir, config_file=None, **overrides) -> PretrainingConfig:
    return PretrainingConfig(**_settings(output_dir, config_file, **overrides))


def _args(output_dir, config_file=None, **overrides) -> list[str]:
    """The same settings as command-line flags."""
    out = []
    for key, value in _settings(output_dir, config_file, **overrides).items():
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


def _train(config: PretrainingConfig) -> dict:
    try:
        return train(config, log=lambda line: None)
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")


TIMING_FIELDS = ("steps_per_sec", "sequences_per_sec")


def _records(output_dir) -> list[dict]:
    """Every metrics.jsonl record without its timing fields (which differ from run to run)."""
    with open(os.path.join(output_dir, "metrics.jsonl"), encoding="utf-8") as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIMING_FIELDS} for line in f]


def _event_scalars(output_dir) -> dict[str, list[tuple[int, str, float]]]:
    """(step, tag, value) of every TensorBoard scalar, per writer."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = {}
    for kind in ("train", "eval"):
        accumulator = EventAccumulator(os.path.join(output_dir, kind), size_guidance={"tensors": 0})
        accumulator.Reload()
        out[kind] = sorted((e.step, tag, float(tf.make_ndarray(e.tensor_proto)))
                           for tag in accumulator.Tags()["tensors"] if tag not in TIMING_FIELDS
                           for e in accumulator.Tensors(tag))
    return out


def _kill_when(process, ready, rng, deadline, extra_delay=0.0) -> bool:
    """SIGKILLs `process` once `ready()` holds (after up to `extra_delay` more seconds); False if it ended first."""
    while not ready():
        if process.poll() is not None or time.time() > deadline:
            return False
        time.sleep(0.002)
    time.sleep(rng.uniform(0, extra_delay))
    if process.poll() is not None:
        return False
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    return True


def test_runs_killed_at_random_moments_resume_to_exactly_the_uninterrupted_run(tmp_path):
    """Dropout on. The run is SIGKILLed at random moments of each kind (inside the steps, while a checkpoint is
    being written, during an evaluation, during the final export) and restarted each time with the same
    command; its final weights, every metrics.jsonl record and every TensorBoard scalar equal an uninterrupted
    run's exactly."""
    import random

    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    config = _config_file(tmp_path, dropout=0.1)
    common = dict(num_train_steps=12, save_checkpoints_steps=3, keep_checkpoint_max=2, eval_every_n_steps=6,
                  eval_input_file=os.path.join(DATA, "eval.txt"), max_eval_steps=2, eval_batch_size=8)
    cmd = [sys.executable, "-m", "bert_keras.pretrain"]
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = subprocess.Popen(cmd + _args(reference_dir, config, **common), env=ENV,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = killed_dir / "checkpoints"

    def committed() -> set[str]:
        state = checkpoints / "checkpoint"
        return set(re.findall(r'"(ckpt-\d+)"', state.read_text())) if state.exists() else set()

    def train_records() -> int:
        path = killed_dir / "metrics.jsonl"
        return path.read_text().count('"kind": "train"') if path.exists() else 0

    def on_disk() -> set[str]:
        return {f.name.split(".")[0].split("_temp")[0] for f in checkpoints.glob("ckpt-*")} if checkpoints.exists() \
            else set()

    stale: set[str] = set()  # left by an earlier kill: not a write of this process

    def writing_checkpoint() -> bool:  # files of a checkpoint that the state file does not name yet
        return bool(on_disk() - committed() - stale)

    def evaluating() -> bool:  # the step-6 checkpoint is committed and its evaluation runs next
        return "ckpt-6" in committed() and '"kind": "eval", "step": 6' not in (
            (killed_dir / "metrics.jsonl").read_text() if (killed_dir / "metrics.jsonl").exists() else "")

    target = rng.randint(1, 11)
    kinds = [("a step", lambda: train_records() >= target, 0.3),
             ("a checkpoint write", writing_checkpoint, 0.0),
             ("an evaluation", evaluating, 0.05),
             ("the final export", lambda: (killed_dir / "export").exists(), 0.2)]
    kills = []
    deadline = time.time() + TIMEOUT
    for kind, ready, delay in kinds:
        stale = on_disk() - committed()
        victim = subprocess.Popen(cmd + _args(killed_dir, config, **common), env=ENV,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            if _kill_when(victim, ready, rng, deadline, delay):
                kills.append(kind)
        finally:
            victim.kill()
            victim.wait(30)
    finished = subprocess.run(cmd + _args(killed_dir, config, **common), env=ENV, capture_output=True,
                              text=True, timeout=TIMEOUT)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert reference.wait(TIMEOUT) == 0
    assert len(kills) >= 3, (seed, kills)  # the moments were reached (a kind may finish before its kill lands)

    from safetensors.numpy import load_file

    got = load_file(str(killed_dir / "export" / "bert_keras" / "weights.safetensors"))
    expected = load_file(str(reference_dir / "export" / "bert_keras" / "weights.safetensors"))
    assert sorted(got) == sorted(expected)
    different = [name for name in expected if not np.array_equal(got[name], expected[name])]
    assert not different, (seed, kills, different[:5])
    assert _records(killed_dir) == _records(reference_dir), (seed, kills)
    assert _event_scalars(killed_dir) == _event_scalars(reference_dir), (seed, kills)
    records = _records(reference_dir)
    assert [r["step"] for r in records if r["kind"] == "eval"] == [6, 12]
    assert records[-2]["mlm_loss"] < records[0]["mlm_loss"]  # training did something


def _damage(prefix: str, how: str) -> None:
    data_file = prefix + ".data-00000-of-00001"
    if how == "checksum":  # flip bytes inside the tensor: the CRC check must catch it
        with open(data_file, "r+b") as f:
            f.seek(100)
            f.write(b"\xff" * 16)
    elif how == "truncated data":
        os.truncate(data_file, os.path.getsize(data_file) // 2)
    elif how == "empty data":
        os.truncate(data_file, 0)
    elif how == "missing index":
        os.remove(prefix + ".index")
    elif how == "broken index":
        os.truncate(prefix + ".index", 10)


@pytest.mark.parametrize("how", ["checksum", "truncated data", "empty data", "missing index", "broken index"])
def test_unreadable_latest_checkpoint_falls_back_to_the_newest_readable_one(tmp_path, caplog, how):
    from bert_keras.pretraining.run_checkpoints import TrainingCheckpoints

    value = tf.Variable(np.zeros(1000, np.float32))
    checkpoints = TrainingCheckpoints({"value": value}, str(tmp_path), max_to_keep=3)
    for step in (1, 2, 3):
        value.assign(np.full(1000, float(step), np.float32))
        checkpoints.save(step)
    _damage(checkpoints.latest(), how)
    value.assign(np.zeros(1000, np.float32))
    with caplog.at_level("WARNING"):
        restored = TrainingCheckpoints({"value": value}, str(tmp_path), 3).restore_latest()
    assert restored.endswith("ckpt-2")
    assert float(value[0]) == 2.0
    assert "ckpt-3" in caplog.text and "unreadable" in caplog.text

    for step in (1, 2):  # now every one is broken
        _damage(str(tmp_path / f"ckpt-{step}"), how)
    with pytest.raises(RuntimeError, match="no readable checkpoint"):
        TrainingCheckpoints({"value": value}, str(tmp_path), 3).restore_latest()


def test_a_failed_checkpoint_write_names_the_directory_and_keeps_the_previous_one(tmp_path):
    from bert_keras.pretraining.run_checkpoints import CheckpointWriteError, TrainingCheckpoints

    value = tf.Variable(np.ones(10, np.float32))
    directory = tmp_path / "ckpts"
    checkpoints = TrainingCheckpoints({"value": value}, str(directory), max_to_keep=3)
    checkpoints.save(1)
    # The write fails as on a full disk or an unwritable directory (even as root): a file stands where TF
    # puts the new checkpoint's temporary directory.
    (directory / "ckpt-2_temp").write_text("in the way")
    value.assign(np.zeros(10, np.float32))
    with pytest.raises(CheckpointWriteError, match=r"step-2 checkpoint into .*ckpts.*ckpt-1 is untouched"):
        checkpoints.save(2)
    assert TrainingCheckpoints({"value": value}, str(directory), 3).restore_latest().endswith("ckpt-1")
    assert float(value[0]) == 1.0


def test_checkpoints_without_optional_objects_restore_with_a_warning(tmp_path, caplog):
    from bert_keras.pretraining.run_checkpoints import TrainingCheckpoints

    value, seeds = tf.Variable(1.0), [tf.Variable([3, 4], dtype=tf.int64)]
    TrainingCheckpoints({"value": value}, str(tmp_path), 3).save(5)  # written before the seeds were saved
    value.assign(0.0)
    with caplog.at_level("WARNING"):
        restored = TrainingCheckpoints({"value": value, "dropout_seed_states": seeds}, str(tmp_path), 3,
                                       optional=("dropout_seed_states",)).restore_latest()
    assert restored.endswith("ckpt-5") and float(value) == 1.0 and "not bit-exact" in caplog.text
    with pytest.raises(RuntimeError, match="no readable checkpoint"):  # not optional: a real mismatch
        TrainingCheckpoints({"value": value, "other": tf.Variable(2.0)}, str(tmp_path), 3).restore_latest()


def test_non_finite_training_stops_before_saving_anything_non_finite(tmp_path):
    from bert_keras.pretraining import NonFiniteTraining

    output = tmp_path / "diverged"
    with pytest.raises(NonFiniteTraining, match=r"non-finite training values in steps \d+-\d+ .*Resume from "):
        _train(_config(output, learning_rate=1e4, num_train_steps=60, save_checkpoints_steps=2,
                       keep_checkpoint_max=100, clip_norm=0.0))
    saved = sorted(output.glob("checkpoints/ckpt-*.index"))
    assert saved, "it diverged before the first checkpoint: the test proves nothing"
    for index in saved:
        reader = tf.train.load_checkpoint(str(index)[:-len(".index")])
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype.is_floating:
                assert np.isfinite(reader.get_tensor(name)).all(), (index.name, name)
    assert not (output / "export").exists()
    assert all(np.isfinite(r["mlm_loss"]) for r in _train_steps(output))  # the bad steps were not recorded


def test_sigterm_saves_exits_75_and_the_same_command_resumes(tmp_path):
    config = _config_file(tmp_path)
    common = dict(num_train_steps=400, save_checkpoints_steps=1000, keep_checkpoint_max=2)
    cmd = [sys.executable, "-m", "bert_keras.pretrain"] + _args(tmp_path / "run", config, **common)
    process = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + TIMEOUT
    while not (tmp_path / "run" / "metrics.jsonl").exists() or len(_train_steps(tmp_path / "run")) < 3:
        assert process.poll() is None and time.time() < deadline, "the run ended before it could be stopped"
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 75, err[-2000:]
    stopped_at = _train_steps(tmp_path / "run")[-1]["step"]
    assert 3 <= stopped_at < 400  # no checkpoint was due (every 1000 steps): SIGTERM made one
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith(f"ckpt-{stopped_at}")
    assert f"stopped by SIGTERM at step {stopped_at}" in err
    resumed = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and f"at step {stopped_at}" in resumed.stdout


_MIRRORED = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from bert_keras.pretraining import PretrainingConfig, train
    results = {}
    for strategy in ("one_device", "mirrored"):
        config = PretrainingConfig(**json.loads(sys.argv[1]), distribution_strategy=strategy,
                                   output_dir=sys.argv[2] + "/" + strategy)
        results[strategy] = train(config, log=lambda line: None)
    print("RESULTS" + json.dumps(results))
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_mirrored_and_multi_worker_runs_match_one_device(tmp_path):
    config = _config_file(tmp_path)
    common = dict(num_train_steps=6, save_checkpoints_steps=6, iterations_per_loop=3,
                  eval_input_file=os.path.join(DATA, "eval.txt"), max_eval_steps=2, eval_batch_size=4)
    settings = _settings(tmp_path, config, **common)
    del settings["output_dir"]
    args = [a for a in _args(tmp_path, config, **common) if not a.startswith("--output_dir")]
    mirrored = subprocess.Popen([sys.executable, "-c", _MIRRORED, json.dumps(settings), str(tmp_path)], env=ENV,
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


# float32 with XLA: test_rematerialized_training_matches_plain_training_with_dropout.
@pytest.mark.parametrize("policy,jit", [("mixed_bfloat16", True), ("mixed_float16", False)])
def test_mixed_precision_and_xla_steps_train_with_finite_losses(policy, jit):
    import keras

    from bert_keras.config import BertConfig
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining.loop import build_train_loop
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


@pytest.mark.parametrize("setting,message", [
    (dict(max_predictions_per_seq=40), "exceeds --max_seq_length"),
    (dict(num_warmup_steps=100), "num_warmup_steps"),
    (dict(input_file="/nonexistent/*.txt"), "input_file"),
    (dict(gradient_accumulation_steps=3), "not divisible"),
    (dict(preset="huge"), "choose from"),
    (dict(optimizer="sgd"), "--optimizer='sgd': choose from"),
])
def test_bad_settings_fail_before_any_work(tmp_path, setting, message):
    with pytest.raises(ConfigError, match=message):
        _train(_config(tmp_path, **setting))
    assert not (tmp_path / "checkpoints").exists()


def _parse(argv: list[str]):
    """Flag values as `python -m bert_keras.pretrain` parses them, on a FlagValues of their own."""
    from absl import flags

    from bert_keras.pretraining.flags import define_flags, resolve_flagfile_args

    values = flags.FlagValues()
    define_flags(values)
    values(["pretrain"] + resolve_flagfile_args(argv))
    return values


@pytest.mark.parametrize("config", ["tiny", "mini", "small", "medium", "base", "large", "demo"])
def test_shipped_flagfiles_parse_and_validate(config, tmp_path):
    """Every configs/*.flags is accepted as the README shows it (input and vocab given on the command line)."""
    from bert_keras.pretraining.flags import config_from_flags

    values = _parse([f"--flagfile={os.path.join(REPO, 'configs', config + '.flags')}"]
                    + ([] if config == "demo" else ["--input_file=demo:train", "--vocab_file=demo",
                                                    f"--output_dir={tmp_path}"]))
    settings = config_from_flags(values)
    settings.validate()
    assert settings.preset == ("tiny" if config == "demo" else config)


def test_command_line_maps_onto_the_same_config(tmp_path, monkeypatch, absl_cli):
    """The flags are the config's fields (same names and defaults, plus three aliases); the demo flag file,
    given relative to the repository from another directory, is the config the README's demo describes; a
    bad setting is a usage error of the CLI."""
    from absl import app, flags

    from bert_keras.pretraining.flags import config_from_flags

    fields = {f.name for f in dataclasses.fields(PretrainingConfig)}
    assert set(_parse([])) == fields | {"use_tpu", "steps_per_loop", "model_dir"}
    assert config_from_flags(_parse([])) == PretrainingConfig()

    monkeypatch.chdir(tmp_path)
    demo = config_from_flags(_parse(["--flagfile=configs/demo.flags"]))
    assert demo == PretrainingConfig(
        preset="tiny", vocab_file="demo", input_file="demo:train", eval_input_file="demo:heldout",
        output_dir="runs/demo", max_seq_length=64, max_predictions_per_seq=10, train_batch_size=64,
        eval_batch_size=64, num_train_steps=1500, num_warmup_steps=150, learning_rate=1e-3, optimizer="adamw",
        weight_decay=0.01, clip_norm=1.0, iterations_per_loop=50, save_checkpoints_steps=250,
        keep_checkpoint_max=2, eval_every_n_steps=500, max_eval_steps=20, unigram_baseline=True, jit_compile=False)
    aliased = config_from_flags(_parse(["--flagfile=configs/demo.flags", "--model_dir=elsewhere",
                                        "--steps_per_loop=7", "--use_tpu", "--mixed_precision=mixed_bfloat16"]))
    assert aliased == dataclasses.replace(demo, output_dir="elsewhere", iterations_per_loop=7,
                                          distribution_strategy="tpu", mixed_precision="mixed_bfloat16")

    pretrain = absl_cli("bert_keras.pretrain")
    flags.FLAGS(["pretrain"] + _args(tmp_path, max_predictions_per_seq=40))
    with pytest.raises(app.UsageError, match="exceeds --max_seq_length"):
        pretrain.main(["pretrain"])
    assert not (tmp_path / "checkpoints").exists()


def test_xla_is_off_by_default_on_cpu_and_follows_an_explicit_choice():
    from bert_keras.distribution import resolve_jit_compile

    assert not tf.config.list_logical_devices("GPU")  # the suite runs on CPU
    assert resolve_jit_compile(None) is False and resolve_jit_compile("auto") is False
    assert resolve_jit_compile(True) is True and resolve_jit_compile(False) is False


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


_LOOP_CONFIG = dict(vocab_size=97, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                    max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)


def _random_batch(rng, batch: int, seq: int = 16, predictions: int = 4, real=None) -> dict:
    """Random features; `real[i]` = masked positions of row i that count (the rest are weight-0 padding)."""
    real = real if real is not None else [predictions] * batch
    weights = (np.arange(predictions)[None, :] < np.array(real)[:, None]).astype("float32")
    return {"input_word_ids": rng.integers(5, 97, (batch, seq)).astype("int32"),
            "input_mask": np.ones((batch, seq), "int32"), "input_type_ids": np.zeros((batch, seq), "int32"),
            "masked_lm_positions": np.sort(np.stack([rng.choice(np.arange(1, seq), predictions, replace=False)
                                                     for _ in range(batch)]), 1).astype("int32"),
            "masked_lm_ids": rng.integers(5, 97, (batch, predictions)).astype("int32"),
            "masked_lm_weights": weights, "next_sentence_labels": rng.integers(0, 2, batch).astype("int32")}


def test_accumulated_micro_batches_make_the_update_of_the_concatenated_batch():
    from bert_keras.config import BertConfig
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining.loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel

    rng = np.random.default_rng(0)
    # Two steps of 8 sequences. The micro-batches hold very different numbers of real masked tokens
    # (4 per row in the first half, 1 in the second), so a mean of micro-batch means would be wrong.
    steps = [_random_batch(rng, 8, real=[4, 4, 4, 4, 1, 1, 1, 1]) for _ in range(2)]
    config = BertConfig(**_LOOP_CONFIG)
    initial = None

    def train(accumulation: int):
        nonlocal initial
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
        with strategy.scope():
            model = BertPretrainingModel(config)
            model.build()
            if initial is None:
                initial = model.get_weights()
            model.set_weights(initial)
            optimizer = create_optimizer(1e-2, 10, 0, clip_norm=None, gradients_are_reduced=True)
            optimizer.build(model.trainable_variables)
        loop = build_train_loop(model, optimizer, strategy, jit_compile=False, clip_norm=1.0,
                                accumulation_steps=accumulation)
        size = 8 // accumulation
        micro = [{k: v[i:i + size] for k, v in batch.items()} for batch in steps for i in range(0, 8, size)]
        stacked = {k: np.stack([m[k] for m in micro]) for k in micro[0]}
        totals = loop(iter(tf.data.Dataset.from_tensor_slices(stacked)), tf.constant(2)).numpy()
        return totals, model.get_weights()

    whole_totals, whole_weights = train(1)
    micro_totals, micro_weights = train(2)
    # Same summed statistics and the same gradient norms (the norm is of the full accumulated gradient, so it
    # checks the gradient's scale, which AdamW's update hardly shows).
    np.testing.assert_allclose(micro_totals, whole_totals, rtol=1e-5)
    moved = 0.0
    for before, whole, micro in zip(initial, whole_weights, micro_weights):
        np.testing.assert_allclose(micro, whole, rtol=1e-4, atol=1e-6)
        moved = max(moved, float(np.abs(whole - before).max()))
    assert moved > 1e-3  # the steps did update the weights


def test_held_out_evaluation_matches_numpy_on_the_same_batches(tmp_path):
    """`Pretrainer.evaluate` (the CLI's held-out numbers) against losses and accuracies computed in numpy
    from the model's logits on the very batches it evaluated."""
    from bert_keras.config import BertConfig
    from bert_keras.pretraining import Pretrainer

    config = _config(tmp_path, _config_file(tmp_path), max_eval_steps=3, eval_batch_size=4,
                     eval_input_file=os.path.join(DATA, "eval.txt"))
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    trainer = Pretrainer(config, strategy, BertConfig.from_json_file(config.bert_config_file), config.vocab_file,
                         [config.input_file], [config.eval_input_file])
    # Large random weights: confident predictions. (At BERT's initialisation every NSP loss is ~ln 2: the
    # [CLS] vector barely depends on the input and the head is near zero; that would make this check weak.)
    rng = np.random.default_rng(0)
    for variable in trainer.model.trainable_variables:
        variable.assign(rng.normal(0, 0.3, variable.shape).astype("float32"))
    trainer.model.next_sentence_head.dense.bias.assign(np.array([1.0, -1.0], "float32"))
    got = trainer.evaluate()

    def log_softmax(x):
        x = x.astype(np.float64) - x.max(-1, keepdims=True)
        return x - np.log(np.exp(x).sum(-1, keepdims=True))

    mlm_loss = mlm_hits = mlm_n = nsp_loss = nsp_hits = nsp_n = 0.0
    batches = trainer._eval_batches()
    assert len(batches) == 3
    for batch in batches:
        out = trainer.model(batch, training=False)
        mlm, nsp = log_softmax(out["mlm_logits"].numpy()), log_softmax(out["nsp_logits"].numpy())
        ids, w = batch["masked_lm_ids"], batch["masked_lm_weights"]
        mlm_loss -= (np.take_along_axis(mlm, ids[..., None], -1)[..., 0] * w).sum()
        mlm_hits += ((mlm.argmax(-1) == ids) * w).sum()
        mlm_n += w.sum()
        labels = batch["next_sentence_labels"].reshape(-1)
        nsp_loss -= np.take_along_axis(nsp, labels[:, None], -1).sum()
        nsp_hits += (nsp.argmax(-1) == labels).sum()
        nsp_n += len(labels)
    expected = {"mlm_loss": mlm_loss / mlm_n, "mlm_accuracy": mlm_hits / mlm_n, "nsp_loss": nsp_loss / nsp_n,
                "nsp_accuracy": nsp_hits / nsp_n}
    assert got == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert abs(expected["nsp_loss"] - np.log(2)) > 0.1 and 0 < expected["nsp_accuracy"] < 1


def test_init_checkpoint_starts_from_a_pretrained_models_weights(tmp_path):
    """A run started from another run's Google-format export (heads included; config and vocab read from
    the checkpoint) holds exactly its weights before the first update: identical held-out metrics, and a
    first-step loss far below a fresh model's."""
    evaluation = dict(eval_input_file=os.path.join(DATA, "eval.txt"), max_eval_steps=2, eval_batch_size=8)
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first = _train(_config(first_dir, _config_file(tmp_path), num_train_steps=60, num_warmup_steps=5,
                           save_checkpoints_steps=60, **evaluation))
    # Warmup over 1 step: the first step's learning rate is 0, so the weights stay as loaded.
    second = _train(_config(second_dir, num_train_steps=1, num_warmup_steps=1, **evaluation, preset=None,
                            vocab_file=None, init_checkpoint=str(first_dir / "export" / "google")))

    assert second["weights_fingerprint"] == first["weights_fingerprint"]
    for key in ("mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy"):
        assert second[key] == pytest.approx(first[key], rel=1e-5, abs=1e-6), key
    fresh_loss = _train_steps(first_dir)[0]["mlm_loss"]  # step 1 of the randomly initialised run
    started_loss = _train_steps(second_dir)[0]["mlm_loss"]
    assert fresh_loss > np.log(453) - 0.3  # ~uniform over the 453-token vocab
    assert started_loss < fresh_loss - 1.0, (started_loss, fresh_loss)


def test_init_checkpoint_loads_a_real_hugging_face_bert(tmp_path, minilm_dir):
    """--init_checkpoint with the real all-MiniLM-L6-v2 (HF layout, no pre-training heads): the encoder
    starts from its weights exactly (the first step's learning rate is 0), the heads start fresh."""
    from bert_keras.checkpoints import read_checkpoint

    _train(_config(tmp_path, num_train_steps=1, num_warmup_steps=1, train_batch_size=2, preset=None,
                   vocab_file=None, init_checkpoint=str(minilm_dir)))
    source = read_checkpoint(str(minilm_dir))
    exported = read_checkpoint(str(tmp_path / "export" / "bert_keras"))
    assert exported.config == source.config
    assert set(source.weights) < set(exported.weights)  # plus the fresh cls/* heads
    for name, value in source.weights.items():
        np.testing.assert_array_equal(exported.weights[name], value, err_msg=name)


def test_rematerialized_training_matches_plain_training_with_dropout():
    """--remat recomputes each block in the backward pass; with dropout on, the recomputation must draw the
    forward pass's masks again (a naive re-run draws new ones and gets a wrong gradient)."""
    import keras

    from bert_keras.config import BertConfig
    from bert_keras.pretraining.loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel
    from bert_keras.remat import _seed_generators

    config = BertConfig(**{**_LOOP_CONFIG, "num_hidden_layers": 2, "hidden_dropout_prob": 0.3,
                           "attention_probs_dropout_prob": 0.3})
    batch = _random_batch(np.random.default_rng(0), 4)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    initial = states = None
    results = {}
    for remat in (False, True):
        with strategy.scope():
            model = BertPretrainingModel(config, remat=remat)
            model.build()
            generators = _seed_generators(model)
            if initial is None:
                initial, states = model.get_weights(), [g.state.numpy() for g in generators]
            model.set_weights(initial)
            for generator, state in zip(generators, states):  # the same dropout masks in both runs
                generator.state.assign(state)
            optimizer = keras.optimizers.SGD(0.5)
            optimizer.build(model.trainable_variables)
        loop = build_train_loop(model, optimizer, strategy, jit_compile=True, clip_norm=None)
        totals = loop(iter(tf.data.Dataset.from_tensors(batch).repeat()), tf.constant(2)).numpy()
        results[remat] = totals, model.get_weights()
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-5)
    for plain, remat, before in zip(results[False][1], results[True][1], initial):
        np.testing.assert_allclose(remat, plain, rtol=1e-4, atol=1e-6)
    assert max(float(np.abs(w - b).max()) for w, b in zip(results[False][1], initial)) > 1e-3
