"""Numerically stable softmax and temperature scaling (fit, NLL, ECE). numpy only."""

from __future__ import annotations

import math

import numpy as np


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, stable for any finite logits."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if np.ndim(logits) == 2 and len(logits) == 1:
        # One row (a single text): Python floats cost less than numpy's per-call overhead,
        # which right after a model run (caches evicted) is some 10 us per call.
        row = np.asarray(logits, dtype=np.float64)[0].tolist()
        top = max(row)
        exps = [math.exp((x - top) / temperature) for x in row]
        total = math.fsum(exps)
        return np.array([[e / total for e in exps]])
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of the true labels."""
    logp = log_softmax(logits, temperature)
    return float(-logp[np.arange(len(labels)), labels].mean())


def ece(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Expected calibration error of the top-1 confidence, equal-width bins on (0, 1]."""
    return top_label_ece(probs.max(axis=1), probs.argmax(axis=1) == labels, n_bins)


def top_label_ece(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> float:
    """ECE from each prediction's confidence and whether it was right: the bin-weighted mean of
    |accuracy - mean confidence| over equal-width bins on (0, 1]."""
    n = len(conf)
    return float(
        sum(b["texts"] / n * abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(conf, correct, n_bins))
    )


def reliability_bins(conf: np.ndarray, correct: np.ndarray, n_bins: int = 15) -> list[dict]:
    """The non-empty equal-width bins on (0, 1] behind the ECE: each bin's edges, how many
    predictions fall in it, their accuracy and their mean confidence."""
    conf = np.asarray(conf, dtype=np.float64)
    correct = np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            rows.append(
                {
                    "bin": [float(lo), float(hi)],
                    "texts": int(in_bin.sum()),
                    "accuracy": float(correct[in_bin].mean()),
                    "confidence": float(conf[in_bin].mean()),
                }
            )
    return rows


def fit_temperature(logits: np.ndarray, labels: np.ndarray, lo: float = 0.05, hi: float = 20.0) -> float:
    """T minimising NLL, by golden-section search on log T (NLL is unimodal in log T)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    a, b = np.log(lo), np.log(hi)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = nll(logits, labels, np.exp(c)), nll(logits, labels, np.exp(d))
    while b - a > 1e-6:
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = nll(logits, labels, np.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = nll(logits, labels, np.exp(d))
    return float(np.exp((a + b) / 2.0))


OUTPUT_FUNCTIONS = ("softmax", "sigmoid", "none")


def apply_output_function(logits: np.ndarray, function: str, temperature: float = 1.0) -> np.ndarray:
    """Hugging Face's `function_to_apply`: softmax (divided by `temperature`), sigmoid, or none (raw logits)."""
    if function == "softmax":
        return softmax(logits, temperature)
    if function == "sigmoid":
        return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
    if function == "none":
        return np.asarray(logits, dtype=np.float64)
    raise ValueError(f"function_to_apply must be one of {OUTPUT_FUNCTIONS}, got {function!r}")
