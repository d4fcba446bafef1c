"""Peak host memory of one BERT-base pre-training step at seq 512, with and without rematerialization.

    nice -n 5 python bench/pretrain_memory.py [--batch_size=4 --nojit_compile]

Each variant runs in a fresh subprocess: it builds BERT-base (vocab 30522, dropout 0.1) with AdamW and runs
the real pre-training loop (`bert_keras.pretraining.loop`) on a random batch with 76 predictions: one
step that also traces and compiles, then one measured step. Before the measured step freed heap memory is
returned to the OS (`malloc_trim`) and the kernel's peak-RSS mark is reset (`/proc/self/clear_refs`), so the
reported step peak excludes compilation. Reports: resident memory with weights + optimizer state, the
first call's peak (compilation included), the measured step's peak, that peak above the weights +
optimizer state (activations, gradients and XLA buffers: what `--remat` is meant to cut), and the step's
time. (The step's buffers stay resident between steps, so the RSS right before the measured step is
already close to its peak.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("batch_size", 4, "Sequences per step.")
flags.DEFINE_integer("seq_length", 512, "Tokens per sequence.")
flags.DEFINE_bool("jit_compile", True, "XLA-compile the step.")
flags.DEFINE_string("preset", "base", "Model size.")
flags.DEFINE_string("child", None, "Internal: run one variant ('remat' or 'plain') and print JSON.")
FLAGS = flags.FLAGS


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    """Returns freed heap pages to the OS, then resets the peak-RSS mark (VmHWM) to the current RSS."""
    import ctypes

    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def child(remat: bool) -> dict:
    import time

    import numpy as np
    import tensorflow as tf

    from bert_keras.config import preset
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining.loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel

    b, s, p = FLAGS.batch_size, FLAGS.seq_length, 76
    rng = np.random.default_rng(0)
    batch = {"input_word_ids": rng.integers(1000, 30522, (b, s)).astype("int32"),
             "input_mask": np.ones((b, s), "int32"), "input_type_ids": np.zeros((b, s), "int32"),
             "masked_lm_positions": np.sort(rng.integers(1, s, (b, p)), axis=1).astype("int32"),
             "masked_lm_ids": rng.integers(1000, 30522, (b, p)).astype("int32"),
             "masked_lm_weights": np.ones((b, p), "float32"), "next_sentence_labels": np.zeros((b,), "int32")}
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = BertPretrainingModel(preset(FLAGS.preset), remat=remat)
        model.build()
        optimizer = create_optimizer(1e-4, 1000, 10, clip_norm=None, gradients_are_reduced=True)
        optimizer.build(model.trainable_variables)
    loop = build_train_loop(model, optimizer, strategy, jit_compile=FLAGS.jit_compile)
    iterator = iter(tf.data.Dataset.from_tensors(batch).repeat())
    one = tf.constant(1)
    resident = _status_mb("VmRSS")
    start = time.perf_counter()
    first = loop(iterator, one).numpy()
    first_seconds = time.perf_counter() - start
    first_peak = _status_mb("VmHWM")
    _reset_peak()
    before_step = _status_mb("VmRSS")
    start = time.perf_counter()
    second = loop(iterator, one).numpy()
    step_seconds = time.perf_counter() - start
    step_peak = _status_mb("VmHWM")
    return {"remat": remat, "resident_mb": resident, "first_call_peak_mb": first_peak, "first_call_s": first_seconds,
            "before_step_mb": before_step, "step_peak_mb": step_peak, "step_above_state_mb": step_peak - resident,
            "step_s": step_seconds, "loss_finite": bool(np.all(np.isfinite(first)) and np.all(np.isfinite(second)))}


def main(argv):
    del argv
    if FLAGS.child:
        print("RESULT" + json.dumps(child(FLAGS.child == "remat")))
        return
    print(f"BERT-{FLAGS.preset} train step, seq {FLAGS.seq_length}, batch {FLAGS.batch_size}, "
          f"XLA {'on' if FLAGS.jit_compile else 'off'}")
    results = {}
    for variant in ("plain", "remat"):
        out = subprocess.run([sys.executable, __file__, f"--child={variant}", f"--batch_size={FLAGS.batch_size}",
                              f"--seq_length={FLAGS.seq_length}", f"--preset={FLAGS.preset}",
                              "--jit_compile" if FLAGS.jit_compile else "--nojit_compile"],
                             capture_output=True, text=True, check=False)
        if out.returncode:
            raise SystemExit(f"{variant} run failed:\n{out.stderr[-3000:]}")
        results[variant] = json.loads(out.stdout.split("RESULT", 1)[1])
        r = results[variant]
        print(f"{variant:6s} weights+optimizer {r['resident_mb']:6.0f} MB | first call (compiles) peak "
              f"{r['first_call_peak_mb']:6.0f} MB in {r['first_call_s']:5.1f} s | measured step: peak "
              f"{r['step_peak_mb']:6.0f} MB (RSS before it {r['before_step_mb']:6.0f} MB), "
              f"{r['step_above_state_mb']:6.0f} MB above weights+optimizer, {r['step_s']:5.1f} s | "
              f"finite={r['loss_finite']}")
    plain, remat = results["plain"], results["remat"]
    saved = plain["step_above_state_mb"] - remat["step_above_state_mb"]
    print(f"rematerialization: step peak {remat['step_peak_mb']:.0f} vs {plain['step_peak_mb']:.0f} MB; the memory "
          f"above weights+optimizer shrinks by {saved:.0f} MB "
          f"({100 * saved / max(plain['step_above_state_mb'], 1e-9):.0f}%); "
          f"step time x{remat['step_s'] / plain['step_s']:.2f}")


if __name__ == "__main__":
    app.run(main)
