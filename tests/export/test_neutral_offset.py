"""Balancing the neutral output: the offset that equalises the two recalls on validation texts,
written into the checkpoint's head so that the raw and calibrated answers stay one."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_onnx_export.neutral_offset import apply_offset, balanced_accuracy, fit_offset


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
