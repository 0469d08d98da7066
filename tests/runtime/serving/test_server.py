"""The HTTP server, as a real `emotion-onnx serve` process on 127.0.0.1."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from helpers import assert_clean_error, run_cli
from http_helpers import Reply, ServerProcess, metric, request, running_server

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server("--max-inputs", "64", "--max-text-chars", "2000", model=tiny_model) as srv:
        yield srv


@pytest.fixture(scope="module")
def tiny_clf(tiny_model):
    return EmotionClassifier(tiny_model)


def assert_same_ranking(got: list[dict], want: list[dict], atol: float = 1e-5) -> None:
    assert [g["label"] for g in got] == [w["label"] for w in want]
    np.testing.assert_allclose([g["score"] for g in got], [w["score"] for w in want], atol=atol)


# ---------------------------------------------------------------------------- shapes
def test_predict_matches_the_library_in_inference_api_shape(server, tiny_clf):
    single = request(server.port, "POST", "/predict", {"inputs": "i feel wonderful"})
    assert single.status == 200 and single.headers["content-type"] == "application/json"
    (rows,) = single.json()  # the hosted API's shape: a list of rankings, one per text, also for a str
    assert_same_ranking(rows, tiny_clf("i feel wonderful", top_k=None))

    texts = ["i am scared of the dark", "what a lovely surprise", ""]
    batch = request(server.port, "POST", "/predict", {"inputs": texts, "parameters": {"top_k": 2}})
    assert batch.status == 200
    got = batch.json()
    assert len(got) == 3 and all(len(rows) == 2 for rows in got)
    for rows, want in zip(got, tiny_clf(texts, top_k=2)):
        assert_same_ranking(rows, want)

    assert request(server.port, "POST", "/predict", {"inputs": []}).json() == []


def test_a_query_string_changes_nothing(server, tiny_clf):
    got = request(server.port, "POST", "/predict?_route=/embed&route=/embed&top_k=1", {"inputs": "i feel calm"})
    assert_same_ranking(got.json()[0], tiny_clf("i feel calm", top_k=None))


def test_function_to_apply(server, tiny_clf):
    text = "i am furious about this"
    logits = tiny_clf.logits([text])[0]
    raw = request(server.port, "POST", "/predict", {"inputs": text, "parameters": {"function_to_apply": "none"}})
    by_label = {r["label"]: r["score"] for r in raw.json()[0]}
    np.testing.assert_allclose([by_label[lab] for lab in tiny_clf.labels], logits, atol=1e-5)
    sig = request(server.port, "POST", "/predict", {"inputs": text, "parameters": {"function_to_apply": "sigmoid"}})
    by_label = {r["label"]: r["score"] for r in sig.json()[0]}
    np.testing.assert_allclose([by_label[lab] for lab in tiny_clf.labels], 1 / (1 + np.exp(-logits)), atol=1e-5)


def test_embed_matches_the_library(server, tiny_clf):
    texts = ["i feel calm", "i feel lost"]
    got = request(server.port, "POST", "/embed", {"inputs": texts})
    np.testing.assert_allclose(np.array(got.json()), tiny_clf.embed(texts), atol=1e-5)
    one = request(server.port, "POST", "/embed", {"inputs": "i feel calm", "parameters": {"normalize": False}})
    np.testing.assert_allclose(one.json(), tiny_clf.embed(["i feel calm"], normalize=False), atol=1e-4)


def test_health_ready_metrics_and_openapi(server):
    assert request(server.port, "GET", "/healthz").json() == {"status": "ok"}
    ready = request(server.port, "GET", "/readyz").json()
    assert ready["status"] == "ready" and ready["labels"][0] == "sadness"
    request(server.port, "POST", "/predict", {"inputs": ["a", "b"]})
    text = request(server.port, "GET", "/metrics").body.decode()
    assert 'emotion_onnx_requests_total{route="/predict",status="200"}' in text
    assert metric(text, "emotion_onnx_request_seconds_count") >= 1
    assert metric(text, "emotion_onnx_batch_texts_count") >= 1
    assert "emotion_onnx_queue_texts" in text and "emotion_onnx_batch_size" in text
    schema = request(server.port, "GET", "/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body  # the request model, caps included
    assert '"maxItems":64' in json.dumps(schema, separators=(",", ":"))


# ---------------------------------------------------------------------------- limits
def test_oversized_body_is_refused_before_parsing(server):
    huge = b'{"inputs": "' + b"x" * (2 << 20) + b'"}'
    reply = request(server.port, "POST", "/predict", huge, {"Content-Type": "application/json"})
    assert reply.status == 413 and "the limit is 1048576" in reply.json()["error"]
    # a chunked body (no Content-Length) is counted as it arrives
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/predict")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(40):
            chunk = b"x" * 65536
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer and close before we finish sending
    resp = conn.getresponse()
    assert resp.status == 413
    conn.close()


# ---------------------------------------------------------------------------- auth and readiness
def test_bearer_token_auth(tiny_model):
    env = {"EMOTION_ONNX_API_TOKEN": "s3cret-token"}
    with running_server(model=tiny_model, env=env) as srv:
        body = {"inputs": "hello"}
        missing = request(srv.port, "POST", "/predict", body)
        assert missing.status == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert request(srv.port, "POST", "/predict", body, {"Authorization": "Bearer wrong"}).status == 401
        assert request(srv.port, "POST", "/embed", body, {"Authorization": "Basic s3cret-token"}).status == 401
        assert request(srv.port, "POST", "/predict", body, {"Authorization": "Bearer s3cret-token"}).status == 200
        assert request(srv.port, "GET", "/healthz").status == 200  # probes need no token


def test_serve_refuses_bad_arguments_at_once(tmp_path):
    assert_clean_error(run_cli("serve", "--model", str(tmp_path / "nope")), "no manifest.json")
    assert_clean_error(run_cli("serve", "--port", "70000"), "--port")
    assert_clean_error(run_cli("serve", "--max-inputs", "0"), "max_inputs")
    assert_clean_error(run_cli("serve", env={"EMOTION_ONNX_MAX_INPUTS": "many"}), "EMOTION_ONNX_MAX_INPUTS")


def test_a_model_that_fails_to_load_is_not_ready(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text("{not json")
    server = ServerProcess("--model", str(broken))
    try:
        ready = server.wait_ready(expect=503)
        assert ready.json()["error"] == "the model failed to load (ManifestError); see the server's log"
        reply = request(server.port, "POST", "/predict", {"inputs": "x"})
        assert reply.status == 503 and "failed to load" in reply.json()["error"]
    finally:
        server.stop()


# ---------------------------------------------------------------------------- batching, backpressure
def test_concurrent_clients_are_coalesced_and_get_their_own_rows(server, tiny_clf, test_texts):
    texts = test_texts[:256]
    before = request(server.port, "GET", "/metrics").body.decode()
    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda t: request(server.port, "POST", "/predict", {"inputs": t}), texts))
    want = tiny_clf(texts, top_k=None)
    for reply, expected in zip(replies, want):
        assert reply.status == 200
        assert_same_ranking(reply.json()[0], expected)
    after = request(server.port, "GET", "/metrics").body.decode()
    calls = metric(after, "emotion_onnx_batch_texts_count") - metric(before, "emotion_onnx_batch_texts_count")
    texts_run = metric(after, "emotion_onnx_batch_texts_sum") - metric(before, "emotion_onnx_batch_texts_sum")
    assert texts_run == len(texts)
    assert calls < len(texts)  # at least some requests shared an inference call


def test_overload_gives_503_with_retry_after_then_recovers(tiny_model, test_texts):
    long_texts = [" ".join(test_texts[i : i + 12]) for i in range(0, 240, 12)]  # ~20 texts near 256 tokens
    args = ("--max-queue-tokens", "2048", "--batch-tokens", "512", "--threads", "1")
    with running_server(*args, model=tiny_model) as srv:
        with ThreadPoolExecutor(48) as pool:
            payloads = [{"inputs": [long_texts[(i + j) % 20] for j in range(4)]} for i in range(192)]
            replies = list(pool.map(lambda p: request(srv.port, "POST", "/predict", p), payloads))
        statuses = [r.status for r in replies]
        assert set(statuses) <= {200, 503}, statuses
        busy = [r for r in replies if r.status == 503]
        assert busy, "the queue never filled"
        assert all(r.headers.get("retry-after") == "1" and "busy" in r.json()["error"] for r in busy)
        assert any(s == 200 for s in statuses)
        assert request(srv.port, "POST", "/predict", {"inputs": "calm again"}).status == 200
        text = request(srv.port, "GET", "/metrics").body.decode()
        assert metric(text, "emotion_onnx_rejected_texts_total") == 4 * len(busy)


def test_a_disconnected_client_costs_no_inference(test_texts):
    """Keep the worker busy (the embedded model, 64 texts of ~250 tokens per call), queue a
    request, hang up: its texts are skipped, never run."""
    long_texts = [" ".join(test_texts[i : i + 12]) for i in range(0, 1200, 12)][:64]
    with running_server("--threads", "1", "--batch-tokens", "100000") as srv:
        blocker = threading.Thread(
            target=lambda: [request(srv.port, "POST", "/predict", {"inputs": long_texts}) for _ in range(3)]
        )
        blocker.start()
        time.sleep(0.3)
        payload = json.dumps({"inputs": ["i will hang up"] * 50}).encode()
        sock = socket.create_connection(("127.0.0.1", srv.port))
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        time.sleep(0.1)
        sock.close()
        blocker.join()
        text = request(srv.port, "GET", "/metrics").body.decode()
        assert metric(text, "emotion_onnx_skipped_texts_total") == 50
        assert metric(text, "emotion_onnx_batch_texts_sum") == 3 * 64


# ---------------------------------------------------------------------------- slow: load, SIGTERM, fuzzing
@pytest.mark.slow
def test_load_2000_requests_at_32_concurrency_match_offline(test_texts):
    """The embedded (real) model: every answer equals the offline clf answer for the same text."""
    clf = EmotionClassifier()
    texts = test_texts[:2000]
    want = clf(texts, top_k=None)
    local = threading.local()

    def call(text: str) -> Reply:
        if not hasattr(local, "conn"):
            local.conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
        return request(srv.port, "POST", "/predict", {"inputs": text}, conn=local.conn)

    with running_server() as srv:
        with ThreadPoolExecutor(32) as pool:
            replies = list(pool.map(call, texts))
    assert [r.status for r in replies] == [200] * len(texts)
    for reply, expected in zip(replies, want):
        assert_same_ranking(reply.json()[0], expected)


@pytest.mark.slow
def test_sigterm_under_load_answers_every_accepted_request(tiny_model, tiny_clf, test_texts):
    """SIGTERM with a queue far longer than what can finish: every request sent before the signal is
    answered; afterwards each one is answered, refused with a JSON 503, or its connection refused
    outright. No connection is reset, and no answer is plain text."""
    texts = (test_texts * 3)[:3000]
    srv = ServerProcess("--model", str(tiny_model), "--threads", "1", "--grace", "8")
    srv.wait_ready()
    results: dict[int, tuple[float, Reply | Exception]] = {}
    done = threading.Semaphore(0)

    def call(i: int) -> None:
        sent = time.monotonic()
        try:
            results[i] = (sent, request(srv.port, "POST", "/predict", {"inputs": [texts[i]] * 8}, timeout=120))
        except OSError as exc:
            results[i] = (sent, exc)
        done.release()

    with ThreadPoolExecutor(32) as pool:
        futures = [pool.submit(call, i) for i in range(len(texts))]
        for _ in range(200):  # let 200 requests complete, then signal with ~32 in flight
            done.acquire()
        signal_at = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        for f in futures:
            f.result()
    code, stderr = srv.stop()
    assert code in (0, -signal.SIGTERM), stderr  # uvicorn re-raises SIGTERM after its graceful shutdown
    assert "Traceback" not in stderr, stderr
    resets = [r for _, r in results.values() if isinstance(r, (ConnectionResetError, BrokenPipeError))]
    other_errors = [r for _, r in results.values() if isinstance(r, Exception) and not isinstance(r, (
        ConnectionRefusedError, ConnectionResetError, BrokenPipeError))]  # fmt: skip
    replies = {i: r for i, (_, r) in results.items() if isinstance(r, Reply)}
    plain = [r for r in replies.values() if not r.headers.get("content-type", "").startswith("application/json")]
    assert not resets, f"{len(resets)} connections were reset"
    assert not other_errors, other_errors[:3]
    assert not plain, [r.body[:80] for r in plain[:3]]
    before_signal = [i for i, (sent, _) in results.items() if sent < signal_at - 0.05]
    assert len(before_signal) >= 100
    for i in before_signal:  # sent before SIGTERM: accepted, so answered
        assert i in replies and replies[i].status == 200, (i, results[i])
    for i, reply in replies.items():
        assert reply.status in (200, 503), (i, reply.status, reply.body[:200])
        if reply.status == 200:
            assert_same_ranking(reply.json()[0], tiny_clf(texts[i], top_k=None))
        else:
            assert reply.headers.get("retry-after") and "shutting down" in reply.json()["error"]
    assert len([r for r in replies.values() if r.status == 200]) < len(texts)  # and it did stop


@pytest.mark.slow
def test_schemathesis_fuzzing_finds_no_server_errors(server, tmp_path):
    import subprocess
    import sys

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "run",
            f"http://127.0.0.1:{server.port}/openapi.json",
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            "40",
            "--phases",
            "examples,coverage,fuzzing",
            "--seed",
            "1",
            "--report-dir",
            str(tmp_path),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert request(server.port, "GET", "/healthz").status == 200
