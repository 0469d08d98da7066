"""Applying a calibration at run time: the temperature, then the top-1 map; the argmax never moves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from emotion_onnx.calibration import (
    TEMPERATURE_SPREAD,
    apply_top1_map,
    probabilities,
    softmax,
    temperature_features,
    temperatures,
)
from emotion_onnx.manifest import Calibration, ConfidenceMap, TemperatureFeatures

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


weights5 = st.lists(st.floats(-2, 2, allow_nan=False), min_size=5, max_size=5).map(tuple)


@settings(max_examples=300, deadline=None)
@given(logits=arrays(np.float64, st.tuples(st.integers(1, 9), st.just(7)), elements=finite), m=maps(),
       t=st.floats(0.1, 10), w=weights5, with_neutral=st.booleans())  # fmt: skip
def test_a_temperature_per_text_keeps_the_argmax_and_rows_sum_to_1(logits, m, t, w, with_neutral):
    """Temperature features (schema 4): each row its own positive temperature, so the top label
    stays, the rows sum to 1, and a row alone gets what it gets in the batch."""
    answer, neutral = (logits, logits[:, 6]) if with_neutral else (logits[:, :6], None)
    cal = Calibration(t, "calibrated", m, {}, TemperatureFeatures(w))
    probs = probabilities(answer, cal, "calibrated", neutral)
    per_row = temperatures(answer, cal, neutral)
    assert np.shape(per_row) == (len(answer),) and (per_row > 0).all()
    assert np.array_equal(probs.argmax(axis=1), answer.argmax(axis=1)) or np.array_equal(
        probs.argmax(axis=1), softmax(answer, per_row).argmax(axis=1)
    )
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    rows = np.vstack(
        [probabilities(answer[i : i + 1], cal, "calibrated", None if neutral is None else neutral[i : i + 1])
         for i in range(len(answer))]
    )  # fmt: skip
    np.testing.assert_allclose(probs, rows, atol=1e-12)


def test_temperature_features_by_hand():
    z = np.array([[2.0, 0.5, -1.0]])
    lse = 2.0 + np.log(1 + np.exp(-1.5) + np.exp(-3.0))
    np.testing.assert_allclose(temperature_features(z, np.array([1.0])), [[1.5, 2.0, lse, 1.0, -1.0]])
    np.testing.assert_allclose(temperature_features(z), [[1.5, 2.0, lse, 0.0, 0.0]])  # no neutral output
    cal = Calibration(2.0, "calibrated", None, {}, TemperatureFeatures((0.1, 0.0, 0.0, 0.0, 0.0)))
    np.testing.assert_allclose(temperatures(z, cal), [2.0 * np.exp(0.15)])
    far = Calibration(2.0, "calibrated", None, {}, TemperatureFeatures((100.0, 0.0, 0.0, 0.0, 0.0)))
    np.testing.assert_allclose(temperatures(z, far), [2.0 * TEMPERATURE_SPREAD])  # held within the spread
    np.testing.assert_allclose(probabilities(z, cal, "temperature"), softmax(z, 2.0 * np.exp(0.15)))
