"""research/compare_calibrators.py: vector scaling reaches its optimum, and the comparison runs
end to end on real exported models and the real splits."""

import json

import numpy as np
import pytest

from helpers import load_script

pytestmark = pytest.mark.research


def _nll(z, y):
    from emotion_onnx_export.calibration import log_softmax

    return -log_softmax(z)[np.arange(len(y)), y].mean()


def test_vector_scaling_recovers_a_known_miscalibration():
    from emotion_onnx_export.calibration import fit_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 4))
    true_w, true_b = np.array([0.5, 1.0, 1.5, 0.8]), np.array([0.3, -0.2, 0.0, 0.4])
    z = logits * true_w + true_b
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random((len(p), 1)) > p.cumsum(axis=1)).sum(axis=1).clip(max=3)
    w, b = load_script("research", "compare_calibrators").fit_vector_scaling(logits, y)
    # the softmax is unchanged by adding a constant to every bias, so compare the centred biases
    np.testing.assert_allclose(w, true_w, atol=0.06)
    np.testing.assert_allclose(b - b.mean(), true_b - true_b.mean(), atol=0.08)
    # at least as good as the true parameters on the data it was fitted to, and better than one temperature
    fitted = _nll(logits * w + b, y)
    assert fitted <= _nll(z, y) + 1e-6
    assert fitted < _nll(logits / fit_temperature(logits, y), y) - 0.01


def _draw(rng, p):
    return (rng.random((len(p), 1)) > p.cumsum(axis=1)).sum(axis=1).clip(max=p.shape[1] - 1)


def test_dirichlet_recovers_a_known_map_on_the_log_probabilities():
    from emotion_onnx_export.calibration import log_softmax, softmax

    cc = load_script("research", "compare_calibrators")
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(20000, 4))
    true_w = np.array([[1.0, 0.4, 0, 0], [0, 0.6, 0, 0.5], [0.3, 0, 1.2, 0], [0, 0, 0, 0.8]])
    true_b = np.array([0.2, -0.1, 0.0, 0.3])
    z = log_softmax(logits) @ true_w.T + true_b
    y = _draw(rng, softmax(z))
    w, b = cc.fit_dirichlet(logits, y, lam=0.0)
    # adding one row vector to every row of W (or a constant to b) leaves the softmax unchanged
    np.testing.assert_allclose(w - w.mean(axis=0), true_w - true_w.mean(axis=0), atol=0.06)
    assert np.abs(cc.dirichlet_probs(logits, w, b) - softmax(z)).mean() < 0.01
    fitted = _nll(log_softmax(logits) @ w.T + b, y)
    assert fitted <= _nll(z, y) + 1e-6  # the optimum, at least as good as the truth on its own data
    dw, db = cc.fit_dirichlet(logits, y, lam=1e6)  # the off-diagonal terms penalised away
    assert fitted < _nll(log_softmax(logits) @ dw.T + db, y) - 0.01  # they matter here
    # cross-validation keeps the off-diagonal terms when they are real ...
    assert cc.choose_dirichlet_lambda(logits[:3000], y[:3000]) <= 0.1
    # ... and penalises them when the truth is one temperature
    plain = rng.normal(0, 3, size=(1000, 4))
    y_plain = _draw(rng, softmax(plain, 2.0))
    assert cc.choose_dirichlet_lambda(plain, y_plain) >= 10
    w, _ = cc.fit_dirichlet(plain, y_plain, lam=1e6)
    assert np.abs(w - np.diag(np.diag(w))).max() < 1e-4


def test_one_vs_rest_isotonic_gives_distributions_and_calibrates_each_class():
    from emotion_onnx.calibration import softmax

    cc = load_script("research", "compare_calibrators")
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, size=(20000, 3))
    y = _draw(rng, softmax(logits, 2.5))  # the raw softmax is overconfident
    probs = softmax(logits)
    maps = cc.fit_one_vs_rest_isotonic(probs[:10000], y[:10000])
    out = cc.one_vs_rest_probs(probs[10000:], maps)
    np.testing.assert_allclose(out.sum(axis=1), 1.0)
    assert np.all(out > 0)
    for knots_x, knots_y in maps:
        assert np.all(np.diff(knots_x) >= 0) and np.all(np.diff(knots_y) >= 0)

    def classwise_gap(p):  # the mean over classes of |mean probability - frequency| in 10 bins
        gaps = []
        for c in range(3):
            bins = np.minimum((p[:, c] * 10).astype(int), 9)
            frequency = y[10000:] == c
            gaps.append(
                sum(abs(p[bins == i, c].mean() - frequency[bins == i].mean()) * (bins == i).mean() for i in set(bins))
            )
        return np.mean(gaps)

    assert classwise_gap(probs[10000:]) > 0.05 and classwise_gap(out) < 0.02


def test_isotonic_calibrates_where_a_temperature_cannot():
    """Confidences whose accuracy is flat over 0.6-0.9 (as the real model's mid-range is):
    no temperature fixes that, the isotonic map fitted on one half does on the other."""
    from emotion_onnx_export.calibration import fit_isotonic, top_label_ece

    rng = np.random.default_rng(0)
    conf = np.where(rng.random(20000) < 0.8, rng.uniform(0.97, 1.0, 20000), rng.uniform(0.6, 0.9, 20000))
    truth = np.where(conf > 0.95, conf, 0.5)  # the mid-range is a coin flip whatever it says
    correct = rng.random(20000) < truth
    knots = fit_isotonic(conf[:10000], correct[:10000])
    before = top_label_ece(conf[10000:], correct[10000:])
    after = top_label_ece(np.interp(conf[10000:], *knots), correct[10000:])
    assert before > 0.04 and after < 0.01
    assert np.all(np.diff(knots[1]) >= 0)  # monotone


def test_compare_calibrators_end_to_end(tiny_model, emotion_dir, tmp_path, capsys):
    runs = []
    for name in ("run_a", "run_b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "onnx").symlink_to(tiny_model, target_is_directory=True)
        runs.append(str(tmp_path / name))
    out = tmp_path / "calibrators.json"
    assert (
        load_script("research", "compare_calibrators").main([*runs, "--data", str(emotion_dir), "--out", str(out)]) == 0
    )
    rows = json.loads(out.read_text())["rows"]
    per_model = {}
    for r in rows:
        per_model.setdefault(r["model"], []).append(r["calibrator"])
    # each run gets every calibrator; the ensemble of both gets all but vector scaling and Dirichlet
    assert (
        per_model["run_a"]
        == per_model["run_b"]
        == [
            "none",
            "temperature",
            "vector",
            "dirichlet",
            "temperature + isotonic",
            "temperature + one-vs-rest isotonic",
            "oracle temperature",
        ]
    )
    assert per_model["run_a+run_b"] == [
        "none",
        "temperature",
        "temperature + isotonic",
        "temperature + one-vs-rest isotonic",
        "oracle temperature",
    ]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1 and 0 <= r["ece"] <= 1
    # the oracle temperature is chosen on test, so no temperature fitted on validation beats it
    by = {(r["model"], r["calibrator"]): r for r in rows}
    assert by["run_a", "oracle temperature"]["ece"] <= by["run_a", "temperature"]["ece"] + 1e-9
    # the isotonic map changes confidences only, never predictions
    iso = by["run_a", "temperature + isotonic"]
    assert (iso["accuracy"], iso["macro_f1"], iso["T"]) == (
        by["run_a", "temperature"]["accuracy"],
        by["run_a", "temperature"]["macro_f1"],
        by["run_a", "temperature"]["T"],
    )
    assert iso["knots"] >= 1
    assert by["run_a", "dirichlet"]["lambda"] in load_script("research", "compare_calibrators").DIRICHLET_LAMBDAS
    assert np.array(by["run_a", "dirichlet"]["matrix"]).shape == (6, 6)
    # two copies of one model: their ensemble is the model itself
    assert by["run_a+run_b", "temperature"]["accuracy"] == by["run_a", "temperature"]["accuracy"]
    assert "Lowest test ECE" in capsys.readouterr().out
