"""Canonical-width batching: every text padded to a width that depends on it alone, packed under the
budget, order restored, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_onnx import EmotionClassifier
from emotion_onnx.batching import canonical_width, plan_batches
from emotion_onnx.engines import OnnxruntimeEngine, OpenvinoEngine

WORDS = ["i", "feel", "so", "happy", "sad", "angry", "today", "because", "the", "weather", "is", "awful", "love"]


# the width steps the engines use (onnxruntime pads nothing; OpenVINO rounds up to a multiple of 4)
STEPS_IN_USE = sorted({OnnxruntimeEngine.width_step, OpenvinoEngine.width_step})


@pytest.mark.parametrize("step", STEPS_IN_USE)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=512), max_size=300),
    budget=st.integers(min_value=1, max_value=10_000),
    max_size=st.integers(min_value=1, max_value=64),
)
def test_plan_covers_every_item_once_within_budget(step, lengths, budget, max_size):
    batches = plan_batches(lengths, budget, max_size, step)
    flat = [i for b, _ in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for batch, width in batches:
        assert 1 <= len(batch) <= max_size
        assert len(batch) * width <= budget or len(batch) == 1
        # every text at its own canonical width: what its neighbours are changes nothing
        assert all(canonical_width(lengths[i], step) == width for i in batch)
        assert all(width - step < lengths[i] <= width for i in batch)
    assert [w for _, w in batches] == sorted(w for _, w in batches)


def test_canonical_width():
    assert [canonical_width(n) for n in (0, 1, 4, 5, 8, 9, 512)] == [4, 4, 4, 8, 8, 12, 512]


@pytest.fixture(scope="module")
def bucketed(tiny_model):
    # a small budget so that batches really are packed and split
    return EmotionClassifier(tiny_model, max_batch_tokens=256, max_batch_size=16)  # the default: int8


@pytest.fixture(scope="module")
def single(tiny_model):
    return EmotionClassifier(tiny_model, max_batch_size=1)


text_strategy = st.lists(st.sampled_from(WORDS), min_size=0, max_size=120).map(" ".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(text_strategy, min_size=1, max_size=40))
def test_bucketed_equals_one_at_a_time(bucketed, single, texts):
    batched = bucketed.predict_proba(texts)
    alone = np.vstack([single.predict_proba([t]) for t in texts])
    assert batched.shape == (len(texts), 6)
    np.testing.assert_allclose(batched, alone, atol=1e-5, rtol=0)
