"""Real Spark in local[2] mode: every row equals the direct runtime's result."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

pytest.importorskip("pyspark")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("no Java runtime: .ci/run installs openjdk-17-jre-headless")
    pytest.skip("no Java runtime for Spark")

from emotion_onnx import EmotionClassifier  # noqa: E402


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("emotion-onnx-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "500")
        .getOrCreate()
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def rows(test_texts):
    texts = list(test_texts) + [None, "", None, "   "]
    return [{"id": i, "text": t} for i, t in enumerate(texts)]


@pytest.fixture(scope="module")
def expected(tiny_model, test_texts):
    clf = EmotionClassifier(tiny_model)
    texts = list(test_texts) + ["", "   "]
    probs = clf.predict_proba(texts)
    return {t: p for t, p in zip(texts, probs)}, clf


@pytest.mark.parametrize("partitions", [1, 3, 7])
def test_every_row_matches_the_runtime(spark, rows, expected, tiny_model, partitions):
    from emotion_onnx.spark import classify_dataframe

    by_text, clf = expected
    df = spark.createDataFrame(rows, "id long, text string").repartition(partitions)
    out = classify_dataframe(df, "text", model=str(tiny_model), probabilities=True).collect()
    assert len(out) == len(rows)
    assert sorted(r["id"] for r in out) == list(range(len(rows)))  # nothing dropped, nothing duplicated
    for r in out:
        if r["text"] is None:
            assert r["label"] is None and r["score"] is None and r["probabilities"] is None
            continue
        p = by_text[r["text"]]
        assert r["label"] == clf.labels[int(p.argmax())]
        assert r["score"] == pytest.approx(float(p.max()), abs=1e-6)
        got = np.array([r["probabilities"][label] for label in clf.labels])
        np.testing.assert_allclose(got, p, atol=1e-6)


def test_struct_probabilities_and_embedding(spark, rows, tiny_model):
    from emotion_onnx.spark import classify_dataframe

    clf = EmotionClassifier(tiny_model)
    df = spark.createDataFrame(rows[:50] + rows[-4:], "id long, text string")
    out = classify_dataframe(df, model=str(tiny_model), probabilities="struct", embedding=True).collect()
    assert len(out) == 54
    for r in out:
        if r["text"] is None:
            assert r["embedding"] is None
            continue
        emb = np.array(r["embedding"], dtype=np.float32)
        np.testing.assert_allclose(emb, clf.embed([r["text"]])[0], atol=1e-5)
        assert set(r["probabilities"].asDict()) == set(clf.labels)


def test_model_shipped_with_sparkfiles(spark, rows, tiny_model, tmp_path):
    from emotion_onnx.spark import classify_dataframe

    shipped = tmp_path / "emotion_model"
    shutil.copytree(tiny_model, shipped)
    spark.sparkContext.addFile(str(shipped), recursive=True)
    df = spark.createDataFrame(rows[:20], "id long, text string")
    out = classify_dataframe(df, model="emotion_model").collect()
    direct = EmotionClassifier(tiny_model)([r["text"] for r in rows[:20]])
    assert [r["label"] for r in sorted(out, key=lambda r: r["id"])] == [d["label"] for d in direct]


def test_threads_follow_task_cpus(spark, tiny_model):
    from emotion_onnx.spark import task_cpus, worker_classifier

    assert task_cpus(spark) == 1
    clf = worker_classifier(str(tiny_model), task_cpus(spark), None, None)
    assert clf.session.get_session_options().intra_op_num_threads == 1


def test_bad_column(spark, tiny_model):
    from emotion_onnx.spark import classify_dataframe

    df = spark.createDataFrame([{"body": "x"}])
    with pytest.raises(ValueError, match="no column 'text'"):
        classify_dataframe(df, model=str(tiny_model))
    df = spark.createDataFrame([{"text": "x", "label": "y"}])
    with pytest.raises(ValueError, match="already exist"):
        classify_dataframe(df, model=str(tiny_model))


def test_cli_parquet_to_parquet(spark, rows, tiny_model, tmp_path, expected):
    from emotion_onnx.spark import main

    src, dst = tmp_path / "in.parquet", tmp_path / "out.parquet"
    spark.createDataFrame(rows, "id long, text string").write.parquet(str(src))
    assert main(["--input", str(src), "--output", str(dst), "--model", str(tiny_model), "--partitions", "3"]) == 0
    out = spark.read.parquet(str(dst)).collect()
    assert len(out) == len(rows)
    by_text, clf = expected
    for r in out:
        if r["text"] is not None:
            assert r["label"] == clf.labels[int(by_text[r["text"]].argmax())]


def test_cli_errors_are_one_line(tiny_model, tmp_path):
    from helpers import assert_clean_error, run_cli

    assert_clean_error(
        run_cli("spark-classify", "--input", str(tmp_path / "missing.parquet"), "--output", str(tmp_path / "o")),
        "missing.parquet", "does not exist",
    )  # fmt: skip
    (tmp_path / "taken").mkdir()
    src = tmp_path / "in.csv"
    src.write_text("id,text\n1,hello\n")
    assert_clean_error(
        run_cli("spark-classify", "--input", str(src), "--output", str(tmp_path / "taken"), "--master", "local[1]"),
        "already exists", "--mode overwrite",
    )  # fmt: skip


def test_csv_keeps_types_and_empty_strings(spark, tiny_model, tmp_path):
    """An id of digits stays a number and an empty text is classified, as Parquet's would be; nothing
    is null in a CSV file, so nothing comes back null."""
    from emotion_onnx.spark import read_input

    src = tmp_path / "reviews.csv"
    src.write_text('id,text,note\n1,"i love it",x\n2,,\n3,"so angry, honestly",y\n')
    df = read_input(spark, str(src), "text")
    assert dict(df.dtypes)["id"] in ("int", "bigint")
    from emotion_onnx.spark import classify_dataframe

    out = {r["id"]: r for r in classify_dataframe(df, "text", model=str(tiny_model)).collect()}
    assert out[2]["text"] == "" and out[2]["label"] is not None
    clf = EmotionClassifier(tiny_model, engine="onnxruntime")
    assert out[2]["label"] == clf("")[0]["label"]


def test_workers_use_the_drivers_interpreter(tiny_model, tmp_path):
    """With PYSPARK_PYTHON unset, spark-classify runs its workers on this interpreter, not the system python3."""
    import subprocess
    import sys

    src = tmp_path / "in.csv"
    src.write_text("text\nhello there\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    env["PATH"] = "/usr/bin:/bin"  # the venv is not activated: a bare python3 would lack emotion_onnx
    proc = subprocess.run(
        [sys.executable, "-m", "emotion_onnx", "spark-classify", "--input", str(src), "--output",
         str(tmp_path / "out"), "--model", str(tiny_model), "--master", "local[1]"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert list((tmp_path / "out").glob("*.parquet"))
