"""Balancing the neutral output: the offset that equalises the two recalls on validation texts,
written into the checkpoint's head so that the raw and calibrated answers stay one."""

from __future__ import annotations

import argparse
import subprocess
import sys

import numpy as np
import pytest

from emotion_onnx_export.neutral_offset import (
    apply_offset,
    balanced_accuracy,
    emotional_accuracy,
    fit_offset,
    parse_floor,
)


def test_the_offset_corrects_a_model_that_says_neutral_too_readily():
    rng = np.random.default_rng(0)
    labels = np.array([6] * 300 + list(rng.integers(0, 6, 300)))
    logits = rng.normal(0, 1, (600, 7))
    logits[np.arange(600), labels] += 2.0  # right, mostly
    logits[:, 6] += 1.5  # and too fond of neutral
    offset, score = fit_offset(logits, labels, 6)
    assert -2.5 < offset < -0.5
    assert score > balanced_accuracy(logits, labels, 6, 0.0)
    assert fit_offset(logits - np.array([0, 0, 0, 0, 0, 0, 1.5]), labels, 6)[0] == pytest.approx(offset + 1.5, abs=0.2)


def test_a_balanced_model_is_left_alone():
    labels = np.array([6, 6, 0, 1])
    logits = np.eye(7)[labels] * 5
    assert fit_offset(logits, labels, 6)[0] == 0.0
    with pytest.raises(ValueError, match="both neutral and not"):
        fit_offset(logits[:2], labels[:2], 6)


def test_apply_offset_moves_only_the_neutral_logit(checkpoints):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = checkpoints("distilbert-tiny-neutral")
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    feeds = AutoTokenizer.from_pretrained(path)(["hmm ok", "i am thrilled"], return_tensors="pt", padding=True)
    with torch.no_grad():
        before = model(**feeds).logits.clone()
        apply_offset(model, 6, -0.75)
        after = model(**feeds).logits
    np.testing.assert_allclose((after - before).numpy(), [[0] * 6 + [-0.75]] * 2, atol=1e-6)


def test_an_emotional_floor_moves_the_offset_only_as_far_as_it_needs():
    rng = np.random.default_rng(1)
    labels = np.array([6] * 400 + list(rng.integers(0, 6, 400)))
    logits = rng.normal(0, 1, (800, 7))
    logits[np.arange(800), labels] += 2.0
    balanced, _ = fit_offset(logits, labels, 6)
    rows = np.ones(800, dtype=bool)
    at_balance = emotional_accuracy(logits, labels, 6, balanced)
    share = at_balance + 0.05
    offset, score = fit_offset(logits, labels, 6, (rows, share))
    assert offset < balanced  # less neutral, so more emotional texts keep their emotion
    assert emotional_accuracy(logits, labels, 6, offset) >= share
    # the nearest offset to the balance that keeps the floor: one step closer would not
    assert emotional_accuracy(logits, labels, 6, offset + 0.05) < share or offset + 0.05 > balanced
    assert fit_offset(logits, labels, 6, (rows, at_balance - 0.05))[0] == balanced  # a floor already kept
    with pytest.raises(ValueError, match="keeps 100% of the emotional texts"):
        fit_offset(logits, labels, 6, (rows, 1.0))


@pytest.mark.parametrize("value", ["goemotions", "goemotions=", "=0.8", "goemotions=1.5", "goemotions=x"])
def test_a_bad_floor_is_refused(value):
    with pytest.raises(argparse.ArgumentTypeError, match="SOURCE=SHARE"):
        parse_floor(value)
    assert parse_floor("goemotions=0.8") == ("goemotions", 0.8)


def test_the_command_records_the_floor_and_refuses_an_unknown_source(checkpoints, tmp_path):
    import json
    import shutil

    from helpers import assert_clean_error

    run = tmp_path / "run"
    shutil.copytree(checkpoints("distilbert-tiny-neutral"), run / "checkpoint")
    (run / "metrics.json").write_text("{}")
    rows = [("hmm ok", "neutral", "a"), ("i am thrilled to bits", "joy", "a"), ("that is so unfair", "anger", "a"),
            ("the bus comes at nine", "neutral", "b"), ("i miss her", "sadness", "b")] * 4  # fmt: skip
    val = tmp_path / "val.jsonl"
    val.write_text("".join(json.dumps({"text": t, "label": lab, "source": s}) + "\n" for t, lab, s in rows))
    command = [sys.executable, "-m", "emotion_onnx_export.neutral_offset", str(run), "--validation", str(val)]
    proc = subprocess.run([*command, "--emotional-floor", "c=0.5"], capture_output=True)
    assert_clean_error(proc, "'c'")
    proc = subprocess.run([*command, "--emotional-floor", "a=0.01"], capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()
    recorded = json.loads((run / "metrics.json").read_text())["neutral_offset"]
    assert recorded["emotional_floor"]["source"] == "a" and recorded["emotional_floor"]["share"] == 0.01
    assert recorded["emotional_floor"]["emotional_accuracy_after"] >= 0.01
