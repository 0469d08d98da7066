"""Fitting the calibration at export: the temperature, the isotonic map of the top-1 probability, and
the figures recorded beside them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from emotion_onnx.calibration import apply_top1_map, softmax
from emotion_onnx_export.calibration import ece, fit_calibration, fit_isotonic, top1_map


def test_pool_adjacent_violators_by_hand():
    # already monotone: every point is its own block
    x, y = fit_isotonic(np.array([0.2, 0.5, 0.9]), np.array([0, 0, 1]))
    np.testing.assert_allclose(x, [0.2, 0.5, 0.9])
    np.testing.assert_allclose(y, [0, 0, 1])
    # a violation (right at 0.6, wrong at 0.7) is pooled into one block at their means
    x, y = fit_isotonic(np.array([0.7, 0.9, 0.6, 0.3]), np.array([0, 1, 1, 0]))
    np.testing.assert_allclose(x, [0.3, 0.65, 0.9])
    np.testing.assert_allclose(y, [0.0, 0.5, 1.0])
    # equal confidences are one point: here 0.5 right twice in four
    x, y = fit_isotonic(np.array([0.5, 0.5, 0.5, 0.5, 0.9]), np.array([1, 0, 1, 0, 1]))
    np.testing.assert_allclose(x, [0.5, 0.9])
    np.testing.assert_allclose(y, [0.5, 1.0])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.17, 1.0), st.booleans()), min_size=1, max_size=300))
def test_the_map_is_monotone_and_stays_off_certainty(points):
    conf = np.array([c for c, _ in points])
    correct = np.array([k for _, k in points])
    probs = np.column_stack([conf, (1 - conf)[:, None] * np.full((len(conf), 5), 0.2)])
    labels = np.where(correct, 0, 1)
    m = top1_map(probs, labels)
    assert all(b >= a for a, b in zip(m.x, m.x[1:])) and all(b >= a for a, b in zip(m.y, m.y[1:]))
    assert 0.0 < min(m.y) and max(m.y) < 1.0


def test_the_map_repairs_what_no_temperature_can():
    """Two populations a temperature cannot both fix: a middle band right half the time while
    claiming 0.8, and a top band right more often than it claims."""
    rng = np.random.default_rng(0)
    n = 20_000
    middle = rng.random(n) < 0.3
    margin = np.where(middle, 1.4, rng.uniform(3.0, 6.0, n))
    logits = np.zeros((n, 6))
    labels = np.zeros(n, dtype=int)
    wrong_mid = middle & (rng.random(n) < 0.5)
    wrong_top = ~middle & (rng.random(n) < 0.01)
    labels[wrong_mid | wrong_top] = 1
    logits[:, 0] = margin
    cal = fit_calibration(logits[: n // 2], labels[: n // 2], "synthetic")
    after_t = softmax(logits[n // 2 :], cal.temperature)
    mapped = apply_top1_map(after_t, cal.top1_map.x, cal.top1_map.y)
    assert ece(mapped, labels[n // 2 :]) < 0.5 * ece(after_t, labels[n // 2 :])
    d = cal.details
    assert d["ece_after_map"] < d["ece_after_temperature"] and d["nll_after_map"] < d["nll_before"]
    assert cal.status == "calibrated" and d["map_knots"] == len(cal.top1_map.x)


def test_a_temperature_at_the_bound_is_not_called_calibrated():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 6)) * 40  # huge random logits: confidence that means nothing
    cal = fit_calibration(logits, rng.integers(0, 6, 500), "random")
    assert cal.status == "uncalibrated" and "bound" in cal.details["warnings"][0]
    assert fit_calibration(logits, None, "unlabelled").status == "uncalibrated"
