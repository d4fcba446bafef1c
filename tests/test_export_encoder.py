"""Encoder export from the real all-MiniLM-L6-v2 checkpoint via the CLI, served in a fresh process that
imports only tensorflow + tensorflow_text, with the README's REST and gRPC payloads."""

import base64
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

SEQ_LENGTH = 128


def load_client(test_data):
    spec = importlib.util.spec_from_file_location("serving_client", test_data / "export" / "serving_client.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def payload(test_data, name):
    with open(test_data / "export" / name, encoding="utf-8") as f:
        return json.load(f)


def raw_bytes(value):
    """A REST JSON string value as the bytes the client sends."""
    return base64.b64decode(value["b64"]) if isinstance(value, dict) else value.encode("utf-8")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, minilm_dir, test_data):
    """One CLI export of the real checkpoint, all requests answered by one fresh process."""
    export_dir = tmp_path_factory.mktemp("encoder_export")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run(
        [sys.executable, "-m", "bert_keras.export", f"--checkpoint={minilm_dir}", f"--export_dir={export_dir}",
         f"--seq_length={SEQ_LENGTH}"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    saved_model = export_dir / "1"
    assert f"SavedModel written to {saved_model}" in result.stdout
    client = load_client(test_data)
    requests = {
        "single": {"rest": payload(test_data, "encoder_predict_rest.json")},
        "pair_rest": {"rest": payload(test_data, "encoder_text_pair_rest.json")},
        "pair_grpc": {"grpc": payload(test_data, "encoder_text_pair_grpc.json")},
        "bad": {"rest": payload(test_data, "encoder_bad_inputs_rest.json")},
        "empty_batch": {"rest": {"signature_name": "serving_default", "inputs": {"text": []}}},
    }
    responses = client.predict_in_fresh_process(saved_model, requests, tmp_path_factory.mktemp("client"))
    return saved_model, responses, client


@pytest.fixture(scope="module")
def keras_side(minilm_dir):
    from bert_keras.finetuning.pretrained import load_pretrained
    from bert_keras.tokenizer import SegmentPacker

    encoder, tokenizer = load_pretrained(str(minilm_dir))
    packer = SegmentPacker(SEQ_LENGTH, tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
    # Graph mode, as Keras' own predict() runs the model: eager op-by-op kernels round differently.
    forward = tf.function(lambda inputs: encoder(inputs, training=False))

    def run(*texts):
        packed = packer([tokenizer.tokenize(tf.constant(t)) for t in texts])
        outputs = forward(packed)
        return {**{k: v.numpy() for k, v in packed.items()}, "pooled_output": outputs["pooled_output"].numpy(),
                "sequence_output": outputs["sequence_output"].numpy()}

    return run


def columns(rows):
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def assert_same(served, reference, names=("pooled_output", "sequence_output", "input_word_ids", "input_mask",
                                          "input_type_ids")):
    for name in names:
        np.testing.assert_allclose(np.array(served[name]), reference[name], rtol=0, atol=1e-5, err_msg=name)


def test_fresh_process_imported_only_tensorflow(exported):
    _, responses, _ = exported
    assert responses["_modules"] == {"bert_keras": False, "tensorflow_text": True}


def test_rest_single_text_matches_keras_and_hf_tokenizer(exported, keras_side, test_data, minilm_dir):
    _, responses, _ = exported
    texts = payload(test_data, "encoder_predict_rest.json")["instances"]
    served = columns(responses["single"]["predictions"])
    assert_same(served, keras_side(texts))
    # Independent reference for the in-graph tokenization: Hugging Face's fast tokenizer of the checkpoint.
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    hf.no_padding()
    hf.enable_truncation(SEQ_LENGTH)
    for row, text in zip(served["input_word_ids"], texts):
        ids = hf.encode(text).ids
        assert row[:len(ids)].tolist() == ids and not row[len(ids):].any()


def test_rest_and_grpc_text_pairs_match_keras(exported, keras_side, test_data):
    _, responses, _ = exported
    body = payload(test_data, "encoder_text_pair_rest.json")["inputs"]
    reference = keras_side(body["text_a"], body["text_b"])
    assert_same(responses["pair_rest"]["outputs"], reference)
    assert_same(responses["pair_grpc"]["outputs"], reference)
    types = np.array(responses["pair_rest"]["outputs"]["input_type_ids"])
    assert types.max() == 1  # the second text really is segment B


def test_bad_inputs_do_not_fail_the_request(exported, keras_side, test_data):
    _, responses, _ = exported
    instances = payload(test_data, "encoder_bad_inputs_rest.json")["instances"]
    served = columns(responses["bad"]["predictions"])
    # Non-UTF-8 bytes are replaced by U+FFFD (which BERT's text cleaning then drops), never an error.
    texts = [raw_bytes(v).decode("utf-8", errors="replace") for v in instances]
    reference = keras_side(texts)
    assert_same(served, reference)
    empty, broken, long = served["input_word_ids"][:3]
    assert empty[:3].tolist() == [101, 102, 0]
    assert 100 not in broken[:served["input_mask"][1].sum()]  # no [UNK]: the bad bytes are dropped
    assert served["invalid_utf8"].tolist() == [False, True] + [False] * (len(instances) - 2)  # and reported
    assert served["input_mask"][2].all() and long[-1] == 102  # truncated to seq_length, ends in [SEP]
    # Mixed lengths in one batch give each example what it gets alone.
    alone = keras_side([texts[3]])
    np.testing.assert_allclose(served["pooled_output"][3], alone["pooled_output"][0], atol=1e-5)
    assert responses["empty_batch"]["outputs"]["pooled_output"] == []


def test_saved_model_cli_lists_signatures(exported):
    saved_model, _, client = exported
    signatures = client.saved_model_cli_signatures(saved_model)
    ids = {n: ("DT_INT32", f"(-1, {SEQ_LENGTH})") for n in ("input_word_ids", "input_mask", "input_type_ids")}
    outputs = {"pooled_output": ("DT_FLOAT", "(-1, 384)"),
               "sequence_output": ("DT_FLOAT", f"(-1, {SEQ_LENGTH}, 384)")}
    repaired = {"invalid_utf8": ("DT_BOOL", "(-1)")}
    assert signatures["serving_default"] == {"inputs": {"text": ("DT_STRING", "(-1)")},
                                             "outputs": {**outputs, **ids, **repaired}}
    assert signatures["text_pair"]["inputs"] == {"text_a": ("DT_STRING", "(-1)"), "text_b": ("DT_STRING", "(-1)")}
    assert signatures["token_ids"] == {"inputs": ids, "outputs": outputs}


def test_serving_graph_has_no_xla_functions(exported):
    """TF Serving runs without XLA unless told otherwise: the XLA-fused training kernels (GELU, LayerNorm) must
    not reach the export, whose graphs run the layers' inference pass."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model, _, _ = exported
    proto = saved_model_pb2.SavedModel.FromString((saved_model / "saved_model.pb").read_bytes())
    functions = proto.meta_graphs[0].graph_def.library.function
    assert len(functions) > 3  # the signatures' bodies and the encoder's call live in the function library
    assert not [f.signature.name for f in functions
                if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b]


def test_token_ids_signature_and_tf_serving_layout(exported, keras_side, test_data):
    saved_model, responses, _ = exported
    assert sorted(os.listdir(saved_model.parent)) == ["1"]  # no staging leftovers
    assert (saved_model / "saved_model.pb").is_file() and (saved_model / "variables").is_dir()
    import tensorflow_text  # noqa: F401

    loaded = tf.saved_model.load(str(saved_model))
    served = columns(responses["single"]["predictions"])
    outputs = loaded.signatures["token_ids"](**{k: tf.constant(served[k], tf.int32) for k in
                                               ("input_word_ids", "input_mask", "input_type_ids")})
    reference = keras_side(payload(test_data, "encoder_predict_rest.json")["instances"])
    assert_same({k: v.numpy() for k, v in outputs.items()}, reference, ("pooled_output", "sequence_output"))
