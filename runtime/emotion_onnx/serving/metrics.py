"""Prometheus metrics of one server process (its own registry, text exposition format)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

ROUTES = (
    "/", "/predict", "/embed", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/ping", "/invocations"
)  # fmt: skip
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "emotion_onnx_requests",
            "HTTP requests by route and status code.",
            ("route", "status"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "emotion_onnx_request_seconds",
            "Request latency in seconds, by route.",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_texts = Histogram(
            "emotion_onnx_batch_texts",
            "Texts per inference call (micro-batch size).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.last_batch = Gauge(
            "emotion_onnx_batch_size", "Texts in the most recent inference call.", registry=self.registry
        )
        self.queue_depth = Gauge("emotion_onnx_queue_texts", "Texts waiting for inference.", registry=self.registry)
        self.skipped = Counter(
            "emotion_onnx_skipped_texts",
            "Texts never run because their client disconnected first.",
            registry=self.registry,
        )
        self.rejected = Counter(
            "emotion_onnx_rejected_texts",
            "Texts refused with 503 because the queue was full.",
            registry=self.registry,
        )

    @staticmethod
    def route(path: str) -> str:
        if path.startswith("/v2/") or path == "/v2":
            return "/v2"  # the model's name in the path would make a label per name asked for
        return path if path in ROUTES else "other"

    def observe_request(self, path: str, status: int, seconds: float) -> None:
        route = self.route(path)
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def observe_batch(self, texts: int) -> None:
        self.batch_texts.observe(texts)
        self.last_batch.set(texts)

    def render(self) -> bytes:
        return generate_latest(self.registry)
