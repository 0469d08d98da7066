"""`emotion-onnx serve`: run the HTTP server under uvicorn (graceful on SIGTERM)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..manifest import is_model_dir
from ..requests import Limits
from .settings import TOKEN_ENV, ServerSettings

GRACEFUL_SHUTDOWN_S = 60


def add_parser(sub: argparse._SubParsersAction) -> None:
    d, limits = ServerSettings(), Limits()
    p = sub.add_parser(
        "serve",
        help="HTTP server with dynamic micro-batching (serve extra)",
        description="Serve the model over HTTP: POST /predict and /embed (Hugging Face Inference API JSON), "
        "GET /healthz, /readyz, /metrics (Prometheus) and /docs. Binds to 127.0.0.1 unless told otherwise. "
        f"If {TOKEN_ENV} is set, /predict and /embed need 'Authorization: Bearer <token>'. "
        "On SIGTERM it stops accepting connections and answers every accepted request before exiting.",
    )
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--variant", help="model variant from the manifest")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: usable CPUs)")
    p.add_argument(
        "--no-spinning",
        dest="spinning",
        action="store_const",
        const=False,
        default=None,
        help="stop onnxruntime threads spinning between calls (less idle CPU, a little slower)",
    )
    for name, what in (
        ("max_body_bytes", "bytes per request body (413 before parsing)"),
        ("max_inputs", "texts per request (413)"),
        ("max_text_chars", "characters per text (413)"),
        ("max_request_tokens", "tokens per request, after truncation (413)"),
    ):
        p.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            help=f"{what}; default {getattr(limits, name)}, or ${Limits.ENV[name]}",
        )
    p.add_argument("--batch-tokens", type=int, default=d.batch_tokens, help="tokens per micro-batch")
    p.add_argument("--max-wait-ms", type=float, default=d.max_wait_ms, help="micro-batch wait for company")
    p.add_argument("--max-queue-tokens", type=int, default=d.max_queue_tokens, help="tokens waiting before 503")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise InputError("`emotion-onnx serve` needs the serve extra: pip install 'emotion-onnx[serve]'") from None
    from .app import create_app

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {args.port}")
    if args.model and not is_model_dir(Path(args.model)):
        raise InputError(f"{args.model} is not a model directory (no manifest.json)")
    settings = ServerSettings.from_env(
        limits={name: getattr(args, name) for name in Limits.ENV},
        model=args.model,
        variant=args.variant,
        threads=args.threads,
        spinning=args.spinning,
        batch_tokens=args.batch_tokens,
        max_wait_ms=args.max_wait_ms,
        max_queue_tokens=args.max_queue_tokens,
    )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=args.log_level in ("info", "debug"),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        lifespan="on",
    )
    uvicorn.Server(config).run()
    return 0
