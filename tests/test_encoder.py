"""Encoder: config round trips, Keras serialization, mixed precision, masking."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras import BertConfig, BertEncoder, preset
from bert_keras.layers import LayerNorm, SelfAttention, attention_bias, gelu, gelu_fused, gelu_tanh


def _inputs(batch=2, seq=9, vocab=100, seed=0):
    rng = np.random.default_rng(seed)
    lengths = [seq, seq - 4]
    ids = rng.integers(1, vocab, size=(batch, seq)).astype("int32")
    mask = np.array([[1] * n + [0] * (seq - n) for n in lengths], "int32")
    types = np.array([[0] * 5 + [1] * (seq - 5)] * batch, "int32")
    return {"input_word_ids": ids * mask, "input_mask": mask, "input_type_ids": types * mask}


@pytest.fixture
def tiny_config():
    return preset("tiny", vocab_size=100, max_position_embeddings=64)


def test_presets_shapes():
    expected = {"tiny": (2, 128), "mini": (4, 256), "small": (4, 512), "medium": (8, 512),
                "base": (12, 768), "large": (24, 1024)}
    for name, (layers, hidden) in expected.items():
        c = preset(name)
        assert (c.num_hidden_layers, c.hidden_size) == (layers, hidden)
        assert c.num_attention_heads == hidden // 64 and c.intermediate_size == 4 * hidden


@pytest.mark.parametrize("dialect", ["bert_keras", "google", "hf"])
@pytest.mark.parametrize("act", ["gelu", "gelu_tanh"])
def test_config_file_round_trip(tmp_path, dialect, act):
    config = preset("mini", hidden_act=act, layer_norm_eps=1e-12)
    path = tmp_path / "config.json"
    config.to_json_file(path, dialect)
    assert BertConfig.from_json_file(path) == config


def test_google_gelu_means_tanh_and_hf_gelu_means_exact(tmp_path):
    (tmp_path / "bert_config.json").write_text(json.dumps(
        {"vocab_size": 100, "hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
         "intermediate_size": 128, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
         "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 32, "type_vocab_size": 2,
         "initializer_range": 0.02}))
    assert BertConfig.from_json_file(tmp_path / "bert_config.json").hidden_act == "gelu_tanh"
    hf = preset("tiny").to_hf_dict() | {"hidden_act": "gelu"}
    (tmp_path / "config.json").write_text(json.dumps(hf))
    assert BertConfig.from_json_file(tmp_path / "config.json").hidden_act == "gelu"


def test_config_errors(tmp_path):
    with pytest.raises(ValueError, match="divisible"):
        BertConfig(hidden_size=100, num_attention_heads=3)
    with pytest.raises(ValueError, match="hidden_act"):
        BertConfig(hidden_act="mish")
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden_size": 12,\n oops}')
    with pytest.raises(ValueError, match=r"bad\.json.*line 2"):
        BertConfig.from_json_file(bad)
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        BertConfig.from_json_file(tmp_path / "nowhere.json")


def test_gelu_forms_against_scipy():
    from scipy.special import erf

    x = np.linspace(-6, 6, 101).astype("float32")
    exact = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    np.testing.assert_allclose(gelu(tf.constant(x)).numpy(), exact, atol=1e-6)
    np.testing.assert_allclose(gelu_fused(tf.constant(x)).numpy(), exact, atol=1e-6)
    approx = 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))
    np.testing.assert_allclose(gelu_tanh(tf.constant(x)).numpy(), approx, atol=1e-6)
    assert np.abs(exact - approx).max() > 1e-4  # the two forms really differ


@pytest.mark.parametrize("function", [gelu, gelu_fused])
def test_gelu_gradient_against_scipy(function):
    """The hand-written derivative is Phi(x) + x phi(x), in float32 and in bfloat16."""
    from scipy.special import erf

    x = np.linspace(-6, 6, 101)
    derivative = 0.5 * (1 + erf(x / np.sqrt(2))) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)
    for dtype, atol in (("float32", 1e-6), ("bfloat16", 2e-2)):
        t = tf.constant(x, dtype)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = function(t)
        np.testing.assert_allclose(tf.cast(tape.gradient(y, t), tf.float64).numpy(), derivative, atol=atol)


def test_training_layer_norm_matches_keras_and_float64():
    """The XLA-fused training pass of `LayerNorm` against Keras' `LayerNormalization` (its inference pass)
    and a float64 numpy LayerNorm: outputs and the gradients of x, gamma and beta."""
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(3, 7, 64)) * 4 + 2).astype("float32")
    dy = rng.normal(size=x.shape).astype("float32")
    ours = LayerNorm(epsilon=1e-12, dtype="float32")
    reference = keras.layers.LayerNormalization(epsilon=1e-12, dtype="float32")
    for layer in (ours, reference):
        layer.build(x.shape)
    ours.set_weights([rng.normal(1, 0.2, 64).astype("float32"), rng.normal(0, 0.2, 64).astype("float32")])
    reference.set_weights(ours.get_weights())
    results = []
    for layer, training in ((ours, True), (reference, None)):
        t = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = layer(t, training=training)
        results.append([y.numpy()] + [g.numpy() for g in tape.gradient(y, [t, *layer.trainable_weights],
                                                                         output_gradients=dy)])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    gamma, beta = (w.astype("float64") for w in ours.get_weights())
    x64, dy64 = x.astype("float64"), dy.astype("float64")
    normalized = (x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-12)
    g = dy64 * gamma
    dx = (g - g.mean(-1, keepdims=True) - normalized * (g * normalized).mean(-1, keepdims=True)) / np.sqrt(
        x64.var(-1, keepdims=True) + 1e-12)
    expected = [normalized * gamma + beta, dx, (dy64 * normalized).sum((0, 1)), dy64.sum((0, 1))]
    for a, b in zip(results[0], expected):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    assert LayerNorm.from_config(ours.get_config()).epsilon == 1e-12
    traced = tf.function(lambda t: ours(t, training=True)).get_concrete_function(tf.constant(x))
    assert any("layer_norm_forward" in f.signature.name for f in traced.graph.as_graph_def().library.function)


def test_outputs_shapes_and_layers(tiny_config):
    encoder = BertEncoder(tiny_config)
    out = encoder(_inputs())
    assert out["sequence_output"].shape == (2, 9, 128)
    assert out["pooled_output"].shape == (2, 128)
    assert len(out["encoder_outputs"]) == 2
    np.testing.assert_array_equal(out["encoder_outputs"][-1], out["sequence_output"])


def test_output_positions_give_those_rows_and_the_same_gradients():
    """Pre-training's shortcut (the last block computes only the masked rows and [CLS]) must change nothing
    the losses read: same rows, same pooled output, same gradients, also through training kernels and remat."""
    config = preset("tiny", vocab_size=100, max_position_embeddings=64, hidden_dropout_prob=0.0,
                    attention_probs_dropout_prob=0.0)
    encoder = BertEncoder(config)
    x = _inputs()
    positions = np.array([[3, 1, 8], [0, 2, 2]], "int32")  # repeats and [CLS] itself are allowed
    full, part = encoder(x), encoder(x, output_positions=positions)
    assert part["sequence_output"].shape == (2, 3, 128)
    gathered = np.take_along_axis(full["sequence_output"].numpy(), positions[..., None], 1)
    np.testing.assert_allclose(part["sequence_output"], gathered, atol=1e-5)
    np.testing.assert_array_equal(part["encoder_outputs"][-1], part["sequence_output"])
    np.testing.assert_allclose(part["encoder_outputs"][0], full["encoder_outputs"][0])
    np.testing.assert_allclose(part["pooled_output"], full["pooled_output"], atol=1e-6)

    rng = np.random.default_rng(1)
    row_weights, pooled_weights = rng.normal(size=(2, 3, 128)), rng.normal(size=(2, 128))

    def gradients(**kwargs):
        with tf.GradientTape() as tape:
            out = encoder(x, training=True, **kwargs)
            rows = out["sequence_output"]
            if "output_positions" not in kwargs:
                rows = tf.gather(rows, positions, batch_dims=1)
            loss = tf.reduce_sum(rows * row_weights) + tf.reduce_sum(out["pooled_output"] * pooled_weights)
        return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, encoder.trainable_variables)]

    expected = gradients()
    for kwargs in ({"output_positions": positions}, {"output_positions": positions, "rematerialize": True}):
        for variable, want, got in zip(encoder.trainable_variables, expected, gradients(**kwargs)):
            np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4, err_msg=f"{variable.path} {kwargs}")


def test_training_attention_is_the_plain_computation_with_its_dropout_mask():
    """The training pass of `SelfAttention` (one XLA-fused kernel each way, written-out backward) against
    plain TF ops differentiated by TF, with the mask the layer's `Dropout` draws: output and every gradient,
    with padding and with fewer queries than keys (the last block in pre-training)."""
    rng = np.random.default_rng(3)
    layer = SelfAttention(32, 4, dropout_rate=0.3)
    layer.build()
    x = tf.constant(rng.normal(size=(2, 6, 32)), tf.float32)
    queries = tf.gather(x, [[0, 2, 5], [0, 1, 1]], batch_dims=1)
    bias = attention_bias(np.array([[1] * 6, [1] * 4 + [0] * 2]))
    dy = rng.normal(size=(2, 3, 32)).astype("float32")
    state = tf.identity(layer.dropout.seed_generator.state)

    def run(forward):
        with tf.GradientTape() as tape:
            tape.watch([x, queries])
            y = forward()
        return [y] + tape.gradient(y, [x, queries, *layer.trainable_weights], output_gradients=dy)

    fused = run(lambda: layer(x, bias, queries, training=True))
    layer.dropout.seed_generator.state.assign(state)
    bits = layer.dropout.random_bits([2, 4, 3, 6]).numpy().astype("int64")
    keep = np.where(bits >= round(0.3 * 65536), 65536 / (65536 - round(0.3 * 65536)), 0.0).astype("float32")
    assert 0.5 < (keep > 0).mean() < 0.9

    def plain():
        def heads(t):
            return tf.transpose(tf.reshape(t, [2, -1, 4, 8]), [0, 2, 1, 3])
        q = heads(queries @ layer.query.kernel + layer.query.bias)
        k, v = (heads(x @ d.kernel + d.bias) for d in (layer.key, layer.value))
        probs = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / np.sqrt(8.0) + bias, -1) * keep
        context = tf.reshape(tf.transpose(probs @ v, [0, 2, 1, 3]), [2, 3, 32])
        return context @ layer.output_dense.kernel + layer.output_dense.bias

    for got, want in zip(fused, run(plain)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.abs(fused[1]).max() > 1e-3


def test_padding_does_not_change_valid_positions(tiny_config):
    encoder = BertEncoder(tiny_config)
    x = _inputs()
    short = {k: v[1:2, :5] for k, v in x.items()}  # the second row without its padding
    full = encoder(x)["sequence_output"][1, :5]
    np.testing.assert_allclose(encoder(short)["sequence_output"][0], full, atol=1e-5)


def test_keras_save_load_round_trip(tmp_path, tiny_config):
    encoder = BertEncoder(tiny_config)
    x = _inputs()
    expected = encoder(x)
    encoder.save(tmp_path / "encoder.keras")
    restored = keras.models.load_model(tmp_path / "encoder.keras")
    assert restored.config == tiny_config
    got = restored(x)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_array_equal(got[key], expected[key])


def test_layer_configs_round_trip(tiny_config):
    encoder = BertEncoder(tiny_config)
    encoder.build()
    for layer in [encoder.embeddings, encoder.pooler, *encoder.transformer_blocks,
                  encoder.transformer_blocks[0].attention]:
        clone = layer.__class__.from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    assert BertEncoder.from_config(encoder.get_config()).config == tiny_config


@pytest.mark.parametrize("policy,atol", [("mixed_float16", 0.02), ("mixed_bfloat16", 0.1)])
def test_mixed_precision_close_to_float32(tiny_config, policy, atol):
    reference = BertEncoder(tiny_config)
    x = _inputs()
    expected = reference(x)["sequence_output"].numpy()
    try:
        keras.mixed_precision.set_global_policy(policy)
        encoder = BertEncoder(tiny_config)
        encoder.build()
        encoder.set_weights(reference.get_weights())
        assert all(w.dtype == "float32" for w in encoder.weights)  # variables stay float32
        block = encoder.transformer_blocks[0]
        assert block.compute_dtype == policy.split("_")[1]
        assert block.output_layer_norm.compute_dtype == "float32"
        got = encoder(x)["sequence_output"]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert got.dtype == tf.float32  # the final LayerNorm runs in float32
    assert np.isfinite(got.numpy()).all()
    assert np.abs(got.numpy() - expected).max() < atol


def test_dropout_only_in_training(tiny_config):
    encoder = BertEncoder(tiny_config)
    x = _inputs()
    a, b = encoder(x)["pooled_output"], encoder(x)["pooled_output"]
    np.testing.assert_array_equal(a, b)
    assert np.abs(encoder(x, training=True)["pooled_output"] - a).max() > 0


def test_missing_input_named(tiny_config):
    encoder = BertEncoder(tiny_config)
    x = _inputs()
    del x["input_mask"]
    with pytest.raises(ValueError, match="input_mask"):
        encoder(x)


def test_tf_checkpoint_holds_every_weight(tmp_path, tiny_config):
    encoder = BertEncoder(tiny_config)
    x = _inputs()
    expected = encoder(x)["sequence_output"]
    path = tf.train.Checkpoint(encoder=encoder).write(str(tmp_path / "ckpt"))
    saved = [name for name, _ in tf.train.list_variables(path) if name.startswith("encoder/")]
    assert len(saved) == len(encoder.weights)
    fresh = BertEncoder(tiny_config)
    fresh.build()
    tf.train.Checkpoint(encoder=fresh).read(path).assert_existing_objects_matched()
    np.testing.assert_array_equal(fresh(x)["sequence_output"], expected)
