"""The bearer token guards every route the app serves, whatever the path's spelling.

The table of routes is read from the app's own router, so a route added later is in it without
anyone remembering to list it: every route that is not marked open must refuse a request without
the token (401) under every spelling below, on a real server process; the open routes (the probes,
/metrics, the page, the docs) stay reachable.
"""

from __future__ import annotations

import json

import pytest

from http_helpers import request, running_server

pytest.importorskip("uvicorn")

TOKEN = "route-table-token"
# The routes that answer without the token, as docs/serving.md lists them. Opening another is a
# decision, so it must change this set too.
DOCUMENTED_OPEN = {
    "/", "/healthz", "/readyz", "/metrics", "/docs", "/openapi.json", "/docs-assets",
    "/ping", "/vertex/health", "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{name}",
    "/v2/models/{name}/ready",
}  # fmt: skip


def spellings(path: str) -> list[str]:
    """Ways to write a path that a router, a proxy or a client may treat as the same route."""
    trimmed = path.rstrip("/") or ""
    first = trimmed[1:2]
    out = [
        path,
        trimmed + "/",
        trimmed + "%2F",
        trimmed + "//",
        "/" + path,  # a doubled leading slash
        path + "?x=1",
        trimmed + "/.",
        path.upper(),
        trimmed + "/#frag",
    ]
    if first:
        out.append("/%" + format(ord(first), "02X") + trimmed[2:])  # a percent-encoded first letter
    return sorted({s for s in out if s.startswith("/")})


def route_table() -> list[tuple[str, str, bool]]:
    """(path, method, open) for every route and method of the app, read from its router."""
    from starlette.routing import Mount

    from emotion_onnx.serving.app import create_app
    from emotion_onnx.serving.guard import OPEN_ATTRIBUTE
    from emotion_onnx.serving.settings import ServerSettings

    guard = create_app(ServerSettings(api_token=TOKEN))
    rows = []
    for route in guard.routes:
        endpoint = route.app if isinstance(route, Mount) else route.endpoint
        is_open = bool(getattr(endpoint, OPEN_ATTRIBUTE, False))
        methods = sorted(getattr(route, "methods", None) or {"GET"})
        rows += [(route.path, method, is_open) for method in methods]
    return rows


ROUTES = route_table()
GUARDED = [(path, method) for path, method, is_open in ROUTES if not is_open]


def test_the_table_holds_the_model_routes_and_only_documented_routes_are_open():
    assert {("/predict", "POST"), ("/predict/", "POST"), ("/embed", "POST"), ("/", "POST"), ("/invocations", "POST"),
            ("/vertex/predict", "POST"), ("/v2/models/{name}/infer", "POST")} <= set(GUARDED)  # fmt: skip
    assert {path for path, _, is_open in ROUTES if is_open} == DOCUMENTED_OPEN


@pytest.fixture(scope="module")
def guarded_server(tiny_model):
    with running_server(model=tiny_model, env={"EMOTION_ONNX_API_TOKEN": TOKEN}) as srv:
        yield srv


def _send(port: int, method: str, path: str, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = json.dumps({"inputs": "i feel wonderful today"}).encode() if method != "GET" else None
    return request(port, method, path, body, headers)


@pytest.mark.parametrize(("path", "method"), GUARDED, ids=[f"{m} {p}" for p, m in GUARDED])
def test_no_spelling_of_a_guarded_route_answers_without_the_token(guarded_server, path, method):
    for spelled in spellings(path):
        for given in (None, "wrong-token"):
            reply = _send(guarded_server.port, method, spelled, given)
            assert reply.status == 401, (method, spelled, reply.status, reply.body[:200])
            assert reply.headers["content-type"] == "application/json"
            assert "bearer token" in reply.json()["error"]


@pytest.mark.parametrize("path", ["/predict", "/predict/", "/embed", "/"])
def test_with_the_token_the_model_routes_answer(guarded_server, path):
    reply = _send(guarded_server.port, "POST", path, TOKEN)
    assert reply.status == 200, reply.body
    assert isinstance(reply.json(), list)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/", "/docs", "/openapi.json"])
def test_the_open_routes_answer_get_and_head_without_the_token(guarded_server, path):
    assert request(guarded_server.port, "GET", path).status == 200
    head = request(guarded_server.port, "HEAD", path)
    assert head.status == 200 and head.body == b""


def test_a_wrong_method_on_an_open_route_still_needs_the_token(guarded_server):
    assert request(guarded_server.port, "POST", "/healthz", b"{}").status == 401
    reply = request(guarded_server.port, "POST", "/docs", b"{}", {"Authorization": f"Bearer {TOKEN}"})
    assert reply.status == 405 and reply.json()["error"] == "/docs takes GET, HEAD, not POST"
    assert reply.headers["allow"] == "GET, HEAD"
