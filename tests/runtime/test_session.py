"""onnxruntime session settings and CPU detection."""

from __future__ import annotations

import subprocess
import sys

import pytest

from emotion_onnx import EmotionClassifier
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
    clf = EmotionClassifier(tiny_model, intra_op_threads=1, spinning=False, providers=["CPUExecutionProvider"])
    opts = clf.session.get_session_options()
    assert opts.intra_op_num_threads == 1
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
