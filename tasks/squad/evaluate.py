"""SQuAD scoring, behaving exactly like the official evaluate-v1.1.py and evaluate-v2.0.py.

The two official scripts differ in small ways that change numbers, so both are kept apart here:
v1.1 counts a missing prediction as 0 and gives F1 0 whenever no token overlaps (even for two empty
strings); v2.0 drops gold answers that normalize to "", treats a question without answers as
"no answer" (only "" is right), gives F1 1/0 when either side is empty, skips missing predictions, and
with no-answer probabilities searches the best threshold.

Command line (same shape and output keys as the official scripts):
  python -m bert_keras.tasks.squad.evaluate DATA.json PREDICTIONS.json [--na-prob-file NULL_ODDS.json]
The v1.1 rules apply to files whose "version" is "1.1" (override with --version).
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import string
import sys
from typing import Callable, Iterable, Mapping, Sequence

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower case, drop ASCII punctuation, drop the articles a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


# --- v1.1 ---------------------------------------------------------------------------------------------

def _overlap_f1(prediction_tokens: list[str], truth_tokens: list[str]) -> float:
    """Bag-of-tokens F1 (Counter intersection); 0 when nothing overlaps."""
    num_same = sum((collections.Counter(prediction_tokens) & collections.Counter(truth_tokens)).values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_v1(prediction: str, ground_truth: str) -> float:
    return _overlap_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def exact_match_v1(prediction: str, ground_truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(ground_truth))


def _max_over(metric: Callable[[str, str], float], prediction: str, ground_truths: Iterable[str]) -> float:
    return max(metric(prediction, truth) for truth in ground_truths)


def _questions(dataset: Sequence[dict]) -> Iterable[dict]:
    for article in dataset:
        for paragraph in article["paragraphs"]:
            yield from paragraph["qas"]


def evaluate_v1(dataset: Sequence[dict], predictions: Mapping[str, str]) -> dict[str, float]:
    """evaluate-v1.1: `dataset` is the JSON's "data" list. Missing predictions score 0 (with a message)."""
    f1 = exact_match = total = 0.0
    for qa in _questions(dataset):
        total += 1
        if qa["id"] not in predictions:
            print(f"Unanswered question {qa['id']} will receive score 0.", file=sys.stderr)
            continue
        ground_truths = [answer["text"] for answer in qa["answers"]]
        prediction = predictions[qa["id"]]
        exact_match += _max_over(exact_match_v1, prediction, ground_truths)
        f1 += _max_over(f1_v1, prediction, ground_truths)
    return {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}


# --- v2.0 ---------------------------------------------------------------------------------------------

def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_v2(gold: str, prediction: str) -> int:
    return int(normalize_answer(gold) == normalize_answer(prediction))


def f1_v2(gold: str, prediction: str) -> float:
    gold_tokens, prediction_tokens = _tokens(gold), _tokens(prediction)
    if not gold_tokens or not prediction_tokens:
        return float(gold_tokens == prediction_tokens)  # no-answer: right only if both are empty
    return _overlap_f1(prediction_tokens, gold_tokens)


def has_answer_by_id(dataset: Sequence[dict]) -> dict[str, bool]:
    return {qa["id"]: bool(qa["answers"]) for qa in _questions(dataset)}


def raw_scores_v2(dataset: Sequence[dict], predictions: Mapping[str, str]
                  ) -> tuple[dict[str, float], dict[str, float]]:
    exact, f1 = {}, {}
    for qa in _questions(dataset):
        qid = qa["id"]
        golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
        if qid not in predictions:
            print(f"Missing prediction for {qid}")
            continue
        exact[qid] = max(exact_v2(g, predictions[qid]) for g in golds)
        f1[qid] = max(f1_v2(g, predictions[qid]) for g in golds)
    return exact, f1


def _apply_no_answer_threshold(scores, na_probs, has_answer, threshold):
    return {qid: float(not has_answer[qid]) if na_probs[qid] > threshold else s for qid, s in scores.items()}


def _summary(exact: Mapping[str, float], f1: Mapping[str, float], qids: Sequence[str] | None = None):
    qids = list(exact) if not qids else qids
    return collections.OrderedDict([("exact", 100.0 * sum(exact[q] for q in qids) / len(qids)),
                                    ("f1", 100.0 * sum(f1[q] for q in qids) / len(qids)),
                                    ("total", len(qids))])


def find_best_threshold(predictions: Mapping[str, str], scores: Mapping[str, float],
                        na_probs: Mapping[str, float], has_answer: Mapping[str, bool]) -> tuple[float, float]:
    """(best score in percent, threshold): predict "" where na_prob > threshold, sweeping the observed
    na_probs in ascending order (the official `find_best_thresh`)."""
    best = current = sum(1 for q in has_answer if not has_answer[q])
    best_threshold = 0.0
    for qid in sorted(na_probs, key=lambda q: na_probs[q]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            current += scores[qid]
        else:
            current += -1 if predictions[qid] else 0
        if current > best:
            best, best_threshold = current, na_probs[qid]
    return 100.0 * best / len(scores), best_threshold


def evaluate_v2(dataset: Sequence[dict], predictions: Mapping[str, str],
                na_probs: Mapping[str, float] | None = None, na_prob_thresh: float = 1.0) -> dict[str, float]:
    """evaluate-v2.0: exact/f1/total, HasAns_*, NoAns_*, and with `na_probs` best_exact/best_f1(+_thresh)."""
    with_na_probs = na_probs is not None
    na_probs = na_probs if with_na_probs else {k: 0.0 for k in predictions}
    has_answer = has_answer_by_id(dataset)
    exact_raw, f1_raw = raw_scores_v2(dataset, predictions)
    exact = _apply_no_answer_threshold(exact_raw, na_probs, has_answer, na_prob_thresh)
    f1 = _apply_no_answer_threshold(f1_raw, na_probs, has_answer, na_prob_thresh)
    result = _summary(exact, f1)
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [q for q, v in has_answer.items() if v == wanted]
        if qids:
            for key, value in _summary(exact, f1, qids).items():
                result[f"{prefix}_{key}"] = value
    if with_na_probs:
        result["best_exact"], result["best_exact_thresh"] = find_best_threshold(
            predictions, exact_raw, na_probs, has_answer)
        result["best_f1"], result["best_f1_thresh"] = find_best_threshold(predictions, f1_raw, na_probs, has_answer)
    return dict(result)


# --- data from SquadExamples and the command line -----------------------------------------------------

def dataset_from_examples(examples) -> list[dict]:
    """The official "data" structure (one article) holding each example's id and gold texts, so examples
    read from TFDS or JSON are scored by the same code path."""
    qas = [{"id": e.qas_id, "answers": [{"text": t} for t in e.gold_texts]} for e in examples]
    return [{"paragraphs": [{"qas": qas}]}]


def _load(path: str, what: str):
    from bert_keras.tasks.squad.data import load_squad_json

    try:
        return load_squad_json(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} file not found: {path}") from None


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser("Official-equivalent evaluation for SQuAD v1.1 and v2.0.")
    parser.add_argument("data_file", metavar="data.json", help="Input data JSON file.")
    parser.add_argument("pred_file", metavar="pred.json", help="Model predictions.")
    parser.add_argument("--na-prob-file", "-n", metavar="na_prob.json",
                        help="Model estimates of probability of no answer (v2.0).")
    parser.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                        help='Predict "" if no-answer probability exceeds this (default = 1.0; v2.0).')
    parser.add_argument("--out-file", "-o", metavar="eval.json", help="Write the metrics here instead of stdout.")
    parser.add_argument("--version", choices=["1.1", "2.0"], default=None,
                        help='Rules to apply (default: "1.1" if the data file says version 1.1, else 2.0).')
    args = parser.parse_args(argv)
    dataset_json = _load(args.data_file, "data")
    predictions = _load(args.pred_file, "predictions")
    if not isinstance(predictions, dict):
        raise ValueError(f"{args.pred_file}: expected a JSON object mapping question id -> answer text")
    version = args.version or ("1.1" if str(dataset_json.get("version")) == "1.1" else "2.0")
    if version == "1.1":
        if dataset_json.get("version") != "1.1":
            print(f"Evaluation expects v-1.1, but got dataset with v-{dataset_json.get('version')}", file=sys.stderr)
        result = evaluate_v1(dataset_json["data"], predictions)
        text = json.dumps(result)
    else:
        na_probs = _load(args.na_prob_file, "na-prob") if args.na_prob_file else None
        result = evaluate_v2(dataset_json["data"], predictions, na_probs, args.na_prob_thresh)
        text = json.dumps(result, indent=2)
    if args.out_file:
        with open(args.out_file, "w", encoding="utf-8") as f:
            json.dump(result, f)
    else:
        print(text)
    return result


if __name__ == "__main__":
    main()
