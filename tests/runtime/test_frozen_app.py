"""A desktop app frozen with PyInstaller (the package's own hook, found through its pyinstaller40
entry point) starts, carries the embedded model, and answers as the library does; it can also load
a model directory that sits beside the executable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import emotion_onnx
from emotion_onnx import EmotionClassifier
from emotion_onnx.__pyinstaller import BUILD_SIDE_EXCLUDES

pytest.importorskip("PyInstaller")
# where emotion_onnx is imported from: an editable install's import hook is invisible to PyInstaller's
# module finder, so the folder is named; for an installed wheel it is site-packages itself
PACKAGE_ROOT = Path(emotion_onnx.__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

APP = """\
import json, sys
from pathlib import Path
from emotion_onnx import EmotionClassifier

args = sys.argv[1:]
model = None
if args and args[0] == "--model-beside":
    model, args = Path(sys.executable).parent / "model", args[1:]
clf = EmotionClassifier(model, intra_op_threads=1)
neutral = clf(args, neutral=True) if clf.has_neutral else None
print(json.dumps({"labels": clf.labels, "answers": clf(args), "neutral": neutral}))
"""
TEXTS = ["i feel wonderful today", "my flight got cancelled and nobody at the desk will help"]


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    work = tmp_path_factory.mktemp("frozen")
    (work / "app.py").write_text(APP)
    proc = subprocess.run(
        [sys.executable, "-m", "PyInstaller", "--onefile", "--noconfirm", "--log-level", "WARN",
         "--distpath", str(work / "dist"), "--workpath", str(work / "build"), "--specpath", str(work),
         "--paths", str(PACKAGE_ROOT), *BUILD_SIDE_EXCLUDES, str(work / "app.py")],
        capture_output=True, text=True, timeout=900, cwd=work,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work / "dist" / "app"


def _run(exe, *args: str) -> dict:
    proc = subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_frozen_app_answers_as_the_library(frozen):
    got = _run(frozen, *TEXTS)
    clf = EmotionClassifier()
    assert got["labels"] == clf.labels
    want = clf(TEXTS)
    assert [a["label"] for a in got["answers"]] == [w["label"] for w in want]
    assert [a["score"] for a in got["answers"]] == pytest.approx([w["score"] for w in want], abs=1e-6)
    if clf.has_neutral:
        assert [a["label"] for a in got["neutral"]] == [w["label"] for w in clf(TEXTS, neutral=True)]


def test_the_frozen_app_carries_no_build_side(frozen):
    size = os.path.getsize(frozen)
    assert size < 120_000_000, size  # torch alone would be several times this


def test_a_model_beside_the_executable(frozen, tiny_model, tmp_path):
    exe = tmp_path / "app"
    shutil.copy2(frozen, exe)
    shutil.copytree(tiny_model, tmp_path / "model")
    got = _run(exe, "--model-beside", *TEXTS)
    want = EmotionClassifier(tiny_model)(TEXTS)
    assert [a["label"] for a in got["answers"]] == [w["label"] for w in want]
