"""The serving contracts of the cloud platforms, each a thin translation to and from the one request
contract (`emotion_onnx.requests`): the same validation, limits and messages, whatever the shape.

- "hf": the Hugging Face Inference API JSON that /predict and /embed take (no translation).
- "sagemaker": POST /invocations, SageMaker's bring-your-own-container contract: the Hugging Face
  JSON, or `text/csv` with one text per line (as batch transform sends records); the answer is
  /predict's.
- "vertex": Vertex AI custom containers: `{"instances": [...], "parameters": {...}}`, an instance
  a text or `{"text": ...}`, answered `{"predictions": [...]}` with one prediction per instance
  (its ranking, as /predict gives it).
- "v2": the Open Inference Protocol (KServe, Seldon, Triton clients): one BYTES input tensor of
  texts, answered with typed output tensors `label` (BYTES), `score` (FP32) and `probabilities`
  (FP32, [n, labels]).

`translate(contract, raw, headers, limits)` gives the Hugging Face payload of a request, and
`answer(contract, clf, parsed, outputs, context)` the body of the answer.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from .requests import Limits, PredictRequest, RequestError, check_content_encoding, decode_json, quote
from .responses import body as hf_body

CONTRACTS = ("hf", "sagemaker", "vertex", "v2")
V2_INPUT = "text"
V2_OUTPUTS = ("label", "score", "probabilities")
V2_REQUEST_KEYS = ("id", "inputs", "outputs", "parameters")


def _invalid(message: str) -> RequestError:
    return RequestError("invalid", message)


def _media(headers: Mapping[str, str] | None) -> str:
    for key, value in (headers or {}).items():
        if isinstance(key, str) and key.lower() == "content-type" and isinstance(value, str):
            return value.split(";", 1)[0].strip().lower()
    return ""


def csv_texts(raw: bytes) -> list[str]:
    """One text per CSV record (a text holding a comma or a newline is quoted, as CSV quotes it)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("bad_body", "the request body is not UTF-8") from None
    texts = []
    try:
        for row in csv.reader(io.StringIO(text.removeprefix("\ufeff"))):
            if len(row) > 1:
                raise _invalid(f"CSV record {len(texts) + 1} has {len(row)} fields; quote a text that holds commas")
            texts.append(row[0] if row else "")
    except csv.Error as exc:
        raise RequestError("bad_body", f"the request body is not valid CSV ({exc})") from None
    return texts


def translate(
    contract: str, raw: bytes | str | None, headers: Mapping[str, str] | None, limits: Limits
) -> tuple[Any, dict]:
    """(the Hugging Face payload a request of `contract` stands for, what its answer needs from the
    request: a v2 request's id and the outputs it asks for); RequestError when it is not one."""
    if contract == "sagemaker" and _media(headers) == "text/csv":
        check_content_encoding(headers)
        return {"inputs": csv_texts(raw.encode() if isinstance(raw, str) else raw or b"")}, {}
    payload = decode_json(raw, headers, limits.max_body_bytes)
    if contract == "vertex":
        return vertex_payload(payload), {}
    if contract == "v2":
        hf = v2_payload(payload)
        return hf, {"id": payload.get("id"), "outputs": v2_outputs(payload)}
    return payload, {}


def vertex_payload(payload: Any) -> dict:
    if not isinstance(payload, dict) or "instances" not in payload:
        raise _invalid('the body must be a JSON object like {"instances": ["i feel great"], "parameters": {}}')
    extra = sorted(set(payload) - {"instances", "parameters"})
    if extra:
        raise _invalid(f"unknown field(s) {', '.join(map(repr, extra[:5]))}; allowed: instances, parameters")
    instances = payload["instances"]
    if not isinstance(instances, list):
        raise _invalid(f"instances must be a list, got {quote(instances)}")
    texts = []
    for i, instance in enumerate(instances):
        if isinstance(instance, dict) and set(instance) == {"text"}:
            instance = instance["text"]
        if not isinstance(instance, str):
            raise _invalid(f'instances[{i}] must be a text or {{"text": ...}}, got {quote(instance)}')
        texts.append(instance)
    out = {"inputs": texts}
    if payload.get("parameters") is not None:
        out["parameters"] = payload["parameters"]
    return out


def v2_payload(payload: Any) -> dict:
    """The texts and parameters of an inference request: exactly one input tensor named "text",
    datatype BYTES, shape [n] or [n, 1], its data the n texts."""
    if not isinstance(payload, dict) or not isinstance(payload.get("inputs"), list):
        raise _invalid('the body must be an inference request: {"inputs": [{"name": "text", "shape": [n], '
                       '"datatype": "BYTES", "data": [...]}]}')  # fmt: skip
    extra = sorted(set(payload) - set(V2_REQUEST_KEYS))
    if extra:
        raise _invalid(f"unknown field(s) {', '.join(map(repr, extra[:5]))}; allowed: {', '.join(V2_REQUEST_KEYS)}")
    if len(payload["inputs"]) != 1 or not isinstance(payload["inputs"][0], dict):
        raise _invalid(f"the request must have exactly one input tensor, {V2_INPUT!r}")
    tensor = payload["inputs"][0]
    if tensor.get("name") != V2_INPUT:
        raise _invalid(f"the input tensor must be named {V2_INPUT!r}, got {quote(tensor.get('name'))}")
    if tensor.get("datatype") != "BYTES":
        raise _invalid(f"input {V2_INPUT!r} must have datatype BYTES, got {quote(tensor.get('datatype'))}")
    data, shape = tensor.get("data"), tensor.get("shape")
    if not isinstance(data, list):
        raise _invalid(f"input {V2_INPUT!r} must carry its texts in data (the binary data extension is not supported)")
    if shape not in ([len(data)], [len(data), 1]):
        raise _invalid(f"input {V2_INPUT!r} has shape {quote(shape)} but {len(data)} texts; use [{len(data)}]")
    out: dict[str, Any] = {"inputs": [t[0] if isinstance(t, list) and len(t) == 1 else t for t in data]}
    params = payload.get("parameters")
    if isinstance(params, dict):
        params = {k: v for k, v in params.items() if k not in ("binary_data_output", "binary_data")}
    if params:
        out["parameters"] = params
    return out


def v2_outputs(payload: Any) -> list[str]:
    """The output tensors a v2 request asks for (all of them by default)."""
    wanted = payload.get("outputs") if isinstance(payload, dict) else None
    if wanted is None:
        return list(V2_OUTPUTS)
    if not isinstance(wanted, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str) for o in wanted):
        raise _invalid('outputs must be a list like [{"name": "label"}]')
    names = [o["name"] for o in wanted]
    unknown = [n for n in names if n not in V2_OUTPUTS]
    if unknown:
        shown = ", ".join(map(quote, unknown[:5]))
        raise _invalid(f"unknown output(s) {shown}; this model has {', '.join(V2_OUTPUTS)}")
    return names


def v2_body(clf: Any, request: PredictRequest, logits: np.ndarray, context: Mapping[str, Any]) -> dict:
    scores = clf.scores(logits, request.function_to_apply, request.calibrated, request.neutral)
    labels = clf.answer_labels(request.neutral)
    best = scores.argmax(1) if len(scores) else np.zeros(0, dtype=int)
    n = len(scores)
    tensors = {
        "label": {"name": "label", "datatype": "BYTES", "shape": [n], "data": [labels[i] for i in best]},
        "score": {
            "name": "score",
            "datatype": "FP32",
            "shape": [n],
            "data": [float(scores[r, i]) for r, i in enumerate(best)],
        },  # fmt: skip
        "probabilities": {
            "name": "probabilities",
            "datatype": "FP32",
            "shape": [n, len(labels)],
            "data": [float(x) for x in np.asarray(scores).reshape(-1)],
        },  # fmt: skip
    }
    out = {"model_name": context["model_name"], "model_version": context["model_version"]}
    if context.get("id") is not None:
        out["id"] = context["id"]
    return {**out, "outputs": [tensors[name] for name in context["outputs"]]}


def answer(contract: str, clf: Any, request: Any, outputs: tuple, context: Mapping[str, Any] | None = None) -> Any:
    """The body of the answer to a parsed request in `contract`'s shape."""
    if contract == "v2":
        context = {**(context or {}), "model_name": model_name(clf), "model_version": model_version(clf)}
        return v2_body(clf, request, outputs[0], context)
    body = hf_body(clf, request, outputs)
    if contract == "vertex":
        return {"predictions": body}
    return body


def model_metadata(clf: Any) -> dict:
    """The Open Inference Protocol's model metadata, from the manifest."""
    n = len(clf.labels)
    return {
        "name": model_name(clf),
        "versions": [model_version(clf)],
        "platform": f"{clf.variant.engine}_{clf.variant.precision}",
        "inputs": [{"name": V2_INPUT, "datatype": "BYTES", "shape": [-1]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "score", "datatype": "FP32", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, n]},
        ],
        "parameters": {"labels": clf.labels, "neutral_label": clf.manifest.neutral_label},
    }


def unknown_model(name: Any, clf: Any) -> RequestError:
    """404 for a v2 path that names another model than the one loaded."""
    return RequestError("not_found", f"no model named {quote(name)}; this server has {quote(model_name(clf))}")


def model_name(clf: Any) -> str:
    return clf.manifest.name or clf.manifest.directory.name


def model_version(clf: Any) -> str:
    """The loaded graph's content hash, shortened: a new export is a new version."""
    return clf.variant.ref.sha256[:12]
