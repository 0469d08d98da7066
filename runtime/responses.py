"""Hugging Face Inference API response bodies, shared by the HTTP server and the Lambda handler."""

from __future__ import annotations

from typing import Any

import numpy as np

from .calibration import apply_output_function


def classification_body(
    clf: Any, logits: np.ndarray, single: bool, top_k: int | None = None, function_to_apply: str = "softmax"
) -> list:
    """text-classification: a list of {"label", "score"} (best first, top_k of them; every label
    when top_k is None) for a str input, a list of such lists for a list input. "softmax" uses
    the variant's fitted temperature."""
    scores = apply_output_function(logits, function_to_apply, clf.temperature)
    rows = [clf.rank(row, top_k) for row in scores]
    return rows[0] if single else rows


def embedding_body(clf: Any, embeds: np.ndarray, single: bool, normalize: bool = True) -> list:
    """feature-extraction: one vector for a str input, a list of vectors for a list input."""
    vectors = clf.normalize(embeds, normalize).tolist()
    return vectors[0] if single else vectors
