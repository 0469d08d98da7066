"""Scores to output records: the one place that ranks labels and builds the per-text records
that the library, the CLI, the servers and Spark hand out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def ranked(labels: Sequence[str], scores: np.ndarray, top_k: int | None) -> list[dict[str, Any]]:
    """[{"label", "score"}] of one row, best first (ties keep label order), cut to top_k
    (None: every label)."""
    if top_k == 1:  # argmax keeps the first of tied scores, as the stable sort below does
        order = [int(scores.argmax())]
    else:
        order = np.argsort(-np.asarray(scores), kind="stable")
        if top_k is not None:
            order = order[:top_k]
    return [{"label": labels[i], "score": float(scores[i])} for i in order]


def in_label_order(labels: Sequence[str], scores: np.ndarray) -> list[dict[str, Any]]:
    """Every label with its score, in label-id order (the pipeline's deprecated return_all_scores)."""
    return [{"label": label, "score": float(s)} for label, s in zip(labels, scores)]


def probability_map(labels: Sequence[str], probs: np.ndarray) -> dict[str, float]:
    return {label: float(p) for label, p in zip(labels, probs)}


def text_record(
    labels: Sequence[str],
    scores: np.ndarray,
    *,
    top_k: int | None = 1,
    probabilities: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
) -> dict[str, Any]:
    """The record of one text: its best label and score, plus "top_k" (when top_k != 1),
    "probabilities" and "embedding" when given."""
    best = ranked(labels, scores, top_k)
    record: dict[str, Any] = dict(best[0])
    if top_k != 1:
        record["top_k"] = best
    if probabilities is not None:
        record["probabilities"] = probability_map(labels, probabilities)
    if embedding is not None:
        record["embedding"] = embedding.tolist()
    return record


def null_record(top_k: int | None = 1, probabilities: bool = False, embedding: bool = False) -> dict[str, Any]:
    """The record of a missing text (a JSON null, a Spark null): the same keys, every value null."""
    record: dict[str, Any] = {"label": None, "score": None}
    if top_k != 1:
        record["top_k"] = None
    if probabilities:
        record["probabilities"] = None
    if embedding:
        record["embedding"] = None
    return record
