"""Entity-level NER scores with conlleval's chunk rules, and the `token gold predicted` file it reads.

A chunk (entity) is a maximal span of one type: it starts at B-X (or S-X), at I-X/E-X after O or after
another type, and ends before O, B-, S- or a type change. Sentences are scored independently (a chunk never
crosses a blank line). Precision, recall and F1 are micro-averaged over chunks, per type and overall,
exactly like conlleval.pl and seqeval's default (non-strict) mode; both IOB1 and IOB2 inputs are read this
way.

Usage: `python -m bert_keras.tasks.conll.evaluate PREDICTIONS.txt` (lines `token gold predicted`, blank line
between sentences; `-DOCSTART-` lines are skipped) prints the scores.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import sys
from collections.abc import Sequence

from bert_keras.text_files import open_text


def _split(tag: str) -> tuple[str, str]:
    if tag == "O":
        return "O", ""
    prefix, _, entity_type = tag.partition("-")
    if prefix not in ("B", "I", "E", "S") or not entity_type:
        raise ValueError(f"{tag!r} is not an IOB/IOBES tag")
    return prefix, entity_type


def _chunk_ends(prev_prefix: str, prefix: str, prev_type: str, entity_type: str) -> bool:
    if prev_prefix in ("E", "S"):
        return True
    if prev_prefix in ("B", "I") and prefix in ("B", "S", "O"):
        return True
    return prev_prefix != "O" and prev_type != entity_type


def _chunk_starts(prev_prefix: str, prefix: str, prev_type: str, entity_type: str) -> bool:
    if prefix in ("B", "S"):
        return True
    if prev_prefix in ("E", "S", "O") and prefix in ("E", "I"):
        return True
    return prefix != "O" and prev_type != entity_type


def chunks(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first, last) of every entity in one sentence's tags, by conlleval's rules."""
    found = []
    prev_prefix, prev_type, begin = "O", "", 0
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, entity_type = _split(tag)
        if _chunk_ends(prev_prefix, prefix, prev_type, entity_type):
            found.append((prev_type, begin, i - 1))
        if _chunk_starts(prev_prefix, prefix, prev_type, entity_type):
            begin = i
        prev_prefix, prev_type = prefix, entity_type
    return found


@dataclasses.dataclass(frozen=True)
class Scores:
    """Counts and micro P/R/F1 (fractions in [0, 1]) for one entity type or overall."""

    correct: int
    predicted: int
    gold: int

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                "correct": self.correct, "predicted": self.predicted, "gold": self.gold}


@dataclasses.dataclass(frozen=True)
class Report:
    overall: Scores
    per_type: dict[str, Scores]
    token_accuracy: float
    num_tokens: int

    def as_dict(self) -> dict:
        """Flat metric names (percent, like conlleval) for logs and TensorBoard."""
        out = {"f1": 100 * self.overall.f1, "precision": 100 * self.overall.precision,
               "recall": 100 * self.overall.recall, "token_accuracy": 100 * self.token_accuracy}
        for entity_type, scores in self.per_type.items():
            out[f"{entity_type}_f1"] = 100 * scores.f1
        return out

    def format(self) -> str:
        """A conlleval-style text table."""
        o = self.overall
        lines = [f"processed {self.num_tokens} tokens with {o.gold} phrases; found: {o.predicted} phrases; "
                 f"correct: {o.correct}.",
                 f"accuracy: {100 * self.token_accuracy:6.2f}%; precision: {100 * o.precision:6.2f}%; "
                 f"recall: {100 * o.recall:6.2f}%; FB1: {100 * o.f1:6.2f}"]
        for entity_type, s in sorted(self.per_type.items()):
            lines.append(f"{entity_type:>17}: precision: {100 * s.precision:6.2f}%; recall: "
                         f"{100 * s.recall:6.2f}%; FB1: {100 * s.f1:6.2f}  {s.predicted}")
        return "\n".join(lines)


def score(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> Report:
    """Entity-level scores of predicted tag sequences against gold ones (one list per sentence)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted ones")
    correct, n_gold, n_pred = collections.Counter(), collections.Counter(), collections.Counter()
    tokens = right_tokens = 0
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"Sentence {i}: {len(g)} gold tags but {len(p)} predicted tags")
        gold_chunks, pred_chunks = set(chunks(g)), set(chunks(p))
        for chunk in gold_chunks:
            n_gold[chunk[0]] += 1
        for chunk in pred_chunks:
            n_pred[chunk[0]] += 1
        for chunk in gold_chunks & pred_chunks:
            correct[chunk[0]] += 1
        tokens += len(g)
        right_tokens += sum(a == b for a, b in zip(g, p))
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {t: Scores(correct[t], n_pred[t], n_gold[t]) for t in types}
    overall = Scores(sum(correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    return Report(overall, per_type, right_tokens / tokens if tokens else 0.0, tokens)


def write_predictions(path: str | os.PathLike, words: Sequence[Sequence[str]], gold: Sequence[Sequence[str]],
                      predicted: Sequence[Sequence[str]]) -> None:
    """Writes `token gold predicted` lines, a blank line after each sentence (the conlleval input)."""
    with open(path, "w", encoding="utf-8") as f:
        for sentence_words, g, p in zip(words, gold, predicted, strict=True):
            for word, gold_tag, pred_tag in zip(sentence_words, g, p, strict=True):
                f.write(f"{word} {gold_tag} {pred_tag}\n")
            f.write("\n")


def read_predictions(path: str | os.PathLike) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Reads a conlleval input file; the last two columns are gold and predicted tags."""
    words, gold, predicted = [], [], []
    current: tuple[list, list, list] = ([], [], [])
    with open_text(path) as f:
        for line_number, line in enumerate(f, start=1):
            columns = line.split()
            if not columns or columns[0] == "-DOCSTART-":
                if current[0]:
                    words.append(current[0]), gold.append(current[1]), predicted.append(current[2])
                    current = ([], [], [])
                continue
            if len(columns) < 3:
                raise ValueError(f"{path}:{line_number}: expected `token ... gold predicted` (>= 3 columns), "
                                 f"got {len(columns)}: {line.rstrip()!r}")
            for tag in columns[-2:]:
                try:
                    _split(tag)
                except ValueError as e:
                    raise ValueError(f"{path}:{line_number}: {e}") from None
            current[0].append(columns[0]), current[1].append(columns[-2]), current[2].append(columns[-1])
    if current[0]:
        words.append(current[0]), gold.append(current[1]), predicted.append(current[2])
    if not words:
        raise ValueError(f"{path}: no tagged lines found")
    return words, gold, predicted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bert_keras.tasks.conll.evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("predictions", help="file of `token gold predicted` lines, blank line between sentences")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON instead of a table")
    args = parser.parse_args(argv)
    _, gold, predicted = read_predictions(args.predictions)
    report = score(gold, predicted)
    if args.json:
        print(json.dumps({"overall": report.overall.as_dict(), "token_accuracy": report.token_accuracy,
                          "per_type": {t: s.as_dict() for t, s in report.per_type.items()}}, indent=2))
    else:
        print(report.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
