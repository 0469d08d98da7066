"""Token-budget bucketing: sorted, packed under the budget, order restored, nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emotion_onnx import EmotionClassifier
from emotion_onnx.batching import PADDING_RATIO, PADDING_SLACK, plan_batches

WORDS = ["i", "feel", "so", "happy", "sad", "angry", "today", "because", "the", "weather", "is", "awful", "love"]


@given(
    lengths=st.lists(st.integers(min_value=1, max_value=512), max_size=300),
    budget=st.integers(min_value=1, max_value=10_000),
    max_size=st.integers(min_value=1, max_value=64),
)
def test_plan_covers_every_item_once_within_budget(lengths, budget, max_size):
    batches = plan_batches(lengths, budget, max_size)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    for batch in batches:
        assert 1 <= len(batch) <= max_size
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= budget or len(batch) == 1
        shortest, longest = min(lengths[i] for i in batch), max(lengths[i] for i in batch)
        assert longest <= PADDING_RATIO * shortest + PADDING_SLACK  # bounded padding
    # sorted by length across the plan
    assert [lengths[i] for i in flat] == sorted(lengths)


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
