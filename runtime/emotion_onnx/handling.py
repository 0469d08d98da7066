"""One request to /predict or /embed, whatever carried it: the HTTP server (each of its contracts)
and the Lambda handler both go through here, so the same request gets the same status, message
and answer from every transport. A transport only moves bytes: it hands over the body and headers
(or, for a direct Lambda invocation, the payload itself) and turns the answer or the RequestError
into its own response.

    payload, context = decode(contract, body, headers, limits)   # bytes -> the HF-shaped payload
    call = begin(route, payload, limits, clf, refusal, contract, context, model)
    encodings = call.admit()                                     # tokenised, within the limits
    return call.answer(clf.forward_encodings(encodings))         # or through the server's batcher

`handle(call)` is the last two in one synchronous call. The order is the contract: a malformed body is
refused before readiness is asked about, and readiness before the texts are tokenised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .contracts import answer, model_name, unknown_model
from .contracts import translate as decode
from .requests import (
    ROUTES,
    EmbedRequest,
    Limits,
    PredictRequest,
    RequestError,
    check_neutral,
    check_tokens,
    check_untruncated,
    parse_embed,
    parse_predict,
)

__all__ = ["Call", "begin", "decode", "handle"]


@dataclass
class Call:
    """A parsed request bound to the classifier that will answer it."""

    clf: Any
    request: PredictRequest | EmbedRequest
    limits: Limits
    contract: str = "hf"
    context: Mapping[str, Any] = field(default_factory=dict)

    def admit(self) -> list:
        """Tokenise the texts and admit them: 422 when the request asks for a neutral label the
        model lacks, 413 when they hold more tokens than a request may, or (for /embed with
        truncate=false) when a text is longer than the model reads. Returns the encodings (none
        for no texts)."""
        check_neutral(self.clf.manifest, self.request)
        if not self.request.texts:
            return []
        encodings = self.clf.encoder.encode(self.request.texts)
        check_tokens([len(e.ids) for e in encodings], self.limits)
        if isinstance(self.request, EmbedRequest) and not self.request.truncate:
            check_untruncated(encodings, self.clf.encoder.max_length)
        return encodings

    def answer(self, outputs: tuple) -> Any:
        """The response body from the (logits, embeddings) of the admitted texts."""
        return answer(self.contract, self.clf, self.request, outputs, self.context)


def begin(
    route: str,
    payload: Any,
    limits: Limits,
    clf: Any,
    refusal: Callable[[], RequestError | None],
    contract: str = "hf",
    context: Mapping[str, Any] | None = None,
    model: str | None = None,
) -> Call:
    """Parse the payload for `route`, then ask `refusal` whether the service can answer now (it
    returns the RequestError to raise, or None), then check the model a /v2 path names."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}, got {route!r}")
    request = parse_predict(payload, limits) if route == "/predict" else parse_embed(payload, limits)
    refused = refusal()
    if refused is not None:
        raise refused
    if contract == "v2" and model != model_name(clf):
        raise unknown_model(model, clf)
    return Call(clf, request, limits, contract, context or {})


def handle(call: Call) -> Any:
    """A whole request, synchronously, on the calling thread: admit, infer, answer."""
    return call.answer(call.clf.forward_encodings(call.admit()))
