"""Classification metrics in numpy (accuracy, per-class and macro F1, confusion matrix)."""

from __future__ import annotations

import numpy as np


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int) -> np.ndarray:
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def per_class_f1(cm: np.ndarray) -> np.ndarray:
    tp = np.diag(cm).astype(np.float64)
    precision = np.divide(tp, cm.sum(0), out=np.zeros_like(tp), where=cm.sum(0) > 0)
    recall = np.divide(tp, cm.sum(1), out=np.zeros_like(tp), where=cm.sum(1) > 0)
    denom = precision + recall
    return np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)


def summary(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    cm = confusion(y_true, y_pred, len(labels))
    f1 = per_class_f1(cm)
    return {
        "accuracy": float((y_true == y_pred).mean()),
        "macro_f1": float(f1.mean()),
        "per_class_f1": {label: float(v) for label, v in zip(labels, f1)},
        "confusion_matrix": cm.tolist(),
    }
