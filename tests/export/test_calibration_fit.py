"""Fitting the calibration at export: the temperature, the isotonic map of the top-1 probability, and
the figures recorded beside them."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from emotion_onnx.calibration import apply_top1_map, probabilities, softmax
from emotion_onnx_export.calibration import ece, fit_calibration, fit_isotonic, group_weights, top1_map


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


def _corpus(rng, n, scale, accuracy):
    """Logits whose top label is right with probability `accuracy` whatever their scale: large
    logits overstate it, small ones understate it."""
    labels = rng.integers(0, 6, n)
    top = np.where(rng.random(n) < accuracy, labels, (labels + rng.integers(1, 6, n)) % 6)
    logits = rng.normal(0, 0.3, (n, 6))
    logits[np.arange(n), top] += scale
    return logits, labels


def test_corpora_that_disagree_get_a_temperature_per_text():
    """Two corpora whose confidences mean different things (tweets overconfident, Reddit
    underconfident): one temperature serves neither; a temperature read from each text's logits,
    fitted with both corpora weighing alike, serves both, and the map is fitted with the same weights."""
    rng = np.random.default_rng(0)
    za, ya = _corpus(rng, 3000, 8.0, 0.8)  # sure of itself, often wrong
    zb, yb = _corpus(rng, 300, 1.5, 0.95)  # unsure, nearly always right
    logits, labels = np.vstack([za, zb]), np.concatenate([ya, yb])
    groups = ["tweets"] * len(ya) + ["reddit"] * len(yb)
    single = fit_calibration(logits, labels, "t", with_map=False)
    per_text = fit_calibration(logits, labels, "t", with_map=False, groups=groups)
    assert single.features is None and per_text.features is not None
    assert per_text.details["weighting"].endswith("reddit, tweets")

    def eces(cal):
        return [ece(probabilities(z, cal), y) for z, y in ((za, ya), (zb, yb))]

    assert max(eces(per_text)) < 0.03 < max(eces(single))
    mapped = fit_calibration(logits, labels, "t", groups=groups)
    assert set(mapped.details["ece_after_map_by_corpus"]) == {"reddit", "tweets"}
    assert max(eces(mapped)) < 0.03


def test_group_weights_make_every_corpus_weigh_alike():
    w = group_weights(["a", "a", "a", "b"])
    np.testing.assert_allclose(w, [2 / 3, 2 / 3, 2 / 3, 2.0])
    assert group_weights(["a", "a"]) is None and group_weights(None) is None


def test_weighted_isotonic_equals_repeated_rows():
    conf = np.array([0.2, 0.4, 0.6, 0.8])
    correct = np.array([1.0, 0.0, 1.0, 1.0])
    weighted = fit_isotonic(conf, correct, np.array([1.0, 3.0, 1.0, 2.0]))
    repeated = fit_isotonic(np.repeat(conf, [1, 3, 1, 2]), np.repeat(correct, [1, 3, 1, 2]))
    for a, b in zip(weighted, repeated):
        np.testing.assert_allclose(a, b)
