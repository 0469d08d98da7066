"""models/soup.py: two real fine-tuning runs averaged into a run directory that ships like one run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.torch import load_file

from emotion_onnx_export.finetune import FinetuneConfig, run_finetune
from helpers import load_script


@pytest.fixture(scope="module")
def seed_runs(tmp_path_factory, emotion_dir, checkpoints):
    root = tmp_path_factory.mktemp("seeds")
    for split, n in (("train", 300), ("validation", 120), ("test", 120)):
        lines = (emotion_dir / f"{split}.jsonl").read_text().splitlines()[:n]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    runs = []
    for seed in (1, 2):
        config = FinetuneConfig(
            train=root / "train.jsonl", validation=root / "validation.jsonl", test=root / "test.jsonl",
            out=root / f"s{seed}", base=str(checkpoints("distilbert-tiny")), epochs=1, lr=5e-4, batch_size=16,
            seed=seed,
        )  # fmt: skip
        run_finetune(config)
        runs.append(root / f"s{seed}")
    return runs


def test_soup_writes_a_run_of_the_averaged_weights(seed_runs, tmp_path):
    soup = load_script("models", "soup")
    out = tmp_path / "soup"
    assert soup.main([*map(str, seed_runs), "--out", str(out)]) == 0
    members = [load_file(r / "checkpoint" / "model.safetensors") for r in seed_runs]
    averaged = load_file(out / "checkpoint" / "model.safetensors")
    name = "classifier.weight"
    assert not np.allclose(members[0][name].numpy(), members[1][name].numpy())
    np.testing.assert_allclose(averaged[name].numpy(), (members[0][name] + members[1][name]).numpy() / 2, atol=1e-6)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["seed"] == [1, 2] and metrics["config"]["soup_of"] == list(map(str, seed_runs))
    assert metrics["best_epoch"] is None and "uniform average of 2 runs" in metrics["best_weights"]
    assert [e["seed"] for e in metrics["epochs"]] == [1, 2]
    assert metrics["train_seconds"] == pytest.approx(sum(m["train_seconds"] for m in metrics["members"]), abs=0.2)
    logits = np.load(out / "test_logits.npy")
    assert logits.shape == (120, 6)
    assert metrics["test"]["accuracy"] == pytest.approx((logits.argmax(1) == np.load(out / "test_labels.npy")).mean())
    for png in ("training_curves.png", "confusion_matrix.png", "confusion_matrix_test.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    command = load_script("models", "build_card").recipe_command(metrics["config"], "--smooth-alpha 0.5")
    assert command.startswith("for s in 1 2; do emotion-onnx finetune --train ")
    assert f"--out {seed_runs[0].parent}/s$s" in command and "--seed $s; done" in command
    assert command.endswith(f"--out {out} && emotion-onnx export {out}/checkpoint --out {out}/onnx --smooth-alpha 0.5")


def test_soup_refuses_runs_that_do_not_share_a_start(seed_runs, tmp_path):
    soup = load_script("models", "soup")
    other = tmp_path / "other"
    other.mkdir()
    metrics = json.loads((seed_runs[1] / "metrics.json").read_text())
    metrics["config"]["base"] = "minilm-l6"
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SystemExit, match="base differ"):
        soup.main([str(seed_runs[0]), str(other), "--out", str(tmp_path / "soup")])
    with pytest.raises(SystemExit):
        soup.main([str(seed_runs[0]), "--out", str(tmp_path / "soup")])  # one run is no soup


def test_soup_of_runs_that_differ_in_their_training_mix(seed_runs, tmp_path):
    """Members may differ in their training files (one source given twice, say) but not in their
    evaluation texts; each member's mix is recorded and the card's recipe repeats each command."""
    soup, card = load_script("models", "soup"), load_script("models", "build_card")
    other = tmp_path / "mix"
    other.mkdir()
    (other / "checkpoint").symlink_to(seed_runs[1] / "checkpoint")
    metrics = json.loads((seed_runs[1] / "metrics.json").read_text())
    train = metrics["config"]["train"]
    metrics["config"]["train"] = [train, train]
    (other / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "soup"
    assert soup.main([str(seed_runs[0]), str(other), "--out", str(out)]) == 0
    cfg = json.loads((out / "metrics.json").read_text())["config"]
    assert cfg["member_train"] == [train, [train, train]]
    command = card.recipe_command(cfg)
    assert command.count("emotion-onnx finetune --train ") == 2 and f"--train {train} {train} " in command
    result = json.loads((out / "metrics.json").read_text())
    training = {**result, "validation_macro_f1": result["validation"]["macro_f1"]}
    text = card.training_text(training)
    assert "in each of 2 runs from the same start" in text and "uniform average" in text and "seeds 1, 2," in text
    table = card.epochs_table({"training": training}).splitlines()
    assert table[0].startswith("| run | epoch |") and [row.split(" | ")[0] for row in table[2:]] == ["| s1", "| mix"]

    metrics["config"]["validation"] = metrics["config"]["test"]
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SystemExit, match="validation differ"):
        soup.main([str(seed_runs[0]), str(other), "--out", str(out), "--force"])


def test_soup_refuses_members_with_a_folded_neutral_offset(seed_runs, tmp_path):
    soup = load_script("models", "soup")
    other = tmp_path / "offset"
    other.mkdir()
    metrics = json.loads((seed_runs[1] / "metrics.json").read_text())
    metrics["neutral_offset"] = {"offset": -0.4}
    (other / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(SystemExit, match="neutral offset is folded"):
        soup.main([str(seed_runs[0]), str(other), "--out", str(tmp_path / "soup")])


def test_same_base_names_one_start_spelled_two_ways(seed_runs, tmp_path):
    soup, card = load_script("models", "soup"), load_script("models", "build_card")
    other = tmp_path / "renamed"
    other.mkdir()
    (other / "checkpoint").symlink_to(seed_runs[1] / "checkpoint")
    metrics = json.loads((seed_runs[1] / "metrics.json").read_text())
    metrics["config"]["base"] = "build/bases/the-same-weights.safetensors"
    (other / "metrics.json").write_text(json.dumps(metrics))
    out = tmp_path / "soup"
    with pytest.raises(SystemExit, match="base differ"):
        soup.main([str(seed_runs[0]), str(other), "--out", str(out)])
    assert soup.main([str(seed_runs[0]), str(other), "--out", str(out), "--same-base"]) == 0
    cfg = json.loads((out / "metrics.json").read_text())["config"]
    assert cfg["member_base"][1] == "build/bases/the-same-weights.safetensors"
    command = card.recipe_command(cfg)
    assert "--base build/bases/the-same-weights.safetensors" in command and "--same-base" in command
