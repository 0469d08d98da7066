"""`emotion-onnx serve`: run the HTTP server under uvicorn (graceful on SIGTERM)."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

from ..errors import InputError
from ..manifest import is_model_dir
from ..requests import Limits
from .settings import TOKEN_ENV, ServerSettings

DRAIN_S = 0.5  # after SIGTERM, how long new connections are still accepted (and answered 503)
SETTLE_S = 0.5  # then, how long a connection accepted in that moment has to send its request


def add_parser(sub: argparse._SubParsersAction) -> None:
    d, limits = ServerSettings(), Limits()
    p = sub.add_parser(
        "serve",
        help="HTTP server with dynamic micro-batching (serve extra)",
        description="Serve the model over HTTP: POST /predict and /embed (Hugging Face Inference API JSON), "
        "GET /healthz, /readyz, /metrics (Prometheus) and /docs. Binds to 127.0.0.1 unless told otherwise. "
        f"If {TOKEN_ENV} is set, every route but the probes, /metrics, the page and the docs needs "
        "'Authorization: Bearer <token>'. "
        "On SIGTERM it stops accepting connections and answers every accepted request before exiting.",
    )
    p.add_argument("--model", help="model directory (default: the embedded model)")
    p.add_argument("--variant", help="model variant from the manifest")
    p.add_argument(
        "--host", help="default 127.0.0.1; 0.0.0.0 inside a SageMaker or Vertex AI container (their variables are set)"
    )
    p.add_argument("--port", type=int, help="default 8080, or $AIP_HTTP_PORT on Vertex AI")
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
    p.add_argument("--max-header-bytes", type=int, default=d.max_header_bytes, help="request header bytes (431)")
    p.add_argument(
        "--header-timeout", type=float, default=d.header_timeout_s, help="seconds for a request's headers (408)"
    )
    p.add_argument("--body-timeout", type=float, default=d.body_timeout_s, help="seconds for a request's body (408)")
    p.add_argument(
        "--send-timeout",
        type=float,
        default=d.send_timeout_s,
        help="seconds a client may leave its answer unread before the connection is cut",
    )
    p.add_argument("--grace", type=float, default=d.grace_s, help="seconds to answer accepted requests after SIGTERM")
    p.add_argument("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ModuleNotFoundError:
        raise InputError("`emotion-onnx serve` needs the serve extra: pip install 'emotion-onnx[serve]'") from None
    from .app import create_server

    host, port = listen_address(args.host, args.port, os.environ)
    if not 0 <= port <= 65535:
        raise InputError(f"--port must be in 0..65535, got {port}")
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
        max_header_bytes=args.max_header_bytes,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
        send_timeout_s=args.send_timeout,
        grace_s=args.grace,
    )
    app, service = create_server(settings)
    from .protocol import protocol_class

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=args.log_level,
        access_log=args.log_level in ("info", "debug"),
        timeout_graceful_shutdown=settings.grace_s,
        lifespan="on",
        http=protocol_class(settings.max_header_bytes, settings.header_timeout_s, settings.send_timeout_s),
    )
    server_class(uvicorn.Server)(config, service, settings.grace_s).run()
    return 0


def listen_address(host: str | None, port: int | None, environ) -> tuple[str, int]:
    """Where to listen: the flags, else what the platform the container runs on expects. SageMaker
    (SM_* or SAGEMAKER_* variables) sends to port 8080 on every interface; Vertex AI to
    $AIP_HTTP_PORT on every interface. Elsewhere 127.0.0.1:8080, reachable from this machine only."""
    platform = any(k.startswith(("SM_", "SAGEMAKER_")) for k in environ) or "AIP_HTTP_PORT" in environ
    if port is None:
        raw = environ.get("AIP_HTTP_PORT", "8080")
        try:
            port = int(raw)
        except ValueError:
            raise InputError(f"AIP_HTTP_PORT must be a port number, got {raw!r}") from None
    return host or ("0.0.0.0" if platform else "127.0.0.1"), port


def stop_handshakes(sock: socket.socket) -> None:
    """Make a listening socket take no new connection while it stays open. On Linux a socket filter
    that drops every packet does it: a SYN is never answered, so a client that connects now retries
    and then finds the port closed (refused, never reset). Elsewhere the smallest backlog is what
    there is."""
    if sys.platform.startswith("linux"):
        import ctypes
        import struct

        drop_all = ctypes.create_string_buffer(struct.pack("HBBI", 0x06, 0, 0, 0))  # BPF_RET|BPF_K 0
        program = struct.pack("HL", 1, ctypes.addressof(drop_all))  # struct sock_fprog
        try:
            sock.setsockopt(socket.SOL_SOCKET, 26, program)  # SO_ATTACH_FILTER
            return
        except OSError:
            pass
    sock.listen(0)


def server_class(base: type) -> type:
    """uvicorn's Server, printing where it listens once it does, and shutting down so that nothing
    accepted is lost: first the service refuses new work (503) while connections that arrive right
    now are still accepted and answered, then uvicorn stops accepting and waits for the rest."""

    class Server(base):
        def __init__(self, config, service, grace_s: float):
            super().__init__(config)
            self.service, self.grace_s = service, grace_s

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets)
            if self.started:
                for server in self.servers:
                    for sock in server.sockets:
                        host, port = sock.getsockname()[:2]
                        shown = f"[{host}]" if ":" in host else host
                        print(f"emotion-onnx: serving on http://{shown}:{port} (docs at /docs)", flush=True)

        async def shutdown(self, sockets=None) -> None:
            import asyncio

            self.service.begin_drain(self.grace_s)
            await asyncio.sleep(DRAIN_S)  # still accepting: whoever connects now gets an answer (503)
            # stop new handshakes from completing, accept what already has (it gets its 503), and only
            # then close: closing a listener resets the connections still queued on it
            for server in self.servers:
                for ts in server.sockets:
                    with socket.socket(fileno=os.dup(ts.fileno())) as sock:
                        stop_handshakes(sock)
            await asyncio.sleep(0.2)
            for server in self.servers:
                server.close()
            # uvicorn closes a connection that has no request in flight; give those accepted a moment
            # ago the time to send theirs (and get its 503) first
            deadline = asyncio.get_running_loop().time() + SETTLE_S
            while asyncio.get_running_loop().time() < deadline and any(
                c.cycle is None for c in self.server_state.connections
            ):
                await asyncio.sleep(0.02)
            await super().shutdown(sockets)

    return Server
