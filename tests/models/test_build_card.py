"""models/build_card.py renders the card from card_figures.json and attempts.json alone: the
committed card is what they render to, and a changed figure changes the card."""

from __future__ import annotations

import copy
import json

from helpers import REPO, load_script

CARD_DIR = REPO / "models" / "emotion-minilm-l6"


def _inputs():
    figures = json.loads((CARD_DIR / "card_figures.json").read_text())
    return figures, json.loads((CARD_DIR / "attempts.json").read_text())


def test_the_committed_card_is_rendered_from_its_figures():
    build_card = load_script("models", "build_card")
    figures, attempts = _inputs()
    assert build_card.render(figures, attempts) == (CARD_DIR / "README.md").read_text()


def test_a_figure_or_a_run_changes_the_card():
    build_card = load_script("models", "build_card")
    figures, attempts = _inputs()
    card = build_card.render(figures, attempts)
    changed = copy.deepcopy(figures)
    changed["after"]["goemotions-dev"]["default"]["accuracy"] = 0.5
    assert "50.0%" in build_card.render(changed, attempts) and "**missed**" in build_card.render(changed, attempts)
    extra = {**attempts[-1], "when": "2099-01-01", "note": "a row added", "decision": "not shipped"}
    added = [line for line in build_card.render(figures, [*attempts, extra]).splitlines() if line not in card]
    assert len(added) == 1 and added[0].startswith("| 2099-01-01 |") and "not shipped: a row added" in added[0]


def test_the_card_says_whether_an_ece_is_beyond_what_its_set_can_resolve():
    build_card = load_script("models", "build_card")
    figures, _ = _inputs()
    floor = figures["ece_floor"]["emotion-test"]
    changed = copy.deepcopy(figures)
    changed["after"]["emotion-test"]["default"]["ece"] = floor["p95"] / 2
    text = build_card.ece_floor_text(changed)
    assert "The emotion test split's " + build_card._pct(floor["p95"] / 2, 2) + " is within its band" in text
    changed["after"]["emotion-test"]["default"]["ece"] = floor["p95"] * 2
    assert "is above its band" in build_card.ece_floor_text(changed).split(";")[0]
    assert build_card.ece_floor_text({k: v for k, v in figures.items() if k != "ece_floor"}) == ""


def test_the_card_says_whether_more_calibration_texts_would_close_an_ece_gap():
    build_card = load_script("models", "build_card")
    figures, _ = _inputs()
    sizes = figures["calibration_sizes"]
    bound = figures["targets"][sizes["test_set"] + " default ece"]["bound"]
    text = build_card.calibration_sizes_text(figures)
    for row in sizes["rows"]:
        assert build_card._pct(row["ece"][sizes["test_set"]], 2) in text
    changed = copy.deepcopy(figures)
    changed["calibration_sizes"]["in_sample_ece"] = bound * 2
    assert "would not close the gap" in build_card.calibration_sizes_text(changed)
    changed["calibration_sizes"]["in_sample_ece"] = bound / 2
    fitted = build_card.calibration_sizes_text(changed)
    assert "would not close the gap" not in fitted and build_card._pct(bound / 2, 2) + " themselves." in fitted
    changed["calibration_sizes"]["in_sample_ece"] = None
    assert build_card.calibration_sizes_text(changed).endswith("with all of them.")
    assert build_card.calibration_sizes_text({k: v for k, v in figures.items() if k != "calibration_sizes"}) == ""


def test_the_card_says_which_ece_targets_each_calibration_fit_meets():
    build_card = load_script("models", "build_card")
    figures, _ = _inputs()
    changed = copy.deepcopy(figures)
    shipped = next(t for t in changed["calibration_trials"] if t["fitted_on"] == "all, per text")
    others = [t for t in changed["calibration_trials"] if t is not shipped]
    for t in others:
        t["ece"] = {"emotion-test": 0.05, "goemotions-dev": 0.05}
    shipped["ece"] = {"emotion-test": 0.01, "goemotions-dev": 0.03}
    text = build_card.calibration_verdict(changed)
    assert text.startswith("A temperature per text meets every target") and "no other fit meets them all" in text
    shipped["ece"] = {"emotion-test": 0.0165, "goemotions-dev": 0.03}
    text = build_card.calibration_verdict(changed)
    assert "misses the emotion test split's target (1.5%) by 0.15 points" in text
    others[-1]["ece"] = {"emotion-test": 0.01, "goemotions-dev": 0.01}
    assert f"of the other fits, {others[-1]['fitted_on']} meet them all" in build_card.calibration_verdict(changed)


def test_the_card_explains_an_ece_gap_only_when_the_target_is_missed():
    build_card = load_script("models", "build_card")
    figures, _ = _inputs()
    changed = copy.deepcopy(figures)
    name = figures["calibration_sizes"]["test_set"]
    changed["after"][name]["default"]["ece"] = 0.01
    assert build_card.ece_gap_text(changed) == ""
    changed["after"][name]["default"]["ece"] = 0.02
    assert build_card.ece_gap_text(changed) == "\n\n" + build_card.calibration_sizes_text(changed)


def test_the_recipe_says_which_training_files_are_read_more_than_once():
    build_card = load_script("models", "build_card")
    training = copy.deepcopy(_inputs()[0]["training"])
    files = training["config"]["train"] = ["c/emotion_train.jsonl", "c/goemotions_train.jsonl"]
    assert "each epoch reading" not in build_card.training_text(training)
    training["config"]["train"] = [files[0], *files]
    assert "each epoch reading emotion_train 2 times," in build_card.training_text(training)
