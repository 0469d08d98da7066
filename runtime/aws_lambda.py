"""AWS Lambda handler: `emotion_onnx.aws_lambda.handler`.

Accepts API Gateway REST (payload v1) and HTTP API (v2) proxy events, Function URL events
(v2 format) and direct invocation with {"inputs": ..., "parameters": {...}}. Routes, by the
end of the path: /predict (and /), /embed, /healthz. Proxy events get proxy responses
(statusCode, headers, JSON body); direct invocations get the result itself, or
{"statusCode": 4xx/5xx, "error": ...} on failure.

The model is loaded once per container, at init (module import): from $EMOTION_ONNX_MODEL,
else the bundle's `model/` directory, else the embedded default. Nothing is written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from pathlib import Path
from typing import Any

from . import limits
from .calibration import OUTPUT_FUNCTIONS
from .classifier import EmotionClassifier
from .inputs import is_positive_int
from .responses import classification_body, embedding_body

MODEL_ENV = "EMOTION_ONNX_MODEL"
MAX_INPUTS = int(os.environ.get("EMOTION_ONNX_MAX_INPUTS", limits.MAX_INPUTS))
MAX_TEXT_CHARS = int(os.environ.get("EMOTION_ONNX_MAX_TEXT_CHARS", limits.MAX_TEXT_CHARS))
JSON_HEADERS = {"Content-Type": "application/json"}


class RequestError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _model_dir() -> Path | None:
    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV])
    root = Path(os.environ.get("LAMBDA_TASK_ROOT") or Path(__file__).resolve().parent.parent)
    bundled = root / "model"
    return bundled if (bundled / "manifest.json").is_file() else None


def _load() -> tuple[EmotionClassifier | None, str | None, float]:
    started = time.perf_counter()
    try:
        return EmotionClassifier(_model_dir()), None, time.perf_counter() - started
    except Exception as exc:  # reported on every invocation instead of crashing the init
        return None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started


CLASSIFIER, LOAD_ERROR, LOAD_SECONDS = _load()


# ---------------------------------------------------------------------------- event parsing
def _kind(event: Any) -> str:
    if not isinstance(event, dict):
        return "direct"
    if event.get("version") == "2.0" and "requestContext" in event:
        return "v2"  # HTTP API and Function URLs
    if "httpMethod" in event and "requestContext" in event:
        return "v1"
    return "direct"


def _route(event: dict, kind: str) -> tuple[str, str]:
    if kind == "v2":
        http = event["requestContext"].get("http", {})
        method, path = http.get("method", "POST"), event.get("rawPath") or http.get("path") or "/"
    else:
        method, path = event.get("httpMethod", "POST"), event.get("path") or "/"
    path = path.rstrip("/")
    for name in ("/predict", "/embed", "/healthz"):
        if path.endswith(name):
            return method.upper(), name
    if path == "":
        return method.upper(), "/predict"
    raise RequestError(404, f"no route for {path}; use /predict, /embed or /healthz")


def _body(event: dict) -> Any:
    raw = event.get("body")
    if raw is None or raw == "":
        raise RequestError(400, 'the request has no body; send JSON like {"inputs": "i feel great"}')
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(400, "the body is marked base64 but is not valid base64") from None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(400, f"the request body is not valid JSON: {exc}") from None


def _texts(payload: Any) -> tuple[list[str], bool, dict]:
    if not isinstance(payload, dict):
        raise RequestError(422, f"the body must be a JSON object with 'inputs', got {type(payload).__name__}")
    unknown = set(payload) - {"inputs", "parameters"}
    if unknown:
        raise RequestError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
    if "inputs" not in payload:
        raise RequestError(422, "inputs: field required")
    inputs, params = payload["inputs"], payload.get("parameters") or {}
    if not isinstance(params, dict):
        raise RequestError(422, "parameters must be an object")
    single = isinstance(inputs, str)
    texts = [inputs] if single else inputs
    if not isinstance(texts, list):
        raise RequestError(422, f"inputs must be a string or a list of strings, got {type(inputs).__name__}")
    if len(texts) > MAX_INPUTS:
        raise RequestError(413, f"inputs has {len(texts)} texts; the limit is {MAX_INPUTS}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise RequestError(422, f"inputs.{i} is {type(text).__name__}, not a string")
        if len(text) > MAX_TEXT_CHARS:
            raise RequestError(413, f"inputs.{i} has {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
    return texts, single, params


def _predict(payload: Any) -> list:
    texts, single, params = _texts(payload)
    unknown = set(params) - {"top_k", "function_to_apply"}
    if unknown:
        raise RequestError(422, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    top_k = params.get("top_k")
    if top_k is not None and not is_positive_int(top_k):
        raise RequestError(422, f"parameters.top_k must be a positive integer, got {top_k!r}")
    function = params.get("function_to_apply", "softmax")
    if function not in OUTPUT_FUNCTIONS:
        raise RequestError(422, f"parameters.function_to_apply must be one of {', '.join(OUTPUT_FUNCTIONS)}")
    if not texts:
        return []
    logits = CLASSIFIER.forward(texts)[0]
    return classification_body(CLASSIFIER, logits, single, top_k, function)


def _embed(payload: Any) -> list:
    texts, single, params = _texts(payload)
    unknown = set(params) - {"normalize"}
    if unknown:
        raise RequestError(422, f"unknown parameter(s): {', '.join(sorted(unknown))}")
    normalize = params.get("normalize", True)
    if not isinstance(normalize, bool):
        raise RequestError(422, "parameters.normalize must be true or false")
    if not texts:
        return []
    return embedding_body(CLASSIFIER, CLASSIFIER.forward(texts)[1], single, normalize)


def _dispatch(event: Any, kind: str) -> Any:
    if kind == "direct":
        method, route, payload = "POST", "/predict", event
        if isinstance(event, dict) and event.get("task") == "embed":
            payload = {k: v for k, v in event.items() if k != "task"}
            route = "/embed"
    else:
        method, route = _route(event, kind)
        payload = None
    if route == "/healthz":
        return {"status": "ok", "ready": CLASSIFIER is not None}
    if method != "POST":
        raise RequestError(405, f"{route} takes POST, not {method}")
    if CLASSIFIER is None:
        raise RequestError(503, f"the model failed to load: {LOAD_ERROR}")
    if payload is None:
        payload = _body(event)
    return _predict(payload) if route == "/predict" else _embed(payload)


def handler(event: Any, context: Any = None) -> Any:
    kind = _kind(event)
    try:
        result = _dispatch(event, kind)
    except RequestError as exc:
        status, body = exc.status, {"error": str(exc)}
    except Exception as exc:  # never a stack trace in a response
        status, body = 500, {"error": f"internal error ({type(exc).__name__})"}
    else:
        if kind == "direct":
            return result
        return {"statusCode": 200, "headers": JSON_HEADERS, "body": json.dumps(result), "isBase64Encoded": False}
    if kind == "direct":
        return {"statusCode": status, **body}
    return {"statusCode": status, "headers": JSON_HEADERS, "body": json.dumps(body), "isBase64Encoded": False}
