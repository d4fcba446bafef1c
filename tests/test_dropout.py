"""bert_keras' 16-bit dropout: Bernoulli(rate) masks, inverted scaling, seeded, and its gradient is the mask."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from bert_keras.layers import Dropout


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_masks_are_bernoulli_rate_and_kept_values_scaled(rate):
    x = tf.ones([7, 129, 257])  # odd sizes: the last 16-bit half of the draw is discarded
    y = Dropout(rate, seed=3)(x, training=True).numpy()
    dropped = y == 0
    n = dropped.size
    # Binomial(n, rate): 5 standard deviations.
    assert abs(dropped.mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(y[~dropped], 1 / (1 - rate), rtol=1e-4)
    # Neighbours share one 32-bit draw (two 16-bit halves): their masks must still be independent.
    flat = dropped.reshape(-1)[: n // 2 * 2].reshape(-1, 2).astype(float)
    assert abs(np.corrcoef(flat[:, 0], flat[:, 1])[0, 1]) < 5 / np.sqrt(len(flat))


def test_identity_outside_training_and_rate_zero():
    x = tf.random.normal([4, 8])
    np.testing.assert_array_equal(Dropout(0.3)(x, training=False), x)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True), x)


def test_seeded_reproducible_and_fresh_masks_per_call():
    x = tf.ones([64, 64])
    a, b = Dropout(0.2, seed=7), Dropout(0.2, seed=7)
    first = a(x, training=True)
    np.testing.assert_array_equal(first, b(x, training=True))
    assert not np.array_equal(first, a(x, training=True))


def test_gradient_is_the_scaled_mask():
    x = tf.random.normal([16, 33])
    layer = Dropout(0.25, seed=1)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
    grad = tape.gradient(y, x).numpy()
    kept = y.numpy() != 0
    np.testing.assert_allclose(grad, kept / (1 - 0.25), rtol=1e-6)


def test_config_round_trip_and_keras_type():
    layer = Dropout(0.15, seed=2, name="d")
    clone = Dropout.from_config(layer.get_config())
    assert (clone.rate, clone.seed, clone.name) == (0.15, 2, "d")
    assert isinstance(layer, keras.layers.Dropout)  # remat finds its seed generator like Keras' own


def test_encoder_dropout_noise_matches_hugging_face_bert_in_distribution(minilm_dir):
    """Training-mode outputs of the real all-MiniLM-L6-v2 over many dropout draws: per-element means agree
    within Monte-Carlo error and the spread matches HF `BertModel`'s. Removing any one dropout site (embeddings,
    attention probabilities, attention output, FFN output) moved a spread ratio by 5% or more; draw-to-draw
    variation over four seeds stayed within 2%."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from bert_keras.finetuning import load_pretrained

    draws = 128
    texts = ["The quick brown fox jumps over the lazy dog near the river bank.",
             "Super Bowl 50 was an American football game.",
             "He said the company would report its earnings next week.",
             "Dropout noise should look the same on both sides."]
    batch = transformers.BertTokenizerFast.from_pretrained(str(minilm_dir))(texts, padding="longest",
                                                                            return_tensors="np")
    keras.utils.set_random_seed(0)
    encoder, _ = load_pretrained(str(minilm_dir))
    features = {"input_word_ids": batch["input_ids"], "input_mask": batch["attention_mask"],
                "input_type_ids": batch["token_type_ids"]}
    features = {name: tf.constant(value, tf.int32) for name, value in features.items()}
    forward = tf.function(lambda: encoder(features, training=True))
    ours = [forward() for _ in range(draws)]
    ours = {"sequence": np.stack([o["sequence_output"].numpy() for o in ours]),
            "pooled": np.stack([o["pooled_output"].numpy() for o in ours])}
    reference = transformers.BertModel.from_pretrained(str(minilm_dir))
    reference.train()
    torch.manual_seed(0)
    with torch.no_grad():
        theirs = [reference(**{k: torch.from_numpy(v) for k, v in batch.items()}) for _ in range(draws)]
    theirs = {"sequence": np.stack([o.last_hidden_state.numpy() for o in theirs]),
              "pooled": np.stack([o.pooler_output.numpy() for o in theirs])}
    real = batch["attention_mask"].astype(bool)
    for name in ("sequence", "pooled"):
        a, b = (ours[name][:, real], theirs[name][:, real]) if name == "sequence" else (ours[name], theirs[name])
        spread_a, spread_b = a.std(0), b.std(0)
        assert abs(spread_a.mean() / spread_b.mean() - 1) < 0.04, name
        varies = (spread_a + spread_b) > 0
        z = (a.mean(0) - b.mean(0))[varies] / np.sqrt((spread_a ** 2 + spread_b ** 2)[varies] / draws)
        assert 0.85 < np.sqrt(np.mean(z ** 2)) < 1.15, name
