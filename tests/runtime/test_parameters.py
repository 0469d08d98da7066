"""One rule per parameter (emotion_onnx.parameters): the request parser and the OpenAPI schema
built from the same rules accept exactly the same values."""

from __future__ import annotations

import jsonschema_rs  # schemathesis's validator
import pytest

from emotion_onnx.requests import Limits, RequestError, parse_embed, parse_predict
from emotion_onnx.serving.schemas import request_models

PREDICT, EMBED = (jsonschema_rs.validator_for(m.model_json_schema()) for m in request_models(Limits()))

CASES = (
    [
        (PREDICT, parse_predict, "function_to_apply", v)
        for v in ("softmax", "SoftMax", "NONE", "sigmoid", "sigmoid ", "soft", "", "relu", 1, None, True)
    ]
    + [
        (PREDICT, parse_predict, "calibrated", v)
        for v in (True, False, "temperature", "Temperature", "true", 1, 0, None)
    ]
    + [(PREDICT, parse_predict, "top_k", v) for v in (1, 3, 100, 0, -1, 1.5, True, "2", None)]
    + [(PREDICT, parse_predict, "neutral", v) for v in (True, False, 1, "true", None)]
    + [(EMBED, parse_embed, "truncation_direction", v) for v in ("right", "Right", "RIGHT", "left", "", 1, None)]
)


@pytest.mark.parametrize("schema, parse, name, value", CASES, ids=[f"{c[2]}={c[3]!r}" for c in CASES])
def test_the_schema_accepts_what_the_parser_accepts(schema, parse, name, value):
    body = {"inputs": "i feel fine", "parameters": {name: value}}
    try:
        parse(body, Limits())
        parsed = True
    except RequestError:
        parsed = False
    assert schema.is_valid(body) == parsed, (name, value, parsed)
