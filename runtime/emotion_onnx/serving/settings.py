"""Server knobs, with defaults suited to a small CPU server. Request limits are the shared
`emotion_onnx.requests.Limits` (the same EMOTION_ONNX_MAX_* variables as the Lambda handler)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..cpu import thread_count
from ..errors import InputError
from ..requests import Limits, check_range

TOKEN_ENV = "EMOTION_ONNX_API_TOKEN"
TAKEN_ROUTES = ("/", "/predict", "/embed", "/healthz", "/readyz", "/metrics", "/ping", "/invocations")
VERTEX_ENV = {"predict": "AIP_PREDICT_ROUTE", "health": "AIP_HEALTH_ROUTE", "port": "AIP_HTTP_PORT"}


def api_token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token, or None when the variable is unset. A token that is set but empty, or
    that has spaces or a newline around it (a copy-paste or `echo` slip), is refused instead of
    silently turning auth off or making every request 401."""
    environ = os.environ if environ is None else environ
    token = environ.get(TOKEN_ENV)
    if token is None:
        return None
    if not token.strip():
        raise InputError(f"{TOKEN_ENV} is set but empty; unset it to serve without auth, or set a token")
    if token != token.strip():
        raise InputError(f"{TOKEN_ENV} has spaces or a newline around it; remove them (the token is used verbatim)")
    return token


@dataclass(frozen=True)
class ServerSettings:
    model: str | None = None  # model directory; None: the embedded default
    variant: str | None = None
    threads: int | None = None  # onnxruntime intra-op threads; None: usable CPUs
    spinning: bool | None = None  # None: onnxruntime's default (spin briefly between calls)
    limits: Limits = field(default_factory=Limits)
    batch_tokens: int = 8192  # micro-batch budget: real tokens coalesced into one inference call
    max_wait_ms: float = 2.0  # how long the first request of a micro-batch waits for company
    max_queue_tokens: int = 131_072  # tokens waiting for inference; beyond this, 503 + Retry-After
    retry_after_s: int = 1
    api_token: str | None = None  # bearer token; None: no auth
    max_header_bytes: int = 65_536  # a request's headers over this get 431
    header_timeout_s: float = 10.0  # headers must arrive within this (else 408); idle connections close
    body_timeout_s: float = 30.0  # the body must arrive within this (else 408)
    send_timeout_s: float = 30.0  # a client that leaves its answer unread this long is cut off
    grace_s: float = 60.0  # SIGTERM: accepted requests are answered within this, the rest get 503
    vertex_predict_route: str = "/vertex/predict"  # Vertex AI sets AIP_PREDICT_ROUTE
    vertex_health_route: str = "/vertex/health"  # and AIP_HEALTH_ROUTE

    @classmethod
    def from_env(cls, limits: dict[str, int | None] | None = None, **kwargs) -> ServerSettings:
        """Settings with the token and the limits' EMOTION_ONNX_MAX_* variables read from the
        environment; `limits` overrides (from command-line flags) win over the variables."""
        routes = {
            "vertex_predict_route": os.environ.get(VERTEX_ENV["predict"]) or cls.vertex_predict_route,
            "vertex_health_route": os.environ.get(VERTEX_ENV["health"]) or cls.vertex_health_route,
        }
        return cls(api_token=api_token_from_env(), limits=Limits.from_env(**(limits or {})), **{**routes, **kwargs})

    # (low, high, low excluded): every numeric knob must be finite and within its range, so that a
    # NaN, an infinity or an absurd value is refused at start instead of hanging or starving the server
    RANGES = {
        "batch_tokens": (1, 1 << 20, False),
        "max_queue_tokens": (1, 1 << 26, False),
        "retry_after_s": (1, 3600, False),
        "max_header_bytes": (1, 1 << 20, False),
        "max_wait_ms": (0.0, 1000.0, False),
        "header_timeout_s": (0.0, 3600.0, True),
        "body_timeout_s": (0.0, 3600.0, True),
        "send_timeout_s": (0.0, 3600.0, True),
        "grace_s": (0.0, 3600.0, True),
    }

    def check(self) -> None:
        self.limits.check()
        for name, (low, high, open_low) in self.RANGES.items():
            check_range(name, getattr(self, name), low, high, open_low)
        if self.threads is not None:
            thread_count(self.threads, "threads")
        for name in ("vertex_predict_route", "vertex_health_route"):
            route = getattr(self, name)
            if not route.startswith("/") or route in TAKEN_ROUTES or " " in route:
                raise ValueError(f"{name} must be a path of its own starting with /, got {route!r}")
