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


# ---------------------------------------------------------------------------- the HTTP protocol layer
GOOD = (
    b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{"inputs":"hi"}'
)


def _responses(raw: bytes) -> list[int]:
    return [int(part[:3]) for part in raw.split(b"HTTP/1.1 ")[1:] if part[:3].isdigit()]


@pytest.mark.parametrize(
    "bad",
    [
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        b"GARBAGE\r\n\r\n",
    ],
    ids=["content-length-and-chunked", "bad-chunk-size", "not-http"],
)
def test_protocol_refusals_are_json(strict, bad):
    raw = raw_exchange(strict.port, bad)
    status, body = status_and_json(raw)
    assert status == 400 and body["error"].startswith("the request is not valid HTTP/1.1")
    assert b"content-type: application/json" in raw.lower()


def test_pipelined_requests_after_a_bad_one_are_answered_or_the_connection_closes(strict):
    bad_json = b'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{"inp'
    assert _responses(raw_exchange(strict.port, bad_json + GOOD)) == [400, 200]
    unknown = b"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
    assert _responses(raw_exchange(strict.port, unknown + GOOD)) == [404, 200]
    # a body that is never read: the answer says so and closes, rather than leave GOOD unanswered
    too_big = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n"
    started = time.monotonic()
    raw = raw_exchange(strict.port, too_big + GOOD)
    assert _responses(raw) == [413] and b"connection: close" in raw.lower()
    assert time.monotonic() - started < 3


def test_a_client_that_closes_mid_request_is_not_a_server_error(tiny_model):
    with running_server(model=tiny_model) as srv:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
            with socket.create_connection(("127.0.0.1", srv.port)) as sock:
                sock.sendall(GOOD * 20)  # pipelined, then gone before the answers
        time.sleep(1.5)
        text = request(srv.port, "GET", "/metrics").body.decode()
        counted = [ln for ln in text.splitlines() if ln.startswith("emotion_onnx_requests_total")]
        errors = [ln for ln in counted if 'status="500"' in ln]
        assert errors == [], errors
        assert 'status="499"' in text
        _, stderr = srv.stop()
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr


def test_a_client_that_never_reads_its_answer_is_cut_off(tiny_model):
    body = json.dumps({"inputs": ["i feel fine"] * 256}).encode()
    head = b"POST /embed HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    with running_server("--send-timeout", "1", model=tiny_model) as srv:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", srv.port))
        sock.sendall(head % len(body) + body)
        time.sleep(8)  # the answer (megabytes of embeddings) sits unread past the deadline and keep-alive
        received, reset = 0, False
        sock.settimeout(5)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            reset = True
        sock.close()
        assert reset, f"the connection ended cleanly after {received} bytes"
        assert request(srv.port, "GET", "/healthz").status == 200


def test_post_to_a_get_route_names_the_allowed_methods(strict):
    reply = request(strict.port, "POST", "/docs", b"{}")
    assert reply.status == 405 and reply.json()["error"] == "/docs takes GET, HEAD, not POST"
    reply = request(strict.port, "PUT", "/", b"{}")
    assert reply.status == 405 and reply.headers["allow"] == "GET, HEAD, POST"


def test_error_bodies_never_echo_a_huge_value(strict):
    huge = "x" * 100_000
    for payload in ({"inputs": "hi", "parameters": {"function_to_apply": huge}}, {"inputs": "hi", huge: 1}):
        reply = request(strict.port, "POST", "/predict", payload)
        assert reply.status == 422 and len(reply.body) < 400, reply.body[:400]
    assert len(request(strict.port, "GET", "/" + "y" * 5000).body) < 400
