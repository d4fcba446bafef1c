"""Pre-training step throughput at BERT-mini shapes: ours vs keras-hub `BertMaskedLM` vs HF `BertForPreTraining`.

    nice -n 5 python bench/pretrain_speed.py [--steps=3 --repeats=5 --warmup=1]

All three train BERT-mini (4 layers, hidden 256, 4 heads, FFN 1024, vocab 30522, dropout 0.1) at seq 128,
batch 32, 20 masked positions, float32 (`--precision=mixed_bfloat16`: ours and keras-hub in bfloat16), AdamW
with global-norm clipping 1.0, on the same random batch, in one run. Ours runs MLM+NSP through the real
pre-training loop (`bert_keras.pretraining.loop`: `--steps` optimizer steps per `tf.function` call; XLA
per `--ours_jit`, off by default because TF's own CPU kernels measured faster here); its last transformer block
computes only the masked rows and [CLS], all that the losses read (`BertEncoder(output_positions=...)`), where
keras-hub and HF compute all 128 rows; the model FLOPs below count the full computation for every side. keras-hub runs MLM
only (it has no NSP head) through its compiled Keras train function (`steps_per_execution=--steps`, the
function `fit` runs), twice: with XLA (side `keras_hub`, the issue's peer) and without (side
`keras_hub_nojit`, its faster mode on this CPU). HF runs MLM+NSP in PyTorch eager on CPU (all
cores) in a child process (`peer_process`, which times its windows itself), driven window by window from
here: with TensorFlow loaded in the same process PyTorch's CPU step was ~10x slower (measured at batch 4:
1.8 s instead of 0.04 s in `optimizer.step` alone).

A window is `--steps` steps. Each side's first window (tracing + XLA compilation) is reported as compile
time, then `--warmup` untimed windows; then `--repeats` rounds time one window of every side in turn, so
all sides see the same machine load. Reported: median sequences/s over the timed windows (and min/max),
ratios, and achieved model FLOP/s as a share of a 2048x2048 float32 matmul's FLOP/s measured in the side's
own process (TF with XLA here, PyTorch in the child).
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402
from peer_process import PeerProcess, serve, timed  # noqa: E402

flags.DEFINE_integer("steps", 3, "Optimizer steps per timed window (ours: per tf.function call).")
flags.DEFINE_integer("repeats", 5, "Timed windows per side; the median is reported.")
flags.DEFINE_integer("warmup", 1, "Untimed windows after the compiling first call.")
flags.DEFINE_integer("batch_size", 32, "Sequences per step.")
flags.DEFINE_integer("seq_length", 128, "Tokens per sequence.")
flags.DEFINE_integer("predictions", 20, "Masked positions per sequence.")
flags.DEFINE_list("sides", ["ours", "keras_hub", "keras_hub_nojit", "hf"], "Which implementations to run.")
flags.DEFINE_bool("ours_jit", False, "XLA-compile our train step (keras_hub always runs with and without).")
flags.DEFINE_bool("peer_child", False, "Internal: serve the HF side to the parent process (bench/peer_process.py).")
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


def prepare(run_window) -> tuple[float, object]:
    """Runs the compiling first window and the warm-up windows; returns (first-window seconds, run_window)."""
    start = time.perf_counter()
    run_window()
    compile_seconds = time.perf_counter() - start
    for _ in range(FLAGS.warmup):
        run_window()
    return compile_seconds, run_window


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


def run_ours() -> tuple[float, object]:
    import keras
    import tensorflow as tf

    from bert_keras.config import preset
    from bert_keras.optimization import create_optimizer
    from bert_keras.pretraining.loop import build_train_loop
    from bert_keras.pretraining_model import BertPretrainingModel

    keras.mixed_precision.set_global_policy(FLAGS.precision)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = BertPretrainingModel(preset("mini", vocab_size=VOCAB))
        model.build()
        optimizer = create_optimizer(1e-4, 10000, 100, clip_norm=None, gradients_are_reduced=True)
        optimizer.build(model.trainable_variables)
    loop = build_train_loop(model, optimizer, strategy, jit_compile=FLAGS.ours_jit, clip_norm=1.0)
    iterator = iter(tf.data.Dataset.from_tensors(random_batch()).repeat())
    steps = tf.constant(FLAGS.steps)
    return prepare(lambda: loop(iterator, steps).numpy())


def run_keras_hub(jit_compile: bool = True) -> tuple[float, object]:
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
                  jit_compile=jit_compile, steps_per_execution=FLAGS.steps)
    x = {"token_ids": batch["input_word_ids"], "segment_ids": batch["input_type_ids"],
         "padding_mask": batch["input_mask"].astype(bool), "mask_positions": batch["masked_lm_positions"]}
    dataset = tf.data.Dataset.from_tensors((x, batch["masked_lm_ids"], batch["masked_lm_weights"])).repeat()
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=FLAGS.steps, epochs=1, verbose=0)  # traces and compiles, one window
    compile_seconds = time.perf_counter() - start
    train_function, iterator = model.train_function, iter(dataset)

    def window():
        train_function(iterator)
        model.optimizer.iterations.numpy()

    for _ in range(FLAGS.warmup):
        window()
    return compile_seconds, window


def run_hf() -> tuple[float, object]:
    """Runs in the child process (see `serve_hf`)."""
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

    return prepare(window)


def serve_hf() -> None:
    """The child process's side (see `peer_process`): the HF model, prepared and run window by window."""
    state = {}

    def prepare_hf() -> float:
        compile_seconds, state["window"] = run_hf()
        return compile_seconds

    serve({"peak": matmul_flops_torch, "prepare": prepare_hf, "window": lambda: timed(state["window"])})


def main(argv):
    del argv
    if FLAGS.peer_child:
        serve_hf()
        return
    import tensorflow as tf

    print(f"BERT-mini pre-training step, seq {FLAGS.seq_length}, batch {FLAGS.batch_size}, "
          f"{FLAGS.predictions} predictions, vocab {VOCAB}, {FLAGS.precision}; TF {tf.__version__}; "
          f"{os.cpu_count()} CPU cores; load average {os.getloadavg()[0]:.2f} at start")
    print(f"windows of {FLAGS.steps} steps: 1 compiling, {FLAGS.warmup} warm-up, {FLAGS.repeats} timed rounds")
    flops = train_flops()
    peaks = {"TF": matmul_flops_tf()}
    prepared = {}  # side -> (first-window seconds, function running one window and returning its seconds)
    for side, fn in (("ours", run_ours), ("keras_hub", run_keras_hub),
                     ("keras_hub_nojit", lambda: run_keras_hub(jit_compile=False))):
        if side in FLAGS.sides:
            compile_seconds, run_window = fn()
            prepared[side] = (compile_seconds, lambda run_window=run_window: timed(run_window))
    child = None
    if "hf" in FLAGS.sides:
        child = PeerProcess(__file__, [f"--{name}={getattr(FLAGS, name)}" for name in
                                       ("steps", "warmup", "batch_size", "seq_length", "predictions")])
        peaks["PyTorch"] = child.ask("peak")
        prepared["hf"] = (child.ask("prepare"), lambda: child.ask("window"))
    print(f"model FLOPs per step = {flops / 1e9:.1f} GFLOP; 2048x2048 float32 matmul: "
          + ", ".join(f"{k} {v / 1e9:.1f} GFLOP/s" for k, v in peaks.items()))
    for side, (compile_seconds, _) in prepared.items():
        print(f"{side:15s} first window (traces, compiles) {compile_seconds:6.1f} s")
    timings = {side: [] for side in prepared}
    for _ in range(FLAGS.repeats):
        for side, (_, run_window) in prepared.items():
            timings[side].append(FLAGS.steps * FLAGS.batch_size / run_window())
    if child:
        child.close()
    rates = {}
    for side, windows in timings.items():
        rate = rates[side] = statistics.median(windows)
        achieved = rate / FLAGS.batch_size * flops
        peak_name = "PyTorch" if side == "hf" else "TF"
        print(f"{side:15s} {rate:7.2f} sequences/s (median of {len(windows)}; min {min(windows):.2f}, max "
              f"{max(windows):.2f})  {achieved / 1e9:6.1f} GFLOP/s = {100 * achieved / peaks[peak_name]:5.1f}% of the "
              f"{peak_name} matmul")
    if "ours" in rates:
        for other in ("keras_hub", "keras_hub_nojit", "hf"):
            if other in rates:
                print(f"ours / {other} = {rates['ours'] / rates[other]:.2f}x")
    print(f"load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    app.run(main)
