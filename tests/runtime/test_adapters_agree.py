"""Every adapter gives the library's calibrated probabilities for the same texts: the CLI, the HTTP
server, the Lambda handler and Spark all go through emotion_onnx.calibration.probabilities, by
default and with the neutral switch on. A model without a neutral output refuses the switch in
every adapter, each in its own way (ValueError, exit 2, HTTP 422)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from helpers import assert_clean_error, run_cli
from http_helpers import request, running_server

TEXTS = ["i feel wonderful today", "i am so scared of the dark", "what a surprise", "hmm ok", ""]
needs_java = pytest.mark.skipif(
    shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="no Java for Spark"
)


@pytest.fixture(scope="module", params=[False, True], ids=["default", "neutral"])
def want(request, tiny_model, tiny_neutral_model):
    """(model, neutral, classifier, probabilities): the six labels of the emotion model, and the
    neutral model with the switch on."""
    neutral = request.param
    model = tiny_neutral_model if neutral else tiny_model
    clf = EmotionClassifier(model, engine="onnxruntime")
    assert clf.calibration.top1_map is not None  # the numbers below include the map, not just T
    probs = clf.predict_proba(TEXTS, neutral=neutral)
    assert probs.shape == (len(TEXTS), 7 if neutral else 6)
    return model, neutral, clf, probs


def as_matrix(rows: list[dict], labels: list[str]) -> np.ndarray:
    return np.array([[row[label] for label in labels] for row in rows])


def test_cli(want):
    model, neutral, clf, probs = want
    args = ["--neutral"] if neutral else []
    proc = run_cli("classify", "--model", str(model), "--variant", clf.variant.name, "--probabilities", *args, *TEXTS)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    labels = clf.answer_labels(neutral)
    np.testing.assert_allclose(as_matrix([r["probabilities"] for r in records], labels), probs, atol=1e-6)
    np.testing.assert_allclose([r["score"] for r in records], probs.max(axis=1), atol=1e-6)


def test_http(want):
    model, neutral, clf, probs = want
    body = {"inputs": TEXTS, "parameters": {"neutral": True}} if neutral else {"inputs": TEXTS}
    with running_server("--variant", clf.variant.name, model=model) as srv:
        got = request(srv.port, "POST", "/predict", body).json()
    rows = [{r["label"]: r["score"] for r in row} for row in got]
    np.testing.assert_allclose(as_matrix(rows, clf.answer_labels(neutral)), probs, atol=1e-6)


def _lambda_handler(monkeypatch, model):
    monkeypatch.setenv("EMOTION_ONNX_MODEL", str(model))
    sys.modules.pop("emotion_onnx.aws_lambda", None)
    import emotion_onnx.aws_lambda as aws_lambda

    return aws_lambda


def test_lambda(want, monkeypatch):
    model, neutral, clf, probs = want
    assert clf.variant.name == clf.manifest.default_variant, "the handler loads the default variant"
    aws_lambda = _lambda_handler(monkeypatch, model)
    try:
        got = aws_lambda.handler({"inputs": TEXTS, "parameters": {"neutral": neutral}}, None)
    finally:
        sys.modules.pop("emotion_onnx.aws_lambda", None)
    rows = [{r["label"]: r["score"] for r in row} for row in got]
    np.testing.assert_allclose(as_matrix(rows, clf.answer_labels(neutral)), probs, atol=1e-6)


@needs_java
def test_spark(want):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from emotion_onnx.spark import classify_dataframe

    model, neutral, clf, probs = want
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        df = spark.createDataFrame([{"id": i, "text": t} for i, t in enumerate(TEXTS)], "id long, text string")
        out = classify_dataframe(
            df, "text", model=str(model), variant=clf.variant.name, probabilities=True, neutral=neutral
        )
        rows = sorted(out.collect(), key=lambda r: r["id"])
    finally:
        spark.stop()
    np.testing.assert_allclose(as_matrix([r["probabilities"] for r in rows], clf.answer_labels(neutral)), probs,
                               atol=1e-6)  # fmt: skip


# ---------------------------------------------------------------------------- a model without neutral refuses
NO_NEUTRAL = "no neutral output"


def test_library_refuses_neutral_without_a_neutral_output(tiny_model):
    clf = EmotionClassifier(tiny_model)
    assert not clf.has_neutral and clf.labels == clf.manifest.labels
    for call in (
        lambda: clf("hi", neutral=True),
        lambda: clf.predict_proba(["hi"], neutral=True),
        lambda: clf.logits(["hi"], neutral=True),
        lambda: next(clf.stream(["hi"], neutral=True)),
    ):
        with pytest.raises(ValueError, match=NO_NEUTRAL):
            call()


def test_cli_refuses_neutral_without_a_neutral_output(tiny_model):
    assert_clean_error(run_cli("classify", "--model", str(tiny_model), "--neutral", "hi"), NO_NEUTRAL)


def test_http_and_lambda_refuse_neutral_without_a_neutral_output(tiny_model, monkeypatch):
    body = {"inputs": "hi", "parameters": {"neutral": True}}
    with running_server(model=tiny_model) as srv:
        reply = request(srv.port, "POST", "/predict", body)
    assert reply.status == 422 and NO_NEUTRAL in reply.json()["error"]
    aws_lambda = _lambda_handler(monkeypatch, tiny_model)
    try:
        got = aws_lambda.handler(body, None)
    finally:
        sys.modules.pop("emotion_onnx.aws_lambda", None)
    assert got["statusCode"] == 422 and got["error"] == reply.json()["error"]


@needs_java
def test_spark_refuses_neutral_without_a_neutral_output(tiny_model):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from emotion_onnx.spark import classify_dataframe

    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        df = spark.createDataFrame([{"text": "hi"}], "text string")
        with pytest.raises(ValueError, match=NO_NEUTRAL):
            classify_dataframe(df, "text", model=str(tiny_model), neutral=True)
    finally:
        spark.stop()


def test_the_default_answer_of_a_neutral_model_never_says_neutral(tiny_neutral_model):
    clf = EmotionClassifier(tiny_neutral_model)
    assert clf.has_neutral and clf.labels == clf.manifest.labels[:6] and "neutral" not in clf.labels
    many = [f"text number {i} hmm ok" for i in range(200)]
    probs = clf.predict_proba(many)
    assert probs.shape == (200, 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert all(r["label"] != "neutral" for r in clf(many))
    assert all(len(row) == 6 for row in clf(many, top_k=None))
    with_neutral = clf(many, top_k=None, neutral=True)
    assert all(len(row) == 7 for row in with_neutral)
