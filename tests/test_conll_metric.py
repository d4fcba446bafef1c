"""Entity-level NER scores (`tasks.conll.evaluate`) against seqeval, the conlleval reimplementation."""

import json
import random

import pytest
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from bert_keras.tasks.conll import data, evaluate


def assert_matches_seqeval(gold, predicted):
    report = evaluate.score(gold, predicted)
    assert report.overall.f1 == pytest.approx(f1_score(gold, predicted), abs=1e-12)
    assert report.overall.precision == pytest.approx(precision_score(gold, predicted), abs=1e-12)
    assert report.overall.recall == pytest.approx(recall_score(gold, predicted), abs=1e-12)
    reference = classification_report(gold, predicted, output_dict=True, zero_division=0)
    assert set(report.per_type) == set(reference) - {"micro avg", "macro avg", "weighted avg"}
    for entity_type, scores in report.per_type.items():
        ref = reference[entity_type]
        assert scores.gold == ref["support"]
        assert scores.precision == pytest.approx(ref["precision"], abs=1e-12)
        assert scores.recall == pytest.approx(ref["recall"], abs=1e-12)
        assert scores.f1 == pytest.approx(ref["f1-score"], abs=1e-12)
    return report


EDGE_CASES = [
    # I- after O starts an entity (conlleval), so gold B-PER I-PER == predicted I-PER I-PER.
    (["B-PER", "I-PER", "O"], ["I-PER", "I-PER", "O"]),
    # Type change inside a span: two entities, not one.
    (["B-ORG", "I-ORG", "I-ORG"], ["B-ORG", "I-LOC", "I-LOC"]),
    # B- directly after the same type: a new entity (IOB1 adjacent entities).
    (["I-LOC", "I-LOC", "B-LOC", "O"], ["I-LOC", "I-LOC", "I-LOC", "O"]),
    # Entity at the very end and at the very start; single-token entities.
    (["B-MISC", "O", "B-PER"], ["B-MISC", "O", "B-PER"]),
    # Wrong type, right span: not correct; right type, wrong boundary: not correct.
    (["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "I-ORG", "O", "B-LOC"]),
    (["B-PER", "I-PER", "I-PER"], ["B-PER", "I-PER", "O"]),
    # No entities at all on one side.
    (["O", "O"], ["B-LOC", "O"]),
    (["B-LOC", "O"], ["O", "O"]),
    # IOBES tags are read too (E-/S- end an entity).
    (["S-PER", "B-LOC", "E-LOC", "O"], ["S-PER", "B-LOC", "I-LOC", "O"]),
]


@pytest.mark.parametrize("gold,predicted", EDGE_CASES)
def test_edge_cases_match_seqeval(gold, predicted):
    assert_matches_seqeval([gold], [predicted])


def test_chunks_follow_conlleval_rules():
    assert evaluate.chunks(["I-PER", "I-PER", "O"]) == [("PER", 0, 1)]
    assert evaluate.chunks(["B-ORG", "I-LOC", "I-LOC"]) == [("ORG", 0, 0), ("LOC", 1, 2)]
    assert evaluate.chunks(["I-LOC", "B-LOC"]) == [("LOC", 0, 0), ("LOC", 1, 1)]
    assert evaluate.chunks(["O", "I-MISC"]) == [("MISC", 1, 1)]


def test_entities_do_not_cross_sentence_boundaries():
    # conlleval ends every chunk at a blank line: I-PER at the start of sentence 2 is a new entity.
    gold = [["B-PER"], ["I-PER", "O"]]
    report = assert_matches_seqeval(gold, [["B-PER"], ["B-PER", "O"]])
    assert report.overall.f1 == 1.0


def test_iob1_and_iob2_encodings_score_the_same():
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
    iob2 = data.to_iob2(iob1)
    assert iob2 == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
    assert evaluate.chunks(iob1) == evaluate.chunks(iob2)
    predicted = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "B-ORG"]
    assert evaluate.score([iob1], [predicted]).overall == evaluate.score([iob2], [predicted]).overall


def test_random_corruptions_of_real_tags_match_seqeval(test_data):
    sentences = data.read_conll(test_data / "conll" / "valid.txt")
    gold = [list(s.tags) for s in sentences]
    tags = data.label_list()
    rng = random.Random(0)
    for rate in (0.02, 0.1, 0.3):
        predicted = [[rng.choice(tags) if rng.random() < rate else t for t in sentence] for sentence in gold]
        report = assert_matches_seqeval(gold, predicted)
        assert 0.0 < report.overall.f1 < 1.0
    assert evaluate.score(gold, gold).overall.f1 == 1.0


def test_predictions_file_round_trip_and_cli(tmp_path, test_data, capsys):
    sentences = data.read_conll(test_data / "conll" / "test.txt")
    gold = [list(s.tags) for s in sentences]
    rng = random.Random(1)
    predicted = [[t if rng.random() > 0.1 else "O" for t in sentence] for sentence in gold]
    path = tmp_path / "predictions.txt"
    evaluate.write_predictions(path, [s.words for s in sentences], gold, predicted)
    blocks = path.read_text(encoding="utf-8").split("\n\n")
    assert len([b for b in blocks if b.strip()]) == len(sentences)
    assert blocks[0].splitlines()[0].split() == [sentences[0].words[0], gold[0][0], predicted[0][0]]
    words, gold_read, predicted_read = evaluate.read_predictions(path)
    assert (gold_read, predicted_read) == (gold, predicted)
    assert [tuple(w) for w in words] == [s.words for s in sentences]

    assert evaluate.main([str(path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["overall"]["f1"] == pytest.approx(f1_score(gold, predicted), abs=1e-12)
    assert set(printed["per_type"]) == {"PER", "ORG", "LOC", "MISC"}


def test_predictions_file_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU B-ORG B-ORG\nrejects O\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:2: expected"):
        evaluate.read_predictions(path)
    path.write_text("EU B-ORG X-ORG\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.txt:1: 'X-ORG' is not"):
        evaluate.read_predictions(path)
