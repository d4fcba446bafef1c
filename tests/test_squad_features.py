"""SQuAD reading and windowing on a real dev excerpt, with the real tokenizer and vocab."""

import json

import numpy as np
import pytest

from bert_keras.tasks.squad.data import parse_squad, read_squad_json
from bert_keras.tasks.squad.features import answer_recovery, byte_to_char_offsets, convert_examples_to_features


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    from bert_keras.tokenizer import BertTokenizer

    return BertTokenizer(str(minilm_dir / "vocab.txt"), lower_case=True)


@pytest.fixture(scope="module")
def v1_examples(test_data):
    return read_squad_json(test_data / "squad" / "dev-v1.1-excerpt.json")[0]


def test_byte_to_char_offsets_non_ascii():
    text = "aé€😀b"  # 1 + 2 + 3 + 4 + 1 bytes
    mapping = byte_to_char_offsets(text)
    assert mapping[[0, 1, 3, 6, 10, 11]].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize("max_seq_length,doc_stride", [(384, 128), (96, 32)])
def test_every_gold_answer_round_trips_through_a_window_span(tokenizer, v1_examples, max_seq_length, doc_stride):
    """Each gold answer is exactly the context text of some window's token span, unless one of its boundaries
    falls strictly inside a wordpiece (e.g. "gold" of "golden"), where no token span can equal it."""
    features = convert_examples_to_features(v1_examples, tokenizer, max_seq_length=max_seq_length,
                                            doc_stride=doc_stride, max_query_length=24)
    if max_seq_length == 96:
        assert len(features) > 2 * len(v1_examples)  # long contexts really are split into many windows
    exact, inside_wordpiece = 0, []
    for index, example in enumerate(v1_examples):
        rows = np.flatnonzero(features.example_index == index)
        assert len(rows)
        for answer in example.answers:
            how = answer_recovery(example, answer, features, rows)
            assert how != "missing", (example.qas_id, answer.text)
            exact += how == "exact"
            if how == "inside_wordpiece":
                inside_wordpiece.append(answer.text)
    assert exact >= 0.98 * sum(len(e.answers) for e in v1_examples) and len(inside_wordpiece) <= 10
    assert "gold" in inside_wordpiece  # "golden anniversary"


def test_training_targets_point_at_the_answer_or_cls(tokenizer, test_data):
    examples = read_squad_json(test_data / "squad" / "dev-v2.0-excerpt.json")[0]
    features = convert_examples_to_features(examples, tokenizer, max_seq_length=96, doc_stride=32,
                                            max_query_length=24, is_training=True)
    hit = set()
    for row in range(len(features)):
        example = examples[features.example_index[row]]
        s, e = features.start_positions[row], features.end_positions[row]
        assert features.input_word_ids[row, 0] == tokenizer.cls_id
        assert features.input_mask[row].sum() <= 96 and features.input_type_ids[row, s] == (1 if s else 0)
        if example.is_impossible:
            assert s == e == 0
        elif s:
            answer = example.train_answer
            text = example.context[features.token_char_start[row, s]:features.token_char_end[row, e]]
            assert answer.text in text and len(text) - len(answer.text) <= 3
            hit.add(example.qas_id)
    answerable = {e.qas_id for e in examples if not e.is_impossible}
    assert hit == answerable  # each answer is inside at least one window
    assert any(e.is_impossible for e in examples)


def test_malformed_json_names_file_and_position(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"version": "1.1", "data": [\n  {"title": "x",, }]}')
    with pytest.raises(ValueError, match=r"broken\.json: malformed JSON at line 2, column 17"):
        read_squad_json(path)


def test_mismatched_answers_are_counted_and_not_trained_on():
    context = "Denver Broncos beat the Carolina Panthers."
    data = {"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": context, "qas": [
        {"id": "ok", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 0}]},
        {"id": "bad", "question": "Who lost?", "answers": [{"text": "Carolina Panthers", "answer_start": 3}]},
        {"id": "half", "question": "Who?", "answers": [{"text": "Panthers", "answer_start": 33},
                                                      {"text": "Panthers", "answer_start": 0}]}]}]}]}
    examples, report = parse_squad(data, "mem.json")
    assert [q for q, _, _ in report.mismatched_answers] == ["bad", "half"]
    assert report.unanswered_after_check == ["bad"]
    by_id = {e.qas_id: e for e in examples}
    assert by_id["bad"].train_answer is None and by_id["bad"].gold_texts == ("Carolina Panthers",)
    assert by_id["half"].train_answer.start == 33 and len(by_id["half"].gold_texts) == 2


def test_empty_context_and_missing_fields_are_named():
    data = {"data": [{"title": "T", "paragraphs": [{"context": "ok", "qas": []}, {"context": "  ", "qas": []}]}]}
    with pytest.raises(ValueError, match=r"x\.json: data\[0\]\.paragraphs\[1\] \(title 'T'\): empty context"):
        parse_squad(data, "x.json")
    data = {"data": [{"title": "T", "paragraphs": [{"context": "ok", "qas": [{"id": "1", "answers": []}]}]}]}
    with pytest.raises(ValueError, match=r"qas\[0\]: missing field 'question'"):
        parse_squad(data, "x.json")


def test_v2_reading(test_data):
    examples, report = read_squad_json(test_data / "squad" / "dev-v2.0-excerpt.json")
    raw = json.loads((test_data / "squad" / "dev-v2.0-excerpt.json").read_text(encoding="utf-8"))
    impossible = sum(qa.get("is_impossible", False) for a in raw["data"] for p in a["paragraphs"] for qa in p["qas"])
    assert report.num_impossible == impossible > 0 and report.num_examples == len(examples)
    assert all(not e.answers and not e.gold_texts for e in examples if e.is_impossible)

