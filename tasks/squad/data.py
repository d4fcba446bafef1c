"""Reading SQuAD v1.1 / v2.0 into `SquadExample`s, from the official JSON files or a local TFDS `squad/*` copy.

Answers are checked against their context at `answer_start` (a character offset): a mismatch is counted and
reported, and such an answer is never used as a training target, so a broken label cannot silently teach
the model a wrong span.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Iterable

from absl import logging

from bert_keras.text_files import read_text


@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclasses.dataclass(frozen=True)
class SquadExample:
    """One question about one context. `answers` holds only answers that match the context exactly (the
    training targets); `gold_texts` every answer text as written in the file (what the official scorer uses)."""

    qas_id: str
    question: str
    context: str
    answers: tuple[Answer, ...] = ()
    is_impossible: bool = False
    title: str = ""
    gold_texts: tuple[str, ...] = ()

    @property
    def train_answer(self) -> Answer | None:
        """The answer used as training target (the first, as in the original BERT), or None."""
        return self.answers[0] if self.answers and not self.is_impossible else None


@dataclasses.dataclass
class ReadReport:
    """What reading a dataset found; `mismatched_answers` lists (qas_id, answer_text, answer_start)."""

    source: str
    num_examples: int = 0
    num_answerable: int = 0
    num_impossible: int = 0
    mismatched_answers: list[tuple[str, str, int]] = dataclasses.field(default_factory=list)
    unanswered_after_check: list[str] = dataclasses.field(default_factory=list)

    def log(self) -> None:
        logging.info("%s: %d questions (%d answerable, %d unanswerable)", self.source, self.num_examples,
                     self.num_answerable, self.num_impossible)
        if self.mismatched_answers:
            shown = "; ".join(f"{q}: {t!r}@{s}" for q, t, s in self.mismatched_answers[:5])
            logging.warning("%s: %d answer(s) do not match the context at answer_start and were dropped "
                            "(first: %s)", self.source, len(self.mismatched_answers), shown)
        if self.unanswered_after_check:
            logging.warning("%s: %d answerable question(s) lost every answer to that check and are skipped "
                            "for training (e.g. %s)", self.source, len(self.unanswered_after_check),
                            self.unanswered_after_check[:5])


def _field(obj: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ValueError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        expected = " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__
        raise ValueError(f"{where}: field {key!r} must be {expected}, got {type(value).__name__}")
    return value


def _make_example(qas_id: str, question: str, context: str, title: str, raw_answers: Iterable[tuple[str, int]],
                  is_impossible: bool, report: ReadReport) -> SquadExample:
    answers = []
    for text, start in raw_answers:
        if context[start:start + len(text)] == text and text:
            answers.append(Answer(text, start))
        else:
            report.mismatched_answers.append((qas_id, text, start))
    if is_impossible:
        answers = []  # v2.0 lists "plausible_answers" separately; an impossible question has no target
    elif not answers:
        report.unanswered_after_check.append(qas_id)
    report.num_examples += 1
    report.num_impossible += is_impossible
    report.num_answerable += not is_impossible
    gold_texts = () if is_impossible else tuple(text for text, _ in raw_answers)
    return SquadExample(qas_id, question, context, tuple(answers), is_impossible, title, gold_texts)


def parse_squad(dataset: dict, source: str = "<json>") -> tuple[list[SquadExample], ReadReport]:
    """Parses an already-loaded SQuAD JSON object (`{"version": ..., "data": [...]}`)."""
    report = ReadReport(source)
    examples = []
    articles = _field(dataset, "data", list, source)
    for a, article in enumerate(articles):
        where_a = f"{source}: data[{a}]"
        title = article.get("title", "") if isinstance(article, dict) else ""
        for p, paragraph in enumerate(_field(article, "paragraphs", list, where_a)):
            where_p = f"{where_a}.paragraphs[{p}] (title {title!r})"
            context = _field(paragraph, "context", str, where_p)
            if not context.strip():
                raise ValueError(f"{where_p}: empty context")
            for q, qa in enumerate(_field(paragraph, "qas", list, where_p)):
                where_q = f"{where_p}.qas[{q}]"
                qas_id = str(_field(qa, "id", (str, int), where_q))
                question = _field(qa, "question", str, where_q)
                raw_answers = []
                for i, ans in enumerate(qa.get("answers", [])):
                    where_ans = f"{where_q}.answers[{i}]"
                    raw_answers.append((_field(ans, "text", str, where_ans),
                                        _field(ans, "answer_start", int, where_ans)))
                is_impossible = bool(qa.get("is_impossible", False))
                if not is_impossible and not raw_answers and "is_impossible" not in qa:
                    is_impossible = True  # v2.0-style unanswerable without the flag
                examples.append(_make_example(qas_id, question, context, title, raw_answers, is_impossible,
                                              report))
    return examples, report


def load_squad_json(path: str | os.PathLike) -> dict:
    """Loads a SQuAD JSON file with errors that name the file and the position of a syntax error."""
    path = os.fspath(path)
    try:
        return json.loads(read_text(path))
    except FileNotFoundError:
        raise FileNotFoundError(f"SQuAD file not found: {path}") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: malformed JSON at line {e.lineno}, column {e.colno} (char {e.pos}): "
                         f"{e.msg}") from None


def read_squad_json(path: str | os.PathLike) -> tuple[list[SquadExample], ReadReport]:
    """Reads an official SQuAD v1.1 / v2.0 JSON file."""
    examples, report = parse_squad(load_squad_json(path), os.fspath(path))
    report.log()
    return examples, report


def read_squad_tfds(name: str, split: str, data_dir: str | None = None,
                    download: bool = False) -> tuple[list[SquadExample], ReadReport]:
    """Reads TFDS `squad/v1.1` or `squad/v2.0` already prepared under `data_dir` (no download by default)."""
    import tensorflow_datasets as tfds

    dataset = tfds.load(name, split=split, data_dir=data_dir, download=download)
    report = ReadReport(f"tfds:{name}[{split}]")
    examples = []
    for row in tfds.as_numpy(dataset):
        decode = lambda value: value.decode("utf-8") if isinstance(value, bytes) else str(value)  # noqa: E731
        qas_id = decode(row["id"])
        answers = row["answers"]
        raw = [(decode(t), int(s)) for t, s in zip(answers["text"], answers["answer_start"])]
        is_impossible = bool(row.get("is_impossible", not raw))
        examples.append(_make_example(qas_id, decode(row["question"]), decode(row["context"]),
                                      decode(row["title"]), raw, is_impossible, report))
    report.log()
    return examples, report
