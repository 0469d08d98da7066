"""Lambda events in the formats AWS sends (trimmed of fields the handler never reads only where noted)."""

from __future__ import annotations

import base64
import copy
import json


def apigw_v1(body: str | None, path: str = "/predict", method: str = "POST", base64_body: bool = False) -> dict:
    """API Gateway REST API, Lambda proxy integration (payload format 1.0)."""
    if base64_body and body is not None:
        body = base64.b64encode(body.encode()).decode()
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json", "Host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "httpMethod": method,
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
            "resourcePath": path,
            "stage": "prod",
            "identity": {"sourceIp": "203.0.113.10", "userAgent": "curl/8.5.0"},
        },
        "body": body,
        "isBase64Encoded": base64_body,
    }


def http_api_v2(body: str | None, path: str = "/predict", method: str = "POST", stage: str = "$default") -> dict:
    """API Gateway HTTP API (payload format 2.0)."""
    raw_path = path if stage == "$default" else f"/{stage}{path}"
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "abc123.execute-api.eu-west-1.amazonaws.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "curl/8.5.0",
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": f"{method} {path}",
            "stage": stage,
            "time": "25/Nov/2026:22:00:00 +0000",
            "timeEpoch": 1795644000000,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def function_url(body: str | None, path: str = "/", method: str = "POST", base64_body: bool = True) -> dict:
    """Lambda Function URL (payload format 2.0; Function URLs base64-encode non-text bodies)."""
    event = http_api_v2(body, path, method)
    event["routeKey"] = "$default"
    event["requestContext"]["routeKey"] = "$default"
    event["requestContext"]["domainName"] = "xyz789.lambda-url.eu-west-1.on.aws"
    event["requestContext"]["domainPrefix"] = "xyz789"
    event["requestContext"]["authorizer"] = {"iam": {"accessKey": "AKIA...", "accountId": "123456789012"}}
    if base64_body and body is not None:
        event["body"] = base64.b64encode(body.encode()).decode()
        event["isBase64Encoded"] = True
    return event


def sample_events() -> list[tuple[str, object, str, int]]:
    """(name, event, kind, expected status) covering every source, good and bad."""
    good = json.dumps({"inputs": ["i feel wonderful today", "i am terrified"], "parameters": {"top_k": 2}})
    one = json.dumps({"inputs": "i miss my old friends"})
    embed = json.dumps({"inputs": ["i feel calm"]})
    cases: list[tuple[str, object, str, int]] = [
        ("v1 predict", apigw_v1(good), "proxy", 200),
        ("v1 predict base64", apigw_v1(one, base64_body=True), "proxy", 200),
        ("v1 embed", apigw_v1(embed, path="/embed"), "proxy", 200),
        ("v1 healthz", apigw_v1(None, path="/healthz", method="GET"), "proxy", 200),
        ("v2 predict", http_api_v2(good), "proxy", 200),
        ("v2 predict with stage", http_api_v2(one, stage="prod"), "proxy", 200),
        ("v2 embed", http_api_v2(embed, path="/embed"), "proxy", 200),
        ("function url predict", function_url(good), "proxy", 200),
        ("function url embed", function_url(embed, path="/embed"), "proxy", 200),
        ("direct predict", {"inputs": "i feel wonderful today"}, "direct", 200),
        ("direct list", {"inputs": ["i am so angry", "what a surprise"], "parameters": {"top_k": None}}, "direct", 200),
        ("direct embed", {"task": "embed", "inputs": "i feel calm"}, "direct", 200),
        # bad events
        ("v1 not json", apigw_v1("{nope"), "proxy", 400),
        ("v1 no body", apigw_v1(None), "proxy", 400),
        ("v1 wrong method", apigw_v1(good, method="GET"), "proxy", 405),
        ("v2 unknown route", http_api_v2(good, path="/classify"), "proxy", 404),
        ("v2 inputs not text", http_api_v2(json.dumps({"inputs": [1, 2]})), "proxy", 422),
        ("v2 bad top_k", http_api_v2(json.dumps({"inputs": "x", "parameters": {"top_k": 0}})), "proxy", 422),
        ("v2 bad function", http_api_v2(json.dumps({"inputs": "x", "parameters": {"function_to_apply": "relu"}})),
         "proxy", 422),
        ("v2 too many inputs", http_api_v2(json.dumps({"inputs": ["x"] * 257})), "proxy", 413),
        ("function url bad base64", {**function_url(good), "body": "***"}, "proxy", 400),
        ("direct no inputs", {"text": "hello"}, "direct", 422),
        ("direct not an object", ["hello"], "direct", 422),
        ("direct null item", {"inputs": ["ok", None]}, "direct", 422),
    ]  # fmt: skip
    return [(name, copy.deepcopy(event), kind, status) for name, event, kind, status in cases]
