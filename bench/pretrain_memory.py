"""Peak host memory of one BERT-base pre-training step at seq 512, with and without rematerialization.

    nice -n 10 python bench/pretrain_memory.py [--batch_size=4 --jit_compile]

Each variant runs in a fresh subprocess (peak RSS is per process): it builds BERT-base (vocab 30522) with
AdamW, then runs two train steps of the real pre-training loop on a random batch with 76 predictions.
Reports the resident memory before the first step (weights + optimizer state) and the process peak
(ru_maxrss); the difference is what the step itself needs, which `--remat` is meant to cut.
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


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child(remat: bool) -> dict:
    import resource

    import numpy as np
    import tensorflow as tf

    from bert_keras.config import preset
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining_loop import build_train_loop
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
    before = _rss_mb()
    stats = loop(iterator, tf.constant(2)).numpy()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"remat": remat, "before_step_mb": before, "peak_mb": peak, "step_mb": peak - before,
            "loss_finite": bool(np.all(np.isfinite(stats)))}


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
        print(f"{variant:6s} weights+optimizer {r['before_step_mb']:8.0f} MB  peak {r['peak_mb']:8.0f} MB  "
              f"step needs {r['step_mb']:8.0f} MB  finite={r['loss_finite']}")
    saved = results["plain"]["step_mb"] - results["remat"]["step_mb"]
    print(f"rematerialization saves {saved:.0f} MB of the step's memory "
          f"({100 * saved / max(results['plain']['step_mb'], 1e-9):.0f}%)")


if __name__ == "__main__":
    app.run(main)
