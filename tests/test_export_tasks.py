"""Task exports (GLUE classifier + regressor, pre-training MLM/NSP, SQuAD v2.0, CoNLL NER) of tiny random
models with the real uncased vocab, all served by ONE fresh process (tensorflow + tensorflow_text only) and
compared with the Keras model (1e-5) and with the task code's own post-processing on real excerpts
(tasks/squad postprocess on SQuAD dev, tasks/conll windows on CoNLL-2003 text, seqeval entities).

The GLUE, SQuAD v2.0 and NER exports go through what `trainer.run` writes (`model.keras`, `vocab.txt`,
`run_metadata.json`) and `--model_dir` with no other settings (SQuAD: `python -m bert_keras.export`'s main);
training itself is skipped (the tiny model's weights are put where a finished training leaves its best
ones), so every model is built once."""

import base64
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras import BertEncoder, preset
from test_export_encoder import load_client, payload  # shared helpers (pytest puts tests/ on sys.path)

SEQ = 48
SQUAD = {"max_query_length": 12, "doc_stride": 16, "max_answer_length": 10}  # 4-25 windows per excerpt context
NER_CONTEXT = 8  # pieces two NER windows share; small, so that long texts overlap in many windows


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    from bert_keras.tokenizer import BertTokenizer

    return BertTokenizer(str(minilm_dir / "vocab.txt"))


def tiny_encoder(tokenizer, seed):
    keras.utils.set_random_seed(seed)
    encoder = BertEncoder(preset("tiny", vocab_size=tokenizer.vocab_size, max_position_embeddings=64,
                                 num_hidden_layers=1))
    encoder.build()
    return encoder


@pytest.fixture(scope="module")
def models(tokenizer):
    from bert_keras.pretraining_model import BertPretrainingModel
    from bert_keras.tasks.glue.model import GlueClassifier
    from bert_keras.tasks.glue.tasks import GLUE_TASKS
    from bert_keras.tasks.conll.data import label_list
    from bert_keras.tasks.conll.model import TokenClassifier
    from bert_keras.tasks.squad.model import SquadModel

    mnli = GlueClassifier(tiny_encoder(tokenizer, 1), num_classes=3)
    stsb = GlueClassifier(tiny_encoder(tokenizer, 2), num_classes=1)
    keras.utils.set_random_seed(3)
    pretraining = BertPretrainingModel(tiny_encoder(tokenizer, 3).config)
    squad = SquadModel(tiny_encoder(tokenizer, 4))
    ner = TokenClassifier(tiny_encoder(tokenizer, 5), len(label_list()), labels=label_list())
    for model in (mnli, stsb, pretraining, squad, ner):
        model.build()
    return {"mnli": mnli, "stsb": stsb, "pretraining": pretraining, "squad": squad, "ner": ner,
            "mnli_labels": GLUE_TASKS["mnli"].labels}


@pytest.fixture(scope="module")
def squad_examples(test_data):
    from bert_keras.tasks.squad.data import read_squad_json

    v1 = read_squad_json(str(test_data / "squad" / "dev-v1.1-excerpt.json"))[0]
    one_per_context = list({e.context: e for e in v1}.values())  # 10 contexts, up to 414 WordPieces
    return {"v1.1": one_per_context, "v2.0": read_squad_json(str(test_data / "squad" / "dev-v2.0-excerpt.json"))[0]}


def squad_reference(model, tokenizer, examples):
    """tasks/squad: run_squad.py windows (features.py), the Keras model on every window at full length, and
    postprocess.py's n-best / max-context / v2.0 null-score rules -> ({qas_id: QuestionAnswer}, windows per
    question)."""
    from bert_keras.tasks.squad import postprocess
    from bert_keras.tasks.squad.features import convert_examples_to_features

    features = convert_examples_to_features(examples, tokenizer, max_seq_length=SEQ, **{
        k: SQUAD[k] for k in ("doc_stride", "max_query_length")})
    logits = forward(model, {k: tf.constant(v) for k, v in features.model_inputs().items()})
    answers = postprocess.postprocess(examples, features, logits["start_logits"].numpy(),
                                      logits["end_logits"].numpy(), n_best_size=20,
                                      max_answer_length=SQUAD["max_answer_length"], with_null=True)
    return answers, np.bincount(features.example_index, minlength=len(examples))


@pytest.fixture(scope="module")
def squad_answers(models, tokenizer, squad_examples):
    """The v2.0 dev excerpt + the v1.1 long contexts + bad questions about the longest context (non-UTF-8
    bytes, empty, far longer than max_query_length) -> (examples, reference answers, windows, a null threshold
    that splits them (median null_score_diff, so both decisions are exercised), REST instances)."""
    from bert_keras.tasks.squad.data import SquadExample

    context = max((e.context for e in squad_examples["v1.1"]), key=len)
    broken = b"Which NFL team represented the AFC at Super Bowl \xff 50?"
    bad = [SquadExample("non-utf8", broken.decode("utf-8", errors="replace"), context),
           SquadExample("empty", "", context), SquadExample("long", "Which team won the game? " * 20, context)]
    examples = squad_examples["v2.0"] + squad_examples["v1.1"] + bad
    answers, windows = squad_reference(models["squad"], tokenizer, examples)
    threshold = float(np.median([answers[e.qas_id].null_score_diff for e in examples]))
    instances = [{"question": e.question, "context": e.context} for e in examples]
    instances[-3]["question"] = {"b64": base64.b64encode(broken).decode("ascii")}
    return examples, answers, windows, threshold, instances


@pytest.fixture(scope="module")
def run_dirs(models, tokenizer, squad_answers, tmp_path_factory):
    """`trainer.run` on GLUE MNLI, CoNLL and SQuAD v2.0 (null threshold: `squad_answers`' median), exporting to
    `<run>/export`."""
    from bert_keras.finetuning import FineTuningConfig, run
    from bert_keras.finetuning.trainer import BEST_WEIGHTS
    from bert_keras.tasks.conll.task import ConllTask
    from bert_keras.tasks.glue.task import GlueTask
    from bert_keras.tasks.squad.task import SquadSettings, SquadTask

    base = tmp_path_factory.mktemp("runs")
    tasks = {
        "mnli": GlueTask("mnli", "unused", tokenizer, max_seq_length=SEQ),
        "ner": ConllTask("unused", tokenizer, SEQ, window_context=NER_CONTEXT),
        "squad": SquadTask(tokenizer, SquadSettings(version="2.0", max_seq_length=SEQ, **SQUAD,
                                                    null_score_diff_threshold=squad_answers[3])),
    }
    dirs = {}
    for name, task in tasks.items():
        (base / name).mkdir()
        models[name].save_weights(str(base / name / BEST_WEIGHTS))
        run(task, tiny_encoder(tokenizer, 0), FineTuningConfig(model_dir=str(base / name)), do_train=False,
            do_eval=False, export_dir=str(base / name / "export"))
        dirs[name] = base / name / "export"
    return dirs


def ner_long_words(test_data):
    """Two real CoNLL-2003 test sentences and, between them, the file's first 150 words as one row."""
    from bert_keras.tasks.conll.data import read_conll

    sentences = read_conll(str(test_data / "conll" / "test.txt"))
    rows = [list(sentences[3].words), [w for s in sentences[1:] for w in s.words][:150], list(sentences[5].words)]
    width = max(map(len, rows))
    return rows, {"signature_name": "words", "inputs": {"words": [r + [""] * (width - len(r)) for r in rows]}}


@pytest.fixture(scope="module")
def served(models, tokenizer, run_dirs, squad_answers, absl_cli_module, tmp_path_factory, test_data):
    from bert_keras import export
    from bert_keras.checkpoints import save_encoder
    from bert_keras.tasks.glue.serving import export_classifier

    base = tmp_path_factory.mktemp("task_exports")
    # A pre-training export (our checkpoint format with the MLM/NSP heads and vocab), read by --model_dir too.
    pretraining_dir = save_encoder(models["pretraining"], str(base / "pretraining_run"),
                                   str(run_dirs["mnli"] / "vocab.txt"))
    # `python -m bert_keras.export --model_dir=RUN --export_dir=OUT`, nothing else.
    cli = absl_cli_module("bert_keras.export.__main__")
    cli.FLAGS(["export", f"--model_dir={run_dirs['squad']}", f"--export_dir={base / 'squad'}"])
    cli.main([])
    paths = {
        # Fine-tuning runs: sequence length, task, labels, SQuAD/NER settings all from run_metadata.json.
        "squad": base / "squad" / "1",
        "mnli": export.export_model_dir(run_dirs["mnli"], base / "mnli"),
        "ner": export.export_model_dir(run_dirs["ner"], base / "ner"),
        "stsb": export_classifier(models["stsb"], tokenizer, base / "stsb", seq_length=SEQ),
        "pretraining": export.export_pretraining(models["pretraining"], tokenizer, base / "pretraining",
                                                 seq_length=SEQ, top_k=3, max_masks=4),
    }
    requests = {name: {"rest": payload(test_data, f"{name}_predict_rest.json"), "saved_model": str(paths[name])}
                for name in ("mnli", "stsb", "pretraining", "ner")}
    squad = str(paths["squad"])
    requests.update({
        "squad_payload": {"rest": payload(test_data, "squad_predict_rest.json"), "saved_model": squad},
        "squad_grpc": {"grpc": payload(test_data, "squad_predict_grpc.json"), "saved_model": squad},
        "squad_empty_batch": {"rest": {"inputs": {"question": [], "context": []}}, "saved_model": squad},
        "squad_dev": {"rest": {"instances": squad_answers[4]}, "saved_model": squad},
        "ner_words": {"rest": payload(test_data, "ner_words_rest.json"), "saved_model": str(paths["ner"])},
        "ner_long_words": {"rest": ner_long_words(test_data)[1], "saved_model": str(paths["ner"])},
        "ner_empty_batch": {"rest": {"inputs": {"text": []}}, "saved_model": str(paths["ner"])},
    })
    for name in ("squad", "pretraining", "ner", "mnli"):
        requests[f"cli_{name}"] = {"saved_model_cli": {}, "saved_model": str(paths[name])}
    client = load_client(test_data)
    responses = client.predict_in_fresh_process(paths["mnli"], requests, tmp_path_factory.mktemp("client"))
    signatures = {name[4:]: client.parse_show_all(r["show_all"]) for name, r in responses.items()
                  if name.startswith("cli_")}
    return responses, signatures, pretraining_dir, paths


def packed(tokenizer, *texts, seq=SEQ):
    from bert_keras.tokenizer import SegmentPacker

    return SegmentPacker(seq, tokenizer.cls_id, tokenizer.sep_id)([tokenizer.tokenize(tf.constant(t)) for t in texts])


def forward(model, inputs):
    return tf.function(lambda x: model(x, training=False))(inputs)


def rows(predictions):
    return {k: np.array([r[k] for r in predictions]) for k in predictions[0]}


def test_only_tensorflow_in_the_serving_process(served):
    assert served[0]["_modules"] == {"bert_keras": False, "tensorflow_text": True}
    assert not [name for name, r in served[0].items() if isinstance(r, dict) and "error" in r]


def test_runs_write_what_export_needs(run_dirs, tokenizer, squad_answers, served):
    from bert_keras.tasks.conll.data import label_list
    from bert_keras.vocab_file import read_vocab

    for name, directory in run_dirs.items():
        assert sorted(p.name for p in directory.iterdir()) == ["model.keras", "run_metadata.json", "vocab.txt"]
        assert read_vocab(directory / "vocab.txt") == tokenizer.vocab
    metadata = {name: json.loads((d / "run_metadata.json").read_text()) for name, d in run_dirs.items()}
    assert metadata["mnli"] == {"lower_case": True, "task_class": "bert_keras.tasks.glue.task:GlueTask",
                                "task_family": "glue", "task": "mnli", "max_seq_length": SEQ,
                                "labels": ["contradiction", "entailment", "neutral"], "num_text_fields": 2}
    assert metadata["ner"] == {"lower_case": True, "task_class": "bert_keras.tasks.conll.task:ConllTask",
                               "task_family": "ner", "task": "conll2003", "max_seq_length": SEQ,
                               "labels": label_list(), "window_context": NER_CONTEXT}
    assert metadata["squad"] == {"lower_case": True, "task_class": "bert_keras.tasks.squad.task:SquadTask",
                                 "task_family": "squad", "task": "squad2.0",
                                 "max_seq_length": SEQ, "version": "2.0", "n_best_size": 20, **SQUAD,
                                 "null_score_diff_threshold": squad_answers[3]}
    # The exports took their sequence length from the runs (no seq_length was passed).
    for name in ("mnli", "ner", "squad"):
        assert served[1][name]["token_ids"]["inputs"]["input_word_ids"] == ("DT_INT32", f"(-1, {SEQ})")


def test_glue_classifier_labels_and_probabilities(served, models, tokenizer, test_data):
    out = rows(served[0]["mnli"]["predictions"])
    instances = payload(test_data, "mnli_predict_rest.json")["instances"]
    assert not out["invalid_utf8"].any()
    inputs = packed(tokenizer, [i["text_a"] for i in instances], [i["text_b"] for i in instances])
    logits = forward(models["mnli"], inputs).numpy()
    np.testing.assert_allclose(out["logits"], logits, atol=1e-5)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(out["probabilities"], probabilities, atol=1e-5)
    assert out["label_ids"].tolist() == logits.argmax(-1).tolist()
    assert out["label_names"].tolist() == [models["mnli_labels"][i] for i in logits.argmax(-1)]


def test_glue_regressor_score(served, models, tokenizer, test_data):
    out = served[0]["stsb"]["predictions"]
    texts = payload(test_data, "stsb_predict_rest.json")["instances"]
    scores = forward(models["stsb"], packed(tokenizer, texts)).numpy()
    assert [sorted(r) for r in out] == [["input_mask", "input_type_ids", "input_word_ids", "invalid_utf8",
                                         "score"]] * len(texts)
    np.testing.assert_allclose([r["score"] for r in out], scores, atol=1e-5)


def test_pretraining_masked_words_and_next_sentence(served, models, tokenizer, test_data):
    out = served[0]["pretraining"]["outputs"]
    body = payload(test_data, "pretraining_predict_rest.json")
    assert body["signature_name"] == "text_pair"
    ids = np.array(out["input_word_ids"])
    for row, text in zip(ids, body["inputs"]["text_a"]):
        assert (row == tokenizer.mask_id).sum() == text.count("[MASK]")
    positions = [[int(p) for p in np.flatnonzero(r == tokenizer.mask_id)][:4] for r in ids]
    padded = np.array([p + [0] * (4 - len(p)) for p in positions], "int32")
    inputs = {k: tf.constant(np.array(out[k]), tf.int32) for k in ("input_word_ids", "input_mask", "input_type_ids")}
    reference = forward(models["pretraining"], {**inputs, "masked_lm_positions": tf.constant(padded)})
    mlm = tf.nn.softmax(reference["mlm_logits"]).numpy()
    for b, pos in enumerate(positions):
        assert out["mask_positions"][b] == pos + [-1] * (4 - len(pos))
        for m in range(len(pos)):
            top = np.argsort(-mlm[b, m])[:3]
            assert out["top_k_ids"][b][m] == top.tolist()
            assert out["top_k_tokens"][b][m] == [tokenizer.vocab[i] for i in top]
            np.testing.assert_allclose(out["top_k_probabilities"][b][m], mlm[b, m, top], atol=1e-5)
    nsp = tf.nn.softmax(reference["nsp_logits"]).numpy()[:, 0]
    np.testing.assert_allclose(out["next_sentence_probability"], nsp, atol=1e-5)


def assert_same_span(example, answer, start, end, score):
    """The served span is postprocess's best span, or (float noise) one of its n-best tied with it."""
    best = answer.best_span
    np.testing.assert_allclose(score, best.score, atol=1e-4)
    if (start, end) != (best.char_start, best.char_end):
        tied = [c for c in answer.nbest if (c.char_start, c.char_end) == (start, end)]
        assert tied and tied[0].score >= best.score - 1e-4, (example.qas_id, start, end, best)


def test_squad_agrees_with_postprocess_on_dev_and_long_contexts(served, squad_answers):
    """The CLI export of the v2.0 run on the v2.0 dev excerpt + v1.1 contexts of up to 414 WordPieces (windows
    of SEQ=48) + bad questions: windows, best spans, null score differences and the no-answer decision (both
    ways, at the run's threshold) are those of tasks/squad."""
    examples, answers, windows, threshold, _ = squad_answers
    out = rows(served[0]["squad_dev"]["predictions"])
    assert out["num_windows"].tolist() == windows.tolist() and windows.max() >= 25
    decided = set()
    for i, example in enumerate(examples):
        answer = answers[example.qas_id]
        start, end = int(out["best_span_start"][i]), int(out["best_span_end"][i])
        assert out["best_span_text"][i] == example.context[start:end]
        assert_same_span(example, answer, start, end, out["score"][i])
        np.testing.assert_allclose(out["null_score_diff"][i], answer.null_score_diff, atol=1e-4)
        if abs(answer.null_score_diff - threshold) > 1e-4:  # the decision is not a float-noise tie
            assert out["has_answer"][i] == (answer.prediction(threshold) != "")
            decided.add(bool(out["has_answer"][i]))
        expected = (out["best_span_text"][i], start, end) if out["has_answer"][i] else ("", -1, -1)
        assert (out["answer_text"][i], out["answer_start"][i], out["answer_end"][i]) == expected
    assert decided == {True, False}
    assert out["has_answer"].tolist() == (out["null_score_diff"] <= threshold).tolist()


def test_squad_run_metadata_takes_the_threshold_the_dev_evaluation_found(tokenizer, tmp_path):
    from bert_keras.tasks.squad.task import THRESHOLD_FILE, SquadSettings, SquadTask

    settings = SquadSettings(version="2.0", null_score_diff_threshold=0.5)
    task = SquadTask(tokenizer, settings, output_dir=str(tmp_path))
    assert task.export_metadata()["null_score_diff_threshold"] == 0.5  # no evaluation yet: the configured one
    (tmp_path / THRESHOLD_FILE).write_text(json.dumps({"null_score_diff_threshold": -1.25, "best_f1": 60.0}))
    assert task.export_metadata()["null_score_diff_threshold"] == -1.25
    assert SquadTask(tokenizer, SquadSettings(version="1.1")).export_metadata()["null_score_diff_threshold"] is None


def test_squad_v1_signature_answers_the_best_span(models, tokenizer, squad_examples, squad_answers):
    """Without a null threshold (SQuAD v1.1) the graph answers postprocess's best span whatever the null
    score, and has no null outputs (traced in-process: the served v2.0 models already prove the span)."""
    from bert_keras.export.serving import graph_function
    from bert_keras.tasks.squad.serving import SquadServing

    examples = squad_examples["v1.1"][:4]
    module = SquadServing(models["squad"], tokenizer, SEQ, **SQUAD)
    out = graph_function(module.answer)(tf.constant([e.question for e in examples]),
                                        tf.constant([e.context for e in examples]))
    assert sorted(out) == ["answer_end", "answer_start", "answer_text", "has_answer", "invalid_utf8", "num_windows",
                           "score"]
    assert not np.asarray(out["invalid_utf8"]).any()
    for i, example in enumerate(examples):
        start, end = int(out["answer_start"][i]), int(out["answer_end"][i])
        assert out["has_answer"][i] and out["answer_text"][i].numpy().decode() == example.context[start:end]
        assert_same_span(example, squad_answers[1][example.qas_id], start, end, float(out["score"][i]))


def test_squad_payload_bad_inputs_and_signatures(served, test_data):
    out = rows(served[0]["squad_payload"]["predictions"])
    instances = payload(test_data, "squad_predict_rest.json")["instances"]
    for i, instance in enumerate(instances[:3]):
        if out["has_answer"][i]:
            assert out["answer_text"][i] == instance["context"][out["answer_start"][i]:out["answer_end"][i]]
    # Row 3: empty context -> no span, no answer; row 4: non-UTF-8 context -> served, offsets into its repair.
    assert (out["answer_text"][3], out["answer_start"][3], out["has_answer"][3], out["num_windows"][3]) == \
        ("", -1, False, 1)
    repaired = base64.b64decode(instances[4]["context"]["b64"]).decode("utf-8", errors="replace")
    assert out["num_windows"][4] == 1 and "\ufffd" in repaired
    assert out["invalid_utf8"].tolist() == [False, False, False, False, True] + [False] * (len(instances) - 5)
    assert out["best_span_text"][4] == repaired[out["best_span_start"][4]:out["best_span_end"][4]]
    grpc = served[0]["squad_grpc"]["outputs"]
    assert grpc["answer_text"] == out["answer_text"][:len(grpc["answer_text"])].tolist()
    np.testing.assert_allclose(grpc["null_score_diff"], out["null_score_diff"][:len(grpc["answer_text"])], atol=1e-6)
    assert served[0]["squad_empty_batch"]["outputs"]["answer_text"] == []
    outputs = {"answer_text": ("DT_STRING", "(-1)"), "answer_start": ("DT_INT32", "(-1)"),
               "answer_end": ("DT_INT32", "(-1)"), "has_answer": ("DT_BOOL", "(-1)"), "score": ("DT_FLOAT", "(-1)"),
               "num_windows": ("DT_INT32", "(-1)"), "invalid_utf8": ("DT_BOOL", "(-1)")}
    v2_outputs = {"null_score_diff": ("DT_FLOAT", "(-1)"), "best_span_text": ("DT_STRING", "(-1)"),
                  "best_span_start": ("DT_INT32", "(-1)"), "best_span_end": ("DT_INT32", "(-1)")}
    signatures = served[1]
    assert signatures["squad"]["serving_default"]["inputs"] == {"question": ("DT_STRING", "(-1)"),
                                                                "context": ("DT_STRING", "(-1)")}
    assert signatures["squad"]["serving_default"]["outputs"] == {**outputs, **v2_outputs}
    assert signatures["squad"]["token_ids"]["outputs"]["start_logits"] == ("DT_FLOAT", f"(-1, {SEQ})")
    assert signatures["pretraining"]["text_pair"]["outputs"]["top_k_tokens"] == ("DT_STRING", "(-1, 4, 3)")


def test_model_dir_reads_pretraining_runs_and_explains_bad_dirs(served, models, run_dirs, tmp_path):
    from bert_keras.export.model_dir import serving_module_for_model_dir
    from bert_keras.export.pretraining import PretrainingServing

    module = serving_module_for_model_dir(served[2], seq_length=SEQ)
    assert isinstance(module, PretrainingServing)
    original = models["pretraining"].weights
    assert len(module.model.weights) == len(original)
    for restored, weight in zip(module.model.weights, original):  # same architecture, same weight order
        np.testing.assert_array_equal(restored.numpy(), weight.numpy())
    with pytest.raises(FileNotFoundError, match="model.keras"):
        serving_module_for_model_dir(str(tmp_path))
    # A run_metadata.json that does not match the model, or lacks a field, is named in the error.
    for name in ("model.keras", "vocab.txt"):
        (tmp_path / name).write_bytes((run_dirs["mnli"] / name).read_bytes())
    metadata = json.loads((run_dirs["squad"] / "run_metadata.json").read_text())
    (tmp_path / "run_metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"run_metadata.json: task_family 'squad' but model.keras is a GlueClassifier"):
        serving_module_for_model_dir(str(tmp_path))
    del metadata["max_seq_length"]
    (tmp_path / "run_metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"run_metadata.json: missing field 'max_seq_length'"):
        serving_module_for_model_dir(str(tmp_path))


def conll_word_tags(model, tokenizer, pieces):
    """tasks/conll: windows of a long sentence (features.sentence_windows, NER_CONTEXT), the Keras model on
    each, one tag per word from its owning window (features.merge_predictions)."""
    from bert_keras.tasks.conll import features
    from bert_keras.tasks.conll.data import Sentence

    windows = features.sentence_windows(0, pieces, None, max_seq_length=SEQ, context=NER_CONTEXT,
                                        cls_id=tokenizer.cls_id, sep_id=tokenizer.sep_id)
    logits = forward(model, next(iter(features.to_dataset(windows, len(windows), with_labels=False)))).numpy()
    words = Sentence(("w",) * len(pieces), ("O",) * len(pieces))
    return features.merge_predictions(windows, logits.argmax(-1), [words], model.labels)[0], len(windows)


def test_ner_text_entities_with_character_offsets(served, models, tokenizer, test_data):
    from seqeval.metrics.sequence_labeling import get_entities

    out = served[0]["ner"]["predictions"]
    instances = payload(test_data, "ner_predict_rest.json")["instances"]
    for i, text in enumerate(instances):
        if not isinstance(text, str):
            continue  # the non-UTF-8 row: checked below
        words = tokenizer.tokenize_words(tf.constant([text]))[0].to_list()
        _, starts, ends = (t[0].numpy() for t in tokenizer.tokenize_with_offsets(tf.constant([text])))
        raw = text.encode("utf-8")
        char = np.cumsum([0] + [1 if (b & 0xC0) != 0x80 else 0 for b in raw])
        first_piece = np.cumsum([0] + [len(w) for w in words])
        tags, num_windows = conll_word_tags(models["ner"], tokenizer, words) if words else ([], 0)
        assert out[i]["word_tags"][:len(words)] == tags and not any(out[i]["word_tags"][len(words):])
        expected = [(kind, int(char[starts[first_piece[a]]]), int(char[ends[first_piece[b + 1] - 1]]))
                    for kind, a, b in get_entities(tags)]
        row = out[i]
        n = row["num_entities"]
        assert list(zip(row["entity_types"][:n], row["entity_starts"][:n], row["entity_ends"][:n])) == expected
        assert row["entity_texts"][:n] == [text[a:b] for _, a, b in expected]
        assert all(t == "" for t in row["entity_types"][n:])
        if i == 4:  # the long real text: many windows, every word tagged
            assert num_windows >= 8 and len(tags) == len(words) > 250
    assert out[2]["num_entities"] == 0 and not any(out[2]["word_tags"])  # empty text
    assert len([t for t in out[3]["word_tags"] if t]) == 7  # bad bytes (replaced, then dropped): tagged
    assert [row["invalid_utf8"] for row in out] == [i == 3 for i in range(len(out))]  # and reported
    assert served[0]["ner_empty_batch"]["outputs"]["num_entities"] == []


def test_ner_pre_split_words(served, models, tokenizer, test_data):
    from seqeval.metrics.sequence_labeling import get_entities

    from bert_keras.tasks.conll.data import Sentence
    from bert_keras.tasks.conll.task import ConllTask

    batches = [(payload(test_data, "ner_words_rest.json")["inputs"]["words"], served[0]["ner_words"]["outputs"]),
               (ner_long_words(test_data)[0], served[0]["ner_long_words"]["outputs"])]
    for batch, out in batches:
        sentences = [[w for w in words if w] for words in batch]
        # tasks/conll end to end on the same words: its windows, the Keras model, one tag per word.
        task = ConllTask("unused", tokenizer, SEQ, window_context=NER_CONTEXT,
                         sentences={"x": [Sentence(tuple(s), ("O",) * len(s)) for s in sentences]})
        for i, (words, tags) in enumerate(zip(sentences, task.predict(models["ner"], "x"))):
            assert out["word_tags"][i][:len(words)] == tags
            expected = [(kind, a, b + 1, " ".join(words[a:b + 1])) for kind, a, b in get_entities(tags)]
            n = out["num_entities"][i]
            assert list(zip(out["entity_types"][i][:n], out["entity_starts"][i][:n], out["entity_ends"][i][:n],
                            out["entity_texts"][i][:n])) == expected
    assert len(task.windows("x")) >= 6  # the 150-word row really is windowed
    assert served[1]["ner"]["words"]["inputs"] == {"words": ("DT_STRING", "(-1, -1)")}
    assert served[1]["ner"]["serving_default"]["outputs"]["entity_starts"] == ("DT_INT32", "(-1, -1)")
