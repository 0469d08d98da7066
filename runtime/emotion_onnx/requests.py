"""The request contract of /predict and /embed, shared by the HTTP server and the Lambda handler.

Both adapters hand this module the raw body and its headers; it decides, in one place, what is
accepted, which error kind a request gets and the message that names the problem. `STATUS`
maps each kind to its HTTP status, so the same bad input gets the same status and message from
either adapter.

The body is Hugging Face Inference API JSON:
    {"inputs": str | [str], "parameters": {...}, "options": {"wait_for_model": bool, "use_cache": bool}}
/predict parameters: top_k (a positive int, or null for every label), function_to_apply
("softmax", "sigmoid" or "none"), calibrated (true, false or "temperature"; see
emotion_onnx.calibration) and neutral (true ranks the model's neutral label beside the others;
a model without one refuses it). /embed parameters: normalize (bool), truncate (bool),
truncation_direction ("right") and prompt_name (null: the model has no prompts), in "parameters" or
at the top level as Text Embeddings Inference takes them.
`options` is accepted for compatibility and changes nothing: the model is always loaded and
nothing is cached.

The limits (`Limits`) come from one place: defaults here, overridden by EMOTION_ONNX_MAX_*
environment variables for both adapters, and by `emotion-onnx serve` flags for the server.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from . import parameters
from .errors import EmotionOnnxError

STATUS = {
    "bad_body": 400,  # empty, not UTF-8, not JSON, nested too deeply, base64 that is not
    "unauthorized": 401,
    "not_found": 404,
    "method_not_allowed": 405,
    "too_large": 413,  # over a limit: body bytes, texts, characters, tokens
    "unsupported_media_type": 415,  # not JSON, or compressed
    "invalid": 422,  # JSON of the wrong shape, type or value
    "unavailable": 503,  # the model failed to load or is loading, the queue is full, shutting down
}
ROUTES = ("/predict", "/embed")
OPTIONS = ("wait_for_model", "use_cache")
JSON_MAX_DEPTH = 32  # far deeper than any valid body, far below Python's recursion limit


class RequestError(EmotionOnnxError):
    """A request refused with an HTTP status (from `STATUS`) and a message naming the problem."""

    def __init__(self, kind: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = STATUS[kind]
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": str(self)}


# ---------------------------------------------------------------------------- limits
@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1 << 20  # a body over this is refused before it is parsed
    max_inputs: int = 256  # texts per request
    max_text_chars: int = 20_000  # characters per text (the model reads at most max_length tokens)
    max_request_tokens: int = 32_768  # tokens per request, after truncation: 64 texts of 512 tokens

    ENV = {
        "max_body_bytes": "EMOTION_ONNX_MAX_BODY_BYTES",
        "max_inputs": "EMOTION_ONNX_MAX_INPUTS",
        "max_text_chars": "EMOTION_ONNX_MAX_TEXT_CHARS",
        "max_request_tokens": "EMOTION_ONNX_MAX_REQUEST_TOKENS",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: int | None) -> Limits:
        """Defaults, then the EMOTION_ONNX_MAX_* variables, then explicit overrides (None: not given)."""
        environ = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = environ.get(cls.ENV[f.name])
            if raw is not None and raw.strip():
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"{cls.ENV[f.name]} must be an integer, got {raw!r}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        limits = cls(**values)
        limits.check()
        return limits

    MAXIMUM = 1 << 30  # any limit above this is a typo, not a policy

    def check(self) -> None:
        for f in fields(self):
            check_range(f.name, getattr(self, f.name), 1, self.MAXIMUM)


def check_range(name: str, value: Any, low: float, high: float, open_low: bool = False) -> None:
    """ValueError naming `name` unless `value` is a finite number in [low, high] ((low, high] with
    `open_low`). NaN and infinities never pass, whatever the range."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value > high or value < low or (open_low and value == low):
        bound = f"above {_plain(low)}" if open_low else f"at least {_plain(low)}"
        raise ValueError(f"{name} must be a finite number {bound} and at most {_plain(high)}, got {value!r}")


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ---------------------------------------------------------------------------- parsed requests
@dataclass(frozen=True)
class PredictRequest:
    texts: list[str]
    single: bool  # inputs was one str
    top_k: int | None  # None: every label
    function_to_apply: str
    calibrated: bool | str
    neutral: bool = False


@dataclass(frozen=True)
class EmbedRequest:
    texts: list[str]
    single: bool
    normalize: bool
    truncate: bool


# ---------------------------------------------------------------------------- routes
def route_of(path: str, method: str, routes: Sequence[str] = (*ROUTES, "/healthz")) -> str:
    """The route a path ends with (stage prefixes and a trailing slash are fine; "" or "/" is
    /predict), or a not-found / method-not-allowed RequestError."""
    stripped = path.rstrip("/")
    route = next((r for r in routes if stripped.endswith(r)), "/predict" if stripped == "" else None)
    if route is None:
        raise not_found(path, routes)
    wanted = ("GET", "HEAD") if route == "/healthz" else ("POST",)
    if method.upper() not in wanted:
        raise method_not_allowed(route, method, ", ".join(wanted))
    return route


def not_found(path: str, routes: Sequence[str] = (*ROUTES, "/healthz")) -> RequestError:
    return RequestError("not_found", f"no route for {quote(path, 80)[1:-1]}; use {', '.join(routes)}")


def method_not_allowed(route: str, method: str, allowed: str = "POST") -> RequestError:
    return RequestError("method_not_allowed", f"{route} takes {allowed}, not {method.upper()}", {"Allow": allowed})


# ---------------------------------------------------------------------------- decoding
def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == name and isinstance(value, str):
            return value
    return None


def check_content_encoding(headers: Mapping[str, str] | None) -> None:
    """415 for a compressed body."""
    encoding = _header(headers, "content-encoding")
    if encoding is not None and encoding.strip().lower() not in ("", "identity"):
        raise RequestError(
            "unsupported_media_type",
            f"Content-Encoding {encoding.strip()} is not supported; send the body uncompressed",
        )


def check_content_headers(headers: Mapping[str, str] | None) -> None:
    """415 for a compressed body or a Content-Type that is not JSON (a missing one is read as JSON)."""
    check_content_encoding(headers)
    content_type = _header(headers, "content-type")
    if content_type is not None and content_type.strip():
        media = content_type.split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise RequestError(
                "unsupported_media_type",
                f"send the body as JSON with Content-Type: application/json (got {content_type.strip()})",
            )


def _depth_ok(raw: str) -> bool:
    """Whether brackets nest at most JSON_MAX_DEPTH deep (strings skipped), so that a hostile
    body cannot exhaust the parser's recursion."""
    depth, in_string, escaped = 0, False, False
    for ch in raw:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > JSON_MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def body_too_large(size: int | None, limit: int) -> RequestError:
    """413 for a body over `limit` bytes (size None: a chunked body, counted as it arrived)."""
    if size is None:
        return RequestError("too_large", f"the request body exceeds the limit of {limit} bytes")
    return RequestError("too_large", f"the request body is {size} bytes; the limit is {limit}")


def decode_json(raw: bytes | str | None, headers: Mapping[str, str] | None = None, max_bytes: int | None = None) -> Any:
    """The JSON value of a request body, or a RequestError naming why it is not one."""
    check_content_headers(headers)
    if raw is None or len(raw) == 0:
        raise RequestError("bad_body", 'the request has no body; send JSON like {"inputs": "i feel great"}')
    if max_bytes is not None:
        size = len(raw) if isinstance(raw, (bytes, bytearray)) else len(raw.encode("utf-8", "surrogatepass"))
        if size > max_bytes:
            raise body_too_large(size, max_bytes)
    if isinstance(raw, (bytes, bytearray)):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise RequestError("bad_body", "the request body is not UTF-8") from None
    if raw.startswith("\ufeff"):
        raw = raw[1:]
    if ("[" in raw or "{" in raw) and raw.count("[") + raw.count("{") > JSON_MAX_DEPTH and not _depth_ok(raw):
        raise RequestError("bad_body", f"the request body nests deeper than {JSON_MAX_DEPTH} levels")
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise RequestError(
            "bad_body", f"the request body is not valid JSON ({exc.msg} at character {exc.pos})"
        ) from None
    except ValueError as exc:  # int() of a number with thousands of digits, or NaN / Infinity
        raise RequestError("bad_body", f"the request body is not valid JSON ({exc})") from None
    except RecursionError:
        raise RequestError("bad_body", f"the request body nests deeper than {JSON_MAX_DEPTH} levels") from None


QUOTE_CHARS = 40  # an error quotes at most this much of what the client sent


def quote(value: Any, limit: int = QUOTE_CHARS) -> str:
    """`value` as JSON for an error message, cut to `limit` characters so that a huge value is
    never echoed back whole."""
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) or len(value) <= limit else None
    if text is None:
        text = json.dumps(value[:limit], ensure_ascii=False)[:-1] + '..."'
    return text if len(text) <= limit + 5 else text[:limit] + "..."


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


# ---------------------------------------------------------------------------- validation
def _invalid(message: str) -> RequestError:
    return RequestError("invalid", message)


def _object(value: Any, where: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be a JSON object, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _unknown(obj: dict, allowed: Sequence[str], where: str) -> None:
    extra = sorted(set(obj) - set(allowed))
    if extra:
        names = [repr(k if len(k) <= QUOTE_CHARS else k[:QUOTE_CHARS] + "...") for k in extra[:5]]
        shown = ", ".join(names) + (", ..." if len(extra) > 5 else "")
        raise _invalid(f"unknown {where} {shown}; allowed: {', '.join(allowed)}")


def _texts(payload: Any, limits: Limits) -> tuple[list[str], bool]:
    if not isinstance(payload, dict):
        raise _invalid(f'the body must be a JSON object like {{"inputs": "i feel great"}}, got {_kind(payload)}')
    if "inputs" not in payload:
        raise _invalid('the body has no "inputs": send a text or a list of texts')
    inputs = payload["inputs"]
    single = isinstance(inputs, str)
    texts = [inputs] if single else inputs
    if not isinstance(texts, list):
        raise _invalid(f"inputs must be a string or a list of strings, got {_kind(inputs)}")
    if len(texts) > limits.max_inputs:
        raise RequestError("too_large", f"inputs has {len(texts)} texts; the limit is {limits.max_inputs} per request")
    for i, text in enumerate(texts):
        where = "inputs" if single else f"inputs[{i}]"
        if not isinstance(text, str):
            raise _invalid(f"{where} must be a string, got {_kind(text)}")
        if len(text) > limits.max_text_chars:
            raise RequestError(
                "too_large", f"{where} has {len(text)} characters; the limit is {limits.max_text_chars} per text"
            )
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise _invalid(
                f"{where} holds a lone surrogate (\\u{ord(text[exc.start]):04x}), which is not text"
            ) from None
    options = _object(payload.get("options"), "options")
    _unknown(options, OPTIONS, "option(s)")
    for name, value in options.items():
        if not isinstance(value, bool):
            raise _invalid(f"options.{name} must be true or false, got {_kind(value)}")
    return texts, single


PREDICT_PARAMETERS = ("top_k", "function_to_apply", "calibrated", "neutral")


def parse_predict(payload: Any, limits: Limits) -> PredictRequest:
    """A /predict body (already decoded from JSON), validated. A top_k above the model's labels
    gives them all, as the pipeline does."""
    texts, single = _texts(payload, limits)
    _unknown(payload, ("inputs", "parameters", "options"), "field(s)")
    params = _object(payload.get("parameters"), "parameters")
    _unknown(params, PREDICT_PARAMETERS, "parameter(s)")
    top_k = params.get("top_k")
    if not parameters.top_k_ok(top_k):
        raise _invalid(f"parameters.top_k must be a positive integer or null, got {quote(top_k)}")
    given = params.get("function_to_apply", "softmax")
    function = parameters.output_function(given)
    if function is None:
        raise _invalid(f'parameters.function_to_apply must be "softmax", "sigmoid" or "none", got {quote(given)}')
    calibrated = params.get("calibrated", True)
    if parameters.calibration_mode(calibrated) is None:
        raise _invalid(f'parameters.calibrated must be true, false or "temperature", got {quote(calibrated)}')
    neutral = params.get("neutral", False)
    if not parameters.neutral_ok(neutral):
        raise _invalid(f"parameters.neutral must be true or false, got {quote(neutral)}")
    return PredictRequest(texts, single, top_k, function, calibrated, neutral)


def check_neutral(manifest: Any, request: PredictRequest | EmbedRequest) -> None:
    """422 when a request asks for the neutral label of a model that has none."""
    if isinstance(request, PredictRequest) and request.neutral and manifest.neutral_label is None:
        raise _invalid(
            "parameters.neutral is true but this model has no neutral output "
            f"(its labels: {', '.join(manifest.labels)})"
        )


EMBED_PARAMETERS = ("normalize", "truncate", "truncation_direction", "prompt_name")


def parse_embed(payload: Any, limits: Limits) -> EmbedRequest:
    """An /embed body (already decoded from JSON), validated. Its parameters come in "parameters"
    (the Inference API) or at the top level (Text Embeddings Inference, which
    huggingface_hub.InferenceClient.feature_extraction sends)."""
    texts, single = _texts(payload, limits)
    _unknown(payload, ("inputs", "parameters", "options", *EMBED_PARAMETERS), "field(s)")
    params = dict(_object(payload.get("parameters"), "parameters"))
    _unknown(params, EMBED_PARAMETERS, "parameter(s)")
    for name in EMBED_PARAMETERS:
        if name in payload:
            if name in params and params[name] != payload[name]:
                raise _invalid(f"{name} is given twice, at the top level and in parameters, with different values")
            params[name] = payload[name]
    for name in ("normalize", "truncate"):
        if params.get(name) is not None and not isinstance(params[name], bool):
            raise _invalid(f"parameters.{name} must be true or false, got {_kind(params[name])}")
    direction = params.get("truncation_direction")
    if not parameters.truncation_direction_ok(direction):
        raise _invalid(f'parameters.truncation_direction must be "right" (the model keeps the start of a text), '
                       f"got {quote(direction)}")  # fmt: skip
    if params.get("prompt_name") is not None:
        raise _invalid("parameters.prompt_name must be null: this model has no prompts")
    normalize = params.get("normalize")
    truncate = params.get("truncate")
    return EmbedRequest(texts, single, True if normalize is None else normalize, True if truncate is None else truncate)


def check_tokens(lengths: Sequence[int], limits: Limits) -> None:
    """413 when a request's texts hold more tokens (after truncation) than one request may."""
    total = sum(lengths)
    if total > limits.max_request_tokens:
        raise RequestError(
            "too_large",
            f"the request holds {total} tokens; the limit is {limits.max_request_tokens} per request "
            "(send fewer or shorter texts, or split the request)",
        )


def check_untruncated(encodings: Sequence[Any], max_length: int) -> None:
    """413 for /embed with truncate=false when a text is longer than the model reads."""
    for i, encoding in enumerate(encodings):
        if encoding.overflowing:
            raise RequestError(
                "too_large", f"inputs[{i}] is longer than {max_length} tokens and parameters.truncate is false"
            )
