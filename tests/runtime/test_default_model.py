"""The embedded default model, gated in CI without torch: against the PyTorch checkpoint's logits
on the emotion test split, on its calibration there, and on the hand-written real-world set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_onnx import EmotionClassifier, default_model_dir
from emotion_onnx_export import data
from emotion_onnx_export.calibration import ece
from helpers import REPO, load_script

CARD_DIR = REPO / "models" / "emotion-minilm-l6"
REALWORLD = REPO / "models" / "realworld" / "eval.jsonl"
LABELS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
FIGURES = json.loads((CARD_DIR / "card_figures.json").read_text())


@pytest.fixture(scope="module")
def default_clf():
    assert (default_model_dir() / "manifest.json").is_file(), "the embedded default model is missing"
    return EmotionClassifier()


@pytest.fixture(scope="module")
def test_split(emotion_dir):
    split = data.read_split("test")
    return split.texts, np.array(split.labels)


def test_embedded_model_is_small_and_int8(default_clf):
    total = sum(p.stat().st_size for p in default_model_dir().iterdir())
    assert total <= 30_000_000, total
    assert default_clf.variant.name == "int8"
    assert default_clf.variant.batch_invariant
    assert default_clf.labels == LABELS
    assert default_clf.manifest.architecture == "distilbert"


def test_shipped_int8_against_pytorch_logits_without_torch(default_clf, test_split):
    texts, labels = test_split
    reference = np.load(CARD_DIR / "pytorch_test_logits.npy")
    assert reference.shape == (len(texts), 6)
    logits = default_clf.logits(texts)
    agreement = (logits.argmax(1) == reference.argmax(1)).mean()
    acc_int8 = (logits.argmax(1) == labels).mean()
    acc_torch = (reference.argmax(1) == labels).mean()
    assert agreement >= 0.995, agreement
    assert abs(acc_int8 - acc_torch) <= 0.003, (acc_int8, acc_torch)
    assert acc_int8 >= 0.93 - 1e-9, acc_int8
    assert acc_int8 == pytest.approx(FIGURES["sets"]["test"]["int8"]["accuracy"], abs=0.0015)  # what the card says
    probs = default_clf.predict_proba(texts)  # the calibration every adapter applies
    assert ece(probs, labels) <= 0.015


def test_shipped_model_on_the_real_world_set(default_clf):
    rows = [json.loads(line) for line in REALWORLD.read_text().splitlines() if line.strip()]
    predicted = [p["label"] for p in default_clf([r["text"] for r in rows])]
    accuracy = np.mean([p == r["label"] for p, r in zip(predicted, rows)])
    assert accuracy >= 0.85 - 1e-9, accuracy  # the target, met by the shipped model
    assert accuracy == pytest.approx(FIGURES["sets"]["eval"]["int8"]["accuracy"], abs=1.5 / len(rows))


def test_readme_example(default_clf):
    assert default_clf("i feel wonderful today")[0]["label"] == "joy"
    assert default_clf("i am so scared of what might happen")[0]["label"] == "fear"


WORDS = ["i", "feel", "so", "happy", "sad", "angry", "scared", "today", "because", "the", "news", "is", "awful"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    texts=st.lists(st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join), min_size=1, max_size=16),
    neighbours=st.lists(st.lists(st.sampled_from(WORDS), max_size=120).map(" ".join), max_size=16),
)
def test_shipped_variant_is_batch_invariant(default_clf, texts, neighbours):
    batched = default_clf.logits([*texts, *neighbours])[: len(texts)]
    alone = np.vstack([default_clf.logits([t]) for t in texts])
    np.testing.assert_allclose(batched, alone, atol=1e-6, rtol=0)


def test_ece_sampling_floor():
    floor = load_script("models", "build_card").ece_sampling_floor
    # certain, one-hot probabilities: the drawn labels always equal the prediction, so no ECE at all
    assert floor(np.eye(6)[np.arange(600) % 6], draws=20).max() == 0.0
    # a coin flip over 2 classes: the ECE is |accuracy - 0.5|, binomial noise of about 0.4 / sqrt(n)
    coin = np.full((2000, 2), 0.5)
    noise = floor(coin, draws=400)
    assert 0.004 < np.median(noise) < 0.012
    # and it shrinks with more texts
    assert np.median(floor(np.full((20000, 2), 0.5), draws=100)) < np.median(noise) / 2
