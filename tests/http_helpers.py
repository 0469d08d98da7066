"""A real `emotion-onnx serve` process on 127.0.0.1 and a tiny stdlib HTTP client for the tests."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | dict | list | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 60,
    conn: http.client.HTTPConnection | None = None,
) -> Reply:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    hdrs = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        if own:
            conn.close()


class ServerProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None):
        self.port = free_port()
        cmd = [sys.executable, "-m", "emotion_onnx", "serve", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(
            cmd,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def wait_ready(self, timeout: float = 60, expect: int = 200) -> Reply:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.proc.stderr.read().decode()}")
            with contextlib.suppress(OSError):
                reply = request(self.port, "GET", "/readyz", timeout=5)
                if reply.status == expect and (expect != 503 or "loading" not in reply.json()["error"]):
                    if expect == 200 and not hasattr(self, "first_line"):
                        self.first_line = self.proc.stdout.readline().decode()  # printed once listening
                    return reply
            time.sleep(0.1)
        raise TimeoutError("server did not become ready")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode, self.proc.stderr.read().decode()


@contextlib.contextmanager
def running_server(*args: str, env: dict[str, str] | None = None, model: Path | None = None):
    server = ServerProcess(*(("--model", str(model)) if model else ()), *args, env=env)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


def metric(text: str, name: str) -> float:
    """Sum of every sample of a Prometheus metric in an exposition text."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total
