"""The README and docs/: every generated figure is what benchmarks/update_docs.py writes from
benchmarks/results/, every relative link resolves, and the README stays a front page."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from helpers import REPO, load_script

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "benchmarks" / "README.md"]


def test_generated_figures_are_up_to_date():
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "update_docs.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_relative_links_resolve():
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text()):
            if not target.startswith(("http://", "https://", "mailto:")) and not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(REPO)} -> {target}")
    assert not broken, broken


def test_the_readme_is_a_front_page():
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    for fragment in ("neutral on\nrequest", "English only", "calibrated probabilities"):
        assert fragment in text


def test_a_table_whose_model_or_code_changed_is_stale(tmp_path, monkeypatch):
    """A results file records the model manifests and code files it describes by hash
    (common.provenance); update_docs.changed_since names the ones that no longer match."""
    common = load_script("benchmarks", "common")
    update_docs = load_script("benchmarks", "update_docs")
    model = tmp_path / "model"
    model.mkdir()
    (model / "manifest.json").write_text('{"schema_version": 3}')
    code = "runtime/emotion_onnx/batching.py"
    record = common.provenance([model], [code])
    assert record["models"][0]["path"] == str(model) and set(record["code"]) == {code}
    monkeypatch.setattr(update_docs, "RESULTS", tmp_path)
    monkeypatch.setattr(update_docs, "REPO", tmp_path)  # the model lies in it, as the embedded one in ours
    (tmp_path / "runtime" / "emotion_onnx").mkdir(parents=True)
    (tmp_path / code).write_bytes((REPO / code).read_bytes())
    record["models"][0]["path"] = "model"
    (tmp_path / "bench.json").write_text(json.dumps({"provenance": record}))
    assert update_docs.changed_since("bench") == []
    (model / "manifest.json").write_text('{"schema_version": 4}')  # new weights or calibration
    (tmp_path / code).write_text("# changed\n")
    assert update_docs.changed_since("bench") == ["the model model", code]
    (tmp_path / "old.json").write_text(json.dumps({"figures": 1}))
    assert update_docs.changed_since("old") is None  # measured before provenance was recorded
