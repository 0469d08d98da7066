"""The cloud platforms' serving contracts on a real server process, each driven as the platform or
its client drives it: tritonclient (the Open Inference Protocol, as KServe and Seldon speak it),
SageMaker's /ping and /invocations with the requests its documentation shows (JSON, and text/csv as
batch transform sends), Vertex AI's routes from its AIP_* variables. Every answer equals the
library's; bad input gets the shared contract's status and message (tests/request_cases.py)."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from emotion_onnx.serving.cli import listen_address
from http_helpers import request, running_server

pytest.importorskip("uvicorn")
TEXTS = ["I love this product!", "my flight got cancelled and nobody at the desk will help", "hmm ok"]
VERTEX = {"AIP_PREDICT_ROUTE": "/v1/endpoints/123/deployedModels/456:predict", "AIP_HEALTH_ROUTE": "/health/456"}


@pytest.fixture(scope="module")
def clf(tiny_neutral_model):
    return EmotionClassifier(tiny_neutral_model)


@pytest.fixture(scope="module")
def server(tiny_neutral_model):
    with running_server(model=tiny_neutral_model, env=VERTEX) as srv:
        yield srv


def test_triton_client_metadata_readiness_and_inference(server, clf, tiny_neutral_model):
    tritonclient = pytest.importorskip("tritonclient.http")
    client = tritonclient.InferenceServerClient(f"127.0.0.1:{server.port}")
    name = tiny_neutral_model.name
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(name)
    meta = client.get_model_metadata(name)
    assert meta["name"] == name and meta["versions"] == [clf.variant.ref.sha256[:12]]
    assert [o["name"] for o in meta["outputs"]] == ["label", "score", "probabilities"]
    text = tritonclient.InferInput("text", [len(TEXTS)], "BYTES")
    text.set_data_from_numpy(np.array(TEXTS, dtype=object), binary_data=False)
    outputs = [tritonclient.InferRequestedOutput(n, binary_data=False) for n in ("label", "score", "probabilities")]
    result = client.infer(name, [text], outputs=outputs, request_id="r-1")
    want = clf.predict_proba(TEXTS)
    assert [x.decode() if isinstance(x, bytes) else x for x in result.as_numpy("label")] == [
        clf.labels[i] for i in want.argmax(1)
    ]
    np.testing.assert_allclose(result.as_numpy("score"), want.max(1), atol=1e-6)
    np.testing.assert_allclose(result.as_numpy("probabilities"), want, atol=1e-6)
    assert result.get_response()["id"] == "r-1"
    neutral = client.infer(name, [text], outputs=outputs, parameters={"neutral": True})
    np.testing.assert_allclose(neutral.as_numpy("probabilities"), clf.predict_proba(TEXTS, neutral=True), atol=1e-6)
    with pytest.raises(tritonclient.InferenceServerException, match="no model named"):
        client.infer("another-model", [text])


def test_sagemaker_ping_and_invocations(server, clf):
    assert request(server.port, "GET", "/ping").status == 200
    # the request the SageMaker Hugging Face inference documentation shows
    got = request(server.port, "POST", "/invocations", {"inputs": "I love this product!"}).json()
    assert [r["label"] for r in got[0]] == [r["label"] for r in clf("I love this product!", top_k=None)]
    # batch transform: text/csv, one record per line (a record holding a comma is quoted)
    body = "".join(f'"{t}"\n' for t in TEXTS).encode()
    got = request(server.port, "POST", "/invocations", body, {"Content-Type": "text/csv"}).json()
    want = clf(TEXTS, top_k=None)
    assert [[r["label"] for r in row] for row in got] == [[r["label"] for r in row] for row in want]
    np.testing.assert_allclose([row[0]["score"] for row in got], [row[0]["score"] for row in want], atol=1e-6)


def test_vertex_routes_from_its_variables(server, clf):
    assert request(server.port, "GET", VERTEX["AIP_HEALTH_ROUTE"]).status == 200
    # the shape Vertex AI documents for custom containers: instances and parameters
    body = {"instances": [TEXTS[0], {"text": TEXTS[1]}], "parameters": {"top_k": 2, "neutral": True}}
    got = request(server.port, "POST", VERTEX["AIP_PREDICT_ROUTE"], body).json()
    want = clf(TEXTS[:2], top_k=2, neutral=True)
    assert list(got) == ["predictions"] and len(got["predictions"]) == 2
    assert [[r["label"] for r in p] for p in got["predictions"]] == [[r["label"] for r in row] for row in want]
    bad = request(server.port, "POST", VERTEX["AIP_PREDICT_ROUTE"], {"instances": [{"review": "x"}]})
    assert bad.status == 422 and 'instances[0] must be a text or {"text": ...}' in bad.json()["error"]
    same = request(server.port, "POST", VERTEX["AIP_PREDICT_ROUTE"], {"instances": ["x"] * 300})
    direct = request(server.port, "POST", "/predict", {"inputs": ["x"] * 300})
    assert same.status == 413 and same.json() == direct.json()


def test_the_platforms_choose_where_the_server_listens():
    assert listen_address(None, None, {}) == ("127.0.0.1", 8080)
    assert listen_address(None, None, {"SM_MODEL_DIR": "/opt/ml/model"}) == ("0.0.0.0", 8080)
    assert listen_address(None, None, {"SAGEMAKER_BIND_TO_PORT": "8080"}) == ("0.0.0.0", 8080)
    assert listen_address(None, None, {"AIP_HTTP_PORT": "7080"}) == ("0.0.0.0", 7080)
    assert listen_address("127.0.0.1", 9000, {"AIP_HTTP_PORT": "7080"}) == ("127.0.0.1", 9000)  # flags win


def test_azure_ml_probes_and_scoring_route_as_the_docs_configure_them(server):
    """docs/serving.md's Azure ML online-endpoint settings: liveness /healthz, readiness /readyz,
    scoring /predict on the container's port."""
    assert request(server.port, "GET", "/healthz").status == 200
    assert request(server.port, "GET", "/readyz").json()["status"] == "ready"
    assert request(server.port, "POST", "/predict", {"inputs": TEXTS}).status == 200
