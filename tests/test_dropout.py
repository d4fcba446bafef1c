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
