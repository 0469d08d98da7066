"""The server against hostile and careless clients, as a real process on 127.0.0.1: header size,
slow and idle connections, redirects, the model directory as a boundary, auth configuration, and
fairness between a huge request and a small one."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time

import pytest

from emotion_onnx import EmotionClassifier
from helpers import assert_clean_error, run_cli
from http_helpers import ServerProcess, request, running_server

pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def strict(tiny_model):
    with running_server("--header-timeout", "1", "--body-timeout", "1", "--max-header-bytes", "8192",
                        model=tiny_model) as srv:  # fmt: skip
        yield srv


def raw_exchange(port: int, data: bytes, wait: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait + 5) as sock:
        sock.sendall(data)
        return _read_all(sock)


def _read_all(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return out
        if not chunk:
            return out
        out += chunk


def status_and_json(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_oversized_headers_get_431_and_the_server_lives(strict):
    big = b"x-padding: " + b"a" * 20_000 + b"\r\n"
    raw = raw_exchange(strict.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")
    status, body = status_and_json(raw)
    assert status == 431 and "8192 bytes" in body["error"]
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(2000))  # many small headers count too
    assert (
        status_and_json(raw_exchange(strict.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"))[0] == 431
    )
    assert request(strict.port, "GET", "/healthz").status == 200


def test_trickled_headers_get_408(strict):
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        for _ in range(30):  # one header byte every 0.1 s: never finishing within the 1 s deadline
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(0.1)
        raw = _read_all(sock)
    assert status_and_json(raw)[0] == 408
    assert time.monotonic() - started < 5


def test_an_idle_connection_is_closed(strict):
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""  # closed without a word: nothing was asked
    assert time.monotonic() - started < 5


def test_a_trickled_body_gets_408(strict):
    with socket.create_connection(("127.0.0.1", strict.port), timeout=10) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        sock.sendall(b'{"inputs": ')
        status, body = status_and_json(_read_all(sock))
    assert status == 408 and "body did not arrive" in body["error"]


def test_a_trailing_slash_is_served_never_redirected(strict, tiny_model):
    reply = request(strict.port, "POST", "/predict/", {"inputs": "hi"}, {"Host": "evil.example"})
    assert reply.status == 200 and "location" not in reply.headers
    assert request(strict.port, "GET", "/docs/", headers={"Host": "evil.example"}).status == 404


# ---------------------------------------------------------------------------- the model directory is a boundary
def test_readyz_names_the_kind_of_failure_and_leaks_no_file(tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["variants"][manifest["default_variant"]]["file"] = "/etc/passwd"
    (model / "manifest.json").write_text(json.dumps(manifest))
    server = ServerProcess("--model", str(model))
    try:
        ready = server.wait_ready(expect=503)
        text = ready.body.decode()
        assert ready.json()["error"] == "the model failed to load (ManifestError); see the server's log"
        assert "passwd" not in text and "root" not in text
    finally:
        _, stderr = server.stop()
    assert "outside the model directory" in stderr  # the operator gets the details


def test_ready_means_predict_can_answer(tiny_model, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["labels"] = manifest["labels"][:5]  # contradicts the graph's 6 logits
    (model / "manifest.json").write_text(json.dumps(manifest))
    server = ServerProcess("--model", str(model))
    try:
        assert server.wait_ready(expect=503).json()["error"].startswith("the model failed to load")
        assert request(server.port, "POST", "/predict", {"inputs": "x"}).status == 503
    finally:
        server.stop()


# ---------------------------------------------------------------------------- auth configuration
@pytest.mark.parametrize(("token", "fragment"), [("", "set but empty"), ("s3cret\n", "spaces or a newline"),
                                                 (" s3cret", "spaces or a newline")])  # fmt: skip
def test_a_careless_token_refuses_to_start(token, fragment):
    assert_clean_error(run_cli("serve", "--port", "0", env={"EMOTION_ONNX_API_TOKEN": token}), fragment)


# ---------------------------------------------------------------------------- fairness
@pytest.mark.slow
def test_a_small_request_is_not_stuck_behind_a_huge_one(emotion_dir):
    """The embedded model, 256 texts of 512 tokens in one request (about 131k tokens), then one short
    text: the short one is answered while the huge one is still running."""
    long_text = " ".join(["feel"] * 600)  # truncated to 512 tokens
    big = {"inputs": [long_text] * 256}
    args = ("--max-request-tokens", "200000", "--max-body-bytes", str(4 << 20), "--max-queue-tokens", "400000")
    with running_server(*args) as srv:
        finished: dict[str, float] = {}

        def send_big():
            reply = request(srv.port, "POST", "/predict", big, timeout=600)
            assert reply.status == 200, reply.body[:200]
            finished["big"] = time.monotonic()

        worker = threading.Thread(target=send_big)
        worker.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        small = request(srv.port, "POST", "/predict", {"inputs": "i am so happy today"})
        finished["small"] = time.monotonic()
        worker.join()
    assert small.status == 200
    assert finished["small"] < finished["big"], "the short request waited for the whole huge one"
    expected = EmotionClassifier()("i am so happy today", top_k=None)
    assert [r["label"] for r in small.json()[0]] == [r["label"] for r in expected]
    print(f"short request answered in {finished['small'] - t0:.2f} s; huge one ended {finished['big'] - t0:.2f} s")
