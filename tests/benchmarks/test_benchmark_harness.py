"""The benchmark scripts run end to end in --quick mode (no speed is asserted here)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from helpers import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("script", ["runtime_speed.py", "int8_schemes.py"])
def test_quick_run_writes_results(script, tiny_model, tmp_path):
    env = {**os.environ, "EMOTION_ONNX_BENCH_RESULTS": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), "--model", str(tiny_model), "--quick", "--name", "t"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stem = script.removesuffix(".py") + "_t"
    data = json.loads((tmp_path / f"{stem}.json").read_text())
    assert data["machine"]["cpus_usable"] >= 1
    assert (tmp_path / f"{stem}.md").read_text().startswith(("Runtime speed", "INT8 schemes"))
    assert (tmp_path / f"{stem}.png").read_bytes()[:4] == b"\x89PNG"
    if script == "runtime_speed.py":  # one latency block per throughput round, each with bare session.run
        single = data["single_text"]
        assert len(single["block_p50_ms"]) == len(single["session_run_block_p50_ms"]) == data["repeats"]
        assert single["n"] == 30 * data["repeats"]
        assert "bare `session.run`" in (tmp_path / f"{stem}.md").read_text()
    if script == "int8_schemes.py":
        assert data["schemes"]["per-token"]["batch_invariant"] is True
        assert data["schemes"]["dynamic-per-channel"]["batch_invariant"] is False


def _run_quick(script: str, tmp_path, *args: str, timeout: int = 1200) -> None:
    env = {**os.environ, "EMOTION_ONNX_BENCH_RESULTS": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / script), *args, "--quick"],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_compare_systems_quick_runs_every_system(tiny_model, tmp_path):
    """Every system (PyTorch, dynamic int8, Optimum fp32/int8, OpenVINO x4, CTranslate2, ours) on a slice."""
    pytest.importorskip("openvino")
    _run_quick("compare_systems.py", tmp_path, "--full-size", str(tiny_model), "--trained", str(tiny_model))
    data = json.loads((tmp_path / "compare_systems.json").read_text())
    pytest.importorskip("nncf")
    pytest.importorskip("ctranslate2")
    expected = ["pytorch-fp32", "pytorch-dynamic-int8", "optimum-fp32", "optimum-int8", "openvino-default",
                "openvino-f32", "openvino-int8", "openvino-int8-throughput", "ctranslate2-int8", "ours-fp32",
                "ours-int8"]  # fmt: skip
    for model in ("full-size", "trained"):
        systems = data["models"][model]["systems"]
        assert list(systems) == expected
        for result in systems.values():
            assert result["batch_texts_per_s"] > 0 and result["p99_ms"] >= result["p50_ms"] > 0
            assert result["cold_start_s"] > 0 and result["peak_rss_mb"] > 0
            assert result["agreement_with_pytorch"] >= 0.9  # same weights; int8 may flip a rare near-tie
            assert math.isfinite(result["batch_drift"])
        assert systems["ours-int8"]["batch_drift"] <= 1e-6  # alone or in a batch, the same logits
    trained = data["models"]["trained"]["systems"]
    # accuracy counts the same argmax that agreement compares: they cannot part by more than the disagreement
    ours, torch_fp32 = trained["ours-int8"], trained["pytorch-fp32"]
    assert abs(ours["accuracy"] - torch_fp32["accuracy"]) <= 1 - ours["agreement_with_pytorch"] + 1e-9
    assert data["footprint"]["torch_stack_mb"] > data["footprint"]["runtime_mb"] > 0
    assert "Goals for our fastest int8 row (ours-int8)" in (tmp_path / "compare_systems.md").read_text()
    assert (tmp_path / "compare_systems_full-size.png").read_bytes()[:4] == b"\x89PNG"


def test_side_by_side_quick(tiny_model, tmp_path):
    """Ours one batch at a time and side by side, and OpenVINO's NNCF INT8 in both its modes."""
    _run_quick("side_by_side.py", tmp_path, "--model", str(tiny_model), "--name", "t", "--cache", str(tmp_path))
    data = json.loads((tmp_path / "side_by_side_t.json").read_text())
    rows = data["systems"]
    assert rows["ours-int8 one at a time"]["vs_twin"] == 1.0
    assert rows["ours-int8 side by side"]["twin"] == "ours-int8 one at a time"
    assert "ours-openvino side by side" not in rows  # the tiny export has no OpenVINO variant
    if importlib.util.find_spec("nncf") is not None:
        assert rows["openvino-int8 throughput mode"]["texts_per_s"] > 0
    assert all(len(r["seconds"]) == data["rounds"] == 2 for r in rows.values())
    assert "× its one-at-a-time twin" in (tmp_path / "side_by_side_t.md").read_text()
    assert (tmp_path / "side_by_side_t.png").read_bytes()[:4] == b"\x89PNG"


def test_width_step_quick(tiny_model, tmp_path):
    """Each step on the model's int8 engine, the engine's own step among them."""
    _run_quick("width_step.py", tmp_path, "--model", str(tiny_model), "--name", "t", "--steps", "2", "4")
    data = json.loads((tmp_path / "width_step_t.json").read_text())
    rows = data["systems"]
    assert list(rows) == ["int8 step 1", "int8 step 2", "int8 step 4"]  # onnxruntime's own step is 1
    assert rows["int8 step 1"]["vs_engine_step"] == 1.0
    assert all(r["texts_per_s"] > 0 and r["one_text_p50_ms"] > 0 for r in rows.values())
    assert "**int8 step 1**" in (tmp_path / "width_step_t.md").read_text()
    assert (tmp_path / "width_step_t.png").read_bytes()[:4] == b"\x89PNG"


def test_serve_and_lambda_benchmarks_quick(tiny_model, tmp_path):
    _run_quick("serve_throughput.py", tmp_path, "--model", str(tiny_model), "--name", "t", "--port", "0")
    served = json.loads((tmp_path / "serve_throughput_t.json").read_text())
    assert served["errors"] == 0 and served["served_requests_per_s"][0] > 0
    assert (tmp_path / "serve_throughput_t.png").read_bytes()[:4] == b"\x89PNG"
    _run_quick("serve_load.py", tmp_path, "--model", str(tiny_model), "--name", "t")
    load = json.loads((tmp_path / "serve_load_t.json").read_text())
    assert load["errors"] == load["mismatched_answers"] == 0 and load["requests"] == 400
    assert load["fairness"]["during_big_ms"] > 0 and load["server_peak_rss_mb"] > 0
    _run_quick("lambda_bundle.py", tmp_path, "--model", str(tiny_model), "--name", "t")
    bundle = json.loads((tmp_path / "lambda_bundle_t.json").read_text())
    assert bundle["cold_start"]["process_to_first_response_s_median"] > 0


def test_latency_breakdown_prints_the_split(tiny_model):
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "latency_breakdown.py"), str(tiny_model), "int8", "--runs", "5"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for row in ("clf([text]) end to end", "tokenise", "session.run", "kernel time", "MatMulIntegerToFloat"):
        assert row in proc.stdout


def test_adaptation_curves_quick(checkpoints, tmp_path):
    """Three tasks x one base x one size through the real finetune command, with the no-training
    reference from the embedded model."""
    base = str(checkpoints("distilbert-tiny"))
    pool = tmp_path / "pool.jsonl"
    _run_quick("adaptation.py", tmp_path, "--sizes", "24", "--bases", base, "--epochs", "1", "--pool", str(pool))
    data = json.loads((tmp_path / "adaptation.json").read_text())
    assert [(r["task"], r["examples"]) for r in data["runs"]] == [("taxonomy", 24), ("domain", 24), ("goemotions", 24)]
    for r in data["runs"]:
        assert 0 <= r["accuracy"] <= 1 and r["train_minutes"] > 0 and r["command"].startswith("emotion-onnx finetune")
    assert data["shipped_as_is"]["taxonomy"]["accuracy"] > 0.5  # merged labels are easier than the six
    assert pool.is_file() and "new taxonomy" in (tmp_path / "adaptation.md").read_text()
    assert (tmp_path / "adaptation.png").read_bytes()[:4] == b"\x89PNG"
