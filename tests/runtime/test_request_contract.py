"""One table of requests through both adapters, the HTTP server (a real process on 127.0.0.1)
and the Lambda handler: the same status and the same error message from each, no 5xx, and a
server that still answers afterwards."""

from __future__ import annotations

import base64
import json
import sys

import pytest
from request_cases import CASES, CONTRACT_ENV

from http_helpers import request, running_server
from lambda_events import http_api_v2

pytest.importorskip("fastapi")


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(model=tiny_model, env=CONTRACT_ENV) as srv:
        yield srv


@pytest.fixture(scope="module")
def lambda_handler(tiny_model):
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "emotion_onnx.aws_lambda"}
    mp = pytest.MonkeyPatch()
    for key, value in {**CONTRACT_ENV, "EMOTION_ONNX_MODEL": str(tiny_model)}.items():
        mp.setenv(key, value)
    import emotion_onnx.aws_lambda as aws_lambda

    assert aws_lambda.LOAD_ERROR is None, aws_lambda.LOAD_ERROR
    yield aws_lambda.handler
    mp.undo()
    sys.modules.pop("emotion_onnx.aws_lambda", None)
    sys.modules.update(saved)


def lambda_event(case, route: str) -> dict:
    try:
        body, encoded = case.body.decode("utf-8"), False
    except UnicodeDecodeError:  # API Gateway base64-encodes a body that is not text
        body, encoded = base64.b64encode(case.body).decode(), True
    event = http_api_v2(body if case.body else None, path=route, method=case.method)
    event["headers"] = {"host": "abc123.execute-api.eu-west-1.amazonaws.com",
                        **{k.lower(): v for k, v in case.headers.items()}}  # fmt: skip
    event["isBase64Encoded"] = encoded
    return event


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_http_and_lambda_answer_alike(server, lambda_handler, tiny_model, case):
    route = case.route.replace("{model}", tiny_model.name)  # a model directory's name is its name
    http = request(server.port, case.method, route, case.body or None, case.headers)
    aws = lambda_handler(lambda_event(case, route), None)
    assert http.status == case.status, (http.status, http.body[:300])
    assert aws["statusCode"] == case.status, aws
    http_body, aws_body = http.json(), json.loads(aws["body"])
    if case.status >= 400:
        assert case.fragment in http_body["error"], http_body
        assert http_body == aws_body  # the same message, word for word
        assert "Traceback" not in http.body.decode()
    else:
        assert_close(http_body, aws_body)


def assert_close(a, b, atol: float = 1e-6) -> None:
    """Equal structure and labels, scores within atol."""
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_close(x, y, atol)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            assert_close(a[key], b[key], atol)
    elif isinstance(a, float):
        assert abs(a - b) <= atol, (a, b)
    else:
        assert a == b


def test_the_server_still_answers_after_the_table(server):
    for case in CASES:
        request(server.port, case.method, case.route, case.body or None, case.headers)
    assert request(server.port, "GET", "/healthz").status == 200
    assert request(server.port, "POST", "/predict", {"inputs": "still here"}).status == 200
    metrics = request(server.port, "GET", "/metrics").body.decode()
    assert 'status="500"' not in metrics


def test_the_table_covers_every_refusal_a_body_or_route_can_get():
    # 401 and 503 depend on the server's configuration and state, not on the request: tested apart
    assert {c.status for c in CASES} == {200, 400, 404, 405, 413, 415, 422}
    assert {c.route for c in CASES} >= {"/predict", "/embed", "/invocations", "/v2/models/{model}/infer"}
