"""Checkpoint import/export: parity with transformers on a real checkpoint, TF1 and own-format round trips,
HF pre-training heads, and every error case."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers

from bert_keras import BertConfig, BertEncoder
from bert_keras.checkpoints import (CheckpointError, assign_google_weights, build_encoder, google_to_hf, google_weights,
                                    load_encoder, read_checkpoint, save_encoder, write_google_checkpoint,
                                    write_huggingface_checkpoint)
from bert_keras.checkpoints.convert import main as convert_main
from bert_keras.checkpoints.google import write_google_weights
from bert_keras.pretraining_model import BertPretrainingModel

SENTENCES = [
    ("The quick brown fox jumps over the lazy dog.", None),
    ("Hello!", None),
    ("In 1905 Einstein published four papers that changed physics, including special relativity and "
     "the photoelectric effect.", "Which year did Einstein publish his four papers?"),
    ("Paris is the capital and most populous city of France.", "Berlin is the capital of Germany."),
]

# Google's TF1 variable names and shapes for one layer, written out by hand (not derived from our table)
# as the independent reference for the layout of an original google-research/bert checkpoint.
GOOGLE_LAYOUT = {
    "bert/embeddings/word_embeddings": ("V", "H"),
    "bert/embeddings/token_type_embeddings": (2, "H"),
    "bert/embeddings/position_embeddings": ("P", "H"),
    "bert/embeddings/LayerNorm/gamma": ("H",),
    "bert/embeddings/LayerNorm/beta": ("H",),
    "bert/encoder/layer_0/attention/self/query/kernel": ("H", "H"),
    "bert/encoder/layer_0/attention/self/query/bias": ("H",),
    "bert/encoder/layer_0/attention/self/key/kernel": ("H", "H"),
    "bert/encoder/layer_0/attention/self/key/bias": ("H",),
    "bert/encoder/layer_0/attention/self/value/kernel": ("H", "H"),
    "bert/encoder/layer_0/attention/self/value/bias": ("H",),
    "bert/encoder/layer_0/attention/output/dense/kernel": ("H", "H"),
    "bert/encoder/layer_0/attention/output/dense/bias": ("H",),
    "bert/encoder/layer_0/attention/output/LayerNorm/gamma": ("H",),
    "bert/encoder/layer_0/attention/output/LayerNorm/beta": ("H",),
    "bert/encoder/layer_0/intermediate/dense/kernel": ("H", "I"),
    "bert/encoder/layer_0/intermediate/dense/bias": ("I",),
    "bert/encoder/layer_0/output/dense/kernel": ("I", "H"),
    "bert/encoder/layer_0/output/dense/bias": ("H",),
    "bert/encoder/layer_0/output/LayerNorm/gamma": ("H",),
    "bert/encoder/layer_0/output/LayerNorm/beta": ("H",),
    "bert/pooler/dense/kernel": ("H", "H"),
    "bert/pooler/dense/bias": ("H",),
    "cls/predictions/transform/dense/kernel": ("H", "H"),
    "cls/predictions/transform/dense/bias": ("H",),
    "cls/predictions/transform/LayerNorm/gamma": ("H",),
    "cls/predictions/transform/LayerNorm/beta": ("H",),
    "cls/predictions/output_bias": ("V",),
    "cls/seq_relationship/output_weights": (2, "H"),
    "cls/seq_relationship/output_bias": (2,),
}

TINY = BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=24, max_position_embeddings=32, hidden_act="gelu_tanh")


def _hf_inputs(minilm_dir):
    tokenizer = transformers.BertTokenizerFast.from_pretrained(minilm_dir)
    first, second = zip(*SENTENCES)
    return tokenizer(list(first), [s or "" for s in second], padding=True, return_tensors="np")


def _our_inputs(hf_inputs):
    return {"input_word_ids": hf_inputs["input_ids"].astype("int32"),
            "input_mask": hf_inputs["attention_mask"].astype("int32"),
            "input_type_ids": hf_inputs["token_type_ids"].astype("int32")}


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    """(checkpoint, encoder, inputs, HF reference outputs), built once for the module."""
    checkpoint = read_checkpoint(minilm_dir)
    encoder = load_encoder(minilm_dir)
    inputs = _hf_inputs(minilm_dir)
    reference = transformers.BertModel.from_pretrained(minilm_dir).eval()
    with torch.no_grad():
        out = reference(**{k: torch.tensor(v) for k, v in inputs.items()})
    expected = {"sequence_output": out.last_hidden_state.numpy(), "pooled_output": out.pooler_output.numpy()}
    return checkpoint, encoder, _our_inputs(inputs), expected


def _max_diff(encoder, inputs, expected):
    got = encoder(inputs)
    return {k: float(np.abs(got[k].numpy() - expected[k]).max()) for k in expected}


def _vocab(path, size):
    path.write_text("".join(f"tok{i}\n" for i in range(size)), encoding="utf-8")
    return path


def _random_heads(config, seed=0):
    rng = np.random.default_rng(seed)
    h, v = config.hidden_size, config.vocab_size
    shapes = {"cls/predictions/transform/dense/kernel": (h, h), "cls/predictions/transform/dense/bias": (h,),
              "cls/predictions/transform/LayerNorm/gamma": (h,), "cls/predictions/transform/LayerNorm/beta": (h,),
              "cls/predictions/output_bias": (v,), "cls/seq_relationship/output_weights": (2, h),
              "cls/seq_relationship/output_bias": (2,)}
    return {k: rng.normal(size=s).astype("float32") for k, s in shapes.items()}


# --- parity on the real checkpoint -------------------------------------------------------------------
def test_minilm_hf_parity(minilm):
    checkpoint, encoder, inputs, expected = minilm
    assert checkpoint.format == "huggingface" and not checkpoint.has_heads
    assert checkpoint.config.hidden_act == "gelu" and checkpoint.config.num_hidden_layers == 6
    header = read_checkpoint(checkpoint.path, load_weights=False)  # the weight file's path works too
    assert (header.config, header.vocab_file, header.weights) == (checkpoint.config, checkpoint.vocab_file, {})
    assert inputs["input_mask"].sum(1).min() < inputs["input_mask"].shape[1]  # the batch has padding
    assert inputs["input_type_ids"].max() == 1  # and sentence pairs
    diff = _max_diff(encoder, inputs, expected)
    assert diff["sequence_output"] <= 1e-4 and diff["pooled_output"] <= 1e-4, diff
    # At real (unpadded) tokens the match is much tighter; padded rows are float32 noise in both models.
    valid = inputs["input_mask"].astype(bool)
    got = encoder(inputs)["sequence_output"].numpy()
    assert np.abs(got[valid] - expected["sequence_output"][valid]).max() <= 1e-5


def test_tf1_checkpoint_round_trip_parity(minilm, tmp_path):
    checkpoint, _, inputs, expected = minilm
    heads = _random_heads(checkpoint.config)
    prefix = write_google_weights({**checkpoint.weights, **heads}, checkpoint.config, tmp_path / "google",
                                  checkpoint.vocab_file)
    assert sorted(os.listdir(tmp_path / "google")) == [
        "bert_config.json", "bert_model.ckpt.data-00000-of-00001", "bert_model.ckpt.index", "vocab.txt"]

    # Name for name and shape for shape Google's layout (checked against the hand-written table).
    c = checkpoint.config
    sizes = {"V": c.vocab_size, "H": c.hidden_size, "P": c.max_position_embeddings, "I": c.intermediate_size}
    stored = dict(tf.train.list_variables(prefix))
    assert len(stored) == len(GOOGLE_LAYOUT) + 16 * (c.num_hidden_layers - 1)
    for name, shape in GOOGLE_LAYOUT.items():
        for layer in range(c.num_hidden_layers):
            layered = name.replace("layer_0", f"layer_{layer}")
            assert stored[layered] == [sizes.get(d, d) for d in shape], layered

    loaded = read_checkpoint(tmp_path / "google")
    assert loaded.format == "google" and loaded.has_heads and loaded.vocab_file.endswith("vocab.txt")
    for name, value in heads.items():
        np.testing.assert_array_equal(loaded.weights[name], value)
    assert read_checkpoint(prefix + ".index").path == prefix  # a file of the checkpoint works as well
    assert read_checkpoint(prefix + ".data-00000-of-00001", load_weights=False).path == prefix
    # Google's "gelu" is the tanh form; our side key in bert_config.json keeps this checkpoint's exact form.
    assert loaded.config == c
    diff = _max_diff(build_encoder(loaded), inputs, expected)
    assert diff["sequence_output"] <= 1e-4 and diff["pooled_output"] <= 1e-4, diff


def test_tf1_checkpoint_restores_into_tf1_graph(tmp_path):
    """The written files restore with `tf.compat.v1.train.Saver` into variables named as Google's BERT."""
    model = BertPretrainingModel(TINY)
    model.build()
    prefix = write_google_checkpoint(model, tmp_path)
    expected = google_weights(model)
    sizes = {"V": TINY.vocab_size, "H": 16, "P": 32, "I": 24}
    graph = tf.Graph()
    with graph.as_default():
        variables = {name: tf.compat.v1.get_variable(name, [sizes.get(d, d) for d in shape])
                     for name, shape in GOOGLE_LAYOUT.items()}
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            saver.restore(session, prefix)
            restored = session.run(variables)
    for name, value in restored.items():
        np.testing.assert_array_equal(value, expected[name])
    np.testing.assert_array_equal(restored["cls/seq_relationship/output_weights"],
                                  model.next_sentence_head.dense.kernel.numpy().T)
    assert json.loads((tmp_path / "bert_config.json").read_text())["hidden_act"] == "gelu"  # Google's tanh


def test_pretraining_model_tf1_round_trip(tmp_path):
    model = BertPretrainingModel(TINY)
    model.build()
    write_google_checkpoint(model, tmp_path)
    restored = BertPretrainingModel(TINY)
    assign_google_weights(restored, read_checkpoint(tmp_path).weights)
    inputs = {**BertEncoder(TINY).dummy_inputs(2, 8), "masked_lm_positions": tf.constant([[1, 3], [0, 7]])}
    for key, value in model(inputs).items():
        np.testing.assert_array_equal(restored(inputs)[key], value)


# --- Hugging Face pre-training checkpoints --------------------------------------------------------------
def _hf_pretraining(tmp_path, torch_seed=0):
    torch.manual_seed(torch_seed)
    hf_config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                        intermediate_size=24, max_position_embeddings=32, hidden_act="gelu")
    hf = transformers.BertForPreTraining(hf_config).eval()
    with torch.no_grad():  # non-zero biases, so a misplaced bias shows
        for name, p in hf.named_parameters():
            if name.endswith("bias"):
                p.normal_()
    hf.save_pretrained(tmp_path)
    return hf


def test_hf_pretraining_heads_land_in_place(tmp_path):
    hf = _hf_pretraining(tmp_path)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint.has_heads
    model = BertPretrainingModel(checkpoint.config)
    assign_google_weights(model, checkpoint.weights)
    ids = np.random.default_rng(1).integers(1, 40, size=(2, 10)).astype("int32")
    mask = np.ones_like(ids)
    mask[1, 6:] = 0
    types = np.zeros_like(ids)
    types[:, 5:] = 1
    positions = np.array([[1, 4, 8], [0, 2, 5]], "int32")
    with torch.no_grad():
        out = hf(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask),
                 token_type_ids=torch.tensor(types, dtype=torch.long))
    got = model({"input_word_ids": ids, "input_mask": mask, "input_type_ids": types,
                 "masked_lm_positions": positions})
    mlm = np.take_along_axis(out.prediction_logits.numpy(), positions[:, :, None], axis=1)
    np.testing.assert_allclose(got["mlm_logits"], mlm, atol=1e-4)
    np.testing.assert_allclose(got["nsp_logits"], out.seq_relationship_logits.numpy(), atol=1e-5)
    # Name-level: HF's (2, H) seq_relationship weight is Google's (2, H) output_weights.
    np.testing.assert_array_equal(checkpoint.weights["cls/seq_relationship/output_weights"],
                                  hf.cls.seq_relationship.weight.detach().numpy())


def test_hf_layout_variants(tmp_path):
    """pytorch_model.bin, no `bert.` prefix, decoder.bias only, old gamma/beta names, MLM-only heads."""
    hf = _hf_pretraining(tmp_path / "ref")
    reference = read_checkpoint(tmp_path / "ref").weights
    state = {k: v.detach().clone() for k, v in hf.state_dict().items()}
    (tmp_path / "variant").mkdir()
    shutil.copy(tmp_path / "ref" / "config.json", tmp_path / "variant")
    variant = {k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
               for k, v in state.items()}
    variant["cls.predictions.decoder.bias"] = variant.pop("cls.predictions.bias")
    torch.save(variant, tmp_path / "variant" / "pytorch_model.bin")
    loaded = read_checkpoint(tmp_path / "variant" / "pytorch_model.bin")
    assert loaded.format == "huggingface"
    assert loaded.weights.keys() == reference.keys()
    for name, value in reference.items():
        np.testing.assert_array_equal(loaded.weights[name], value)

    body = {k[len("bert."):]: v for k, v in state.items() if k.startswith("bert.")}
    mlm_only = {**body, **{k: v for k, v in state.items() if k.startswith("cls.predictions.")}}
    os.remove(tmp_path / "variant" / "pytorch_model.bin")
    torch.save(mlm_only, tmp_path / "variant" / "pytorch_model.bin")
    loaded = read_checkpoint(tmp_path / "variant")
    assert "cls/predictions/output_bias" in loaded.weights
    assert not any(k.startswith("cls/seq_relationship") for k in loaded.weights)
    model = BertPretrainingModel(loaded.config)
    with pytest.raises(CheckpointError, match="missing variables: cls/seq_relationship/output_bias"):
        assign_google_weights(model, loaded.weights)
    assign_google_weights(model, loaded.weights, skip_missing_heads=True)
    np.testing.assert_array_equal(model.masked_lm_head.output_bias.numpy(), reference["cls/predictions/output_bias"])


def test_hf_fine_tuned_model_loads_encoder_and_ignores_task_head(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=24, max_position_embeddings=32, num_labels=3)
    transformers.BertForSequenceClassification(config).save_pretrained(tmp_path)
    checkpoint = read_checkpoint(tmp_path)
    assert checkpoint.ignored == ("classifier.bias", "classifier.weight") and not checkpoint.has_heads
    assert load_encoder(tmp_path).config.num_hidden_layers == 1


def test_google_to_hf_inverts_hf_to_google(tmp_path):
    hf = _hf_pretraining(tmp_path)
    checkpoint = read_checkpoint(tmp_path)
    back = google_to_hf(checkpoint.weights, checkpoint.config)
    state = {k: v.numpy() for k, v in hf.state_dict().items()
             if k not in ("bert.embeddings.position_ids", "cls.predictions.decoder.weight",
                          "cls.predictions.decoder.bias")}
    assert back.keys() == state.keys()
    for name, value in state.items():
        np.testing.assert_array_equal(back[name], value)


# --- our own format ------------------------------------------------------------------------------------
def test_own_format_round_trip(tmp_path):
    encoder = BertEncoder(TINY)
    encoder.build()
    vocab = _vocab(tmp_path / "my_vocab.txt", TINY.vocab_size)
    save_encoder(encoder, tmp_path / "saved", vocab)
    assert sorted(os.listdir(tmp_path / "saved")) == ["bert_keras_config.json", "vocab.txt", "weights.safetensors"]
    checkpoint = read_checkpoint(tmp_path / "saved")
    assert checkpoint.format == "bert_keras" and checkpoint.config == TINY
    assert checkpoint.vocab_file == str(tmp_path / "saved" / "vocab.txt")
    inputs = encoder.dummy_inputs(2, 8)
    for path in (tmp_path / "saved", tmp_path / "saved" / "weights.safetensors"):
        restored = load_encoder(path)
        for key in ("sequence_output", "pooled_output"):
            np.testing.assert_array_equal(restored(inputs)[key], encoder(inputs)[key])


def test_loading_skips_random_init_but_sets_every_weight_and_keeps_random_streams(tmp_path):
    import random

    import keras

    encoder = BertEncoder(TINY)
    encoder.build()
    save_encoder(encoder, tmp_path / "saved", _vocab(tmp_path / "vocab.txt", TINY.vocab_size))
    checkpoint = read_checkpoint(tmp_path / "saved")

    random.seed(7)  # unseeded Keras initializers draw their seed from Python's `random` when constructed
    loaded = build_encoder(checkpoint)
    after_loading = keras.initializers.TruncatedNormal(stddev=1.0)((64,)).numpy()
    random.seed(7)
    BertEncoder(TINY).build()
    after_random_build = keras.initializers.TruncatedNormal(stddev=1.0)((64,)).numpy()
    # Same random stream as a randomly initialised build (a task head built next gets the same init), and
    # the initializer samples again once loading is done.
    np.testing.assert_array_equal(after_loading, after_random_build)
    assert np.abs(after_loading).min() > 0
    # Every variable holds the checkpoint's value: none is left at the skipped (zero) initialisation.
    assert len(loaded.weights) == len(encoder.weights)
    for ours, reference in zip(loaded.weights, encoder.weights):
        np.testing.assert_array_equal(ours.numpy(), reference.numpy(), err_msg=ours.path)


def test_own_format_keeps_pretraining_heads(tmp_path):
    model = BertPretrainingModel(TINY)
    model.build()
    save_encoder(model, tmp_path)
    restored = BertPretrainingModel(TINY)
    assign_google_weights(restored, read_checkpoint(tmp_path).weights)
    expected = google_weights(model)
    for name, value in google_weights(restored).items():
        np.testing.assert_array_equal(value, expected[name])


# --- errors ----------------------------------------------------------------------------------------------
@pytest.fixture
def tiny_google(tmp_path):
    encoder = BertEncoder(TINY)
    encoder.build()
    write_google_checkpoint(encoder, tmp_path / "google")
    return tmp_path / "google", google_weights(encoder)


def test_error_missing_and_unexpected_variables(tiny_google, tmp_path):
    _, weights = tiny_google
    broken = dict(weights)
    del broken["bert/encoder/layer_0/attention/self/key/bias"]
    broken["bert/encoder/layer_1/attention/self/key/bias"] = weights["bert/encoder/layer_0/attention/self/key/bias"]
    names = sorted(broken)
    prefix = str(tmp_path / "bad" / "bert_model.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[broken[n] for n in names])
    TINY.to_json_file(tmp_path / "bad" / "bert_config.json", "google")
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(tmp_path / "bad")
    message = str(error.value)
    assert "bert_model.ckpt" in message
    assert "unexpected variables: bert/encoder/layer_1/attention/self/key/bias" in message
    assert "missing variables: bert/encoder/layer_0/attention/self/key/bias" in message


def test_error_shape_mismatch_names_variable_and_both_shapes(tiny_google):
    directory, _ = tiny_google
    shutil.copytree(directory, directory.parent / "ok")
    TINY.replace(intermediate_size=20).to_json_file(directory / "bert_config.json", "google")
    with pytest.raises(CheckpointError, match=r"shape mismatch for bert/encoder/layer_0/intermediate/dense/kernel: "
                                              r"checkpoint has \(16, 24\), the config implies \(16, 20\)"):
        load_encoder(directory)
    encoder = BertEncoder(TINY.replace(hidden_size=8))
    with pytest.raises(CheckpointError, match=r"shape mismatch for bert/embeddings/word_embeddings: "
                                              r"weights have \(40, 16\), the model expects \(40, 8\)"):
        assign_google_weights(encoder, read_checkpoint(directory.parent / "ok").weights)


def test_error_unknown_layout_and_missing_files(tmp_path, tiny_google):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(CheckpointError, match=r"not a known BERT checkpoint layout; expected .*config\.json.*"
                                              r"model\.safetensors.*found files: \['notes\.txt'\]"):
        load_encoder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nowhere"):
        read_checkpoint(tmp_path / "nowhere")
    directory, _ = tiny_google
    with pytest.raises(FileNotFoundError, match=r"vocab file not found: .*missing_vocab\.txt"):
        read_checkpoint(directory / "bert_model.ckpt", vocab_file=tmp_path / "missing_vocab.txt")
    os.remove(directory / "bert_config.json")
    with pytest.raises(FileNotFoundError, match=r"needs its config file .*bert_config\.json"):
        read_checkpoint(directory / "bert_model.ckpt")
    with pytest.raises(CheckpointError, match="expected"):  # without a config it is no layout at all
        read_checkpoint(directory)


def test_error_vocab_size_mismatch(tiny_google, tmp_path):
    directory, _ = tiny_google
    vocab = _vocab(tmp_path / "vocab.txt", TINY.vocab_size + 2)
    with pytest.raises(CheckpointError, match=r"vocab file .*vocab\.txt has 42 tokens but the checkpoint .* "
                                              r"has vocab_size 40"):
        load_encoder(directory, vocab_file=vocab)
    shutil.copy(vocab, directory / "vocab.txt")  # the one found beside the checkpoint is checked too
    with pytest.raises(CheckpointError, match="has 42 tokens"):
        read_checkpoint(directory)


def test_error_hf_unexpected_name_and_ambiguous_directory(tmp_path, tiny_google):
    hf = _hf_pretraining(tmp_path / "hf")
    state = {k: v.detach().clone() for k, v in hf.state_dict().items()}
    state["bert.encoder.layer.0.attention.self.rotary.weight"] = torch.zeros(2)
    os.remove(tmp_path / "hf" / "model.safetensors")
    torch.save(state, tmp_path / "hf" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"pytorch_model\.bin: unexpected variables .*"
                                              r"encoder\.layer\.0\.attention\.self\.rotary\.weight"):
        read_checkpoint(tmp_path / "hf")
    directory, _ = tiny_google
    shutil.copy(tmp_path / "hf" / "config.json", directory)
    shutil.copy(tmp_path / "hf" / "pytorch_model.bin", directory)
    with pytest.raises(CheckpointError, match=r"several formats \(google, huggingface\); pass the path"):
        read_checkpoint(directory)


def test_hf_sharded_and_bfloat16_checkpoints(tmp_path):
    hf = _hf_pretraining(tmp_path / "ref")
    reference = read_checkpoint(tmp_path / "ref").weights
    hf.save_pretrained(tmp_path / "sharded", max_shard_size="20KB")
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    sharded = read_checkpoint(tmp_path / "sharded").weights
    assert sharded.keys() == reference.keys()
    for name, value in reference.items():
        np.testing.assert_array_equal(sharded[name], value)
    hf.to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    bf16 = read_checkpoint(tmp_path / "bf16").weights
    assert bf16["bert/pooler/dense/kernel"].dtype == np.float32
    np.testing.assert_array_equal(bf16["bert/pooler/dense/kernel"],
                                  hf.bert.pooler.dense.weight.detach().float().numpy().T)


def test_google_training_state_and_task_heads_are_ignored(tiny_google, tmp_path):
    _, weights = tiny_google
    extra = {"global_step": np.array(7, np.int64), "bert/pooler/dense/bias/adam_m": weights["bert/pooler/dense/bias"],
             "output_weights": np.zeros((3, 16), np.float32)}  # run_classifier.py's head
    full = {**weights, **extra}
    names = sorted(full)
    tf.raw_ops.SaveV2(prefix=str(tmp_path / "trained" / "model.ckpt-7"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=[full[n] for n in names])
    TINY.to_json_file(tmp_path / "trained" / "bert_config.json", "google")
    checkpoint = read_checkpoint(tmp_path / "trained")
    assert set(checkpoint.ignored) == set(extra) and checkpoint.weights.keys() == weights.keys()


def test_hf_writer_loads_in_transformers(tmp_path):
    model = BertPretrainingModel(TINY.replace(hidden_act="gelu"))
    model.build()
    write_huggingface_checkpoint(model, tmp_path / "pre")
    hf = transformers.BertForPreTraining.from_pretrained(tmp_path / "pre").eval()
    write_huggingface_checkpoint(model.encoder, tmp_path / "enc")
    hf_encoder = transformers.BertModel.from_pretrained(tmp_path / "enc").eval()
    inputs = {**model.encoder.dummy_inputs(2, 8), "masked_lm_positions": tf.constant([[1, 3], [0, 7]])}
    ids = torch.tensor(inputs["input_word_ids"].numpy(), dtype=torch.long)
    with torch.no_grad():
        out, out_encoder = hf(input_ids=ids), hf_encoder(input_ids=ids)
    got = model(inputs)
    mlm = np.take_along_axis(out.prediction_logits.numpy(), np.array([[1, 3], [0, 7]])[:, :, None], axis=1)
    np.testing.assert_allclose(got["mlm_logits"], mlm, atol=1e-5)
    np.testing.assert_allclose(got["nsp_logits"], out.seq_relationship_logits.numpy(), atol=1e-5)
    np.testing.assert_allclose(model.encoder(inputs)["sequence_output"], out_encoder.last_hidden_state.numpy(),
                               atol=1e-5)


def test_convert_cli_round_trip(tmp_path):
    _hf_pretraining(tmp_path / "hf")
    vocab = _vocab(tmp_path / "vocab.txt", 40)
    assert convert_main(["--input", str(tmp_path / "hf"), "--output_dir", str(tmp_path / "g"),
                         "--format", "google", "--vocab_file", str(vocab)]) == 0
    assert convert_main(["--input", str(tmp_path / "g" / "bert_model.ckpt"), "--output_dir", str(tmp_path / "ours"),
                         "--format", "bert_keras"]) == 0
    reference, converted = read_checkpoint(tmp_path / "hf"), read_checkpoint(tmp_path / "ours")
    assert converted.config == reference.config and converted.vocab_file == str(tmp_path / "ours" / "vocab.txt")
    assert converted.weights.keys() == reference.weights.keys()
    for name, value in reference.weights.items():
        np.testing.assert_array_equal(converted.weights[name], value)


def test_fine_tuning_model_maps_through_its_encoder(tmp_path):
    import keras

    class Classifier(keras.Model):
        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder
            self.head = keras.layers.Dense(3)

    encoder = BertEncoder(TINY)
    save_encoder(Classifier(encoder), tmp_path)  # builds the encoder; the task head is not BERT's
    other = Classifier(BertEncoder(TINY))
    assign_google_weights(other, read_checkpoint(tmp_path).weights)
    inputs = encoder.dummy_inputs(2, 8)
    np.testing.assert_array_equal(other.encoder(inputs)["pooled_output"], encoder(inputs)["pooled_output"])
