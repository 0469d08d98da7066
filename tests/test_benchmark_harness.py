"""The benchmark scripts run end to end in --quick mode (no speed is asserted here)."""

from __future__ import annotations

import json
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
    if script == "int8_schemes.py":
        assert data["schemes"]["per-token"]["batch_invariant"] is True
        assert data["schemes"]["dynamic-per-channel"]["batch_invariant"] is False
