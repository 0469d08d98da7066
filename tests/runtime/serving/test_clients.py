"""The server with the clients people already have: Hugging Face's own InferenceClient, a browser on
the page at /, and /docs with no network."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from http_helpers import request, running_server

pytest.importorskip("uvicorn")
huggingface_hub = pytest.importorskip("huggingface_hub")

SENTENCE = "my sister just had a baby and i am over the moon"


@pytest.fixture(scope="module", autouse=True)
def client_online():
    """HF_HUB_OFFLINE=1 (set for the whole suite, so nothing reaches the hub) makes huggingface_hub refuse
    every URL, 127.0.0.1 too; a user pointing InferenceClient at a local server runs with it unset."""
    saved = huggingface_hub.constants.HF_HUB_OFFLINE
    huggingface_hub.constants.HF_HUB_OFFLINE = False
    huggingface_hub.utils.reset_sessions()
    yield
    huggingface_hub.constants.HF_HUB_OFFLINE = saved
    huggingface_hub.utils.reset_sessions()


@pytest.fixture(scope="module")
def server(tiny_model):
    with running_server(model=tiny_model) as srv:
        yield srv


@pytest.fixture(scope="module")
def ranked(tiny_model):
    return EmotionClassifier(tiny_model)(SENTENCE, top_k=None)


@pytest.mark.parametrize("top_k", [None, 1, 3, 6])
@pytest.mark.parametrize("path", ["/predict", ""])  # an endpoint URL, or its root
def test_inference_client_text_classification(server, ranked, top_k, path):
    client = huggingface_hub.InferenceClient(model=f"http://127.0.0.1:{server.port}{path}")
    result = client.text_classification(SENTENCE, top_k=top_k)
    want = ranked if top_k is None else ranked[:top_k]
    assert [x.label for x in result] == [w["label"] for w in want]
    np.testing.assert_allclose([x.score for x in result], [w["score"] for w in want], atol=1e-5)


def test_inference_client_function_to_apply(server, tiny_model):
    client = huggingface_hub.InferenceClient(model=f"http://127.0.0.1:{server.port}/predict")
    result = client.text_classification(SENTENCE, function_to_apply="none")
    logits = EmotionClassifier(tiny_model).logits([SENTENCE])[0]
    by_label = {x.label: x.score for x in result}
    np.testing.assert_allclose([by_label[label] for label in EmotionClassifier(tiny_model).labels], logits, atol=1e-5)


def test_inference_client_feature_extraction(server, tiny_model):
    client = huggingface_hub.InferenceClient(model=f"http://127.0.0.1:{server.port}/embed")
    got = client.feature_extraction(SENTENCE)
    want = EmotionClassifier(tiny_model).embed([SENTENCE])
    assert got.shape == want.shape == (1, 32)
    np.testing.assert_allclose(got, want, atol=1e-5)
    raw = client.feature_extraction(SENTENCE, normalize=False, truncate=True)
    np.testing.assert_allclose(raw, EmotionClassifier(tiny_model).embed([SENTENCE], normalize=False), atol=1e-4)


def test_the_hosted_apis_options_are_accepted(server):
    body = {"inputs": SENTENCE, "options": {"wait_for_model": True, "use_cache": False}}
    assert request(server.port, "POST", "/predict", body).status == 200


def test_start_up_prints_where_it_listens(server):
    assert f"serving on http://127.0.0.1:{server.port}" in server.first_line


def test_docs_work_offline(server):
    page = request(server.port, "GET", "/docs")
    assert page.status == 200
    html = page.body.decode()
    assert "/docs-assets/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        reply = request(server.port, "GET", f"/docs-assets/{asset}")
        assert reply.status == 200 and len(reply.body) > 10_000


# ---------------------------------------------------------------------------- the page, in Chromium
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("no chromium: .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed")
    with playwright.sync_playwright() as p:
        args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


def classify_in_page(browser, port: int, text: str, token: str | None = None) -> tuple[list, str]:
    page = browser.new_page()
    try:
        page.goto(f"http://127.0.0.1:{port}/")
        page.fill("#text", text)
        if token is not None:
            page.fill("#token", token)
        page.click("#go")
        page.wait_for_function(
            "document.querySelectorAll('#bars .bar').length > 0 || document.getElementById('error').textContent"
        )
        bars = page.eval_on_selector_all(
            "#bars .bar", "rows => rows.map(r => [r.dataset.label, r.querySelector('.fill').style.width])"
        )
        return bars, page.inner_text("#error")
    finally:
        page.close()


def test_the_page_draws_the_calibrated_probabilities(server, browser, ranked):
    bars, error = classify_in_page(browser, server.port, SENTENCE)
    assert error == ""
    assert [label for label, _ in bars] == [r["label"] for r in ranked]  # six bars, best first
    widths = [float(w.rstrip("%")) for _, w in bars]
    np.testing.assert_allclose(widths, [100 * r["score"] for r in ranked], atol=0.06)
    (top,) = request(server.port, "POST", "/predict", {"inputs": SENTENCE}).json()
    assert bars[0][0] == top[0]["label"]


def test_the_page_works_with_auth_on(tiny_model, browser, ranked):
    with running_server(model=tiny_model, env={"EMOTION_ONNX_API_TOKEN": "page-token"}) as srv:
        bars, error = classify_in_page(browser, srv.port, SENTENCE)
        assert bars == [] and error.startswith("401")
        bars, error = classify_in_page(browser, srv.port, SENTENCE, token="page-token")
        assert error == "" and bars[0][0] == ranked[0]["label"]
