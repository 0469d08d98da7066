"""Applying a calibration at run time: the temperature, then the top-1 map; the argmax never moves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emotion_onnx.calibration import apply_top1_map, probabilities, softmax
from emotion_onnx.manifest import Calibration, ConfidenceMap

finite = st.floats(-60, 60, allow_nan=False, width=32)


@st.composite
def maps(draw):
    n = draw(st.integers(2, 12))
    x = sorted(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    y = sorted(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    return ConfidenceMap(tuple(x), tuple(y))


@settings(max_examples=300, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 9), st.integers(2, 7)), elements=finite), m=maps(),
       t=st.floats(0.1, 10))  # fmt: skip
def test_the_calibrated_argmax_is_the_raw_argmax_and_rows_sum_to_1(logits, m, t):
    cal = Calibration(t, "calibrated", m)
    probs = probabilities(logits, cal)
    assert np.array_equal(probs.argmax(axis=1), logits.argmax(axis=1)) or np.array_equal(
        probs.argmax(axis=1),
        softmax(logits, t).argmax(axis=1),  # a logit tie can round either way in softmax
    )
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert (probs >= 0).all()


@settings(max_examples=100, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(2, 6), st.just(6)), elements=finite), m=maps())
def test_one_row_and_the_batch_give_the_same_numbers(logits, m):
    cal = Calibration(1.3, "calibrated", m)
    batch = probabilities(logits, cal)
    rows = np.vstack([probabilities(logits[i : i + 1], cal) for i in range(len(logits))])
    np.testing.assert_allclose(batch, rows, atol=1e-12)


def test_the_top_becomes_the_mapped_value_and_the_others_scale_in_proportion():
    probs = np.array([[0.6, 0.3, 0.1]])
    out = apply_top1_map(probs, (0.5, 0.7), (0.4, 0.5))  # 0.6 -> 0.45
    np.testing.assert_allclose(out, [[0.45, 0.3 * 0.55 / 0.4, 0.1 * 0.55 / 0.4]])
    clamped = apply_top1_map(np.array([[0.5, 0.45, 0.05]]), (0.0, 1.0), (0.0, 0.1))  # would fall below 0.45
    assert clamped.argmax() == 0 and clamped[0, 0] >= clamped[0, 1]


def test_modes():
    logits = np.array([[2.0, 0.5, -1.0]])
    cal = Calibration(2.0, "calibrated", ConfidenceMap((0.0, 1.0), (0.2, 0.6)))
    np.testing.assert_allclose(probabilities(logits, cal, "none"), softmax(logits))
    np.testing.assert_allclose(probabilities(logits, cal, "temperature"), softmax(logits, 2.0))
    full = probabilities(logits, cal)
    assert full[0, 0] == pytest.approx(0.2 + 0.4 * softmax(logits, 2.0)[0, 0])
    assert np.array_equal(probabilities(logits, None), softmax(logits))  # no calibration: plain softmax
    with pytest.raises(ValueError, match="calibration mode"):
        probabilities(logits, cal, "isotonic")


# ---------------------------------------------------------------------------- both answers of a neutral model
@pytest.fixture(scope="module")
def neutral_clf(tiny_neutral_model):
    from emotion_onnx import EmotionClassifier

    return EmotionClassifier(tiny_neutral_model)


@settings(max_examples=200, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 9), st.just(7)), elements=finite), neutral=st.booleans(),
       calibrated=st.sampled_from([True, "temperature", False]))  # fmt: skip
def test_both_answers_keep_the_raw_argmax_and_sum_to_1(neutral_clf, logits, neutral, calibrated):
    columns = neutral_clf.manifest.answer_columns(neutral)
    raw = logits[:, columns]
    probs = neutral_clf.probabilities(logits, calibrated, neutral)
    assert probs.shape == (len(logits), 7 if neutral else 6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    calibration = neutral_clf.variant.neutral_calibration if neutral else neutral_clf.variant.calibration
    t = calibration.temperature if calibrated else 1.0
    assert np.array_equal(probs.argmax(axis=1), raw.argmax(axis=1)) or np.array_equal(
        probs.argmax(axis=1),
        softmax(raw, t).argmax(axis=1),  # a logit tie can round either way
    )
