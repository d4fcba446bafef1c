"""Post-processing on synthetic logits: n-best order, max_answer_length, windows, max-context, null score."""

import numpy as np
import pytest

from bert_keras.tasks.squad import windows
from bert_keras.tasks.squad.data import Answer, SquadExample
from bert_keras.tasks.squad.features import NOT_CONTEXT, SquadFeatures
from bert_keras.tasks.squad.postprocess import best_null_threshold, nbest_probabilities, postprocess, predictions

WORDS = "zero one two three four five six seven eight nine".split()
CONTEXT = "  ".join(WORDS)  # double spaces: slicing must return the original text, spaces included
OFFSET = 3  # [CLS] query [SEP]
SEQ = 11


def max_context_window(spans, position):
    """google-research/bert's `_check_is_max_context`, restated as the reference: the window where `position`
    has the most context on its shorter side (+ 0.01 x window length), the earliest on ties."""
    best_score, best = None, -1
    for index, (start, length) in enumerate(spans):
        end = start + length - 1
        if start <= position <= end:
            score = min(position - start, end - position) + 0.01 * length
            if best_score is None or score > best_score:
                best_score, best = score, index
    return best


def _features(spans=((0, 6), (3, 7))):
    """Two windows over the 10 'wordpieces' of CONTEXT: words 0-5 and 3-9 (overlap 3-5)."""
    starts, pos = [], 0
    for word in WORDS:
        starts.append(CONTEXT.index(word, pos))
        pos = starts[-1] + len(word)
    ends = [s + len(w) for s, w in zip(starts, WORDS)]
    n = len(spans)
    cs, ce = np.full((n, SEQ), NOT_CONTEXT), np.full((n, SEQ), NOT_CONTEXT)
    is_max = np.zeros((n, SEQ), bool)
    for w, (start, length) in enumerate(spans):
        for j in range(length):
            cs[w, OFFSET + j], ce[w, OFFSET + j] = starts[start + j], ends[start + j]
            is_max[w, OFFSET + j] = max_context_window(list(spans), start + j) == w
    zeros = np.zeros((n, SEQ), np.int32)
    return SquadFeatures(zeros, zeros, zeros, np.zeros(n, np.int32), np.zeros(n, np.int32),
                         np.zeros(n, np.int32), cs, ce, is_max)


def _pos(window, word, spans=((0, 6), (3, 7))):
    return OFFSET + word - spans[window][0]


EXAMPLE = SquadExample("q", "?", CONTEXT, (Answer("seven", CONTEXT.index("seven")),), gold_texts=("seven",))


def _logits(**marks):
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    for (kind, window, word), value in marks.items():
        (start if kind == "s" else end)[window, _pos(window, word)] = value
    return start, end


def _run(start, end, **kw):
    return postprocess([EXAMPLE], _features(), start, end, **kw)["q"]


def test_best_span_maps_to_exact_original_text_across_windows():
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    start[1, _pos(1, 7)], end[1, _pos(1, 8)] = 5.0, 4.0
    answer = _run(start, end)
    assert answer.best_span.text == "seven  eight"  # double space preserved
    assert answer.prediction(None) == "seven  eight"


def test_nbest_sorted_unique_and_bounded():
    rng = np.random.default_rng(0)
    start, end = rng.normal(size=(2, SEQ)), rng.normal(size=(2, SEQ))
    answer = _run(start, end, n_best_size=5)
    scores = [c.score for c in answer.nbest]
    assert scores == sorted(scores, reverse=True) and len(answer.nbest) == 5
    assert len({c.text for c in answer.nbest}) == 5
    assert all(CONTEXT[c.char_start:c.char_end] == c.text for c in answer.nbest)
    probs = nbest_probabilities(answer.nbest)
    assert sum(probs) == pytest.approx(1.0) and probs == sorted(probs, reverse=True)
    # Brute force over all valid spans: the best one must be the n-best head.
    feats = _features()
    best = max((start[w, s] + end[w, e], (w, s, e)) for w in range(2) for s in range(SEQ) for e in range(SEQ)
               if feats.token_char_start[w, s] >= 0 and feats.token_char_start[w, e] >= 0 and s <= e
               and e - s < 30 and feats.token_is_max_context[w, s])
    w, s, e = best[1]
    assert answer.best_span.text == CONTEXT[feats.token_char_start[w, s]:feats.token_char_end[w, e]]


def test_max_answer_length_and_order_constraints():
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    start[0, _pos(0, 0)], end[0, _pos(0, 5)] = 9.0, 9.0  # 6 tokens long
    start[0, _pos(0, 1)], end[0, _pos(0, 2)] = 1.0, 1.0  # 2 tokens
    end[0, _pos(0, 0)] = 8.0  # end before the start at word 1: never paired with it
    assert _run(start, end, max_answer_length=6).best_span.text == CONTEXT[:CONTEXT.index("five") + 4]
    answer = _run(start, end, max_answer_length=3)
    assert answer.best_span.text in ("zero", "one  two")
    assert all(len(c.text.split()) <= 3 for c in answer.nbest)


def test_spans_never_cross_windows_and_need_max_context():
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    start[0, _pos(0, 1)] = 9.0  # start only in window 0 ...
    end[1, _pos(1, 8)] = 9.0  # ... end only in window 1: no span may combine them
    best = _run(start, end).best_span
    assert best.score == pytest.approx(-1.0)  # 9 + (-10) inside one window, never 9 + 9 across two
    assert not ("one" in best.text and "eight" in best.text)
    # Word 4 has more context in window 1 (min(1,5)=1+0.07 > min(4,1)=1+0.06): a start there in window 0 is dropped.
    feats = _features()
    assert not feats.token_is_max_context[0, _pos(0, 4)] and feats.token_is_max_context[1, _pos(1, 4)]
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    start[0, _pos(0, 4)], end[0, _pos(0, 5)] = 20.0, 20.0  # "four  five" would score 40 ...
    start[1, _pos(1, 6)], end[1, _pos(1, 6)] = 8.0, 8.0  # ... "six" 16; other window-0 starts + 20 give 10
    assert _run(start, end).best_span.text == "six"


def test_non_context_positions_are_never_answers():
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    start[:, :OFFSET], end[:, :OFFSET] = 50.0, 50.0  # [CLS], question, [SEP]
    start[0, _pos(0, 2)], end[0, _pos(0, 2)] = 0.0, 0.0
    assert _run(start, end).best_span.text == "two"


def test_null_score_and_threshold():
    start, end = np.full((2, SEQ), -10.0), np.full((2, SEQ), -10.0)
    start[:, 0], end[:, 0] = [[3.0, 1.0], [2.0, 2.0]][0], [[3.0, 1.0], [2.0, 2.0]][1]  # null 5 and 3 -> min 3
    start[1, _pos(1, 7)], end[1, _pos(1, 7)] = 1.0, 1.0  # best span score 2
    answer = _run(start, end, with_null=True)
    assert answer.null_score_diff == pytest.approx(1.0)  # 3 - 2
    assert answer.prediction(0.0) == "" and answer.prediction(0.99) == ""
    assert answer.prediction(1.0) == "seven" and answer.prediction(None) == "seven"
    assert "" in [c.text for c in answer.nbest]
    assert answer.nbest[0].text == "" and answer.nbest[0].score == pytest.approx(3.0)


@pytest.mark.parametrize("signal", [0.0, 4.0])  # 0: answering "" everywhere is best; 4: a real threshold
def test_best_null_threshold_reaches_best_f1(signal):
    from bert_keras.tasks.squad import evaluate as ev

    examples = [SquadExample(f"q{i}", "?", CONTEXT, (Answer(w, CONTEXT.index(w)),) if i % 3 else (),
                             is_impossible=not i % 3, gold_texts=(w,) if i % 3 else ())
                for i, w in enumerate(WORDS)]
    feats = _features()
    n = len(examples)
    stacked = SquadFeatures(*[np.concatenate([getattr(feats, f)] * n) for f in (
        "input_word_ids", "input_mask", "input_type_ids", "start_positions", "end_positions")],
        np.repeat(np.arange(n), 2), *[np.concatenate([getattr(feats, f)] * n) for f in (
            "token_char_start", "token_char_end", "token_is_max_context")])
    rng = np.random.default_rng(1)
    start, end = rng.normal(size=(2 * n, SEQ)) * 3, rng.normal(size=(2 * n, SEQ)) * 3
    for i, word in enumerate(WORDS):
        window = 0 if i < 5 else 1
        start[2 * i + window, _pos(window, i)] += signal
        end[2 * i + window, _pos(window, i)] += signal
    answers = postprocess(examples, stacked, start, end, with_null=True)
    best = best_null_threshold(examples, answers)
    dataset = ev.dataset_from_examples(examples)
    at_best = ev.evaluate_v2(dataset, predictions(answers, best["null_score_diff_threshold"]))
    assert at_best["f1"] == pytest.approx(best["best_f1"])
    for threshold in np.linspace(-10, 10, 41):  # no threshold does better
        assert ev.evaluate_v2(dataset, predictions(answers, threshold))["f1"] <= best["best_f1"] + 1e-9


def _windows(doc_len, capacity, stride):
    layout = windows.layout(np.array([doc_len]), np.array([0]), capacity + 3, stride)  # no question tokens
    return layout, list(zip(layout.start.numpy().tolist(), layout.length.numpy().tolist()))


@pytest.mark.parametrize("doc_len,capacity,stride,expected", [
    (10, 4, 3, [(0, 4), (3, 4), (6, 4)]), (10, 4, 2, [(0, 4), (2, 4), (4, 4), (6, 4)]), (3, 8, 2, [(0, 3)]),
    (0, 8, 2, [(0, 0)]), (9, 4, 4, [(0, 4), (4, 4), (8, 1)]), (23, 7, 3, [(0, 7), (3, 7), (6, 7), (9, 7), (12, 7),
                                                                        (15, 7), (18, 5)])])
def test_window_layout_and_max_context_follow_the_original_rules(doc_len, capacity, stride, expected):
    """windows.py (shared by the training features and the serving graph) against the original's rules."""
    layout, spans = _windows(doc_len, capacity, stride)
    assert spans == expected
    seq = capacity + 3
    owner = windows.max_context(layout, seq, stride).numpy() & windows.in_context(layout, seq).numpy()
    for w, (start, length) in enumerate(spans):
        # Sequence position 2 + j holds document token start + j ([CLS] and [SEP] come first).
        assert owner[w, 2:2 + length].tolist() == [max_context_window(spans, start + j) == w for j in range(length)]
        assert not owner[w, :2].any() and not owner[w, 2 + length:].any()
