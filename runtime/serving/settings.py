"""Server limits and knobs, with defaults suited to a small CPU server."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..limits import MAX_INPUTS, MAX_TEXT_CHARS

TOKEN_ENV = "EMOTION_ONNX_API_TOKEN"


@dataclass(frozen=True)
class ServerSettings:
    model: str | None = None  # model directory; None: the embedded default
    variant: str | None = None
    threads: int | None = None  # onnxruntime intra-op threads; None: usable CPUs
    spinning: bool | None = None  # None: onnxruntime's default (spin briefly; measured faster here)
    max_body_bytes: int = 1 << 20  # request bodies over this get 413 before any parsing
    max_inputs: int = MAX_INPUTS  # texts per request
    max_text_chars: int = MAX_TEXT_CHARS  # characters per text
    batch_tokens: int = 8192  # micro-batch budget: real tokens coalesced into one inference call
    max_wait_ms: float = 2.0  # how long the first request of a micro-batch waits for company
    max_queue_texts: int = 2048  # texts waiting for inference; beyond this, 503 + Retry-After
    retry_after_s: int = 1
    api_token: str | None = None  # bearer token; None: no auth

    @classmethod
    def with_env_token(cls, **kwargs) -> ServerSettings:
        token = os.environ.get(TOKEN_ENV) or None
        return cls(api_token=token, **kwargs)

    def check(self) -> None:
        for name in ("max_body_bytes", "max_inputs", "max_text_chars", "batch_tokens", "max_queue_texts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must not be negative, got {self.max_wait_ms}")
