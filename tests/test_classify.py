"""`bert_keras.tasks.classify` on real excerpts rewritten as "your own data", with a tiny BERT.

- SST-2 (tests/data/glue) as CSV/JSONL with other column names and "neg"/"pos": read to GLUE's exact examples,
  and fine-tuned with the same seed it gives GLUE's result (same dev metrics, same weights);
- STS-B as JSON Lines (a text pair, fractional scores -> regression inferred);
- multi-label from CoNLL-2003 sentences (tests/data/conll) labelled with the entity types they mention;
- every kind of bad data stops with file, line and column before anything is built or written;
- each run's export serves the user's label names through `bert_keras.export`'s --model_dir path.
"""

import csv
import json
import os
import pathlib

import keras
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics
import tensorflow as tf

from bert_keras.finetuning import FineTuningConfig, load_pretrained, run
from bert_keras.tasks.classify import ClassifyTask, Columns, DataError, MultiLabelClassifier, load_files
from bert_keras.tasks.classify import metrics as classify_metrics
from bert_keras.tasks.glue import GlueClassifier, GlueTask, get_task
from bert_keras.tasks.glue.data import read_tsv

TINY = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2)
SEQ = 64
SENTIMENT = {0: "neg", 1: "pos"}


@pytest.fixture(scope="module")
def vocab_file(minilm_dir):
    return str(minilm_dir / "vocab.txt")


def tiny_encoder(vocab_file):
    keras.utils.set_random_seed(0)
    return load_pretrained(preset="tiny", vocab_file=vocab_file, **TINY)


def config(model_dir, epochs=2):
    # pad_to_multiple=SEQ in the tasks: one input shape, each function traced once (test speed).
    return FineTuningConfig(model_dir=str(model_dir), learning_rate=1e-3, train_batch_size=16, num_train_epochs=epochs,
                            tensorboard_update_freq="epoch", verbose=0)


def write_csv(path, header, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return str(path)


@pytest.fixture(scope="module")
def files(test_data, tmp_path_factory):
    """The excerpts rewritten: SST-2 as CSV (review, sentiment) and JSONL, STS-B as JSONL, CoNLL entity types
    as JSONL lists (train) and '|'-joined CSV fields (dev)."""
    from bert_keras.tasks.conll.data import read_conll

    base = tmp_path_factory.mktemp("classify_data")
    glue = str(test_data / "glue")
    out = {}
    sst2 = {s: read_tsv(get_task("sst2"), s, glue) for s in ("train", "dev")}
    for split, ex in sst2.items():
        rows = [(text, SENTIMENT[int(y)]) for text, y in zip(ex.text_a, ex.labels)]
        out[f"sst2_{split}_csv"] = write_csv(base / f"sst2_{split}.csv", ["review", "sentiment"], rows)
        out[f"sst2_{split}_jsonl"] = write_jsonl(base / f"sst2_{split}.jsonl",
                                                 [{"review": t, "sentiment": y} for t, y in rows])
    test = read_tsv(get_task("sst2"), "test", glue)
    out["sst2_test_csv"] = write_csv(base / "sst2_test.csv", ["id", "review"], list(zip(test.index, test.text_a)))
    for split in ("train", "dev"):
        ex = read_tsv(get_task("stsb"), split, glue)
        out[f"stsb_{split}"] = write_jsonl(base / f"stsb_{split}.jsonl", [
            {"first": a, "second": b, "similarity": float(s)} for a, b, s in zip(ex.text_a, ex.text_b, ex.labels)])
    conll = {s: read_conll(test_data / "conll" / f"{s}.txt") for s in ("train", "valid")}

    def types(sentence):
        return sorted({tag[2:] for tag in sentence.tags if tag != "O"})

    out["ner_train"] = write_jsonl(base / "ner_train.jsonl", [
        {"sentence": " ".join(s.words), "entities": types(s)} for s in conll["train"][:64]])
    out["ner_dev"] = write_csv(base / "ner_dev.csv", ["sentence", "entities"],
                               [(" ".join(s.words), "|".join(types(s))) for s in conll["valid"][:32]])
    out["sst2_glue"] = sst2
    return out


def test_own_files_read_to_glues_examples(files):
    glue = files["sst2_glue"]
    logged = []
    for fmt in ("csv", "jsonl"):
        data = load_files(files[f"sst2_train_{fmt}"], files[f"sst2_dev_{fmt}"], files["sst2_test_csv"],
                          columns=Columns("review", label="sentiment"), log=logged.append)
        assert data.problem_type == "single_label" and "inferred" in data.problem_type_source
        assert data.labels == ["neg", "pos"]  # sorted names: neg=0, pos=1, as SST-2's 0/1
        for split, name in (("train", "train"), ("validation", "dev")):
            assert data.splits[split].text_a == glue[name].text_a
            np.testing.assert_array_equal(data.splits[split].labels, glue[name].labels)
        assert data.splits["test"].labels is None and len(data.splits["test"]) == 16
        assert logged.pop() == (f"problem type single_label (inferred from {files[f'sst2_train_{fmt}']}: 2 distinct "
                                "training labels, not lists, not fractional numbers); labels ['neg', 'pos'] "
                                f"(sorted names found in {files[f'sst2_train_{fmt}']})")
        first = ["2", "3"] if fmt == "csv" else ["1", "2"]  # the line each row starts on
        assert data.splits["train"].index[:2] == first
    assert logged == []  # nothing skipped, nothing else reported


@pytest.fixture(scope="module")
def sst2_runs(files, vocab_file, test_data, tmp_path_factory):
    """SST-2 fine-tuned twice with seed 0: through GlueTask on the TSVs, and through ClassifyTask on the CSVs
    (with test predictions and an export)."""
    base = tmp_path_factory.mktemp("sst2_runs")
    encoder, tokenizer = tiny_encoder(vocab_file)
    glue = GlueTask("sst2", str(test_data / "glue"), tokenizer, max_seq_length=SEQ, pad_to_multiple=SEQ)
    glue_report = run(glue, encoder, config(base / "glue"))

    encoder, tokenizer = tiny_encoder(vocab_file)
    data = load_files(files["sst2_train_csv"], files["sst2_dev_csv"], files["sst2_test_csv"],
                      columns=Columns("review", label="sentiment"))
    task = ClassifyTask(data, tokenizer, max_seq_length=SEQ, pad_to_multiple=SEQ)
    report = run(task, encoder, config(base / "classify"), do_predict=True, export_dir=str(base / "export"))
    return {"glue": glue_report, "task": task, "report": report, "glue_dir": base / "glue",
            "model_dir": base / "classify", "export": base / "export"}


def best_weights(task, model_dir, vocab_file):
    model = task.build_model(tiny_encoder(vocab_file)[0])
    model.load_weights(str(model_dir / "best.weights.h5"))
    return model


def test_same_examples_same_seed_give_glues_result(sst2_runs, vocab_file):
    glue, report = sst2_runs["glue"], sst2_runs["report"]
    assert report["fit"]["best_epoch"] == glue["fit"]["best_epoch"]
    assert report["eval"]["accuracy"] == glue["eval"]["accuracy"]
    assert report["fit"]["history"]["loss"] == glue["fit"]["history"]["loss"]
    task = sst2_runs["task"]
    model = best_weights(task, sst2_runs["model_dir"], vocab_file)
    glue_weights = best_weights(task, sst2_runs["glue_dir"], vocab_file).get_weights()
    weights = model.get_weights()
    assert len(weights) == len(glue_weights) and len(weights) > 30
    for ours, theirs in zip(weights, glue_weights):
        np.testing.assert_array_equal(ours, theirs)
    # The other single-label metrics, recomputed with scikit-learn from the restored model.
    dev = task.examples("validation")
    predicted = task.predict(model, "validation")
    expected = {"accuracy": sklearn.metrics.accuracy_score(dev.labels, predicted),
                "macro_f1": sklearn.metrics.f1_score(dev.labels, predicted, average="macro"),
                "micro_f1": sklearn.metrics.f1_score(dev.labels, predicted, average="micro"),
                "matthews_corrcoef": sklearn.metrics.matthews_corrcoef(dev.labels, predicted)}
    assert report["eval"] == pytest.approx(expected)


def test_predictions_and_run_files_use_the_users_names(sst2_runs):
    model_dir = sst2_runs["model_dir"]
    rows = [json.loads(line) for line in (model_dir / "predictions_test.jsonl").read_text().splitlines()]
    test = sst2_runs["task"].examples("test")
    assert [r["line"] for r in rows] == list(range(2, 18)) and [r["review"] for r in rows] == test.text_a
    assert {r["sentiment"] for r in rows} <= {"neg", "pos"}
    for r in rows:
        assert set(r["probabilities"]) == {"neg", "pos"} and sum(r["probabilities"].values()) == pytest.approx(1)
        assert r["sentiment"] == max(r["probabilities"], key=r["probabilities"].get)
    dev_rows = (model_dir / "predictions_validation.jsonl").read_text().splitlines()
    assert len(dev_rows) == 32
    metadata = json.loads((sst2_runs["export"] / "run_metadata.json").read_text())
    assert metadata["task_class"] == "bert_keras.tasks.classify.task:ClassifyTask"
    assert (metadata["problem_type"], metadata["labels"], metadata["text_fields"]) == (
        "single_label", ["neg", "pos"], ["review"])


def cli_run(cli, argv):
    from absl import flags

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["classify", *argv])
    try:
        cli.main([])
    finally:
        flags.FLAGS.unparse_flags()


@pytest.fixture(scope="module")
def other_runs(files, vocab_file, test_data, tmp_path_factory, absl_cli_module):
    """One epoch each, exported: STS-B regression (JSONL pairs) through the Python API, and CoNLL entity-type
    multi-label through the CLI (flag file, --test_file), then that run's predictions again without training."""
    from bert_keras.tasks.conll.data import read_conll

    base = tmp_path_factory.mktemp("other_runs")
    runs = {}
    encoder, tokenizer = tiny_encoder(vocab_file)
    data = load_files(files["stsb_train"], files["stsb_dev"], columns=Columns("first", "second", "similarity"))
    task = ClassifyTask(data, tokenizer, max_seq_length=SEQ, pad_to_multiple=SEQ)
    runs["regression"] = (task, run(task, encoder, config(base / "stsb", 1), export_dir=str(base / "stsb_export")))

    test = write_csv(base / "ner_test.csv", ["sentence"],
                     [(" ".join(s.words),) for s in read_conll(test_data / "conll" / "test.txt")[:16]])
    flagfile = base / "ner.flags"
    flagfile.write_text("--text_column=sentence\n--label_column=entities\n--label_delimiter=|\n--max_seq_length=64\n"
                        "--pad_to_multiple=64\n--num_train_epochs=1\n--train_batch_size=16\n--learning_rate=1e-3\n",
                        encoding="utf-8")
    cli = absl_cli_module("bert_keras.tasks.classify.__main__")
    model_dir, export_dir = base / "ner", base / "ner_export"
    common = [f"--flagfile={flagfile}", "--preset=tiny", f"--vocab_file={vocab_file}", f"--model_dir={model_dir}",
              f"--test_file={test}"]
    cli_run(cli, [*common, f"--train_file={files['ner_train']}", f"--validation_file={files['ner_dev']}",
                  f"--export_dir={export_dir}"])
    first = (model_dir / "predictions_test.jsonl").read_text()
    # A trained run predicts again without training: problem type and label order come from classify_data.json.
    cli_run(cli, [*common, "--nodo_train", "--nodo_eval"])
    data = load_files(files["ner_train"], files["ner_dev"], columns=Columns("sentence", label="entities"),
                      label_delimiter="|")
    task = ClassifyTask(data, tokenizer, max_seq_length=SEQ, pad_to_multiple=SEQ)
    report = {"export": str(export_dir / "model.keras"),
              "eval": json.loads((model_dir / "eval_results.json").read_text()),
              "fit": json.loads((model_dir / "fit_summary.json").read_text()),
              "summary": json.loads((model_dir / "classify_data.json").read_text()),
              "predictions": [first, (model_dir / "predictions_test.jsonl").read_text()]}
    runs["multi_label"] = (task, report)
    return runs


def test_regression_from_json_lines_pairs(other_runs):
    task, report = other_runs["regression"]
    assert task.problem_type == "regression" and "not integers" in task.data.problem_type_source
    assert task.labels is None and task.main_metric == "pearson"
    model = keras.models.load_model(report["export"])
    assert isinstance(model, GlueClassifier) and model.num_classes == 1
    scores, gold = task.predict(model, "validation"), task.examples("validation").labels
    assert np.all(np.isfinite(scores)) and np.all(np.isfinite(report["fit"]["history"]["loss"]))
    assert report["eval"] == pytest.approx({"pearson": scipy.stats.pearsonr(scores, gold)[0],
                                            "spearman": scipy.stats.spearmanr(scores, gold)[0],
                                            "mse": sklearn.metrics.mean_squared_error(gold, scores)}, abs=1e-5)


def test_multi_label_cli_from_lists_and_joined_fields(other_runs):
    task, report = other_runs["multi_label"]
    summary = report["summary"]
    assert summary["problem_type"] == "multi_label" and "JSON lists" in summary["problem_type_source"]
    assert summary["labels"] == task.labels == ["LOC", "MISC", "ORG", "PER"]
    dev = task.examples("validation").labels
    assert dev.shape == (32, 4) and 0 < dev.sum() < dev.size
    assert np.all(np.isfinite(report["fit"]["history"]["loss"]))
    assert set(report["eval"]) == {"micro_f1", "macro_f1", "exact_match"}
    assert all(0 <= v <= 1 for v in report["eval"].values())
    model = keras.models.load_model(report["export"])
    assert isinstance(model, MultiLabelClassifier)
    predicted = task.predict(model, "validation")
    assert report["eval"] == pytest.approx({
        "micro_f1": sklearn.metrics.f1_score(dev, predicted, average="micro", zero_division=0),
        "macro_f1": sklearn.metrics.f1_score(dev, predicted, average="macro", zero_division=0),
        "exact_match": sklearn.metrics.accuracy_score(dev, predicted)})
    first, again = report["predictions"]
    rows = [json.loads(line) for line in first.splitlines()]
    assert again == first and len(rows) == 16
    for row in rows:
        assert row["entities"] == [n for n, p in row["probabilities"].items() if p >= 0.5]


def test_multi_label_metrics_match_sklearn_on_fixed_predictions():
    rng = np.random.default_rng(0)
    gold, predicted = rng.integers(0, 2, (50, 5)), rng.integers(0, 2, (50, 5))
    predicted[:, 4] = gold[:, 4] = 0  # a label nobody has: scores 0 in the macro average, as in sklearn
    assert classify_metrics.multi_label_metrics(predicted, gold) == pytest.approx({
        "micro_f1": sklearn.metrics.f1_score(gold, predicted, average="micro", zero_division=0),
        "macro_f1": sklearn.metrics.f1_score(gold, predicted, average="macro", zero_division=0),
        "exact_match": sklearn.metrics.accuracy_score(gold, predicted)})
    ids, gold_ids = rng.integers(0, 4, 60), rng.integers(0, 3, 60)  # class 3 only predicted
    assert classify_metrics.single_label_metrics(ids, gold_ids)["macro_f1"] == pytest.approx(
        sklearn.metrics.f1_score(gold_ids, ids, average="macro"))


# --- serving --------------------------------------------------------------------------------------------------
def serve(export_dir, texts):
    from bert_keras.export.model_dir import serving_module_for_model_dir

    module = serving_module_for_model_dir(str(export_dir))
    signature = module.signatures()["serving_default"]
    return module, signature(**{k: tf.constant(v) for k, v in texts.items()})


def test_exported_single_label_and_regression_serve_names_and_scores(sst2_runs, other_runs):
    task = sst2_runs["task"]
    texts = task.examples("validation").text_a[:8]
    module, outputs = serve(sst2_runs["export"], {"text": texts})
    names = [n.decode() for n in outputs["label_names"].numpy()]
    probabilities = outputs["probabilities"].numpy()
    keras_logits = module.model(module.pack_text(tf.constant(texts)), training=False).numpy()
    assert names == [["neg", "pos"][i] for i in keras_logits.argmax(-1)]
    np.testing.assert_allclose(probabilities, tf.nn.softmax(keras_logits).numpy(), atol=1e-6)

    task, report = other_runs["regression"]
    dev = task.examples("validation")
    _, outputs = serve(os.path.dirname(report["export"]), {"text_a": dev.text_a[:8], "text_b": dev.text_b[:8]})
    model = keras.models.load_model(report["export"])
    np.testing.assert_allclose(outputs["score"].numpy(), task.predict(model, "validation")[:8], atol=1e-5)


def test_exported_multi_label_saved_model_returns_label_names(other_runs, tmp_path):
    from bert_keras import export

    task, report = other_runs["multi_label"]
    texts = task.examples("validation").text_a[:12]
    saved = export.export_model_dir(os.path.dirname(report["export"]), tmp_path)  # python -m bert_keras.export
    outputs = tf.saved_model.load(saved).signatures["serving_default"](text=tf.constant(texts))
    decided = task.predict(keras.models.load_model(report["export"]), "validation")[:12]
    expected = [[task.labels[j] for j in np.flatnonzero(row)] for row in decided]
    served = [[n.decode() for n in row if n] for row in outputs["labels"].numpy()]
    assert served == expected
    np.testing.assert_array_equal(outputs["num_predicted"].numpy(), decided.sum(1))
    np.testing.assert_array_equal(outputs["predicted"].numpy(), decided.astype(bool))
    assert [n.decode() for n in outputs["label_names"].numpy()[0]] == task.labels


# --- bad data: named, before anything is built or written --------------------------------------------------
SST = Columns("review", label="sentiment")


def write(path, text, mode="w"):
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("name, content, pattern, kwargs", [
    ("missing_column.csv", "review,label\ngood,pos\n", r":1: header has no column 'sentiment'", {}),
    ("ragged.csv", "review,sentiment\ngood,pos\nbad,neg,extra\n",
     r":3: expected 2 comma-separated fields as in the header, got 3", {}),
    ("empty_text.tsv", "review\tsentiment\ngood\tpos\n  \tneg\n", r":3: column 'review': empty text", {}),
    ("unknown_label.jsonl", '{"review": "good", "sentiment": "pos"}\n{"review": "meh", "sentiment": "neutral"}\n',
     r":2: column 'sentiment': label 'neutral' is not in the label set \['neg', 'pos'\]", {"labels": "neg,pos"}),
    ("malformed.jsonl", '{"review": "good", "sentiment": "pos"}\n{"review": "bad", "sentiment": \n',
     r":2: malformed JSON", {}),
    ("missing_field.jsonl", '{"review": "good", "sentiment": "pos"}\n{"review": "bad"}\n',
     r":2: no field 'sentiment'", {}),
    ("not_utf8.csv", b"review,sentiment\ngood,pos\n\"caf\xe9 \nnoir\",neg\n",
     r":3: column 'review': bytes that are not UTF-8", {}),
    ("not_utf8.jsonl", b'{"review": "good", "sentiment": "pos"}\n{"review": "na\xefve", "sentiment": "neg"}\n',
     r":2: column 'review': bytes that are not UTF-8", {}),
    ("empty.csv", "", r"empty.csv: empty file", {}),
    ("header_only.csv", "review,sentiment\n", r"header_only.csv: no usable rows", {}),
    ("score.jsonl", '{"review": "a", "sentiment": 0.5}\n{"review": "b", "sentiment": "high"}\n',
     r":2: column 'sentiment': regression label 'high' is not a finite number", {"problem_type": "regression"}),
    ("data.txt", "review,sentiment\n", r"data.txt: unknown format '.txt'", {}),
])
def test_bad_data_names_file_line_and_column(tmp_path, name, content, pattern, kwargs):
    path = write(tmp_path / name, content, "wb" if isinstance(content, bytes) else "w")
    with pytest.raises(DataError, match=pattern) as error:
        load_files(path, columns=SST, **kwargs)
    assert path in str(error.value)


def test_every_named_file_is_checked_and_skip_bad_rows_counts(tmp_path):
    good = write(tmp_path / "train.csv", "review,sentiment\ngood,pos\nbad,neg\n")
    with pytest.raises(DataError, match=r"missing.csv: file not found"):
        load_files(good, str(tmp_path / "missing.csv"), columns=SST)
    test = write(tmp_path / "test.jsonl", '{"text": "no review field"}\n')
    with pytest.raises(DataError, match=r"test.jsonl:1: no field 'review'"):
        load_files(good, None, test, columns=SST)

    messy = write(tmp_path / "messy.jsonl", "\n".join([
        '{"review": "fine", "sentiment": "pos"}', '{"review": "x", "sentiment": ', '{"review": "", "sentiment": "neg"}',
        '{"review": "dull", "sentiment": "neg"}', '{"review": "odd", "sentiment": "meh"}', "[1, 2]",
        '{"review": "great", "sentiment": "pos"}']) + "\n")
    logged = []
    data = load_files(messy, columns=SST, labels="neg,pos", skip_bad_rows=True, log=logged.append)
    train = data.splits["train"]
    assert train.text_a == ["fine", "dull", "great"] and train.index == ["1", "4", "7"]
    assert data.skipped == {messy: 4} and data.summary()["files"]["train"]["skipped_rows"] == 4
    # Texts are checked while reading, labels once the label set is known: reports come in that order.
    skips = [m for m in logged if m.startswith("skipping")]
    assert [m.split(": ")[0] for m in skips] == [f"skipping {messy}:{n}" for n in (2, 3, 6, 5)]
    assert "label 'meh' is not in the label set" in skips[3]
    assert logged[-1] == f"{messy}: skipped 4 bad rows (--skip_bad_rows)"


def test_problem_type_and_label_order_inference(tmp_path):
    stars = write(tmp_path / "stars.csv", "text,label\na,10\nb,2\nc,1\nd,2\n")
    data = load_files(stars, columns=Columns())
    assert data.problem_type == "single_label" and data.labels == ["1", "2", "10"]  # numeric order
    np.testing.assert_array_equal(data.splits["train"].labels, [2, 1, 0, 1])
    joined = write(tmp_path / "joined.tsv", "text\tlabel\na\tx|y\nb\t\nc\ty\n")
    data = load_files(joined, columns=Columns(), label_delimiter="|")
    assert data.problem_type == "multi_label" and data.labels == ["x", "y"]
    np.testing.assert_array_equal(data.splits["train"].labels, [[1, 1], [0, 0], [0, 1]])
    with pytest.raises(DataError, match="at least 2 labels"):
        load_files(write(tmp_path / "one.csv", "text,label\na,x\nb,x\n"), columns=Columns())


def test_cli_checks_data_before_loading_a_model_or_writing(tmp_path, absl_cli_module):
    from absl import flags

    cli = absl_cli_module("bert_keras.tasks.classify.__main__")
    example = pathlib.Path(__file__).resolve().parent.parent / "configs" / "classify" / "example.flags"
    flags.FLAGS(["classify", f"--flagfile={example}"])  # the shipped example names only flags that exist
    assert (flags.FLAGS.text_column, flags.FLAGS.label_column, flags.FLAGS.train_file) == (
        "review_text", "sentiment", "reviews_train.csv")
    flags.FLAGS.unparse_flags()
    train = write(tmp_path / "train.csv", "review,sentiment\ngood,pos\nbad,neg\n")
    dev = write(tmp_path / "dev.csv", "review,sentiment\nfine,pos\n\"a\nmulti-line\",neg\n,pos\n")
    model_dir = tmp_path / "run"
    # The checkpoint does not exist either: the data error comes first, and model_dir is never created.
    argv = ["classify", f"--train_file={train}", f"--validation_file={dev}", "--text_column=review",
            "--label_column=sentiment", f"--init_checkpoint={tmp_path / 'no_checkpoint'}", f"--model_dir={model_dir}"]
    flags.FLAGS.unparse_flags()
    flags.FLAGS(argv)
    try:
        with pytest.raises(DataError, match=r"dev.csv:5: column 'review': empty text"):
            cli.main([])
        flags.FLAGS.class_weights = "balanced"
        flags.FLAGS.skip_bad_rows = True
        flags.FLAGS.main_metric = "exact_match"
        with pytest.raises(DataError, match=r"main metric 'exact_match' is not one of single_label's"):
            cli.main([])
    finally:
        flags.FLAGS.unparse_flags()
    assert not model_dir.exists()


def test_class_weights_become_per_row_sample_weights(tmp_path, vocab_file):
    import sklearn.utils.class_weight

    from bert_keras.tasks.classify.task import resolve_class_weights
    from bert_keras.tokenizer import BertTokenizer

    rows = "".join(f"text {i},{label}\n" for i, label in enumerate("aabbbbbcca"))
    data = load_files(write(tmp_path / "train.csv", "text,label\n" + rows), columns=Columns())
    ids = data.splits["train"].labels
    np.testing.assert_allclose(resolve_class_weights("balanced", data.labels, ids),
                               sklearn.utils.class_weight.compute_class_weight("balanced", classes=np.arange(3), y=ids))
    np.testing.assert_array_equal(resolve_class_weights("c=3", data.labels, ids), [1, 1, 3])
    np.testing.assert_array_equal(resolve_class_weights("2,1,0.5", data.labels, ids), [2, 1, 0.5])
    with pytest.raises(DataError, match=r"2 weights for 3 labels"):
        resolve_class_weights("2,1", data.labels, ids)
    with pytest.raises(DataError, match=r"unknown label\(s\) \['d'\]"):
        resolve_class_weights("d=2", data.labels, ids)
    task = ClassifyTask(data, BertTokenizer(vocab_file), max_seq_length=16, class_weights="c=3")
    dataset, count = task.train_dataset(4, seed=0)
    batches = list(dataset)
    assert count == 10 and all(len(batch) == 3 for batch in batches)
    labels, weights = (np.concatenate([b[i].numpy() for b in batches]) for i in (1, 2))
    np.testing.assert_array_equal(weights, np.where(labels == 2, 3.0, 1.0))
    with pytest.raises(DataError, match="class weights apply to single_label"):
        ClassifyTask.check_options(load_files(write(tmp_path / "s.jsonl", '{"text": "a", "label": 0.5}\n'),
                                              columns=Columns()), "balanced")


def test_json_lines_keep_unicode_line_separators_inside_strings(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"text": "one\u2028two", "label": "x"}, ensure_ascii=False) + "\n"
                    + json.dumps({"text": "three", "label": "y"}) + "\n", encoding="utf-8")
    data = load_files(str(path), columns=Columns())
    assert data.splits["train"].text_a == ["one\u2028two", "three"] and data.splits["train"].index == ["1", "2"]
