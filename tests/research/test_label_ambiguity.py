"""research/label_ambiguity.py: the feeling word, its training purity, and the confidence bands."""

from collections import Counter

import numpy as np
import pytest

from helpers import load_script

pytestmark = pytest.mark.research


def test_feeling_word_skips_fillers():
    la = load_script("research", "label_ambiguity")
    assert la.feeling_word("i feel so stressed about work") == "stressed"
    assert la.feeling_word("Im Feeling really a bit WEIRD today") == "weird"
    assert la.feeling_word("i felt like i am in paradise") == "paradise"
    assert la.feeling_word("i have no feelings about it") is None  # "feelings" is not "feel"
    assert la.feeling_word("a text without the verb") is None
    assert la.feeling_word("i feel so very much") is None  # only fillers follow


def test_word_label_counts_and_purity_by_hand():
    la = load_script("research", "label_ambiguity")
    texts = ["i feel stressed", "i am feeling stressed", "i felt so stressed", "i feel happy", "nothing here"]
    counts = la.word_label_counts(texts, [0, 3, 0, 1, 2])
    assert counts == {"stressed": Counter({0: 2, 3: 1}), "happy": Counter({1: 1})}
    assert la.purity(counts["stressed"]) == 2 / 3 and la.purity(counts["happy"]) == 1.0


def test_bands_follow_the_ece_bins_and_count_every_text():
    la = load_script("research", "label_ambiguity")
    counts = {"split": Counter({0: 5, 1: 5}), "clear": Counter({0: 9, 1: 1}), "rare": Counter({1: 2})}
    texts = ["i feel split", "i feel rare", "i feel clear", "i feel clear", "no verb"]
    # top-1 confidences 0.6 (the edge: the low band, as in the ECE's (lo, hi] bins), 0.7, 0.95, 1.0, 0.5
    probs = np.array([[0.6, 0.4], [0.3, 0.7], [0.95, 0.05], [1.0, 0.0], [0.5, 0.5]])
    y = np.array([1, 1, 0, 0, 0])
    low, mid, top = la.bands(texts, y, probs, counts, min_count=5)
    assert (low["texts"], mid["texts"], top["texts"]) == (2, 1, 2)
    assert low["accuracy"] == 0.5 and mid["accuracy"] == 1.0 and top["accuracy"] == 1.0
    # "rare" was seen twice only, "no verb" has no word: neither counts
    assert (low["with_seen_word"], mid["with_seen_word"], top["with_seen_word"]) == (1, 0, 2)
    assert low["median_purity"] == 0.5 and top["median_purity"] == 0.9 and np.isnan(mid["median_purity"])


def test_label_ambiguity_end_to_end(tiny_model, emotion_dir, tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "onnx").symlink_to(tiny_model, target_is_directory=True)
    la = load_script("research", "label_ambiguity")
    assert la.main([str(tmp_path / "run"), "--variant", "fp32", "--data", str(emotion_dir)]) == 0
    bands = {name for name, _, _ in la.BANDS}
    cells = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    rows = [c for c in cells if c[1].strip() in bands]
    assert len(rows) == 3
    assert sum(int(c[2]) for c in rows) == 2000  # every test text in exactly one band
    assert not any("nan" in cell for c in rows for cell in c)  # an empty band prints a dash
