"""Pure-ASGI front door: bearer-token auth, the body-size cap before parsing, a deadline for the
body to arrive, refusals while shutting down, per-request metrics.

Auth is decided by the router itself: a request is let through without the token only when it
fully matches a route that is marked open (`open_route`: the probes, /metrics, the page, the docs).
Every other request, whatever its spelling ("/predict/", "/predict%2F", "/"), an unknown path
included, needs the token, so a route added later is guarded until someone opens it on purpose.

Every refusal is a JSON body; nothing here ever answers with a stack trace.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..requests import body_too_large
from .metrics import ServerMetrics

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLIENT_CLOSED = 499
# A refused body up to this size is read to its end before the 413 (a client still sending it would
# otherwise meet a closed connection instead of the answer); a bigger one is refused at once.
DRAIN_BYTES = 16 << 20
OPEN_ATTRIBUTE = "emotion_onnx_open"  # set on an endpoint that answers without the token


def open_route(endpoint):
    """Mark an endpoint as answering without the bearer token (it must not run the model)."""
    setattr(endpoint, OPEN_ATTRIBUTE, True)
    return endpoint


def is_open(routes, scope: Scope) -> bool:
    """Whether the route that routing picks for `scope` is marked open. Starlette takes the first
    route that fully matches; a path that only partly matches (a wrong method) or matches nothing
    is not open."""
    from starlette.routing import Match, Mount

    for route in routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            endpoint = route.app if isinstance(route, Mount) else getattr(route, "endpoint", None)
            return bool(getattr(endpoint, OPEN_ATTRIBUTE, False))
    return False


def _matches_get(routes, scope: Scope) -> bool:
    from starlette.routing import Match

    get = {**scope, "method": "GET"}
    return any(route.matches(get)[0] == Match.FULL for route in routes)


def _headers_only(send: Send) -> Send:
    async def without_body(message: Message) -> None:
        if message["type"] == "http.response.body":
            message = {**message, "body": b""}
        await send(message)

    return without_body


def allowed_methods(routes, scope: Scope) -> list[str]:
    """The methods of the routes whose path matches `scope` (for a 405's Allow header), HEAD
    beside every GET, as the front door answers it."""
    from starlette.routing import Match

    methods: set[str] = set()
    for route in routes:
        if route.matches(scope)[0] != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def send_json(send: Send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class Guard:
    def __init__(
        self,
        app,
        *,
        max_body_bytes: int,
        api_token: str | None,
        metrics: ServerMetrics,
        body_timeout_s: float = 30.0,
        refuse_new=lambda: None,
    ):
        self.app = app
        self.routes = app.router.routes
        self.max_body_bytes = max_body_bytes
        self.token = api_token.encode() if api_token else None
        self.metrics = metrics
        self.body_timeout_s = body_timeout_s
        self.refuse_new = refuse_new  # the RequestError that refuses a new request once shutdown has begun, or None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # A request that ends with no response sent was left by its client (nginx's 499); only an
        # exception is the server's own failure (500), so no client can inflate the 5xx rate.
        status = {"code": CLIENT_CLOSED}

        async def tracking_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, tracking_send)
        except Exception:
            if status["code"] == CLIENT_CLOSED:
                status["code"] = 500
            raise
        finally:
            self.metrics.observe_request(scope["path"], status["code"], time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "HEAD" and _matches_get(self.routes, scope):  # HEAD is GET without the body
            scope, send = {**scope, "method": "GET"}, _headers_only(send)
        if self.token is not None and not is_open(self.routes, scope) and not self._authorised(scope):
            await send_json(
                send,
                401,
                {"error": "missing or wrong bearer token"},
                {"WWW-Authenticate": 'Bearer realm="emotion-onnx"', "Connection": "close"},
            )
            return
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        refused = self.refuse_new()
        if refused is not None:
            await send_json(send, refused.status, refused.body(), {**refused.headers, "Connection": "close"})
            return
        declared = self._content_length(scope)
        deadline = asyncio.get_running_loop().time() + self.body_timeout_s
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(receive, send, declared, deadline, False, declared <= DRAIN_BYTES)
            return
        chunks, size = [], 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), deadline - asyncio.get_running_loop().time())
            except asyncio.TimeoutError:
                message = f"the request body did not arrive within {self.body_timeout_s:g} s"
                await send_json(send, 408, {"error": message}, {"Connection": "close"})
                return
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._too_large(receive, send, None, deadline, not message.get("more_body", False), True)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: waits for http.disconnect

        await self.app(scope, replay, send)

    async def _too_large(
        self, receive: Receive, send: Send, declared: int | None, deadline: float, ended: bool, drain: bool
    ) -> None:
        """413. A body of at most DRAIN_BYTES is read to its end first (and thrown away), so that the
        client, still sending, gets the answer and the connection stays usable; a bigger one, or one
        that does not arrive by the deadline, is refused at once and the connection closed, so that
        what it still sends is never read as the next request."""
        finished = ended or (drain and await self._discard(receive, deadline))
        headers = None if finished else {"Connection": "close"}
        await send_json(send, 413, body_too_large(declared, self.max_body_bytes).body(), headers)

    @staticmethod
    async def _discard(receive: Receive, deadline: float) -> bool:
        """Read the rest of a body, keeping none of it, up to DRAIN_BYTES and the deadline; whether it ended."""
        seen = 0
        loop = asyncio.get_running_loop()
        while seen <= DRAIN_BYTES:
            try:
                message = await asyncio.wait_for(receive(), deadline - loop.time())
            except asyncio.TimeoutError:
                return False
            if message["type"] == "http.disconnect":
                return False
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return True
        return False

    def _authorised(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, given = value.partition(b" ")
                return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.token)
        return False

    @staticmethod
    def _content_length(scope: Scope) -> int | None:
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return None
        return None
