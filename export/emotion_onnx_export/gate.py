"""The validation gate: each variant's logits against the PyTorch reference, on real text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion_onnx.calibration import softmax
from emotion_onnx.classifier import EmotionClassifier


@dataclass(frozen=True)
class GateThresholds:
    fp32_max_abs_logit: float = 1e-4
    int8_min_agreement: float = 0.99
    int8_max_accuracy_drop: float = 0.002  # where labels exist: PyTorch accuracy - int8 accuracy
    int8_max_size_ratio: float = 0.30  # the batch-invariant int8 file against the fp32 file


@dataclass
class GateResult:
    variant: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def compare(
    variant: str,
    precision: str,
    logits: np.ndarray,
    reference: np.ndarray,
    labels: np.ndarray | None,
    thresholds: GateThresholds,
) -> GateResult:
    diff = np.abs(logits.astype(np.float64) - reference.astype(np.float64))
    p, q = softmax(logits), softmax(reference)
    dprob = np.abs(p - q)
    agreement = float((logits.argmax(1) == reference.argmax(1)).mean())
    figures: dict[str, Any] = {
        "n_texts": int(len(reference)),
        "max_abs_logit_diff": float(diff.max()),
        "mean_abs_logit_diff": float(diff.mean()),
        "max_abs_prob_diff": float(dprob.max()),
        "mean_abs_prob_diff": float(dprob.mean()),
        "top1_agreement": agreement,
    }
    if labels is not None:
        figures["accuracy"] = float((logits.argmax(1) == labels).mean())
        figures["reference_accuracy"] = float((reference.argmax(1) == labels).mean())
    if precision == "fp32":
        limit = thresholds.fp32_max_abs_logit
        figures["threshold_max_abs_logit_diff"] = limit
        passed = figures["max_abs_logit_diff"] <= limit
        reason = "" if passed else f"max |Δlogit| {figures['max_abs_logit_diff']:.3g} > {limit:g}"
    else:
        limit = thresholds.int8_min_agreement
        figures["threshold_top1_agreement"] = limit
        passed = agreement >= limit
        reason = "" if passed else f"top-1 agreement {agreement:.4%} < {limit:.2%}"
        if labels is not None:
            drop = figures["reference_accuracy"] - figures["accuracy"]
            figures["accuracy_drop"] = drop
            figures["threshold_accuracy_drop"] = thresholds.int8_max_accuracy_drop
            if drop > thresholds.int8_max_accuracy_drop + 1e-12:
                passed = False
                reason = "; ".join(
                    filter(None, [reason, f"accuracy drop {drop:.2%} > {thresholds.int8_max_accuracy_drop:.2%}"])
                )
    return GateResult(variant, passed, figures, reason)


def batch_invariance(clf: EmotionClassifier, texts: list[str]) -> float:
    """max |Δlogit| between each text alone and the same texts in one padded batch.

    The batch holds every text plus one long text, so every row is padded.
    """
    long_text = " ".join(texts)
    saved = clf.max_batch_tokens, clf.max_batch_size
    clf.max_batch_tokens, clf.max_batch_size = 10**9, 10**6
    try:
        together = clf.forward([*texts, long_text])[0][: len(texts)]
        clf.max_batch_size = 1
        alone = np.vstack([clf.forward([t])[0] for t in texts])
    finally:
        clf.max_batch_tokens, clf.max_batch_size = saved
    return float(np.abs(together.astype(np.float64) - alone).max())
