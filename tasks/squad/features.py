"""Sliding-window features for SQuAD: `[CLS] question [SEP] context window [SEP]`, as in the original BERT.

Every context wordpiece keeps the character span it came from in the ORIGINAL context (the tokenizer gives
UTF-8 byte offsets; they are converted to characters here because SQuAD's `answer_start` counts characters
and contexts contain non-ASCII text). A predicted token span therefore maps back to the exact context text,
whitespace and punctuation included, without any detokenization heuristics.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from bert_keras.tasks.squad import windows
from bert_keras.tasks.squad.data import SquadExample

NOT_CONTEXT = -1  # char offset stored for [CLS], question, [SEP] and padding positions


@dataclasses.dataclass
class SquadFeatures:
    """All windows of a list of examples as numpy arrays; row i is one window of `examples[example_index[i]]`.

    `token_char_start/end` [N, S] give each context token's character span in its example's context
    (NOT_CONTEXT elsewhere); `token_is_max_context` [N, S] marks the window in which a token has the most
    surrounding context (only there may an answer start, so overlapping windows do not double-count it).
    """

    input_word_ids: np.ndarray
    input_mask: np.ndarray
    input_type_ids: np.ndarray
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray
    token_char_start: np.ndarray
    token_char_end: np.ndarray
    token_is_max_context: np.ndarray

    def __len__(self) -> int:
        return len(self.example_index)

    def model_inputs(self) -> dict[str, np.ndarray]:
        return {"input_word_ids": self.input_word_ids, "input_mask": self.input_mask,
                "input_type_ids": self.input_type_ids}

    def labels(self) -> dict[str, np.ndarray]:
        return {"start_positions": self.start_positions, "end_positions": self.end_positions}


def byte_to_char_offsets(text: str) -> np.ndarray:
    """Array mapping every UTF-8 byte offset of `text` (0..len(bytes), inclusive) to a character offset."""
    lengths = np.fromiter((len(ch.encode("utf-8")) for ch in text), dtype=np.int64, count=len(text))
    return np.append(np.repeat(np.arange(len(text), dtype=np.int64), lengths), len(text))


def tokenize_contexts(tokenizer, contexts: Sequence[str], batch_size: int = 256
                      ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Wordpiece ids and their [start, end) CHARACTER offsets in each context, via the byte offsets."""
    out = []
    for i in range(0, len(contexts), batch_size):
        chunk = list(contexts[i:i + batch_size])
        ids, starts, ends = tokenizer.tokenize_with_offsets(chunk)
        for text, t, s, e in zip(chunk, ids.to_list(), starts.to_list(), ends.to_list()):
            to_char = byte_to_char_offsets(text)
            out.append((np.asarray(t, np.int32), to_char[np.asarray(s, np.int64)],
                        to_char[np.asarray(e, np.int64)]))
    return out


def tokenize_questions(tokenizer, questions: Sequence[str], max_query_length: int,
                       batch_size: int = 1024) -> list[list[int]]:
    out = []
    for i in range(0, len(questions), batch_size):
        ids = tokenizer.tokenize(list(questions[i:i + batch_size]))
        out.extend(row[:max_query_length] for row in ids.to_list())
    return out


def answer_token_span(char_start: int, char_end: int, token_starts: np.ndarray,
                      token_ends: np.ndarray) -> tuple[int, int] | None:
    """Smallest run of context tokens covering characters [char_start, char_end), or None."""
    overlapping = np.nonzero((token_ends > char_start) & (token_starts < char_end))[0]
    if not len(overlapping):
        return None
    return int(overlapping[0]), int(overlapping[-1])


def answer_recovery(example: SquadExample, answer, features: SquadFeatures, rows: Sequence[int]) -> str:
    """How `answer` comes back from the windows `rows` of `example`: "exact" (some window's token span is
    exactly its text), "inside_wordpiece" (a boundary falls strictly inside a wordpiece, e.g. "gold" in
    "golden", so no token span can equal it) or "missing" (a bug: the windows lost it)."""
    inside = False
    for row in rows:
        starts, ends = features.token_char_start[row], features.token_char_end[row]
        context = starts >= 0
        span = answer_token_span(answer.start, answer.end, np.where(context, starts, np.iinfo(np.int32).max),
                                 np.where(context, ends, -1))
        if span is None:
            continue
        if example.context[starts[span[0]]:ends[span[1]]] == answer.text:
            return "exact"
        inside |= bool(starts[span[0]] < answer.start or ends[span[1]] > answer.end)
    return "inside_wordpiece" if inside else "missing"


def _window_rows(layout: windows.Windows, seq_length: int, doc_stride: int, chunk: int = 1024) -> np.ndarray:
    """bool [windows, seq_length]: context tokens that have their maximum context in their window
    (`windows.max_context`, the serving graph's rule), in chunks of windows to bound memory."""
    total = int(tf.size(layout.example))
    parts = [np.zeros((0, seq_length), bool)]
    for i in range(0, total, chunk):
        part = windows.Windows(*(getattr(layout, f.name)[i:i + chunk] for f in dataclasses.fields(layout)))
        parts.append((windows.max_context(part, seq_length, doc_stride)
                      & windows.in_context(part, seq_length)).numpy())
    return np.concatenate(parts)


def convert_examples_to_features(examples: Sequence[SquadExample], tokenizer, *, max_seq_length: int = 384,
                                 doc_stride: int = 128, max_query_length: int = 64,
                                 is_training: bool = False) -> SquadFeatures:
    """Windows every example. With `is_training`, examples lacking a usable answer (all answers failed the
    context check) are left out, and windows not containing the answer point at [CLS] (position 0)."""
    windows.check_window_settings(max_seq_length, max_query_length, doc_stride)
    cls_id, sep_id, pad_id = int(tokenizer.cls_id), int(tokenizer.sep_id), int(tokenizer.pad_id)
    unique_contexts = list(dict.fromkeys(e.context for e in examples))
    context_tokens = dict(zip(unique_contexts, tokenize_contexts(tokenizer, unique_contexts)))
    question_ids = tokenize_questions(tokenizer, [e.question for e in examples], max_query_length)
    # Every example's windows and max-context tokens at once, by the rules the serving graph uses.
    layout = windows.layout(tf.constant([len(context_tokens[e.context][0]) for e in examples], tf.int64),
                            tf.constant([len(q) for q in question_ids], tf.int64), max_seq_length, doc_stride)
    window_starts, window_lengths = layout.start.numpy(), layout.length.numpy()
    first_window = np.searchsorted(layout.example.numpy(), np.arange(len(examples) + 1))
    max_context_rows = _window_rows(layout, max_seq_length, doc_stride)

    rows: dict[str, list] = {k: [] for k in ("ids", "len", "types", "start", "end", "example", "cs", "ce",
                                                "maxctx")}
    for index, (example, query) in enumerate(zip(examples, question_ids)):
        if is_training and not example.is_impossible and example.train_answer is None:
            continue
        ids, starts, ends = context_tokens[example.context]
        answer_span = None
        if is_training and example.train_answer is not None:
            answer = example.train_answer
            answer_span = answer_token_span(answer.start, answer.end, starts, ends)
            if answer_span is None:
                continue  # answer lies only in whitespace the tokenizer dropped
        offset = len(query) + 2  # [CLS] question [SEP]
        for row in range(first_window[index], first_window[index + 1]):
            start, length = int(window_starts[row]), int(window_lengths[row])
            seq = np.full(max_seq_length, pad_id, np.int32)
            types = np.zeros(max_seq_length, np.int32)
            char_start = np.full(max_seq_length, NOT_CONTEXT, np.int32)
            char_end = np.full(max_seq_length, NOT_CONTEXT, np.int32)
            seq[0], seq[1:offset - 1], seq[offset - 1] = cls_id, query, sep_id
            seq[offset:offset + length] = ids[start:start + length]
            seq[offset + length] = sep_id
            types[offset:offset + length + 1] = 1
            char_start[offset:offset + length] = starts[start:start + length]
            char_end[offset:offset + length] = ends[start:start + length]
            start_position = end_position = 0
            if answer_span is not None and start <= answer_span[0] and answer_span[1] < start + length:
                start_position = answer_span[0] - start + offset
                end_position = answer_span[1] - start + offset
            rows["ids"].append(seq)
            rows["len"].append(offset + length + 1)
            rows["types"].append(types)
            rows["start"].append(start_position)
            rows["end"].append(end_position)
            rows["example"].append(index)
            rows["cs"].append(char_start)
            rows["ce"].append(char_end)
            rows["maxctx"].append(max_context_rows[row])
    if not rows["ids"]:
        raise ValueError("no SQuAD features were produced (no examples, or none with a usable answer)")
    input_mask = (np.arange(max_seq_length)[None, :] < np.asarray(rows["len"])[:, None]).astype(np.int32)
    return SquadFeatures(
        input_word_ids=np.stack(rows["ids"]), input_mask=input_mask,
        input_type_ids=np.stack(rows["types"]), start_positions=np.asarray(rows["start"], np.int32),
        end_positions=np.asarray(rows["end"], np.int32), example_index=np.asarray(rows["example"], np.int32),
        token_char_start=np.stack(rows["cs"]), token_char_end=np.stack(rows["ce"]),
        token_is_max_context=np.stack(rows["maxctx"]))
