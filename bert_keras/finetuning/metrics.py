"""Official classification/regression metrics, computed over a whole eval set with numpy.

Written here (not imported from sklearn/scipy) so fine-tuning needs no extra dependency; the tests
check every function against sklearn/scipy on fixed predictions.
"""

from __future__ import annotations

import numpy as np


def _pair(predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape or predictions.ndim != 1:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} must be equal 1-D shapes")
    if predictions.size == 0:
        raise ValueError("cannot compute a metric over an empty eval set")
    return predictions, labels


def accuracy(predictions, labels) -> float:
    predictions, labels = _pair(predictions, labels)
    return float(np.mean(predictions == labels))


def f1_score(predictions, labels, positive=1) -> float:
    """Binary F1 of the `positive` class (MRPC, QQP); 0 when there are no true positives."""
    predictions, labels = _pair(predictions, labels)
    tp = np.sum((predictions == positive) & (labels == positive))
    fp = np.sum((predictions == positive) & (labels != positive))
    fn = np.sum((predictions != positive) & (labels == positive))
    return float(2 * tp / (2 * tp + fp + fn)) if tp else 0.0


def matthews_corrcoef(predictions, labels) -> float:
    """Multiclass Matthews correlation (Gorodkin's R_K; binary case = the usual MCC); 0 if undefined."""
    predictions, labels = _pair(predictions, labels)
    classes = np.union1d(predictions, labels)
    confusion = np.zeros((len(classes), len(classes)), np.float64)
    np.add.at(confusion, (np.searchsorted(classes, labels), np.searchsorted(classes, predictions)), 1)
    t, p = confusion.sum(axis=1), confusion.sum(axis=0)
    n, correct = confusion.sum(), np.trace(confusion)
    denominator = np.sqrt((n * n - p @ p) * (n * n - t @ t))
    return float((correct * n - t @ p) / denominator) if denominator else 0.0


def pearson(predictions, labels) -> float:
    predictions, labels = _pair(predictions, labels)
    x = predictions.astype(np.float64) - predictions.mean()
    y = labels.astype(np.float64) - labels.mean()
    denominator = np.sqrt((x @ x) * (y @ y))
    return float(x @ y / denominator) if denominator else 0.0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (what Spearman's rho needs)."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    last = np.append(first[1:], len(values)) - 1
    ranks = np.empty(len(values), np.float64)
    ranks[order] = (first[group] + last[group]) / 2.0 + 1.0
    return ranks


def spearman(predictions, labels) -> float:
    predictions, labels = _pair(predictions, labels)
    return pearson(_average_ranks(predictions), _average_ranks(labels))


METRICS = {"accuracy": accuracy, "f1": f1_score, "matthews_corrcoef": matthews_corrcoef,
           "pearson": pearson, "spearman": spearman}


def compute(names, predictions, labels) -> dict[str, float]:
    """{name: METRICS[name](predictions, labels)} for the given metric names."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    return {name: METRICS[name](predictions, labels) for name in names}
