"""research/compare_soups.py: weight averages of real checkpoints, scored on the real splits;
greedy membership is decided on validation only."""

import json
import shutil

import pytest

from helpers import load_script

pytestmark = pytest.mark.research


@pytest.fixture(scope="module")
def runs(checkpoints, tmp_path_factory):
    import torch
    from transformers import AutoModelForSequenceClassification

    root = tmp_path_factory.mktemp("soup_runs")
    base = checkpoints("distilbert-tiny")
    shutil.copytree(base, root / "run_a" / "checkpoint")
    shutil.copytree(base, root / "run_c" / "checkpoint")  # a copy of run_a
    model = AutoModelForSequenceClassification.from_pretrained(base)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # a different model of the same architecture
    shutil.copytree(base, root / "run_b" / "checkpoint")
    model.save_pretrained(root / "run_b" / "checkpoint")
    return root


def test_compare_soups_end_to_end(runs, emotion_dir, tmp_path, capsys):
    script = load_script("research", "compare_soups")
    out = tmp_path / "soups.json"
    names = [str(runs / n) for n in ("run_a", "run_b", "run_c")]
    assert script.main([*names, "--data", str(emotion_dir), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {r["model"]: r for r in result["rows"]}
    assert len(rows) == len(result["rows"]) == 6  # 3 runs, the uniform soup, 2 greedy soups
    assert list(rows)[:4] == ["run_a", "run_b", "run_c", "uniform soup of run_a+run_b+run_c"]
    for r in rows.values():
        assert 0 < r["T"] and 0 <= r["test_ece_T"] <= 1 and 0 <= r["val_macro_f1"] <= 1
    # identical weights score identically, and differently perturbed weights do not
    assert {**rows["run_a"], "model": "run_c"} == rows["run_c"]
    assert rows["run_a"]["val_nll_T"] != rows["run_b"]["val_nll_T"]
    for key, higher in script.GREEDY_KEYS.items():
        (greedy,) = [r for r in rows.values() if r["model"].startswith(f"greedy soup by {key}:")]
        singles = [rows[n][key] for n in ("run_a", "run_b", "run_c")]
        # it starts from the best single run on validation and never gets worse there
        assert greedy["members"][0] in ("run_a", "run_b", "run_c")
        assert rows[greedy["members"][0]][key] == (max(singles) if higher else min(singles))
        assert (greedy[key] >= max(singles)) if higher else (greedy[key] <= min(singles))
        assert len(result["greedy_trials"][key]) == 2
        assert [t["added"] for t in result["greedy_trials"][key] if t["kept"]] == greedy["members"][1:]
    assert "| run_a |" in capsys.readouterr().out


def test_a_soup_of_copies_is_the_model(runs, emotion_dir):
    scorer = load_script("research", "compare_soups").Scorer([runs / "run_a", runs / "run_c"], emotion_dir)
    assert scorer.score(scorer.soup(["run_a", "run_c"])) == scorer.score(scorer.states["run_a"])


def test_runs_with_other_labels_cannot_join(runs, emotion_dir, tmp_path):
    other = tmp_path / "run_d" / "checkpoint"
    shutil.copytree(runs / "run_a" / "checkpoint", other)
    config = json.loads((other / "config.json").read_text())
    config["id2label"] = {k: v.upper() for k, v in config["id2label"].items()}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit, match="run_d: distilbert with labels .'SADNESS'.* cannot join"):
        load_script("research", "compare_soups").Scorer([runs / "run_a", tmp_path / "run_d"], emotion_dir)


def test_two_runs_with_one_name_are_refused(runs, emotion_dir, tmp_path):
    shutil.copytree(runs / "run_b", tmp_path / "run_a")
    with pytest.raises(SystemExit, match="another run is also named 'run_a'"):
        load_script("research", "compare_soups").Scorer([runs / "run_a", tmp_path / "run_a"], emotion_dir)
