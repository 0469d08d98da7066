"""What /predict and /embed answer, for the HTTP server and the Lambda handler alike.

The shapes are the Hugging Face Inference API's: text-classification answers a list of
`[{"label", "score"}, ...]` lists, one per text, for a str input as for a list (so
`huggingface_hub.InferenceClient.text_classification`, which reads element 0, gets the
text's ranking); feature-extraction answers a list of vectors, one per text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .requests import EmbedRequest, PredictRequest


def classification_body(clf: Any, logits: np.ndarray, request: PredictRequest) -> list[list[dict[str, Any]]]:
    """One ranking per text: every label best first, or the request's top_k best."""
    scores = clf.scores(logits, request.function_to_apply, request.calibrated, request.neutral)
    return [clf.rank(row, request.top_k, request.neutral) for row in scores]


def embedding_body(clf: Any, embeds: np.ndarray, request: EmbedRequest) -> list[list[float]]:
    """One vector per text (L2-normalised unless the request says otherwise)."""
    return clf.normalize(embeds, request.normalize).tolist()


def body(clf: Any, request: PredictRequest | EmbedRequest, outputs: Sequence[np.ndarray]) -> list:
    """The answer to a parsed request from the (logits, embeddings) of its texts."""
    if isinstance(request, PredictRequest):
        return classification_body(clf, outputs[0], request)
    return embedding_body(clf, outputs[1], request)
