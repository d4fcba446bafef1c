"""Pre-training step throughput at BERT-mini shapes: ours vs keras-hub `BertMaskedLM` vs HF `BertForPreTraining`.

    nice -n 10 python bench/pretrain_speed.py [--steps=10 --repeats=5]

All three train BERT-mini (4 layers, hidden 256, 4 heads, FFN 1024, vocab 30522) at seq 128, batch 32,
20 masked positions with AdamW, on the same random batch, in this one process. Ours runs MLM+NSP through
the real pre-training loop (`bert_keras.pretraining_loop`, XLA on); keras-hub runs MLM only (it has no NSP
head) through `fit` with XLA and steps_per_execution; HF runs MLM+NSP in PyTorch eager on CPU. Reports the
median sequences/s over `--repeats` timed windows, the ratios, and the achieved model FLOP/s as a share
of a large float32 matmul's FLOP/s measured in the same run.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("steps", 10, "Train steps per timed window.")
flags.DEFINE_integer("repeats", 5, "Timed windows per model (the median is reported).")
flags.DEFINE_integer("batch_size", 32, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("predictions", 20, "Masked positions per sequence.")
flags.DEFINE_list("sides", ["ours", "keras_hub", "hf"], "Which implementations to run.")
FLAGS = flags.FLAGS

LAYERS, HIDDEN, HEADS, FFN, VOCAB = 4, 256, 4, 1024, 30522


def random_batch(seed: int = 0) -> dict:
    import numpy as np

    rng = np.random.default_rng(seed)
    b, s, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.predictions
    positions = np.sort(np.stack([rng.choice(np.arange(1, s), p, replace=False) for _ in range(b)]), axis=1)
    return {"input_word_ids": rng.integers(1000, VOCAB, (b, s)).astype("int32"),
            "input_mask": np.ones((b, s), "int32"), "input_type_ids": (np.arange(s) >= s // 2).astype("int32")
            * np.ones((b, 1), "int32"),
            "masked_lm_positions": positions.astype("int32"),
            "masked_lm_ids": rng.integers(1000, VOCAB, (b, p)).astype("int32"),
            "masked_lm_weights": np.ones((b, p), "float32"),
            "next_sentence_labels": rng.integers(0, 2, (b,)).astype("int32")}


def train_flops() -> float:
    """Model FLOPs of one training step (3x the forward's multiply-adds x2), MLM head included."""
    b, s, p = FLAGS.batch_size, FLAGS.seq_length, FLAGS.predictions
    per_token_layer = 2 * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)  # QKV+output, FFN in and out
    attention = 2 * 2 * s * HIDDEN  # scores and weighted sum, per token per layer
    encoder = b * s * LAYERS * (per_token_layer + attention)
    head = b * p * 2 * (HIDDEN * HIDDEN + HIDDEN * VOCAB)
    return 3.0 * (encoder + head)


def timed(step, steps_per_call: int) -> float:
    """Median sequences/s of `step()` (which runs `steps_per_call` steps) over FLAGS.repeats windows."""
    step()  # compile / warm up
    rates = []
    for _ in range(FLAGS.repeats):
        start = time.perf_counter()
        for _ in range(max(1, FLAGS.steps // steps_per_call)):
            step()
        elapsed = time.perf_counter() - start
        rates.append(max(1, FLAGS.steps // steps_per_call) * steps_per_call * FLAGS.batch_size / elapsed)
    return statistics.median(rates)


def matmul_flops_tf(n: int = 2048) -> float:
    import tensorflow as tf

    a = tf.random.normal([n, n])
    f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)
    f(a).numpy()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        f(a).numpy()
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / statistics.median(times)


def run_ours() -> float:
    import keras
    import tensorflow as tf

    from bert_keras.config import preset
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining_loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel

    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = BertPretrainingModel(preset("mini", vocab_size=VOCAB))
        model.build()
        optimizer = create_optimizer(1e-4, 10000, 100, clip_norm=None, gradients_are_reduced=True)
        optimizer.build(model.trainable_variables)
    loop = build_train_loop(model, optimizer, strategy, jit_compile=True, clip_norm=1.0)
    iterator = iter(tf.data.Dataset.from_tensors(random_batch()).repeat())
    steps = tf.constant(FLAGS.steps)
    del keras
    return timed(lambda: loop(iterator, steps).numpy(), FLAGS.steps)


def run_keras_hub() -> float:
    import keras
    import keras_hub
    import tensorflow as tf

    batch = random_batch()
    backbone = keras_hub.models.BertBackbone(vocabulary_size=VOCAB, num_layers=LAYERS, num_heads=HEADS,
                                             hidden_dim=HIDDEN, intermediate_dim=FFN,
                                             max_sequence_length=512)
    model = keras_hub.models.BertMaskedLM(backbone, preprocessor=None)
    model.compile(optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.01, global_clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[],
                  jit_compile=True, steps_per_execution=FLAGS.steps)
    x = {"token_ids": batch["input_word_ids"], "segment_ids": batch["input_type_ids"],
         "padding_mask": batch["input_mask"].astype(bool), "mask_positions": batch["masked_lm_positions"]}
    dataset = tf.data.Dataset.from_tensors((x, batch["masked_lm_ids"], batch["masked_lm_weights"])).repeat()
    return timed(lambda: model.fit(dataset, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0), FLAGS.steps)


def run_hf() -> tuple[float, float]:
    import numpy as np
    import torch
    import transformers

    torch.manual_seed(0)
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
                  labels=torch.tensor(labels), next_sentence_label=torch.tensor(batch["next_sentence_labels"],
                                                                                dtype=torch.long))

    def step():
        optimizer.zero_grad()
        model(**inputs).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    a = torch.randn(2048, 2048)
    torch.matmul(a, a)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        torch.matmul(a, a)
        times.append(time.perf_counter() - start)
    return timed(step, 1), 2 * 2048 ** 3 / statistics.median(times)


def main(argv):
    del argv
    import tensorflow as tf

    print(f"BERT-mini pre-training step, seq {FLAGS.seq_length}, batch {FLAGS.batch_size}, "
          f"{FLAGS.predictions} predictions, vocab {VOCAB}; TF {tf.__version__}, CPU threads: "
          f"{os.cpu_count()}")
    peak = matmul_flops_tf()
    flops = train_flops()
    print(f"reference: 2048x2048 float32 matmul (TF, XLA) = {peak / 1e9:.1f} GFLOP/s; "
          f"model FLOPs per step = {flops / 1e9:.2f} GFLOP")
    rates = {}
    for side, fn in (("ours", run_ours), ("keras_hub", run_keras_hub), ("hf", run_hf)):
        if side not in FLAGS.sides:
            continue
        result = fn()
        if side == "hf":
            result, torch_peak = result
            print(f"reference: 2048x2048 float32 matmul (PyTorch) = {torch_peak / 1e9:.1f} GFLOP/s")
        rates[side] = result
        achieved = result / FLAGS.batch_size * flops
        print(f"{side:10s} {result:8.1f} sequences/s (median of {FLAGS.repeats})  "
              f"{achieved / 1e9:6.1f} GFLOP/s = {100 * achieved / peak:5.1f}% of the TF matmul")
    if "ours" in rates:
        for other in ("keras_hub", "hf"):
            if other in rates:
                print(f"ours / {other} = {rates['ours'] / rates[other]:.2f}x")


if __name__ == "__main__":
    app.run(main)
