"""Pre-training step throughput at BERT-mini shapes: ours vs keras-hub `BertMaskedLM` vs HF `BertForPreTraining`.

    nice -n 5 python bench/pretrain_speed.py [--steps=3 --repeats=5 --warmup=1]

All three train BERT-mini (4 layers, hidden 256, 4 heads, FFN 1024, vocab 30522, dropout 0.1) at seq 128,
batch 32, 20 masked positions, float32 (or `--precision=mixed_bfloat16` for ours and keras-hub), AdamW with global-norm clipping 1.0, on the same random batch, in
this one process, one after the other. Ours runs MLM+NSP through the real pre-training loop
(`bert_keras.pretraining_loop`: `--steps` optimizer steps per `tf.function` call, XLA on). keras-hub runs
MLM only (it has no NSP head) through `fit` with XLA and `steps_per_execution=--steps`, timed per execution
by a callback. HF runs MLM+NSP in PyTorch eager on CPU (all cores), timed per step.

Each side: the first call (tracing + XLA compilation + one window of steps) is reported as compile time;
then `--warmup` untimed windows, then `--repeats` timed windows of `--steps` steps. Reported: median
sequences/s over the timed windows (and min/max), ratios, and achieved model FLOP/s as a share of a
2048x2048 float32 matmul's FLOP/s measured in the same process (TF with XLA, and PyTorch).
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("steps", 3, "Optimizer steps per timed window (ours: per tf.function call).")
flags.DEFINE_integer("repeats", 5, "Timed windows per side; the median is reported.")
flags.DEFINE_integer("warmup", 1, "Untimed windows after the compiling first call.")
flags.DEFINE_integer("batch_size", 32, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("predictions", 20, "Masked positions per sequence.")
flags.DEFINE_list("sides", ["ours", "keras_hub", "hf"], "Which implementations to run.")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16"], "Keras dtype policy of ours and "
                  "keras-hub (HF stays float32).")
FLAGS = flags.FLAGS

LAYERS, HIDDEN, HEADS, FFN, VOCAB = 4, 256, 4, 1024, 30522


def random_batch(seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    b, s, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.predictions
    positions = np.sort(np.stack([rng.choice(np.arange(1, s), p, replace=False) for _ in range(b)]), axis=1)
    return {"input_word_ids": rng.integers(1000, VOCAB, (b, s)).astype("int32"),
            "input_mask": np.ones((b, s), "int32"),
            "input_type_ids": (np.arange(s) >= s // 2).astype("int32") * np.ones((b, 1), "int32"),
            "masked_lm_positions": positions.astype("int32"),
            "masked_lm_ids": rng.integers(1000, VOCAB, (b, p)).astype("int32"),
            "masked_lm_weights": np.ones((b, p), "float32"),
            "next_sentence_labels": rng.integers(0, 2, (b,)).astype("int32")}


def train_flops() -> float:
    """Model FLOPs of one training step: 3x the forward's (2 per multiply-add), MLM head included."""
    b, s, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.predictions
    per_token_layer = 2 * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)  # QKV+output, FFN in and out
    attention = 2 * 2 * s * HIDDEN  # scores and weighted sum, per token per layer
    encoder = b * s * LAYERS * (per_token_layer + attention)
    head = b * p * 2 * (HIDDEN * HIDDEN + HIDDEN * VOCAB)
    return 3.0 * (encoder + head)


def measure(run_window) -> dict:
    """`run_window()` runs FLAGS.steps steps. Returns compile seconds and per-window sequences/s."""
    start = time.perf_counter()
    run_window()
    compile_seconds = time.perf_counter() - start
    for _ in range(FLAGS.warmup):
        run_window()
    rates = []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        run_window()
        rates.append(FLAGS.steps * FLAGS.batch_size / (time.perf_counter() - start))
    return {"compile_s": compile_seconds, "rates": rates}


def median_seconds(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_flops_tf(n: int = 2048) -> float:
    import tensorflow as tf

    a = tf.random.normal([n, n])
    f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)
    return 2 * n ** 3 / median_seconds(lambda: f(a).numpy())


def matmul_flops_torch(n: int = 2048) -> float:
    import torch

    a = torch.randn(n, n)
    return 2 * n ** 3 / median_seconds(lambda: torch.matmul(a, a))


def run_ours() -> dict:
    import keras
    import tensorflow as tf

    from bert_keras.config import preset
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining_loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel

    keras.mixed_precision.set_global_policy(FLAGS.precision)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = BertPretrainingModel(preset("mini", vocab_size=VOCAB))
        model.build()
        optimizer = create_optimizer(1e-4, 10000, 100, clip_norm=None, gradients_are_reduced=True)
        optimizer.build(model.trainable_variables)
    loop = build_train_loop(model, optimizer, strategy, jit_compile=True, clip_norm=1.0)
    iterator = iter(tf.data.Dataset.from_tensors(random_batch()).repeat())
    steps = tf.constant(FLAGS.steps)
    return measure(lambda: loop(iterator, steps).numpy())


def run_keras_hub() -> dict:
    import keras
    import keras_hub
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(FLAGS.precision)
    batch = random_batch()
    backbone = keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=LAYERS, num_heads=HEADS,
                                             hidden_dim=HIDDEN, intermediate_dim=FFN, max_sequence_length=512)
    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01, global_clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[],
                  jit_compile=True, steps_per_execution=FLAGS.steps)
    x = {"token_ids": batch["input_word_ids"], "segment_ids": batch["input_type_ids"],
         "padding_mask": batch["input_mask"].astype(bool), "mask_positions": batch["masked_lm_positions"]}
    dataset = tf.data.Dataset.from_tensors((x, batch["masked_lm_ids"], batch["masked_lm_weights"])).repeat()

    class Clock(keras.callbacks.Callback):  # called once per execution of FLAGS.steps steps
        def __init__(self):
            super().__init__()
            self.times = []

        def on_train_begin(self, logs=None):
            self.times.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

    clock = Clock()
    windows = 1 + FLAGS.warmup + FLAGS.repeats
    model.fit(dataset, steps_per_epoch=windows * FLAGS.steps, epochs=1, verbose=0, callbacks=[clock])
    durations = [b - a for a, b in zip(clock.times, clock.times[1:])]
    assert len(durations) == windows, (len(durations), windows)
    timed = durations[1 + FLAGS.warmup:]
    return {"compile_s": durations[0], "rates": [FLAGS.steps * FLAGS.batch_size / d for d in timed]}


def run_hf() -> dict:
    import numpy as np
    import torch
    import transformers

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count() or 1)
    config = transformers.BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                                     num_attention_heads=HEADS, intermediate_size=FFN)
    model = transformers.BertForPreTraining(config).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
    batch = random_batch()
    labels = np.full(batch["input_word_ids"].shape, -100, np.int64)
    np.put_along_axis(labels, batch["masked_lm_positions"], batch["masked_lm_ids"], axis=1)
    inputs = dict(input_ids=torch.tensor(batch["input_word_ids"], dtype=torch.long),
                  attention_mask=torch.tensor(batch["input_mask"], dtype=torch.long),
                  token_type_ids=torch.tensor(batch["input_type_ids"], dtype=torch.long),
                  labels=torch.tensor(labels),
                  next_sentence_label=torch.tensor(batch["next_sentence_labels"], dtype=torch.long))

    def window():
        for _ in range(FLAGS.steps):
            optimizer.zero_grad()
            model(**inputs).loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()

    return measure(window)


def main(argv):
    del argv
    import tensorflow as tf

    print(f"BERT-mini pre-training step, seq {FLAGS.seq_length}, batch {FLAGS.batch_size}, "
          f"{FLAGS.predictions} predictions, vocab {VOCAB}, {FLAGS.precision}; TF {tf.__version__}; "
          f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.2f} at start")
    print(f"windows of {FLAGS.steps} steps: 1 compiling, {FLAGS.warmup} warm-up, {FLAGS.repeats} timed")
    flops = train_flops()
    peaks = {"TF": matmul_flops_tf()}
    if "hf" in FLAGS.sides:
        peaks["PyTorch"] = matmul_flops_torch()
    print(f"model FLOPs per step = {flops / 1e9:.1f} GFLOP; 2048x2048 float32 matmul: "
          + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items()))
    rates = {}
    for side, fn in (("ours", run_ours), ("keras_hub", run_keras_hub), ("hf", run_hf)):
        if side not in FLAGS.sides:
            continue
        result = fn()
        rate = rates[side] = statistics.median(result["rates"])
        achieved = rate / FLAGS.batch_size * flops
        peak_name = "PyTorch" if side == "hf" else "TF"
        print(f"{side:9s} {rate:7.2f} sequences/s (median; min {min(result['rates']):.2f}, max "
              f"{max(result['rates']):.2f})  first call {result['compile_s']:6.1f} s  "
              f"{achieved / 1e9:6.1f} GFLOP/s = {100 * achieved / peaks[peak_name]:5.1f}% of the {peak_name} matmul")
    if "ours" in rates:
        for other in ("keras_hub", "hf"):
            if other in rates:
                print(f"ours / {other} = {rates['ours'] / rates[other]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    app.run(main)
