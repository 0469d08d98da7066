"""Long texts: truncate (the reference pipeline's behaviour) and sliding windows."""

from __future__ import annotations

import numpy as np
import pytest

from emotion_onnx import EmotionClassifier
from emotion_onnx.calibration import softmax


@pytest.fixture(scope="module")
def long_texts(test_texts):
    # several thousand tokens each, from real test sentences
    return [" ".join(test_texts[i : i + 220]) for i in (0, 500, 1000)]


@pytest.fixture(scope="module")
def window(tiny_model):
    return EmotionClassifier(tiny_model, variant="fp32-fused", long_text="window", stride=64)


@pytest.fixture(scope="module")
def truncate(tiny_model):
    return EmotionClassifier(tiny_model, variant="fp32-fused")


def test_texts_are_several_thousand_tokens(truncate, long_texts):
    enc = truncate.encoder.encode_windows(long_texts, stride=64)
    for windows in enc:
        tokens = sum(len(w.ids) for w in windows)
        assert tokens > 3000
        assert all(len(w.ids) <= 512 for w in windows)
        assert len(windows) >= 7
        for w in windows:  # every window is a complete model input
            assert w.tokens[0] == "[CLS]" and w.tokens[-1] == "[SEP]"


def test_window_overlap_is_the_stride(truncate, long_texts):
    (windows,) = truncate.encoder.encode_windows(long_texts[:1], stride=64)
    first, second = windows[0].ids[1:-1], windows[1].ids[1:-1]
    assert first[-64:] == second[:64]


def test_window_aggregation_rule(window, truncate, long_texts):
    """Logits = token-count-weighted mean of the windows' logits; probabilities = its softmax."""
    got_logits, got_emb = window.forward(long_texts)
    for i, text in enumerate(long_texts):
        (windows,) = window.encoder.encode_windows([text], stride=64)
        per_window_logits, per_window_emb = window.forward_encodings(windows)
        weights = np.array([len(w.ids) for w in windows], dtype=np.float64)
        expected = (per_window_logits * weights[:, None]).sum(0) / weights.sum()
        np.testing.assert_allclose(got_logits[i], expected, atol=1e-5)
        expected_emb = (per_window_emb * weights[:, None]).sum(0) / weights.sum()
        np.testing.assert_allclose(got_emb[i], expected_emb, atol=1e-5)
    np.testing.assert_allclose(window.predict_proba(long_texts), window.probabilities(got_logits), atol=1e-6)
    np.testing.assert_allclose(
        window.predict_proba(long_texts, calibrated="temperature"), softmax(got_logits, window.temperature), atol=1e-6
    )
    # windowing sees the whole text, truncation only the first 512 tokens
    assert not np.allclose(got_logits, truncate.logits(long_texts), atol=1e-3)


def test_short_text_in_window_mode_equals_truncate(window, truncate, test_texts):
    texts = test_texts[:20]
    np.testing.assert_allclose(window.logits(texts), truncate.logits(texts), atol=1e-5)


def test_truncate_uses_first_512_tokens(truncate, long_texts):
    enc = truncate.encoder.encode(long_texts)
    assert all(len(e.ids) == 512 for e in enc)


def test_bad_window_settings(tiny_model):
    with pytest.raises(ValueError, match="long_text"):
        EmotionClassifier(tiny_model, long_text="chunk")
    clf = EmotionClassifier(tiny_model, long_text="window", stride=400)
    with pytest.raises(ValueError, match="stride"):
        clf("some text")
