"""The Lambda bundle, unzipped into an empty directory and run by a fresh interpreter whose only
import path is that directory (plus the standard library), with real-format events."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from helpers import assert_clean_error, run_cli
from lambda_events import sample_events

DRIVER = r"""
import json, sys, time
t0 = time.perf_counter()
bundle, events_file = sys.argv[1], sys.argv[2]
sys.path.insert(0, bundle)
from emotion_onnx.aws_lambda import handler, LOAD_SECONDS
t_import = time.perf_counter() - t0
events = json.load(open(events_file))
out = []
for name, event in events:
    out.append([name, handler(event, None)])
    if len(out) == 1:
        t_first = time.perf_counter() - t0
import onnxruntime, numpy, tokenizers
paths = {m: getattr(sys.modules[m], "__file__", "") for m in ("onnxruntime", "numpy", "tokenizers", "emotion_onnx")}
heavy = ("torch", "transformers", "optimum", "huggingface_hub", "fastapi", "pydantic")
heavy = sorted(m for m in heavy if m in sys.modules)
print(json.dumps({"results": out, "paths": paths, "heavy": heavy, "sys_path": sys.path,
                  "import_s": t_import, "load_s": LOAD_SECONDS, "first_response_s": t_first}))
"""


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp("lambda") / "bundle.zip"
    proc = run_cli("lambda-bundle", "--model", str(tiny_model), "--out", str(out), timeout=900)
    assert proc.returncode == 0, proc.stderr.decode()
    report = proc.stdout.decode()
    assert "MiB unzipped" in report, report
    # no --python: the running interpreter (a Lambda runtime), so that this interpreter can run it
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"for Python {python} (the running interpreter)" in report, report
    return out


@pytest.fixture(scope="module")
def unzipped(bundle, tmp_path_factory):
    target = tmp_path_factory.mktemp("lambda-task")
    assert not any(target.iterdir())
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(target)
    for path in [target, *target.rglob("*")]:  # read-only, like /var/task
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    yield target
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def invoke(task_root: Path, events: list, tmp_path: Path, env: dict | None = None) -> dict:
    events_file = tmp_path / "events.json"
    events_file.write_text(json.dumps(events))
    clean_env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "TMPDIR": "/tmp", "LANG": "C.UTF-8", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-c", DRIVER, str(task_root), str(events_file)],
        capture_output=True,
        text=True,
        env=clean_env,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_bundle_layout_and_size(bundle):
    with zipfile.ZipFile(bundle) as zf:
        names = zf.namelist()
        unzipped = sum(i.file_size for i in zf.infolist())
    tops = {n.split("/")[0] for n in names}
    assert {"emotion_onnx", "onnxruntime", "numpy", "tokenizers", "model"} <= tops
    assert not tops & {"torch", "transformers", "huggingface_hub", "fastapi", "pyspark"}, tops
    assert "emotion_onnx/aws_lambda.py" in names
    assert not any(n.startswith(("emotion_onnx_export/", "emotion_onnx/default_model/")) for n in names)
    # the runtime package as installed, file for file (only the embedded model left out: another ships)
    import emotion_onnx

    package = Path(emotion_onnx.__file__).parent
    installed = {
        f"emotion_onnx/{p.relative_to(package)}"
        for p in package.rglob("*.py")
        if "default_model" not in p.parts and "__pycache__" not in p.parts
    }
    assert installed <= set(names), installed - set(names)
    assert not any("/tests/" in n or n.endswith(".pyi") for n in names)
    assert "model/manifest.json" in names
    assert unzipped < 250 * 2**20
    template = bundle.with_name("template.yaml").read_text()
    assert "emotion_onnx.aws_lambda.handler" in template and f"CodeUri: {bundle.name}" in template


def test_handler_answers_every_event_source_from_the_bundle_alone(unzipped, tiny_model, tmp_path):
    cases = sample_events()
    before = sorted((p.relative_to(unzipped), p.stat().st_mtime) for p in unzipped.rglob("*"))
    report = invoke(unzipped, [[name, event] for name, event, _, _ in cases], tmp_path)
    after = sorted((p.relative_to(unzipped), p.stat().st_mtime) for p in unzipped.rglob("*"))
    assert before == after  # nothing written into the task root
    assert list(tmp_path.iterdir()) == [tmp_path / "events.json"]  # nor into the working directory

    # every module came from the bundle, and nothing heavy was imported
    for module, path in report["paths"].items():
        assert path.startswith(str(unzipped)), (module, path)
    assert report["heavy"] == []
    outside = [p for p in report["sys_path"] if p != str(unzipped) and "python3" not in p]
    assert outside == [], outside

    clf = EmotionClassifier(tiny_model, engine="onnxruntime")  # the variant the bundle ships
    results = dict(report["results"])
    for name, _event, kind, status in cases:
        got = results[name]
        if kind == "proxy":
            assert got["statusCode"] == status, (name, got)
            assert got["headers"]["Content-Type"] == "application/json"
            body = json.loads(got["body"])
        else:
            body = got
            if status != 200:
                assert got["statusCode"] == status, (name, got)
        if status != 200:
            assert isinstance(body["error"], str) and body["error"], (name, body)
            assert "Traceback" not in json.dumps(body)
    # the answers are the library's answers
    v1 = json.loads(results["v1 predict"]["body"])
    want = clf(["i feel wonderful today", "i am terrified"], top_k=2)
    for rows, expected in zip(v1, want):
        assert [r["label"] for r in rows] == [e["label"] for e in expected]
        np.testing.assert_allclose([r["score"] for r in rows], [e["score"] for e in expected], atol=1e-5)
    assert json.loads(results["function url predict"]["body"]) == v1
    (single,) = json.loads(results["v2 predict with stage"]["body"])  # one ranking per text, also for a str
    assert len(single) == 6 and single[0]["label"] == clf("i miss my old friends")[0]["label"]
    (direct,) = results["direct predict"]
    assert [r["label"] for r in direct] == [r["label"] for r in clf("i feel wonderful today", top_k=None)]
    assert [len(rows) for rows in results["direct list"]] == [6, 6]
    np.testing.assert_allclose(results["direct embed"], clf.embed(["i feel calm"]), atol=1e-5)
    np.testing.assert_allclose(json.loads(results["v1 embed"]["body"]), clf.embed(["i feel calm"]), atol=1e-5)
    assert json.loads(results["v1 healthz"]["body"]) == {"status": "ok", "ready": True}
    assert report["first_response_s"] < 30


def test_a_missing_model_is_reported_per_invocation(unzipped, tmp_path):
    report = invoke(unzipped, [["p", {"inputs": "x"}]], tmp_path, env={"EMOTION_ONNX_MODEL": "/nonexistent/model"})
    got = report["results"][0][1]
    assert got["statusCode"] == 503 and "failed to load" in got["error"]


def test_sam_template_passes_cfn_lint(bundle):
    pytest.importorskip("cfnlint")
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), str(bundle.with_name("template.yaml"))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_bundle_arguments(tmp_path):
    assert_clean_error(run_cli("lambda-bundle", "--out", str(tmp_path / "b.tar")), "--out must be a .zip")
    assert_clean_error(
        run_cli("lambda-bundle", "--out", str(tmp_path / "b.zip"), "--model", str(tmp_path)), "no manifest.json"
    )
    assert_clean_error(run_cli("lambda-bundle", "--out", str(tmp_path / "b.zip"), "--python", "three"), "--python")
    assert not (tmp_path / "b.zip").exists()


def test_handler_in_process_matches_library(tiny_model, monkeypatch):
    """The same module imported normally (the model path from the environment)."""
    monkeypatch.setenv("EMOTION_ONNX_MODEL", str(tiny_model))
    sys.modules.pop("emotion_onnx.aws_lambda", None)
    import emotion_onnx.aws_lambda as aws_lambda

    try:
        got = aws_lambda.handler({"inputs": ["i feel calm", ""]}, None)
        want = EmotionClassifier(tiny_model)(["i feel calm", ""], top_k=None)
        assert [[r["label"] for r in row] for row in got] == [[r["label"] for r in row] for row in want]
    finally:
        sys.modules.pop("emotion_onnx.aws_lambda", None)
    assert os.environ["EMOTION_ONNX_MODEL"] == str(tiny_model)


def _malformed_events():
    from lambda_events import apigw_v1, http_api_v2

    good = http_api_v2(json.dumps({"inputs": "hello"}))
    no_context = {**good, "requestContext": None}
    no_http = {**good, "requestContext": {**good["requestContext"], "http": None}}
    no_method = {**good, "requestContext": {**good["requestContext"], "http": {"path": "/predict", "method": None}}}
    v1_no_method = {**apigw_v1(json.dumps({"inputs": "x"})), "httpMethod": None}
    dict_body = {**good, "body": {"inputs": "hello"}}
    number_body = {**good, "body": 42}
    surrogate = http_api_v2('{"inputs": "caf\\ud800"}')
    deep = http_api_v2("[" * 3000 + "]" * 3000)
    digits = http_api_v2('{"inputs": "x", "parameters": {"top_k": ' + "7" * 5000 + "}}")
    no_type = http_api_v2(json.dumps({"inputs": "hello"}))
    no_type["headers"] = {}
    many = http_api_v2(json.dumps({"inputs": ["x"] * 257}))
    v2_no_context = {k: v for k, v in good.items() if k != "requestContext"}
    v1 = apigw_v1(json.dumps({"inputs": "hello"}))
    b64_false_string = {**v1, "isBase64Encoded": "false"}
    b64_true_string = {**apigw_v1(json.dumps({"inputs": "hello"}), base64_body=True), "isBase64Encoded": "true"}
    b64_number = {**v1, "isBase64Encoded": 1}
    gzip_multi = {**v1, "multiValueHeaders": {"Content-Type": ["application/json"], "Content-Encoding": ["gzip"]}}
    return [
        ("v2 without requestContext", v2_no_context, 400, "no HTTP method"),
        ('isBase64Encoded "false"', b64_false_string, 200, ""),
        ('isBase64Encoded "true"', b64_true_string, 200, ""),
        ("isBase64Encoded a number", b64_number, 400, "isBase64Encoded must be true or false"),
        ("gzip in multiValueHeaders only", gzip_multi, 415, "Content-Encoding gzip"),
        ("None event", None, 422, "must be a JSON object"),
        ("a list event", ["hello"], 422, "must be a JSON object"),
        ("requestContext None", no_context, 400, "no HTTP method"),
        ("http None", no_http, 400, "no HTTP method"),
        ("method None", no_method, 400, "no HTTP method"),
        ("v1 method None", v1_no_method, 400, "no HTTP method"),
        ("body already a dict", dict_body, 400, "already a JSON value"),
        ("body a number", number_body, 400, "not a string"),
        ("a lone surrogate", surrogate, 422, "lone surrogate"),
        ("deep nesting", deep, 400, "nests deeper than 32 levels"),
        ("5000 digits", digits, 400, "not valid JSON"),
        ("257 inputs", many, 413, "inputs has 257 texts; the limit is 256"),
        ("no content type", no_type, 200, ""),
    ]


@pytest.mark.parametrize("case", _malformed_events(), ids=[c[0] for c in _malformed_events()])
def test_malformed_events_get_a_4xx_never_a_500(tiny_model, monkeypatch, case):
    _, event, status, fragment = case
    monkeypatch.setenv("EMOTION_ONNX_MODEL", str(tiny_model))
    for name in list(os.environ):
        if name.startswith("EMOTION_ONNX_MAX_"):
            monkeypatch.delenv(name)
    sys.modules.pop("emotion_onnx.aws_lambda", None)
    import emotion_onnx.aws_lambda as aws_lambda

    try:
        got = aws_lambda.handler(event, None)
    finally:
        sys.modules.pop("emotion_onnx.aws_lambda", None)
    if isinstance(got, dict) and "body" in got:  # a proxy response
        code, body = got["statusCode"], json.loads(got["body"])
    elif isinstance(got, dict) and "statusCode" in got:  # a direct invocation's refusal
        code, body = got["statusCode"], got
    else:
        code, body = 200, got
    assert code == status, (code, body)
    if status >= 400:
        assert fragment in body["error"], body
        assert "internal error" not in body["error"]
