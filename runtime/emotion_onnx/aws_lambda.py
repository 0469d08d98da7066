"""AWS Lambda handler: `emotion_onnx.aws_lambda.handler`.

Accepts API Gateway REST (payload v1) and HTTP API (v2) proxy events, Function URL events
(v2 format) and direct invocation with {"inputs": ..., "parameters": {...}} (add
"task": "embed" for embeddings). Routes, by the end of the path: /predict (and /), /embed,
/healthz. Proxy events get proxy responses (statusCode, headers, JSON body); direct
invocations get the result itself, or {"statusCode": 4xx/5xx, "error": ...} on failure.

Requests are decoded, validated and answered by emotion_onnx.handling, exactly as the HTTP server
does it, so the same body gets the same status and message from both; the limits are the same
EMOTION_ONNX_MAX_* variables.

The model is loaded once per container, at init (module import): from $EMOTION_ONNX_MODEL,
else the bundle's `model/` directory, else the embedded default. Nothing is written anywhere.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import time
from pathlib import Path
from typing import Any

from .classifier import EmotionClassifier
from .handling import begin, decode, handle
from .manifest import is_model_dir
from .requests import Limits, RequestError, method_not_allowed, route_of

MODEL_ENV = "EMOTION_ONNX_MODEL"
JSON_HEADERS = {"Content-Type": "application/json"}


def _model_dir() -> Path | None:
    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV])
    root = Path(os.environ.get("LAMBDA_TASK_ROOT") or Path(__file__).resolve().parent.parent)
    bundled = root / "model"
    return bundled if is_model_dir(bundled) else None


def _load() -> tuple[EmotionClassifier | None, Limits | None, str | None, float]:
    started = time.perf_counter()
    try:
        limits = Limits.from_env()
        return EmotionClassifier(_model_dir()), limits, None, time.perf_counter() - started
    except Exception as exc:  # reported on every invocation instead of crashing the init
        return None, None, f"{type(exc).__name__}: {exc}", time.perf_counter() - started


CLASSIFIER, LIMITS, LOAD_ERROR, LOAD_SECONDS = _load()


# ---------------------------------------------------------------------------- events
PROXY_KEYS = ("requestContext", "httpMethod", "rawPath", "routeKey")  # a direct invocation's body has none


def _kind(event: Any) -> str:
    """ "v2" (HTTP API, Function URLs), "v1" (REST API) or "direct". An event shaped like a proxy
    event is never taken for a direct call, even when parts of it are missing: those get a 400."""
    if not isinstance(event, dict) or not any(k in event for k in PROXY_KEYS):
        return "direct"
    return "v2" if event.get("version") == "2.0" or "rawPath" in event else "v1"


def _bad_event(message: str) -> RequestError:
    return RequestError("bad_body", f"malformed {message}")


def _http(event: dict, kind: str) -> tuple[str, str]:
    """(method, path) of a proxy event."""
    if kind == "v2":
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, dict) else None
        method = http.get("method") if isinstance(http, dict) else None
        path = event.get("rawPath") or (http.get("path") if isinstance(http, dict) else None) or "/"
    else:
        method, path = event.get("httpMethod"), event.get("path") or "/"
    if not isinstance(method, str) or not method:
        raise _bad_event("event: it names no HTTP method (requestContext.http.method or httpMethod)")
    if not isinstance(path, str):
        raise _bad_event("event: its path is not a string")
    return method, path


def _headers(event: dict) -> dict[str, str]:
    """The event's headers, names lower-cased: `headers`, and for REST API events also
    `multiValueHeaders` (values joined by ", ", as HTTP folds repeated headers), so that a header
    given only there, Content-Encoding say, is honoured as the server honours it."""
    out: dict[str, str] = {}
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict):
        for k, values in multi.items():
            if isinstance(k, str) and isinstance(values, list) and all(isinstance(v, str) for v in values):
                out[k.lower()] = ", ".join(values)
    headers = event.get("headers")
    if isinstance(headers, dict):
        out.update({k.lower(): v for k, v in headers.items() if isinstance(k, str) and isinstance(v, str)})
    return out


def _base64_flag(event: dict) -> bool:
    """isBase64Encoded: a JSON boolean (API Gateway's), or the strings "true"/"false"; anything else
    is a malformed event rather than a guess (the string "false" is not true)."""
    value = event.get("isBase64Encoded", False)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if value is None or isinstance(value, bool):
        return bool(value)
    raise _bad_event("event: isBase64Encoded must be true or false")


def _payload(event: dict, limits: Limits, contract: str = "hf") -> tuple[Any, dict]:
    raw = event.get("body")
    if isinstance(raw, (dict, list)):
        raise _bad_event("event: its body is already a JSON value; API Gateway sends the body as a string")
    if raw is not None and not isinstance(raw, str):
        raise _bad_event("event: its body is not a string")
    if _base64_flag(event) and raw:
        try:
            raw = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError("bad_body", "the body is marked base64 but is not valid base64") from None
    return decode(contract, raw, _headers(event), limits)


V2_INFER = re.compile(r"/v2/models/(?P<name>[^/]+)/infer/?$")


def _route(path: str, method: str) -> tuple[str, str, str | None]:
    """(route, contract, model name) of a proxy event's path: SageMaker's /invocations and the Open
    Inference Protocol's /v2/models/NAME/infer beside the routes the server has."""
    infer = V2_INFER.search(path)
    contract = "v2" if infer else "sagemaker" if path.rstrip("/").endswith("/invocations") else None
    if contract is None:
        return route_of(path, method), "hf", None
    if method.upper() != "POST":
        raise method_not_allowed(path, method, "POST")
    return "/predict", contract, infer.group("name") if infer else None


def _refusal() -> RequestError | None:
    return None if CLASSIFIER is not None else RequestError("unavailable", f"the model failed to load: {LOAD_ERROR}")


def _dispatch(event: Any, kind: str) -> Any:
    limits = LIMITS or Limits()
    contract, name, context = "hf", None, {}
    if kind == "direct":
        route, payload = "/predict", event
        if isinstance(event, dict) and event.get("task") == "embed":
            route, payload = "/embed", {k: v for k, v in event.items() if k != "task"}
    else:
        method, path = _http(event, kind)
        route, contract, name = _route(path, method)
        if route == "/healthz":
            return {"status": "ok", "ready": CLASSIFIER is not None}
        payload, context = _payload(event, limits, contract)
    return handle(begin(route, payload, limits, CLASSIFIER, _refusal, contract, context, name))


def _proxy(status: int, payload: Any, headers: dict[str, str] | None = None) -> dict:
    return {
        "statusCode": status,
        "headers": {**JSON_HEADERS, **(headers or {})},
        "body": json.dumps(payload),
        "isBase64Encoded": False,
    }


def handler(event: Any, context: Any = None) -> Any:
    kind = _kind(event)
    try:
        result = _dispatch(event, kind)
    except RequestError as exc:
        status, payload, headers = exc.status, exc.body(), exc.headers
    except Exception as exc:  # never a stack trace in a response
        status, payload, headers = 500, {"error": f"internal error ({type(exc).__name__})"}, {}
    else:
        return result if kind == "direct" else _proxy(200, result)
    if kind == "direct":
        return {"statusCode": status, **payload}
    return _proxy(status, payload, headers)
