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
