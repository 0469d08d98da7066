"""The validation gate: each variant's logits against the PyTorch reference, on real text."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion_onnx.batching import canonical_width
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


def padded_batch_drift(clf: EmotionClassifier, texts: list[str], width_step: int | None = None) -> float:
    """max |Δlogit| between each text alone and the same texts, lengths mixed, in one batch whose
    rows are padded: alone, a text is padded to its canonical width at the engine's own width step
    (onnxruntime's is 1: no padding at all); together, at `width_step` (default: the engine's),
    every text goes in one batch padded to the canonical width of the longest. Where the width step
    is 1 every shorter row is padded, so a graph whose rows see the padding (or each other) shows it."""
    step = clf.engine.width_step
    together_step = width_step or step
    encodings = clf.encoder.encode(texts)
    width = canonical_width(max(len(e.ids) for e in encodings), together_step)
    together = clf.engine.run(clf.encoder.pad(encodings, width))[0]
    alone = np.vstack([clf.engine.run(clf.encoder.pad([e], canonical_width(len(e.ids), step)))[0] for e in encodings])
    return float(np.abs(together.astype(np.float64) - alone).max())


def batch_invariance(clf: EmotionClassifier, texts: list[str]) -> dict[str, float]:
    """How far a text's logits move with its batch: "runtime_batches", max |Δlogit| between each
    text alone and the same texts (plus a long one) in the runtime's own batches, one per canonical
    width whatever the neighbours (what a user gets, and what the gate holds to its tolerance); and,
    for an engine that pads nothing itself (width step 1), "padded_to_longest": all of them in one
    batch padded to the longest (padded_batch_drift), where only the order of floating-point sums
    over the padded positions may differ. An engine with a larger step (OpenVINO's reductions
    depend on the padded width) is never asked to pad a text beyond its canonical width."""
    long_text = " ".join(texts)
    saved = clf.max_batch_tokens, clf.max_batch_size
    clf.max_batch_tokens, clf.max_batch_size = 10**9, 10**6
    try:
        together = clf.forward([*texts, long_text])[0][: len(texts)]
        clf.max_batch_size = 1
        alone = np.vstack([clf.forward([t])[0] for t in texts])
    finally:
        clf.max_batch_tokens, clf.max_batch_size = saved
    out = {"runtime_batches": float(np.abs(together.astype(np.float64) - alone).max())}
    if clf.engine.width_step == 1:
        out["padded_to_longest"] = padded_batch_drift(clf, [*texts, long_text])
    return out


def check_promises(
    result: GateResult, drift: float, size_ratio: float, thresholds: GateThresholds, tolerance: float
) -> None:
    """What a batch-invariant INT8 variant promises beyond agreeing with PyTorch: logits that do
    not depend on the batch (within `tolerance`) and a file at most the thresholds' share of fp32.
    Records the size ratio and fails `result` (keeping every reason) where a promise is broken."""
    result.figures["size_ratio_vs_fp32"] = size_ratio
    problems = [result.reason] if result.reason else []
    if drift > tolerance:
        problems.append(f"not batch-invariant (drift {drift:.2g} > {tolerance:g})")
    if size_ratio > thresholds.int8_max_size_ratio:
        problems.append(f"file is {size_ratio:.0%} of fp32 > {thresholds.int8_max_size_ratio:.0%}")
    result.passed, result.reason = not problems, "; ".join(problems)


def check_parent(result: GateResult, parent: str | None, gate: list[GateResult]) -> None:
    """A variant built from a graph that failed the gate fails too."""
    if parent and result.passed and not next(g for g in gate if g.variant == parent).passed:
        result.passed, result.reason = False, f"built from {parent}, which failed the gate"
