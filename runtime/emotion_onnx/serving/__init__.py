"""HTTP serving (the `serve` extra): FastAPI app, dynamic micro-batching, Prometheus metrics."""
