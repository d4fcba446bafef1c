"""Metrics per problem type over a whole eval set, built on `bert_keras.finetuning.metrics`.

Averages follow scikit-learn's `f1_score` conventions (the tests compare with it): single-label macro F1
averages the classes present in the gold labels or the predictions; multi-label macro F1 averages every
label column (a label never predicted nor present scores 0). Multi-label decisions are sigmoid >= threshold.
Every main-metric candidate is higher-is-better (regression's `neg_mse`), as the trainer's best-checkpoint
rule needs.
"""

from __future__ import annotations

import numpy as np

from bert_keras.finetuning.metrics import accuracy, f1_score, matthews_corrcoef, pearson, spearman

METRICS = {
    "single_label": ("accuracy", "macro_f1", "micro_f1", "matthews_corrcoef"),
    "multi_label": ("micro_f1", "macro_f1", "exact_match"),
    "regression": ("pearson", "spearman", "mse"),
}
# Default main metric (picks the best epoch): accuracy, as GLUE's single-sentence tasks; micro F1 for
# multi-label (every (example, label) decision counts once, so rare labels cannot make it jump);
# Pearson for regression (STS-B's first metric; scale-free, unlike MSE).
MAIN_METRICS = {"single_label": "accuracy", "multi_label": "micro_f1", "regression": "pearson"}
MAIN_CHOICES = {"single_label": METRICS["single_label"], "multi_label": METRICS["multi_label"],
                "regression": ("pearson", "spearman", "neg_mse")}


def single_label_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Predicted and gold label ids [n]."""
    present = np.union1d(predictions, labels)
    return {
        "accuracy": accuracy(predictions, labels),
        "macro_f1": float(np.mean([f1_score(predictions, labels, positive=c) for c in present])),
        # Single-label: every error is one false positive and one false negative, so micro F1 = accuracy.
        "micro_f1": accuracy(predictions, labels),
        "matthews_corrcoef": matthews_corrcoef(predictions, labels),
    }


def multi_label_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Predicted and gold 0/1 indicator matrices [n, num_labels]."""
    predictions, labels = np.asarray(predictions).astype(np.int32), np.asarray(labels).astype(np.int32)
    if predictions.shape != labels.shape or predictions.ndim != 2:
        raise ValueError(f"predictions {predictions.shape} and labels {labels.shape} must be equal [n, labels]")
    return {
        "micro_f1": f1_score(predictions.ravel(), labels.ravel()),
        "macro_f1": float(np.mean([f1_score(predictions[:, j], labels[:, j]) for j in range(labels.shape[1])])),
        "exact_match": float(np.mean(np.all(predictions == labels, axis=1))),
    }


def regression_metrics(predictions: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Predicted and gold scores [n]."""
    mse = float(np.mean((np.asarray(predictions, np.float64) - np.asarray(labels, np.float64)) ** 2))
    return {"pearson": pearson(predictions, labels), "spearman": spearman(predictions, labels), "mse": mse}


def compute(problem_type: str, predictions: np.ndarray, labels: np.ndarray,
            main_metric: str | None = None) -> dict[str, float]:
    """The problem type's metrics; adds `neg_mse` when that is the main metric."""
    results = {"single_label": single_label_metrics, "multi_label": multi_label_metrics,
               "regression": regression_metrics}[problem_type](predictions, labels)
    if main_metric == "neg_mse":
        results["neg_mse"] = -results["mse"]
    return results
