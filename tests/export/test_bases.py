"""Compact checkpoints (emotion_onnx_export.bases): int8 rows that load back close to the original,
a new taxonomy keeping the encoder, and `finetune --base file.safetensors` training from one."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from emotion_onnx_export.bases import load_compact, save_compact  # noqa: E402
from helpers import run_cli  # noqa: E402


@pytest.fixture(scope="module")
def tiny(checkpoints):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_pretrained(checkpoints("distilbert-tiny")).eval()


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.numpy()


def test_round_trip_is_close_and_small(tiny, checkpoints, tmp_path):
    path = save_compact(tiny, tmp_path / "tiny.safetensors")
    model, tokenizer = load_compact(path)
    assert model.config.id2label == tiny.config.id2label
    ids = torch.tensor(tokenizer(["i am so happy today", "this is awful"], padding=True)["input_ids"])
    a, b = _logits(tiny, ids), _logits(model, ids)
    assert (a.argmax(1) == b.argmax(1)).all()
    assert np.abs(a - b).max() < 0.05 * np.abs(a).max() + 1e-3
    weights = sum(v.numel() * 4 for v in tiny.state_dict().values())
    assert path.stat().st_size < 0.45 * weights
    assert "input_ids" in tokenizer("hello") and "token_type_ids" not in tokenizer("hello")


def test_new_labels_keep_the_encoder(tiny, tmp_path):
    path = save_compact(tiny, tmp_path / "tiny.safetensors")
    model, _ = load_compact(path, labels=["negative", "positive"], seed=3)
    assert model.config.num_labels == 2 and model.config.id2label == {0: "negative", 1: "positive"}
    old, new = tiny.state_dict(), model.state_dict()
    key = next(k for k in old if k.endswith("q_lin.weight"))
    assert torch.allclose(old[key], new[key], atol=old[key].abs().max().item() / 100)
    assert new["classifier.weight"].shape[0] == 2


def test_finetune_from_a_compact_file(tiny, emotion_dir, tmp_path):
    path = save_compact(tiny, tmp_path / "tiny.safetensors")
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    lines = (emotion_dir / "train.jsonl").read_text().splitlines()
    train.write_text("\n".join(lines[:200]) + "\n")
    val.write_text("\n".join(lines[200:280]) + "\n")
    out = tmp_path / "run"
    proc = run_cli(
        "finetune", "--train", str(train), "--validation", str(val), "--base", str(path), "--out", str(out),
        "--epochs", "1", "--batch-size", "16",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads((out / "metrics.json").read_text())["config"]["base"] == str(path)


def test_a_missing_compact_file_is_a_clean_error(emotion_dir, tmp_path):
    data = str(emotion_dir / "validation.jsonl")
    proc = run_cli(
        "finetune", "--train", data, "--validation", data, "--base", str(tmp_path / "nope.safetensors"),
        "--out", str(tmp_path / "run"), "--epochs", "1",
    )  # fmt: skip
    assert proc.returncode == 2
    assert b"nope.safetensors does not exist" in proc.stderr and b"Traceback" not in proc.stderr


def test_the_release_commands_write_the_base_and_the_embedded_copy(checkpoints, tiny_model, tmp_path):
    """The release steps as the card lists them: `python -m emotion_onnx_export.bases` writes a
    compact base that loads back; `python -m emotion_onnx_export.packaging` copies one variant."""
    import subprocess
    import sys

    from emotion_onnx import EmotionClassifier

    base = tmp_path / "base.safetensors"
    run = [sys.executable, "-m", "emotion_onnx_export.bases", str(checkpoints("distilbert-tiny")), "--out", str(base)]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    model, _ = load_compact(base)
    assert model.config.num_labels == 6
    bad = subprocess.run([*run[:3], str(tmp_path), "--out", str(base)], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a checkpoint directory" in bad.stderr
    dest = tmp_path / "embedded"
    pack = [sys.executable, "-m", "emotion_onnx_export.packaging", str(tiny_model), "--variant", "int8",
            "--dest", str(dest), "--name", "tiny"]  # fmt: skip
    proc = subprocess.run(pack, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    clf = EmotionClassifier(dest)
    assert clf.manifest.name == "tiny" and list(clf.manifest.variants) == ["int8"]
    assert sorted(p.name for p in dest.iterdir()) == ["manifest.json", "model_int8.onnx", "tokenizer.json"]
