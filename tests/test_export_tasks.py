"""Task exports (GLUE classifier + regressor, pre-training MLM/NSP, SQuAD, CoNLL NER) of tiny random models with
the real uncased vocab, all served by ONE fresh process (tensorflow + tensorflow_text only) and compared with
the Keras model (1e-5) and with independent post-processing (numpy SQuAD spans, seqeval entities)."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras import BertEncoder, preset
from test_export_encoder import load_client, payload  # shared helpers (pytest puts tests/ on sys.path)

SEQ = 48


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
    from tasks.glue.model import GlueClassifier
    from tasks.glue.tasks import GLUE_TASKS
    from tasks.conll.data import label_list
    from tasks.conll.model import TokenClassifier
    from tasks.squad.model import SquadModel

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
def served(models, tokenizer, tmp_path_factory, test_data):
    from bert_keras import export

    from bert_keras.checkpoints import save_encoder

    base = tmp_path_factory.mktemp("task_exports")
    # What training runs leave behind, exported through `export_model_dir` (the CLI's --model_dir):
    # a fine-tuning export dir (model.keras + vocab + fit_summary.json naming the task) ...
    mnli_dir = base / "mnli_run"
    mnli_dir.mkdir()
    models["mnli"].save(mnli_dir / "model.keras")
    (mnli_dir / "vocab.txt").write_text("\n".join(tokenizer.vocab) + "\n", encoding="utf-8")
    (mnli_dir / "fit_summary.json").write_text(json.dumps({"task": "mnli"}))
    ner_dir = base / "ner_run"
    ner_dir.mkdir()
    models["ner"].save(ner_dir / "model.keras")
    (ner_dir / "vocab.txt").write_text((mnli_dir / "vocab.txt").read_text(encoding="utf-8"), encoding="utf-8")
    # ... and a pre-training export (our checkpoint format with the MLM/NSP heads and vocab).
    pretraining_dir = save_encoder(models["pretraining"], str(base / "pretraining_run"), str(mnli_dir / "vocab.txt"))
    paths = {
        "mnli": export.export_model_dir(mnli_dir, base / "mnli", seq_length=SEQ),
        "ner": export.export_model_dir(ner_dir, base / "ner", seq_length=SEQ),
        "stsb": export.export_classifier(models["stsb"], tokenizer, base / "stsb", seq_length=SEQ),
        "pretraining": export.export_pretraining(models["pretraining"], tokenizer, base / "pretraining",
                                                 seq_length=SEQ, top_k=3, max_masks=4),
        "squad": export.export_squad(models["squad"], tokenizer, base / "squad", seq_length=SEQ,
                                     max_query_length=12, doc_stride=16, max_answer_length=10),
    }
    requests = {}
    for name in ("mnli", "stsb", "pretraining", "squad", "ner"):
        requests[name] = {"rest": payload(test_data, f"{name}_predict_rest.json"), "saved_model": str(paths[name])}
    requests["ner_words"] = {"rest": payload(test_data, "ner_words_rest.json"), "saved_model": str(paths["ner"])}
    requests["squad_grpc"] = {"grpc": payload(test_data, "squad_predict_grpc.json"), "saved_model": str(paths["squad"])}
    client = load_client(test_data)
    responses = client.predict_in_fresh_process(paths["mnli"], requests, tmp_path_factory.mktemp("client"))
    signatures = {name: client.saved_model_cli_signatures(path) for name, path in paths.items()
                  if name in ("squad", "pretraining", "ner")}
    return responses, signatures, pretraining_dir


def packed(tokenizer, *texts, seq=SEQ):
    from bert_keras.tokenizer import SegmentPacker

    return SegmentPacker(seq, tokenizer.cls_id, tokenizer.sep_id)([tokenizer.tokenize(tf.constant(t)) for t in texts])


def forward(model, inputs):
    return tf.function(lambda x: model(x, training=False))(inputs)


def rows(predictions):
    return {k: np.array([r[k] for r in predictions]) for k in predictions[0]}


def test_only_tensorflow_in_the_serving_process(served):
    assert served[0]["_modules"] == {"bert_keras": False, "tensorflow_text": True}


def test_glue_classifier_labels_and_probabilities(served, models, tokenizer, test_data):
    out = rows(served[0]["mnli"]["predictions"])
    instances = payload(test_data, "mnli_predict_rest.json")["instances"]
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
    assert [sorted(r) for r in out] == [["input_mask", "input_type_ids", "input_word_ids", "score"]] * len(texts)
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


def squad_reference(model, tokenizer, question, context, *, seq, max_query, stride, max_answer):
    """run_squad.py windows scored by the Keras model: every allowed span's character offsets -> score."""
    q = tokenizer.tokenize(tf.constant([question]))[0].numpy()[:max_query].tolist()
    ids, starts, ends = (t[0].numpy() for t in tokenizer.tokenize_with_offsets(tf.constant([context])))
    raw = context.encode("utf-8")
    byte_to_char = np.cumsum([0] + [1 if (b & 0xC0) != 0x80 else 0 for b in raw])
    capacity = seq - 3 - len(q)
    spans = {}  # (char start, char end) -> best score of that span over the windows
    windows, start = 0, 0
    while True:
        length = min(capacity, len(ids) - start)
        window = ids[start:start + length].tolist()
        word_ids = [tokenizer.cls_id] + q + [tokenizer.sep_id] + window + [tokenizer.sep_id]
        pad = seq - len(word_ids)
        inputs = {"input_word_ids": tf.constant([word_ids + [0] * pad], tf.int32),
                  "input_mask": tf.constant([[1] * len(word_ids) + [0] * pad], tf.int32),
                  "input_type_ids": tf.constant([[0] * (len(q) + 2) + [1] * (length + 1) + [0] * pad], tf.int32)}
        out = forward(model, inputs)
        s, e = out["start_logits"].numpy()[0], out["end_logits"].numpy()[0]
        offset = len(q) + 2
        for i in range(length):
            for j in range(i, min(length, i + max_answer)):
                span = (int(byte_to_char[starts[start + i]]), int(byte_to_char[ends[start + j]]))
                spans[span] = max(spans.get(span, -np.inf), s[offset + i] + e[offset + j])
        windows += 1
        if start + length >= len(ids):
            break
        start += stride
    return spans, windows


def test_squad_answers_map_to_context_characters(served, models, tokenizer, test_data):
    body = payload(test_data, "squad_predict_rest.json")
    out = rows(served[0]["squad"]["predictions"])
    for i, instance in enumerate(body["instances"][:3]):  # rows 3-4 are the bad inputs below
        context = instance["context"]
        start, end = int(out["answer_start"][i]), int(out["answer_end"][i])
        assert out["answer_text"][i] == context[start:end]
        spans, windows = squad_reference(models["squad"], tokenizer, instance["question"], context, seq=SEQ,
                                         max_query=12, stride=16, max_answer=10)
        assert int(out["num_windows"][i]) == windows
        # The served span is a valid candidate whose score is the best one (ties within float noise).
        best = max(spans.values())
        np.testing.assert_allclose(out["score"][i], best, atol=1e-4)
        assert spans[(start, end)] >= best - 1e-4
    assert out["num_windows"].max() >= 5  # the long context really spans many windows
    grpc = served[0]["squad_grpc"]["outputs"]
    assert grpc["answer_text"] == out["answer_text"][:len(grpc["answer_text"])].tolist()


def test_squad_bad_inputs_and_signatures(served):
    out = rows(served[0]["squad"]["predictions"])
    # Payload rows 3-4: empty context -> empty answer at 0; non-UTF-8 context -> an answer, no error.
    assert (out["answer_text"][3], out["answer_start"][3], out["answer_end"][3]) == ("", 0, 0)
    assert out["answer_end"][4] > out["answer_start"][4]
    signatures = served[1]["squad"]
    assert signatures["serving_default"]["inputs"] == {"question": ("DT_STRING", "(-1)"),
                                                       "context": ("DT_STRING", "(-1)")}
    assert signatures["serving_default"]["outputs"] == {
        "answer_text": ("DT_STRING", "(-1)"), "answer_start": ("DT_INT32", "(-1)"),
        "answer_end": ("DT_INT32", "(-1)"), "score": ("DT_FLOAT", "(-1)"), "num_windows": ("DT_INT32", "(-1)")}
    assert signatures["token_ids"]["outputs"]["start_logits"] == ("DT_FLOAT", f"(-1, {SEQ})")
    assert served[1]["pretraining"]["text_pair"]["outputs"]["top_k_tokens"] == ("DT_STRING", "(-1, 4, 3)")


def test_model_dir_reads_pretraining_runs_and_explains_bad_dirs(served, models, tmp_path):
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


def keras_word_tags(model, tokenizer, word_pieces):
    """Tags of each word (by its first WordPiece) from the Keras model; pieces cut at SEQ - 2."""
    from bert_keras.tokenizer import SegmentPacker

    flat = [p for word in word_pieces for p in word][:SEQ - 2]
    firsts, position = [], 0
    for word in word_pieces:
        if word and position < SEQ - 2:
            firsts.append(position)
        position += len(word)
    inputs = SegmentPacker(SEQ, tokenizer.cls_id, tokenizer.sep_id)([tf.ragged.constant([flat], tf.int32)])
    logits = forward(model, inputs).numpy()[0]
    labels = model.labels
    return [labels[int(logits[p + 1].argmax())] for p in firsts]


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
        tags = keras_word_tags(models["ner"], tokenizer, words)
        assert [t for t in out[i]["word_tags"] if t] == tags
        expected = [(kind, int(char[starts[first_piece[a]]]), int(char[ends[first_piece[b + 1] - 1]]))
                    for kind, a, b in get_entities(tags)]
        row = out[i]
        n = row["num_entities"]
        assert list(zip(row["entity_types"][:n], row["entity_starts"][:n], row["entity_ends"][:n])) == expected
        assert row["entity_texts"][:n] == [text[a:b] for _, a, b in expected]
        assert all(t == "" for t in row["entity_types"][n:])
    assert out[2]["num_entities"] == 0  # empty text
    assert len([t for t in out[4]["word_tags"] if t]) < len(instances[4].split())  # long text: truncated
    assert out[3]["num_entities"] == len([t for t in out[3]["entity_types"] if t])  # bad bytes: answered


def test_ner_pre_split_words(served, models, tokenizer, test_data):
    from seqeval.metrics.sequence_labeling import get_entities

    out = served[0]["ner_words"]["outputs"]
    batch = payload(test_data, "ner_words_rest.json")["inputs"]["words"]
    for i, words in enumerate(batch):
        words = [w for w in words if w]
        pieces = tokenizer.tokenize(tf.ragged.constant([words]))[0].to_list()
        tags = keras_word_tags(models["ner"], tokenizer, pieces)
        assert out["word_tags"][i][:len(words)] == tags
        expected = [(kind, a, b + 1, " ".join(words[a:b + 1])) for kind, a, b in get_entities(tags)]
        n = out["num_entities"][i]
        assert list(zip(out["entity_types"][i][:n], out["entity_starts"][i][:n], out["entity_ends"][i][:n],
                        out["entity_texts"][i][:n])) == expected
    assert served[1]["ner"]["words"]["inputs"] == {"words": ("DT_STRING", "(-1, -1)")}
    assert served[1]["ner"]["serving_default"]["outputs"]["entity_starts"] == ("DT_INT32", "(-1, -1)")
