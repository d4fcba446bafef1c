"""The SQuAD scorer against hand-computed numbers that follow the official v1.1 / v2.0 scripts' rules."""

import json

import pytest

from bert_keras.tasks.squad import evaluate as ev


def _dataset(*qas):
    return [{"title": "t", "paragraphs": [{"context": "c", "qas": [
        {"id": qid, "answers": [{"text": t, "answer_start": 0} for t in golds]} for qid, golds in qas]}]}]


def test_normalization():
    assert ev.normalize_answer("  The  Denver, Broncos!! ") == "denver broncos"
    assert ev.normalize_answer("an apple a day") == "apple day"
    assert ev.normalize_answer("theater") == "theater"  # articles only as whole words
    assert ev.normalize_answer("Café–Noir") == "café–noir"  # only ASCII punctuation is removed


def test_v1_hand_made_cases():
    dataset = _dataset(("q1", ["Denver Broncos", "The Denver Broncos"]), ("q2", ["Santa Clara, California"]),
                       ("q3", ["1,000"]), ("q4", ["x"]), ("q5", ["an apple"]), ("q6", ["The"]))
    predictions = {"q1": "the broncos", "q2": "Santa Clara", "q3": "1000", "q5": "", "q6": "a"}  # q4 missing
    # q1: EM 0, F1 2*1*0.5/1.5 = 2/3; q2: F1 2*1*(2/3)/(5/3) = 0.8; q3: "1000" == "1000" -> 1/1;
    # q4 missing -> 0 but counted; q5 empty -> 0/0; q6 both normalize to "" -> EM 1, F1 0 (v1.1 quirk).
    result = ev.evaluate_v1(dataset, predictions)
    assert list(result) == ["exact_match", "f1"]
    assert result["exact_match"] == pytest.approx(100 * 2 / 6)
    assert result["f1"] == pytest.approx(100 * (2 / 3 + 0.8 + 1) / 6)


def _v2_case():
    dataset = _dataset(("a", ["Denver Broncos"]), ("b", ["Carolina Panthers"]), ("c", []), ("d", []),
                       ("e", ["The"]))
    predictions = {"a": "Denver Broncos", "b": "Panthers", "c": "", "d": "Denver", "e": ""}
    na_probs = {"a": 0.1, "b": 0.5, "c": 0.9, "d": 0.3, "e": 0.2}
    return dataset, predictions, na_probs


def test_v2_hand_made_cases():
    dataset, predictions, na_probs = _v2_case()
    result = ev.evaluate_v2(dataset, predictions)
    # a 1/1, b 0/(2/3), c 1/1 (no-answer, ""), d 0/0, e: gold "The" normalizes to "" -> only "" right -> 1/1.
    assert result["exact"] == pytest.approx(60.0)
    assert result["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 0 + 1) / 5)
    assert result["total"] == 5
    assert (result["HasAns_total"], result["NoAns_total"]) == (3, 2)  # has-answer = non-empty answer list
    assert result["HasAns_exact"] == pytest.approx(200 / 3)
    assert result["HasAns_f1"] == pytest.approx(100 * (8 / 3) / 3)
    assert result["NoAns_exact"] == result["NoAns_f1"] == pytest.approx(50.0)
    assert "best_f1" not in result


def test_v2_na_probs_threshold_and_best_threshold():
    dataset, predictions, na_probs = _v2_case()
    # Sweep by hand: start with "all null" = 2 right (c, d); a +1 @0.1, e +1 @0.2 (best: 4/5), d -1, b +2/3, c 0.
    result = ev.evaluate_v2(dataset, predictions, na_probs)
    assert result["best_f1"] == pytest.approx(80.0) and result["best_f1_thresh"] == 0.2
    assert result["best_exact"] == pytest.approx(80.0) and result["best_exact_thresh"] == 0.2
    # na_prob > 0.25 forces "": d becomes right, b wrong, c stays right.
    forced = ev.evaluate_v2(dataset, predictions, na_probs, na_prob_thresh=0.25)
    assert forced["exact"] == pytest.approx(80.0) and forced["f1"] == pytest.approx(80.0)


def test_f1_either_empty():
    assert ev.f1_v2("", "") == 1.0 and ev.f1_v2("", "x") == 0.0 and ev.f1_v2("x", "") == 0.0
    assert ev.f1_v1("", "") == 0.0


@pytest.mark.parametrize("version", ["1.1", "2.0"])
def test_gold_answers_score_100_on_real_excerpt(test_data, version):
    data = json.loads((test_data / "squad" / f"dev-v{version}-excerpt.json").read_text(encoding="utf-8"))
    golds = {qa["id"]: (qa["answers"][0]["text"] if qa["answers"] else "")
             for article in data["data"] for p in article["paragraphs"] for qa in p["qas"]}
    if version == "1.1":
        assert ev.evaluate_v1(data["data"], golds) == {"exact_match": 100.0, "f1": 100.0}
    else:
        result = ev.evaluate_v2(data["data"], golds)
        assert result["exact"] == result["f1"] == 100.0 and result["NoAns_total"] > 0


def test_command_line_matches_official_output_shape(tmp_path, capsys, test_data):
    dataset, predictions, na_probs = _v2_case()
    data_file, pred_file, na_file = tmp_path / "data.json", tmp_path / "pred.json", tmp_path / "na.json"
    data_file.write_text(json.dumps({"version": "v2.0", "data": dataset}))
    pred_file.write_text(json.dumps(predictions))
    na_file.write_text(json.dumps(na_probs))
    ev.main([str(data_file), str(pred_file), "--na-prob-file", str(na_file)])
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact",
                             "NoAns_f1", "NoAns_total", "best_exact", "best_exact_thresh", "best_f1",
                             "best_f1_thresh"]
    v1_file = test_data / "squad" / "dev-v1.1-excerpt.json"
    v1 = json.loads(v1_file.read_text(encoding="utf-8"))
    pred_file.write_text(json.dumps({qa["id"]: "Denver Broncos" for a in v1["data"] for p in a["paragraphs"]
                                     for qa in p["qas"]}))
    ev.main([str(v1_file), str(pred_file)])
    printed = json.loads(capsys.readouterr().out)
    assert list(printed) == ["exact_match", "f1"] and 0 < printed["exact_match"] < 100


def test_malformed_prediction_file_names_file_and_position(tmp_path, test_data):
    bad = tmp_path / "pred.json"
    bad.write_text('{"a": "x",\n "b": }')
    with pytest.raises(ValueError, match=r"pred\.json: malformed JSON at line 2"):
        ev.main([str(test_data / "squad" / "dev-v1.1-excerpt.json"), str(bad)])
