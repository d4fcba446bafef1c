"""From per-window start/end logits to one answer per question, as in the original BERT `write_predictions`.

For every question: the top `n_best_size` start and end positions of EVERY window are paired, spans that
leave the context, end before they start, exceed `max_answer_length` tokens or start where that token has
more context in another window are dropped (`windows.answer_candidates`, the serving graph's rule), and the
rest are ranked by start+end logit. The answer text is sliced from the original context with the tokens'
character offsets, so it is exact.

SQuAD v2.0: the null score is the smallest [CLS] start+end logit over the question's windows; the question
is answered "" when `null score - best span score > null_score_diff_threshold`. That difference is written
as `null_odds.json` (the official scorer's --na-prob-file), and `best_null_threshold` searches the threshold
that maximises dev F1 (saved to a file for reuse at prediction time).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from typing import Sequence

import numpy as np
import tensorflow as tf

from bert_keras.tasks.squad import evaluate as squad_evaluate
from bert_keras.tasks.squad import windows
from bert_keras.tasks.squad.data import SquadExample
from bert_keras.tasks.squad.features import SquadFeatures


@dataclasses.dataclass(frozen=True)
class Candidate:
    text: str
    start_logit: float
    end_logit: float
    char_start: int = -1  # -1: the null answer
    char_end: int = -1

    @property
    def score(self) -> float:
        return self.start_logit + self.end_logit


@dataclasses.dataclass
class QuestionAnswer:
    """Post-processed result for one question: `best_span` ignores the null answer; `null_score_diff` is
    null score minus best span score (v2.0's no-answer odds; +inf if there is no valid span)."""

    best_span: Candidate | None
    nbest: list[Candidate]
    null_score_diff: float

    def prediction(self, null_score_diff_threshold: float | None) -> str:
        """Answer text; `None` threshold = v1.1 (never answer "")."""
        if self.best_span is None:
            return ""
        if null_score_diff_threshold is not None and self.null_score_diff > null_score_diff_threshold:
            return ""
        return self.best_span.text


def _window_candidates(features: SquadFeatures, start_logits: np.ndarray, end_logits: np.ndarray,
                       n_best_size: int, max_answer_length: int) -> list[list[tuple[int, int]]]:
    """Per window, its valid (start, end) positions among the top-n starts x top-n ends, start rank first: the
    serving graph's rule (`windows.answer_candidates`), for all windows at once."""
    length = start_logits.shape[1]
    in_context = features.token_char_start[:, :length] >= 0
    may_start = in_context & features.token_is_max_context[:, :length]
    candidates = windows.answer_candidates(tf.constant(start_logits), tf.constant(end_logits), tf.constant(may_start),
                                           tf.constant(in_context), n_best_size, max_answer_length)
    starts, ends, valid = candidates.start.numpy(), candidates.end.numpy(), candidates.valid.numpy()
    out = []
    for row in range(len(valid)):
        i, j = np.nonzero(valid[row])  # row-major: start rank, then end rank
        out.append(list(zip(starts[row, i].tolist(), ends[row, j].tolist())))
    return out


def postprocess(examples: Sequence[SquadExample], features: SquadFeatures, start_logits: np.ndarray,
                end_logits: np.ndarray, *, n_best_size: int = 20, max_answer_length: int = 30,
                with_null: bool = False) -> dict[str, QuestionAnswer]:
    """{qas_id: QuestionAnswer} for every example that has at least one window in `features`.

    `start_logits`/`end_logits` are [num_windows, seq] (seq may be shorter than the feature length when
    padding was trimmed; missing positions are padding). `with_null` adds v2.0's null candidate.
    """
    if len(start_logits) != len(features) or len(end_logits) != len(features):
        raise ValueError(f"got logits for {len(start_logits)}/{len(end_logits)} windows but there are "
                         f"{len(features)} features")
    windows_of = collections.defaultdict(list)
    for row, example_index in enumerate(features.example_index):
        windows_of[int(example_index)].append(row)
    candidates = _window_candidates(features, start_logits, end_logits, n_best_size, max_answer_length)
    results = {}
    for example_index, rows in windows_of.items():
        example = examples[example_index]
        spans = []
        null_score, null_logits = np.inf, (0.0, 0.0)
        for row in rows:
            length = start_logits.shape[1]
            starts, ends = start_logits[row], end_logits[row]
            char_start = features.token_char_start[row][:length]
            char_end = features.token_char_end[row][:length]
            if starts[0] + ends[0] < null_score:
                null_score, null_logits = float(starts[0] + ends[0]), (float(starts[0]), float(ends[0]))
            for s, e in candidates[row]:
                spans.append((float(starts[s] + ends[e]), float(starts[s]), float(ends[e]),
                              int(char_start[s]), int(char_end[e])))
        spans.sort(key=lambda span: -span[0])
        nbest, seen = [], set()
        for _, start_logit, end_logit, c0, c1 in spans:
            text = example.context[c0:c1]
            if text in seen:
                continue
            seen.add(text)
            nbest.append(Candidate(text, start_logit, end_logit, c0, c1))
            if len(nbest) == n_best_size:
                break
        best_span = nbest[0] if nbest else None
        if with_null:
            nbest.append(Candidate("", *null_logits))
            nbest.sort(key=lambda c: -c.score)
            nbest = nbest[:n_best_size] if any(c.text == "" for c in nbest[:n_best_size]) else nbest
        diff = null_score - best_span.score if best_span is not None else float("inf")
        results[example.qas_id] = QuestionAnswer(best_span, nbest, diff)
    return results


def nbest_probabilities(candidates: Sequence[Candidate]) -> list[float]:
    scores = np.array([c.score for c in candidates], np.float64)
    if not len(scores):
        return []
    exp = np.exp(scores - scores.max())
    return (exp / exp.sum()).tolist()


def predictions(answers: dict[str, QuestionAnswer], null_score_diff_threshold: float | None) -> dict[str, str]:
    return {qid: a.prediction(null_score_diff_threshold) for qid, a in answers.items()}


def null_odds(answers: dict[str, QuestionAnswer]) -> dict[str, float]:
    """{qid: null_score_diff}, finite (no valid span -> a large value) so it is valid JSON."""
    return {qid: min(a.null_score_diff, 1e6) for qid, a in answers.items()}


def best_null_threshold(examples: Sequence[SquadExample], answers: dict[str, QuestionAnswer]) -> dict[str, float]:
    """Threshold on null_score_diff that maximises dev F1 (and EM), via the official threshold sweep.

    The sweep sees the best NON-null span of every question (threshold = +inf), so every threshold is
    reachable; scoring "" wherever null_score_diff > threshold then gives exactly `best_f1`. Where answering
    "" everywhere is best, the official sweep reports threshold 0.0; here it is set below every odds value
    so that applying it reproduces that score.
    """
    dataset = squad_evaluate.dataset_from_examples(examples)
    spans = predictions(answers, None)
    odds = null_odds(answers)
    has_answer = squad_evaluate.has_answer_by_id(dataset)
    exact, f1 = squad_evaluate.raw_scores_v2(dataset, spans)
    best_exact, exact_threshold = squad_evaluate.find_best_threshold(spans, exact, odds, has_answer)
    best_f1, f1_threshold = squad_evaluate.find_best_threshold(spans, f1, odds, has_answer)
    all_null = 100.0 * sum(not v for v in has_answer.values()) / len(f1)
    below_all = min(odds.values()) - 1.0
    exact_threshold = below_all if best_exact == all_null else exact_threshold
    f1_threshold = below_all if best_f1 == all_null else f1_threshold
    return {"null_score_diff_threshold": f1_threshold, "best_f1": best_f1, "best_exact": best_exact,
            "best_exact_thresh": exact_threshold}


def write_prediction_files(output_dir: str, answers: dict[str, QuestionAnswer],
                           null_score_diff_threshold: float | None, prefix: str = "") -> list[str]:
    """predictions.json (qid -> text), nbest_predictions.json, and for v2.0 null_odds.json."""
    os.makedirs(output_dir, exist_ok=True)
    files = {f"{prefix}predictions.json": predictions(answers, null_score_diff_threshold),
             f"{prefix}nbest_predictions.json": {
                 qid: [{"text": c.text, "probability": p, "start_logit": c.start_logit, "end_logit": c.end_logit}
                       for c, p in zip(a.nbest, nbest_probabilities(a.nbest))]
                 for qid, a in answers.items()}}
    if null_score_diff_threshold is not None:
        files[f"{prefix}null_odds.json"] = null_odds(answers)
    paths = []
    for name, content in files.items():
        path = os.path.join(output_dir, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(content, f, indent=1, ensure_ascii=False)
        paths.append(path)
    return paths


def read_null_threshold(path: str) -> float:
    """The threshold written by a previous dev evaluation (`best_null_threshold.json`)."""
    with open(path, encoding="utf-8") as f:
        return float(json.load(f)["null_score_diff_threshold"])
