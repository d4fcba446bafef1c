"""The shared fine-tuning metrics against independent implementations (sklearn, scipy)."""

import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from bert_keras.finetuning import metrics

RNG = np.random.default_rng(7)
BINARY_LABELS = RNG.integers(0, 2, 500)
BINARY_PREDICTIONS = np.where(RNG.random(500) < 0.7, BINARY_LABELS, 1 - BINARY_LABELS)
MULTI_LABELS = RNG.integers(0, 3, 400)
MULTI_PREDICTIONS = np.where(RNG.random(400) < 0.6, MULTI_LABELS, RNG.integers(0, 3, 400))
# STS-B-like scores: gold in 0.2 steps (many ties), predictions correlated with noise and some ties.
SCORES = np.round(RNG.uniform(0, 5, 300) * 5) / 5
PREDICTED_SCORES = np.round(SCORES + RNG.normal(0, 1.2, 300), 1)


def test_accuracy_and_f1_match_sklearn():
    assert metrics.accuracy(BINARY_PREDICTIONS, BINARY_LABELS) == pytest.approx(
        sklearn.metrics.accuracy_score(BINARY_LABELS, BINARY_PREDICTIONS), abs=1e-12)
    assert metrics.f1_score(BINARY_PREDICTIONS, BINARY_LABELS) == pytest.approx(
        sklearn.metrics.f1_score(BINARY_LABELS, BINARY_PREDICTIONS), abs=1e-12)
    assert metrics.f1_score(np.zeros(4, int), np.array([0, 1, 0, 1])) == 0.0


@pytest.mark.parametrize("labels,predictions", [(BINARY_LABELS, BINARY_PREDICTIONS),
                                                (MULTI_LABELS, MULTI_PREDICTIONS)])
def test_matthews_corrcoef_matches_sklearn(labels, predictions):
    assert metrics.matthews_corrcoef(predictions, labels) == pytest.approx(
        sklearn.metrics.matthews_corrcoef(labels, predictions), abs=1e-12)


def test_matthews_corrcoef_is_zero_for_constant_predictions():
    # CoLA's degenerate case (a model that predicts one class); sklearn also returns 0.
    constant = np.ones_like(BINARY_LABELS)
    assert metrics.matthews_corrcoef(constant, BINARY_LABELS) == sklearn.metrics.matthews_corrcoef(
        BINARY_LABELS, constant) == 0.0


def test_pearson_and_spearman_match_scipy_with_ties():
    assert metrics.pearson(PREDICTED_SCORES, SCORES) == pytest.approx(
        scipy.stats.pearsonr(PREDICTED_SCORES, SCORES)[0], abs=1e-12)
    assert metrics.spearman(PREDICTED_SCORES, SCORES) == pytest.approx(
        scipy.stats.spearmanr(PREDICTED_SCORES, SCORES)[0], abs=1e-12)


def test_compute_rejects_unknown_metric_and_bad_shapes():
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.compute(["bleu"], BINARY_PREDICTIONS, BINARY_LABELS)
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        metrics.accuracy(BINARY_PREDICTIONS[:-1], BINARY_LABELS)
