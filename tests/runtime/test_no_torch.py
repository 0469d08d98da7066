"""The runtime never needs torch, transformers or optimum."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import venv

import pytest

from helpers import REPO

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class _Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "transformers", "optimum"}:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, _Blocked())
    """
)


def test_whole_api_runs_with_torch_transformers_optimum_blocked(tiny_model, tmp_path):
    texts_file = tmp_path / "in.jsonl"
    texts_file.write_text("\n".join(json.dumps({"text": t}) for t in ["i am happy", "i am sad", ""]) + "\n")
    code = BLOCKER + textwrap.dedent(
        f"""
        try:
            import torch  # noqa
        except ImportError:
            pass
        else:
            raise SystemExit("the blocker did not work")
        import numpy as np
        from emotion_onnx import EmotionClassifier
        from emotion_onnx.cli import main

        model = {str(tiny_model)!r}
        for variant in ("int8", "fp32-fused", "fp32"):
            clf = EmotionClassifier(model, variant=variant)
            assert clf("i feel great")[0]["label"]
            assert clf(["a", "b"], top_k=None)[0][0]["score"] > 0
            assert clf.predict_proba(["x"]).shape == (1, 6)
            assert clf.logits(["x"]).shape == (1, 6)
            assert clf.embed(["x"]).shape == (1, clf.embedding_dim)
            assert len(list(clf.stream(iter(["x"] * 10), chunk_size=3))) == 10
        win = EmotionClassifier(model, long_text="window")
        assert win.predict_proba(["word " * 3000]).shape == (1, 6)
        assert main(["classify", "--model", model, "--input", {str(texts_file)!r}, "--probabilities", "--embed"]) == 0
        import sys
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in {{"torch", "transformers", "optimum"}})
        assert not leaked, leaked
        print("OK")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "OK"
    assert len(lines) == 4  # three JSONL records, then OK


@pytest.mark.slow
def test_runtime_alone_in_a_fresh_venv(tiny_model, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", str(REPO)], check=True, timeout=600)
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert {"onnxruntime", "tokenizers", "numpy", "emotion-onnx"} <= names
    assert not names & {"torch", "transformers", "optimum", "optimum-onnx", "onnx"}
    proc = subprocess.run(
        [str(env_dir / "bin" / "emotion-onnx"), "classify", "--model", str(tiny_model), "i feel wonderful today"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads(proc.stdout)
    assert record["index"] == 0 and record["label"] in {"sadness", "joy", "love", "anger", "fear", "surprise"}
    # the README's first command: the embedded default model, no --model, offline
    proc = subprocess.run(
        [str(env_dir / "bin" / "emotion-onnx"), "classify", "i feel wonderful today"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["label"] == "joy"
    # the export command explains what is missing instead of crashing
    proc = subprocess.run(
        [str(env_dir / "bin" / "emotion-onnx"), "export", "x", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "pip install 'emotion-onnx[export]'" in proc.stderr
    assert "Traceback" not in proc.stderr
