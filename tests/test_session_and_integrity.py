"""onnxruntime session settings, CPU detection, manifest integrity and manifest errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from emotion_onnx import EmotionClassifier, IntegrityError, ManifestError, ModelNotFoundError
from emotion_onnx.cpu import available_cpus, cgroup_cpu_limit


def test_cgroup_v2_quota(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_limit(tmp_path) is None


def test_cgroup_v1_quota(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("50000")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_limit(tmp_path) == 0.5
    assert available_cpus(tmp_path) == 1


def test_threads_follow_affinity_not_host_count(tiny_model):
    code = (
        "import os, sys; os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]});"
        "from emotion_onnx import EmotionClassifier;"
        f"c = EmotionClassifier({str(tiny_model)!r});"
        "print(c.session.get_session_options().intra_op_num_threads)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "1"


def test_session_overrides(tiny_model):
    clf = EmotionClassifier(tiny_model, intra_op_threads=3, spinning=False, providers=["CPUExecutionProvider"])
    opts = clf.session.get_session_options()
    assert opts.intra_op_num_threads == 3
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert clf.session.get_providers() == ["CPUExecutionProvider"]
    with pytest.raises(ValueError, match="not available"):
        EmotionClassifier(tiny_model, providers=["NoSuchExecutionProvider"])


def test_preoptimised_graph_is_loaded_without_reoptimising(tiny_model):
    import onnxruntime as ort

    fused = EmotionClassifier(tiny_model, variant="fp32-fused")
    assert fused.session.get_session_options().graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    raw = EmotionClassifier(tiny_model, variant="fp32")  # the portable export is optimised at load
    assert raw.session.get_session_options().graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


@pytest.fixture
def model_copy(tiny_model, tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(tiny_model, dst)
    return dst


def test_tampered_model_file_is_refused(model_copy):
    path = model_copy / "model_int8.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model_int8.onnx.*modified"):
        EmotionClassifier(model_copy)


def test_truncated_model_file_is_refused(model_copy):
    path = model_copy / "model_int8.onnx"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(IntegrityError, match="truncated"):
        EmotionClassifier(model_copy)


def test_tampered_tokenizer_is_refused(model_copy):
    path = model_copy / "tokenizer.json"
    path.write_text(path.read_text().replace('"[UNK]"', '"[UNX]"', 1))
    with pytest.raises(IntegrityError, match="tokenizer.json"):
        EmotionClassifier(model_copy)


def test_verification_can_be_switched_off(model_copy):
    manifest = json.loads((model_copy / "manifest.json").read_text())
    manifest["variants"]["int8"]["sha256"] = "0" * 64
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IntegrityError):
        EmotionClassifier(model_copy)
    assert EmotionClassifier(model_copy, verify=False)("i am fine")


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        EmotionClassifier(tmp_path / "nope")
    with pytest.raises(ModelNotFoundError, match="no manifest.json"):
        EmotionClassifier(tmp_path)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda m: m.update(schema_version=99), "schema_version 99"),
        (lambda m: m.pop("labels"), "missing key 'labels'"),
        (lambda m: m.update(default_variant="fp16"), "default_variant 'fp16'"),
        (lambda m: m["tokenizer"].update(max_length=4096), "max_length"),
        (lambda m: m["variants"]["int8"].update(temperature=0), "temperature"),
        (lambda m: m["inputs"].append("position_ids"), "unsupported input.s. position_ids"),
    ],
)
def test_malformed_manifest(model_copy, edit, fragment):
    manifest = json.loads((model_copy / "manifest.json").read_text())
    edit(manifest)
    (model_copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestError, match=fragment):
        EmotionClassifier(model_copy)


def test_unknown_variant(tiny_model):
    with pytest.raises(ManifestError, match="available: fp32, fp32-fused, int8"):
        EmotionClassifier(tiny_model, variant="fp16")


def test_manifest_not_json(model_copy):
    (model_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        EmotionClassifier(model_copy)
