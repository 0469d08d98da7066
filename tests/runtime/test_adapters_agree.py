"""Every adapter gives the library's calibrated probabilities for the same texts: the CLI, the HTTP
server, the Lambda handler and Spark all go through emotion_onnx.calibration.probabilities."""

from __future__ import annotations

import json
import os
import shutil
import sys

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from helpers import run_cli
from http_helpers import request, running_server

TEXTS = ["i feel wonderful today", "i am so scared of the dark", "what a surprise", ""]


@pytest.fixture(scope="module")
def want(tiny_model):
    clf = EmotionClassifier(tiny_model, engine="onnxruntime")
    assert clf.calibration.top1_map is not None  # the numbers below include the map, not just T
    return clf, clf.predict_proba(TEXTS)


def as_matrix(rows: list[dict], labels: list[str]) -> np.ndarray:
    return np.array([[row[label] for label in labels] for row in rows])


def test_cli(tiny_model, want):
    clf, probs = want
    proc = run_cli("classify", "--model", str(tiny_model), "--variant", clf.variant.name, "--probabilities", *TEXTS)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    np.testing.assert_allclose(as_matrix([r["probabilities"] for r in records], clf.labels), probs, atol=1e-6)
    np.testing.assert_allclose([r["score"] for r in records], probs.max(axis=1), atol=1e-6)


def test_http(tiny_model, want):
    clf, probs = want
    with running_server("--variant", clf.variant.name, model=tiny_model) as srv:
        got = request(srv.port, "POST", "/predict", {"inputs": TEXTS}).json()
    np.testing.assert_allclose(as_matrix([{r["label"]: r["score"] for r in row} for row in got], clf.labels), probs,
                               atol=1e-6)  # fmt: skip


def test_lambda(tiny_model, want, monkeypatch):
    clf, probs = want
    model = tiny_model if clf.variant.name == clf.manifest.default_variant else None
    assert model is not None, "the handler loads the default variant"
    monkeypatch.setenv("EMOTION_ONNX_MODEL", str(model))
    sys.modules.pop("emotion_onnx.aws_lambda", None)
    import emotion_onnx.aws_lambda as aws_lambda

    try:
        got = aws_lambda.handler({"inputs": TEXTS}, None)
    finally:
        sys.modules.pop("emotion_onnx.aws_lambda", None)
    np.testing.assert_allclose(as_matrix([{r["label"]: r["score"] for r in row} for row in got], clf.labels), probs,
                               atol=1e-6)  # fmt: skip


@pytest.mark.skipif(shutil.which("java") is None and not os.environ.get("JAVA_HOME"), reason="no Java for Spark")
def test_spark(tiny_model, want):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    from emotion_onnx.spark import classify_dataframe

    clf, probs = want
    spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
    try:
        df = spark.createDataFrame([{"id": i, "text": t} for i, t in enumerate(TEXTS)], "id long, text string")
        rows = sorted(classify_dataframe(df, "text", model=str(tiny_model), variant=clf.variant.name,
                                         probabilities=True).collect(), key=lambda r: r["id"])  # fmt: skip
    finally:
        spark.stop()
    np.testing.assert_allclose(as_matrix([r["probabilities"] for r in rows], clf.labels), probs, atol=1e-6)
